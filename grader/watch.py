"""``kata watch SLUG``: run a kata's visible examples, then grade it, every time one of its
declared files is saved (rustlings' watch mode).

Strategy: poll. A kata declares one to three files; stat()ing them twice a second costs
nothing, needs no dependency, and behaves the same on Linux, macOS and Windows, where native
watchers differ (inotify, FSEvents, ReadDirectoryChangesW) and a watcher library would be
the learner's first install problem. A change is the (mtime, size, inode) of a file moving,
or a file appearing or disappearing; editors that save by writing a new file and renaming
it over the old one change the inode. After a change the watcher waits for the writes to
settle (``SETTLE`` seconds without a further change) before it runs anything, and a save
made while a round runs starts the next round as soon as this one ends.

Each round clears the screen and prints, top first: what is watched, the first failing
requirement of the grade (the thing to work on), the examples' verdict, the kata's report.
Ctrl-C leaves cleanly, also in the middle of a round (the grading is stopped, its
processes killed), with exit status 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .grading import grade, interrupted_katas
from .kata import Kata
from .report import closing_line, render
from .scoring import Report
from .workspace import checkout

__all__ = ["Round", "Watcher", "first_failure", "main"]

POLL = 0.5  # seconds between two looks at the files
SETTLE = 0.2  # seconds without a further change before a round starts
CLEAR = "\033[2J\033[H"  # ANSI: clear the screen, cursor home (Windows 10+ terminals too)
EXAMPLE_LINES = 12  # lines of a failing examples run shown (its end: pytest's summary)

Stamp = tuple[int, int, int] | None


@dataclass(frozen=True)
class Round:
    """What one round found."""

    examples_ok: bool
    examples_tail: str  # the last lines of pytest's output when an example failed
    report: Report

    @property
    def interrupted(self) -> bool:
        return bool(interrupted_katas(self.report))


def first_failure(report: Report) -> str:
    """The first failing requirement of a report, with its message: what to work on next."""
    for k in report.katas:
        if k.reason and k.status != "passed":
            return f"{k.slug}: {k.reason}"
        for spec in k.failing:
            message = f"\n    {spec.message}" if spec.message else ""
            return f"✗ {spec.title}{message}"
    return ""


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Watcher:
    """Polls the declared files of a kata and runs a round whenever one of them is saved."""

    def __init__(
        self,
        root: Path,
        kata: Kata,
        *,
        out: TextIO = sys.stdout,
        sleep: Callable[[float], None] = time.sleep,
        clear: bool | None = None,
        on_report: Callable[[Report], object] | None = None,
    ) -> None:
        self.root = root
        self.kata = kata
        self.files = [owner.exercise_dir / name for owner, name in kata.inputs]
        self.out = out
        self.sleep = sleep
        self.clear = out.isatty() if clear is None else clear
        self.on_report = on_report

    def snapshot(self) -> tuple[Stamp, ...]:
        return tuple(_stamp(p) for p in self.files)

    def wait_for_change(self, since: tuple[Stamp, ...]) -> tuple[Stamp, ...]:
        """Block until the files differ from ``since`` and have settled; the new snapshot."""
        now = self.snapshot()
        while now == since:
            self.sleep(POLL)
            now = self.snapshot()
        while True:  # let the editor finish writing
            self.sleep(SETTLE)
            settled = self.snapshot()
            if settled == now:
                return settled
            now = settled

    def run_examples(self) -> tuple[bool, str]:
        tests = self.kata.visible_tests
        if not tests.is_file():
            return True, "(this kata has no visible examples)"
        command = [sys.executable, "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider"]
        done = subprocess.run(
            command,
            cwd=self.root,
            env=self.kata.examples_env(dict(os.environ)),
            capture_output=True,
            text=True,
            errors="replace",
        )
        tail = "\n".join(done.stdout.rstrip().splitlines()[-EXAMPLE_LINES:])
        return done.returncode == 0, tail

    def run_round(self) -> Round:
        ok, tail = self.run_examples()
        report = grade([self.kata], checkout(self.root))
        return Round(ok, "" if ok else tail, report)

    def show(self, result: Round) -> None:
        names = ", ".join(str(p.relative_to(self.root).as_posix()) for p in self.files)
        lines = [
            f"watching {names} — {time.strftime('%H:%M:%S')} — save to run again, Ctrl-C to stop",
            "",
        ]
        failure = first_failure(result.report)
        lines += [failure, ""] if failure else ["✓ every requirement passed", ""]
        if result.examples_ok:
            lines.append("examples: passed")
        else:
            lines += ["examples: failing (the end of pytest's output):", result.examples_tail]
        lines += ["", render(result.report, "table").rstrip(), "", closing_line(result.report)]
        if self.clear and os.name == "nt" and self.out is sys.stdout:
            os.system("cls")  # a legacy Windows console does not read ANSI escapes
            self.out.write("\n".join(lines) + "\n")
        else:
            self.out.write(
                (CLEAR if self.clear else "\n" + "=" * 72 + "\n") + "\n".join(lines) + "\n"
            )
        self.out.flush()

    def loop(self, rounds: int | None = None) -> int:
        """Run a round now and after every save; ``rounds`` caps them (tests). Exit status 0
        when stopped by Ctrl-C."""
        done = 0
        try:
            while rounds is None or done < rounds:
                before = self.snapshot()
                result = self.run_round()
                if result.interrupted:  # Ctrl-C while grading: grade() stopped it cleanly
                    raise KeyboardInterrupt
                if self.on_report:
                    self.on_report(result.report)
                self.show(result)
                done += 1
                if rounds is not None and done >= rounds:
                    break
                self.wait_for_change(before)
        except KeyboardInterrupt:
            self.out.write("\nstopped watching\n")
            self.out.flush()
        return 0


def main(
    *,
    root: Path,
    kata: Kata,
    on_report: Callable[[Report], object] | None = None,
    rounds: int | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Watch ``kata`` of the checkout at ``root`` until Ctrl-C; ``on_report`` gets each
    finished grade (the CLI remembers it for `kata list`)."""
    return Watcher(root, kata, out=out, on_report=on_report).loop(rounds)
