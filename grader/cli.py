"""The ``kata`` command: a thin layer over the grader's stages. It holds no grading logic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from . import __version__, classroom, watch
from .grading import grade, interrupted_katas, make_report
from .kata import Kata, KataError, discover, find_root, select
from .report import FORMATS, closing_line, columns, render, state, to_annotations, write_atomic
from .runner import Limits
from .scoring import KataResult, Report
from .verify import cpu_load, explore, render_verdicts, show_mutants, verdicts_json, verify
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


def _last_report(root: Path) -> Report | None:
    try:
        return Report.from_dict(json.loads((root / LAST_REPORT).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember(root: Path, katas: list[Kata], report: Report) -> Report:
    """Fold the katas of ``report`` that finished into the learner's last report (one entry
    per kata, curriculum order), so `kata list` knows the state of every kata graded so far,
    whether graded all at once or one by one. Returns what is remembered."""
    known = {k.slug: k for k in (_last_report(root) or Report(katas=())).katas}
    unfinished = set(interrupted_katas(report))
    finished = {k.slug: k for k in report.katas if k.slug not in unfinished}
    known.update(finished)
    order = [k.slug for k in discover(root)]
    merged = make_report(tuple(known[slug] for slug in order if slug in known), report.submission)
    if finished:
        with contextlib.suppress(OSError):  # a read-only checkout still gets its report
            write_atomic(root / LAST_REPORT, render(merged, "json"))
    return merged


def _next_step(root: Path, graded: Report, known: Report) -> str:
    """What a learner does next: fix the first kata of this grading that failed, else start
    the first kata of the curriculum not passed yet."""
    for k in graded.katas:
        if k.status in ("failed", "error", "timeout"):
            return f"`nox -s grade -- {k.slug}` (or `nox -s watch -- {k.slug}`) until it passes"
    states = {k.slug: k.status for k in known.katas}
    for kata in discover(root):
        if states.get(kata.slug) != "passed":
            lesson = kata.exercise_dir.relative_to(root) / "README.md"
            return f"read {lesson.as_posix()}, then `nox -s try -- {kata.slug}`"
    return "every kata passed: well done"


def cmd_list(args: argparse.Namespace) -> int:
    root, katas = _katas(args)
    last = _last_report(root)
    states = {k.slug: state(k.status) for k in last.katas} if last else {}
    rows = [("#", "pillar", "slug", "title", "difficulty", "state")]
    for i, k in enumerate(katas, 1):
        title = k.title + "".join(f" (builds on {b.slug})" for b in k.builds_on)
        rows.append((str(i), k.pillar, k.slug, title, k.difficulty, states.get(k.slug, "?")))
    print("\n".join(columns(rows)))
    print(
        "\nstate: the last grade of each kata ('?' until you grade it)."
        "\nThe loop: read exercises/<slug>/README.md -> `nox -s try -- <slug>` (the examples)"
        " -> `nox -s grade -- <slug>` (the hidden specs)."
    )
    return 0


# -- kata try ----------------------------------------------------------------------------


def cmd_try(args: argparse.Namespace) -> int:
    root = _root(args)
    (kata,) = select(discover(root), [args.slug])
    if not kata.visible_tests.is_file():
        raise KataError(f"{kata.visible_tests}: this kata has no visible tests")
    command = [sys.executable, "-m", "pytest", str(kata.visible_tests), *args.pytest_args]
    return subprocess.call(command, cwd=root, env=kata.examples_env(dict(os.environ)))


# -- kata watch ---------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    root = _root(args)
    (kata,) = select(discover(root), [args.slug])
    return watch.main(root=root, kata=kata, on_report=lambda r: _remember(root, [kata], r))


# -- kata grade --------------------------------------------------------------------------


def _progress(done: int, total: int, result: KataResult) -> None:
    _say(
        f"[{done}/{total}] {result.slug}: {state(result.status)} "
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
    report = grade(
        katas,
        source,
        jobs=args.jobs,
        progress=None if args.quiet else _progress,
        limits=Limits(sandbox=not args.no_sandbox),
        require_sandbox=args.require_sandbox,
    )
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
    if not args.solutions and not args.submission:  # the learner's own checkout
        known = _remember(root, katas, report)
        closing = closing_line(report, "" if unfinished else _next_step(root, report, known))
    else:
        closing = closing_line(report)
    if not args.quiet:
        sys.stdout.flush()
        _say(closing)
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
    if args.show_mutants:
        for kata in katas:
            sys.stdout.write(show_mutants(kata))
        return 0
    if args.explore:
        seeds = [random.SystemRandom().randrange(1, 2**31) for _ in range(args.explore)]
        _say(f"exploring {len(katas)} kata(s) with seeds {', '.join(map(str, seeds))}")
        findings = asyncio.run(explore(katas, seeds=seeds, jobs=args.jobs))
        for slug, lines in findings.items():
            print(f"{slug}: {'nothing found' if not lines else f'{len(lines)} finding(s)'}")
            for line in lines:
                print(f"  - {line}")
        return 1 if any(findings.values()) else 0
    scope = "every spec" if args.all_specs else "covering specs"
    _say(
        f"verifying {len(katas)} kata(s): solution x{args.repeat}, stub, mutants ({scope}), "
        "coverage" + (", every core loaded" if args.load else "")
    )
    done = 0

    def progress(verdict) -> None:
        nonlocal done
        done += 1
        _say(
            f"[{done}/{len(katas)}] {verdict.kata.slug}: {'ok' if verdict.ok else 'FAIL'} "
            f"({verdict.duration:.1f}s)"
        )

    run = verify(
        katas,
        runs=args.repeat,
        jobs=args.jobs,
        all_specs=args.all_specs,
        # under --load the burners make the load, and the slots stay one job per core: the
        # load the specs are proved to hold under is then always the same
        elastic=not args.load,
        progress=progress,
    )
    with cpu_load() if args.load else contextlib.nullcontext():
        verdicts = asyncio.run(run)
    sys.stdout.write(render_verdicts(verdicts))
    if args.json:
        write_atomic(Path(args.json), json.dumps(verdicts_json(verdicts), indent=2) + "\n")
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


def add_sandbox_options(p: argparse.ArgumentParser) -> None:
    """--require-sandbox and --no-sandbox (``kata grade``, ``kata batch``)."""
    sandbox = p.add_mutually_exclusive_group()
    sandbox.add_argument(
        "--require-sandbox",
        action="store_true",
        help="refuse to grade unless the kernel confines the spec processes (Landlock)",
    )
    sandbox.add_argument(
        "--no-sandbox",
        action="store_true",
        help="maintainers: run the specs without Landlock (the report says so)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kata", description="Backend katas: list, try, watch, grade and verify exercises."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root", help="the course checkout (default: found from the current folder)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the curriculum in order, with your state per kata")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "try", aliases=["test"], help="run the visible examples of one kata (pytest)"
    )
    p.add_argument("slug")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments")
    p.set_defaults(func=cmd_try)

    p = sub.add_parser(
        "watch", help="run the examples, then grade one kata, every time its files are saved"
    )
    p.add_argument("slug")
    p.set_defaults(func=cmd_watch)

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
    add_sandbox_options(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("verify", help="prove the specs: solution full, stub zero, mutants killed")
    p.add_argument("slugs", nargs="*", metavar="SLUG")
    p.add_argument(
        "--repeat",
        "--runs",
        dest="repeat",
        type=_positive_int,
        default=3,
        help="runs of the solution; every one must score full marks (default 3)",
    )
    p.add_argument("--jobs", type=_positive_int, default=None)
    p.add_argument(
        "--load", action="store_true", help="burn every core meanwhile, as on a busy CI runner"
    )
    p.add_argument(
        "--all-specs",
        action="store_true",
        help="run every spec on every mutant (the old, slower way) instead of the covering ones",
    )
    p.add_argument("--json", metavar="FILE", help="also write the verify report as JSON")
    p.add_argument(
        "--show-mutants", action="store_true", help="print each mutant as a diff, run nothing"
    )
    p.add_argument(
        "--explore",
        type=_positive_int,
        metavar="SEEDS",
        default=0,
        help="hunt weak properties: solution and mutants with SEEDS random hypothesis seeds "
        "and 10x the examples",
    )
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
