"""Classroom commands (release, batch, package-gradescope): registered on the ``kata`` CLI.

Each command parses its options and calls the ``main()`` of its module; what is shown on the
terminal (progress, the closing lines) is decided here, nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from . import batch, gradescope, release
from .kata import find_root

__all__ = ["BarProgress", "LineProgress", "register"]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve() if args.root else find_root()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return value


# -- kata release ------------------------------------------------------------------------


def cmd_release(args: argparse.Namespace) -> int:
    done = release.main(
        root=_root(args), outdir=Path(args.outdir), slugs=args.katas, force=args.force
    )
    _say(
        f"wrote the learner template of {len(done.katas)} kata(s) to {done.outdir} "
        f"({len(done.files)} files; no spec or solution byte in it)"
    )
    return 0


# -- kata batch --------------------------------------------------------------------------


def _row_line(row: batch.Row) -> str:
    report = row.report
    if row.skipped:
        how = "unchanged, not graded again"
    elif row.reused:
        how = f"{row.duration:.1f}s; {row.graded} kata(s) graded, {row.reused} unchanged re-used"
    else:
        how = f"{row.duration:.1f}s"
    return f"{row.id}: {report.score}/{report.max_score} {row.status} ({how})"


class LineProgress:
    """One plain line per finished submission: for CI logs and files."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, done: int, total: int, row: batch.Row) -> None:
        print(f"[{done}/{total}] {_row_line(row)}", file=self.stream, flush=True)


class BarProgress:
    """A bar redrawn in place on a terminal; a submission that needs a look gets its own line
    above the bar."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, done: int, total: int, row: batch.Row) -> None:
        filled = self.WIDTH * done // total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write("\r\033[K")
        if row.status != "ok":
            self.stream.write(f"{_row_line(row)}\n")
        self.stream.write(f"grading [{bar}] {done}/{total}  {row.id}")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_batch(args: argparse.Namespace) -> int:
    merging = bool(args.merge)
    progress = None
    if not args.quiet and not merging:
        progress = BarProgress(sys.stderr) if sys.stderr.isatty() else LineProgress(sys.stderr)
    done = batch.main(
        root=None if merging else _root(args),
        submissions=Path(args.submissions) if args.submissions else None,
        roster=Path(args.roster) if args.roster else None,
        output_dir=Path(args.output_dir),
        jobs=args.jobs,
        force=args.force,
        sandbox=not args.no_sandbox,
        require_sandbox=args.require_sandbox,
        slugs=args.katas,
        merge=[Path(m) for m in args.merge],
        progress=progress,
    )
    sys.stdout.write(batch.summary_markdown(done.summary))
    if not args.quiet:
        per = f", {done.elapsed / done.graded:.1f}s per submission" if done.graded else ""
        _say(
            f"{len(done.rows)} learner(s): {done.graded} graded, "
            f"{len(done.rows) - done.graded} {'merged' if merging else 'unchanged'}, "
            f"in {done.elapsed:.1f}s{per}; kata grades: {done.summary.katas_graded} graded, "
            f"{done.summary.katas_reused} unchanged re-used"
        )
        _say(
            f"wrote {done.output_dir / 'gradebook.csv'}, summary.md, summary.json, "
            "class-report.html, reports/"
        )
    return 0


# -- kata package-gradescope -------------------------------------------------------------


def cmd_package_gradescope(args: argparse.Namespace) -> int:
    path = gradescope.main(root=_root(args), outfile=Path(args.outfile), slugs=args.katas)
    _say(f"wrote the Gradescope autograder to {path} (upload it on 'Configure Autograder')")
    return 0


# -- the parsers -------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add the classroom subcommands to the ``kata`` parser."""
    p = sub.add_parser(
        "release", help="write the learner template: stubs, lessons, visible tests; no specs"
    )
    p.add_argument("outdir", metavar="OUTDIR")
    p.add_argument("--katas", nargs="+", default=[], metavar="SLUG", help="default: all")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty OUTDIR (its exercises/ and grader/ are replaced)",
    )
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("batch", help="grade many submissions into a gradebook")
    p.add_argument(
        "submissions",
        nargs="?",
        metavar="SUBMISSIONS",
        help="a folder of learner checkouts, one folder per learner (with --roster: the "
        "folder the roster's paths start from)",
    )
    p.add_argument(
        "--roster",
        metavar="FILE",
        help="CSV with a header: name (the learner id), path (optional, default: <name>)",
    )
    p.add_argument("--output-dir", metavar="DIR", default="grades", help="default: ./grades")
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="submissions graded at once (default: the number of cores); "
        "their katas share the cores",
    )
    p.add_argument("--force", action="store_true", help="grade unchanged submissions again")
    p.add_argument("--katas", nargs="+", default=[], metavar="SLUG", help="default: all")
    p.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="DIR",
        help="grade nothing: build the gradebook and summary from the reports in DIR "
        "(batch output folders, or their reports/), e.g. of a CI matrix",
    )
    p.add_argument("--quiet", action="store_true", help="no progress")
    from .cli import add_sandbox_options  # the options of `kata grade`, the same words

    add_sandbox_options(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("package-gradescope", help="build a Gradescope autograder zip")
    p.add_argument("outfile", metavar="OUTFILE.zip")
    p.add_argument("--katas", nargs="+", default=[], metavar="SLUG", help="default: all")
    p.set_defaults(func=cmd_package_gradescope)
