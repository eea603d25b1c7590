"""The ``kata`` command: a thin layer over the grader's stages. It holds no grading logic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from . import __version__, classroom
from .grading import grade, interrupted_katas
from .kata import Kata, KataError, discover, find_root, select
from .report import FORMATS, columns, render, to_annotations, write_atomic
from .scoring import KataResult, Report
from .verify import render_verdicts, verify
from .workspace import checkout, solutions

__all__ = ["main"]

LAST_REPORT = Path(".kata") / "last-report.json"


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve() if args.root else find_root()


def _katas(args: argparse.Namespace) -> tuple[Path, list[Kata]]:
    root = _root(args)
    return root, select(discover(root), getattr(args, "slugs", []) or [])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- kata list ---------------------------------------------------------------------------


def _last_states(root: Path) -> dict[str, str]:
    try:
        report = Report.from_dict(json.loads((root / LAST_REPORT).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    names = {"passed": "passing", "not_started": "not started"}
    return {k.slug: names.get(k.status, "failing") for k in report.katas}


def cmd_list(args: argparse.Namespace) -> int:
    root, katas = _katas(args)
    states = _last_states(root)
    rows = [("#", "pillar", "slug", "title", "difficulty", "state")]
    for i, k in enumerate(katas, 1):
        rows.append((str(i), k.pillar, k.slug, k.title, k.difficulty, states.get(k.slug, "?")))
    print("\n".join(columns(rows)))
    if not states:
        print("\nstate: '?' until you run `nox -s grade` (or `kata grade`)")
    return 0


# -- kata test ---------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    root = _root(args)
    (kata,) = select(discover(root), [args.slug])
    if not kata.visible_tests.is_file():
        raise KataError(f"{kata.visible_tests}: this kata has no visible tests")
    command = [sys.executable, "-m", "pytest", str(kata.visible_tests), *args.pytest_args]
    return subprocess.call(command, cwd=root)


# -- kata grade --------------------------------------------------------------------------


def _progress(done: int, total: int, result: KataResult) -> None:
    _say(
        f"[{done}/{total}] {result.slug}: {result.status.replace('_', ' ')} "
        f"{result.score}/{result.max_score} ({result.duration:.1f}s)"
    )


def cmd_grade(args: argparse.Namespace) -> int:
    root, katas = _katas(args)
    if args.solutions and args.submission:
        raise KataError("--solutions and --submission exclude each other")
    if args.solutions:
        source = solutions(root)
    else:
        submission = Path(args.submission).resolve() if args.submission else root
        if not submission.is_dir():
            raise KataError(f"--submission {args.submission}: no such folder")
        source = checkout(submission)
    if not args.quiet:
        _say(f"grading {len(katas)} kata(s) of {source.label}")
    report = grade(katas, source, jobs=args.jobs, progress=None if args.quiet else _progress)
    text = render(report, args.format)
    if args.output:
        write_atomic(Path(args.output), text)
        if not args.quiet:
            _say(f"wrote {args.format} report to {args.output}")
    else:
        sys.stdout.write(text)
    if args.json:
        write_atomic(Path(args.json), render(report, "json"))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        sys.stdout.write(to_annotations(report))  # shown on the run's summary page
    unfinished = interrupted_katas(report)
    if not unfinished and not args.solutions and not args.submission and not args.slugs:
        # Remembered for `kata list`; a read-only checkout still gets its report on stdout.
        with contextlib.suppress(OSError):
            write_atomic(root / LAST_REPORT, render(report, "json"))
    if unfinished:
        _say(
            f"grading was interrupted; the report is partial (unfinished: {', '.join(unfinished)})"
        )
        return 130
    if args.fail_under is not None and report.percent < args.fail_under:
        _say(f"score {report.percent:.1f}% is under --fail-under {args.fail_under:g}%")
        return 1
    return 0


# -- kata verify -------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    _, katas = _katas(args)
    _say(f"verifying {len(katas)} kata(s): solution x{args.runs}, stub, mutants, coverage")

    def progress(verdict) -> None:
        _say(f"  {verdict.kata.slug}: {'ok' if verdict.ok else 'FAIL'} ({verdict.duration:.1f}s)")

    verdicts = asyncio.run(verify(katas, runs=args.runs, jobs=args.jobs, progress=progress))
    sys.stdout.write(render_verdicts(verdicts))
    failed = [v.kata.slug for v in verdicts if not v.ok]
    if failed:
        _say(f"verify FAILED for: {', '.join(failed)}")
        return 1
    _say("verify: every kata is green")
    return 0


# -- the parser --------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return value


def _percent(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be a percentage between 0 and 100")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kata", description="Backend katas: list, test, grade and verify exercises."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root", help="the course checkout (default: found from the current folder)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the curriculum in order, with your state per kata")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("test", help="run the visible tests of one kata")
    p.add_argument("slug")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("grade", help="grade learner files against the hidden specs")
    p.add_argument("slugs", nargs="*", metavar="SLUG", help="katas to grade (default: all)")
    p.add_argument("--submission", metavar="DIR", help="a learner checkout (default: this one)")
    p.add_argument("--solutions", action="store_true", help="grade the reference solutions")
    p.add_argument("--format", choices=sorted(FORMATS), default="table")
    p.add_argument("--output", metavar="FILE", help="write the report here (default: stdout)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON report here")
    p.add_argument(
        "--fail-under",
        type=_percent,
        metavar="PCT",
        help="exit 1 when the total score is under PCT percent",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="katas graded at once (default: number of cores)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("verify", help="prove the specs: solution full, stub zero, mutants killed")
    p.add_argument("slugs", nargs="*", metavar="SLUG")
    p.add_argument("--runs", type=_positive_int, default=3, help="solution runs (flake check)")
    p.add_argument("--jobs", type=_positive_int, default=None)
    p.set_defaults(func=cmd_verify)

    classroom.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KataError as err:
        _say(f"kata: error: {err}")
        return 2
    except KeyboardInterrupt:
        _say("kata: interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
