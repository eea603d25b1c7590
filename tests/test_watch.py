"""`kata watch SLUG`: examples then grade on every save, the first failing requirement on top,
Ctrl-C leaves cleanly."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.kata import discover
from grader.scoring import KataResult, Report, SpecResult
from grader.watch import CLEAR, Round, Watcher

from .conftest import ADDER_SOLUTION, ADDER_STUB

ROOT = Path(__file__).resolve().parent.parent
PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)


@pytest.fixture
def adder(course):
    course.add_adder()
    (course.root / "exercises" / "adder" / "adder.py").write_text(PARTIAL)
    return course


def _watcher(course, out, sleep=time.sleep, **options) -> Watcher:
    (kata,) = discover(course.root)
    return Watcher(course.root, kata, out=out, sleep=sleep, **options)


def _round(score: int) -> Round:
    """A finished round of the adder kata without running anything: one spec of 6 points."""
    outcome = "passed" if score else "failed"
    message = "" if score else "Called mul(4, 5); returned 9; expected 20"
    spec = SpecResult("t::mul", "mul(4, 5) returns 20.", 6, outcome, message)
    kata = KataResult("adder", "Adder", "kernel", "failed", score, 6, 0.1, "", (spec,))
    return Round(False, "FAILED test_adder.py::test_add_example", Report((kata,)))


def test_a_round_clears_the_screen_and_puts_the_first_failing_requirement_on_top(adder):
    out = io.StringIO()
    _watcher(adder, out, clear=True).show(_round(0))
    screen = out.getvalue()
    assert screen.startswith(CLEAR + "watching exercises/adder/adder.py — ")
    lines = screen.removeprefix(CLEAR).splitlines()
    assert lines[2:4] == [
        "✗ mul(4, 5) returns 20.",
        "    Called mul(4, 5); returned 9; expected 20",
    ]
    assert "examples: failing" in screen and "FAILED test_adder.py::test_add_example" in screen
    assert lines[-1] == "0/6 (0%): 1 failed"


def test_saving_a_declared_file_runs_a_new_round(adder):
    """Two real rounds: the partial stub, then the solution saved while the watcher waits."""
    out = io.StringIO()
    path = adder.root / "exercises" / "adder" / "adder.py"
    saves = iter([ADDER_SOLUTION])
    seen = []

    def sleep(_seconds: float) -> None:
        text = next(saves, None)
        if text is not None:
            path.write_text(text)

    watcher = _watcher(adder, out, sleep, clear=False)
    watcher.on_report = seen.append
    assert watcher.loop(rounds=2) == 0
    first, second = out.getvalue().split("=" * 72)[1:]
    assert first.splitlines()[3] == "✗ mul(4, 5) returns 20."  # on top, under the header
    assert "examples: passed" in first  # the visible example only checks add
    assert "5/6 (83%): 1 failed" in first
    assert "✓ every requirement passed" in second and "6/6 (100%): 1 passed" in second
    assert [r.score for r in seen] == [5, 6]  # handed on: `kata list` remembers them


def test_a_file_that_does_not_change_starts_no_round(adder):
    watcher = _watcher(adder, io.StringIO())
    before = watcher.snapshot()
    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            (adder.root / "exercises" / "adder" / "notes.txt").write_text("not declared")
        if len(naps) == 5:
            (adder.root / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)

    watcher.sleep = sleep
    after = watcher.wait_for_change(before)
    assert after != before and len(naps) == 6  # 5 polls, then one settle


def test_ctrl_c_while_waiting_leaves_cleanly(adder):
    out = io.StringIO()

    def sleep(_seconds: float) -> None:
        raise KeyboardInterrupt

    watcher = _watcher(adder, out, sleep)
    watcher.run_round = lambda: _round(6)
    assert watcher.loop() == 0
    assert out.getvalue().endswith("\nstopped watching\n")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_the_command_stops_on_sigint_with_status_zero(adder):
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "--root", str(adder.root), "watch", "adder"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in proc.stdout:  # the first screen, up to its closing line
            lines.append(line)
            if "1 failed" in line and "/6" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
    finally:
        proc.kill()
    assert "✗ mul(4, 5) returns 20.\n" in lines
    assert proc.returncode == 0 and "stopped watching" in rest and "Traceback" not in rest
