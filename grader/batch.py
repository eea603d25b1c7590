"""Grade a class: many submissions with the trusted specs of this checkout, one gradebook.

Theory of operation:

* A submission is a learner checkout with an id: a folder of SUBMISSIONS, or a roster row.
* Every submission is graded by ``grading.run_grading``, the grading path of ``kata grade``,
  all in one event loop: ``jobs`` submissions at a time, each with ``cores // jobs`` katas at a
  time (at least one), so about one kata runs per core whatever ``--jobs`` says.
* Each learner's report is written (atomically) the moment it is finished, with a content hash
  per kata of what that kata's grade depends on: the files the kata takes from the submission,
  its specs and kata.toml, the grader's code. A later batch grades again only the katas whose
  hash changed (or all, with ``force``) and reuses the others' results from the report, so a
  class re-graded after a deadline extension costs only the katas that changed.
* The trusted specs are read once, when the batch starts (``workspace.SpecSnapshot``): every
  learner's workspaces are built from that copy. If the files on disk change while a learner
  is graded, that learner's grading stops and its report says so (the gradebook marks it);
  the learners after it are still graded from the snapshot, never from the changed files.
* A submission that hangs or crashes is contained by the runner (the kata says ``timeout`` or
  ``error``). A grading that fails as a whole (a grader error, the batch's own deadline) becomes
  a report whose katas say why; it is never cached, and the batch goes on.
* The gradebook and the class summary are pure functions of the reports, so ``merge`` builds
  them from the reports of several machines (one CI job per chunk of the roster).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import __version__
from .class_report import to_html
from .grading import make_report, run_grading
from .kata import Kata, KataError, discover, select
from .release import GRADER, files_under
from .report import render, write_atomic
from .runner import Limits, sandbox_status
from .scoring import KataResult, Report
from .workspace import (
    MAX_FILE_BYTES,
    Source,
    SpecSnapshot,
    checkout,
    find_input,
    linked_folder,
)

__all__ = [
    "Batch",
    "ClassSummary",
    "KataSummary",
    "Row",
    "Submission",
    "find_submissions",
    "gradebook_csv",
    "learner_status",
    "main",
    "read_merge",
    "read_roster",
    "summarize",
    "summary_markdown",
]

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
REPORTS = "reports"
STATE = "batch-state.json"
CLASS_REPORT = "class-report.html"
STATE_SCHEMA = "backend-katas/batch-state@2"  # @1 kept one digest per learner
NO_FOLDER = "no submission folder"
POINTS_POSSIBLE = "Points Possible"
MOST_FAILED = 3  # specs listed per kata in the class summary
DEADLINE_SLACK = 30.0  # seconds a submission may take beyond listing and running each kata


@dataclass(frozen=True)
class Submission:
    id: str
    path: Path


def learner_status(report: Report) -> str:
    """One word (or a short list) for the gradebook: ``ok``, ``not started``, ``missing``, or
    the katas that hung or crashed, e.g. ``timeout: adder; error: echo``."""
    katas = report.katas
    if katas and all(k.reason.startswith(NO_FOLDER) for k in katas):
        return "missing"
    trouble = [
        f"{status}: {', '.join(k.slug for k in katas if k.status == status)}"
        for status in ("timeout", "error")
        if any(k.status == status for k in katas)
    ]
    if trouble:
        return "; ".join(trouble)
    if katas and all(k.status == "not_started" for k in katas):
        return "not started"
    return "ok"


@dataclass(frozen=True)
class Row:
    """One learner of the gradebook."""

    id: str
    report: Report
    skipped: bool = False  # not graded by this run: unchanged since the last one, or merged
    duration: float = 0.0  # seconds this run spent grading it
    graded: int = 0  # katas graded by this run
    reused: int = 0  # katas whose result was reused from the last run (unchanged)

    @property
    def status(self) -> str:
        return learner_status(self.report)


Progress = Callable[[int, int, Row], None]


@dataclass(frozen=True)
class Batch:
    rows: tuple[Row, ...]
    summary: ClassSummary
    output_dir: Path
    elapsed: float  # seconds, wall clock, for the whole batch
    graded: int  # submissions graded in this run (the others were unchanged)


# -- who is in the class ------------------------------------------------------------------


def _check_id(name: str, where: str) -> None:
    if not ID.match(name):
        raise KataError(
            f"{where}: {name!r} is not usable as a learner id (it names the report file); "
            "use letters, digits and . _ @ + - only"
        )


def find_submissions(folder: Path, *, exclude: Sequence[Path] = ()) -> list[Submission]:
    """One submission per sub-folder of ``folder`` (hidden folders and ``exclude`` left out)."""
    if not folder.is_dir():
        raise KataError(f"{folder}: no such folder of submissions")
    if (folder / "exercises").is_dir():
        raise KataError(
            f"{folder}: this is one checkout, not a folder of checkouts; "
            f"grade it with `kata grade --submission {folder}`"
        )
    skip = {p.resolve() for p in exclude}
    subs = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_dir() or path.resolve() in skip:
            continue
        _check_id(path.name, str(path))
        subs.append(Submission(path.name, path.resolve()))
    if not subs:
        raise KataError(f"{folder}: holds no learner checkouts (expected one folder per learner)")
    return subs


def read_roster(path: Path, base: Path) -> list[Submission]:
    """The roster CSV: a header with ``name`` and optionally ``path`` (relative to ``base``;
    default: ``base/<name>``); other columns (``repository``, an email) are ignored here."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise KataError(f"{path}: cannot be read ({err.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "name" not in columns:
        raise KataError(
            f"{path}: no 'name' column; expected a header row such as 'name,path' "
            "(path is optional: SUBMISSIONS/<name> by default)"
        )
    subs: list[Submission] = []
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, 2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        name = row.get("name", "")
        _check_id(name, f"{path}:{line}")
        if name in seen:
            raise KataError(f"{path}:{line}: {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = line
        subs.append(Submission(name, (base / (row.get("path") or name)).resolve()))
    if not subs:
        raise KataError(f"{path}: the roster lists nobody")
    return subs


# -- what a grade depends on --------------------------------------------------------------


def grader_digest() -> str:
    """The grader's side of every grade: its version and its code."""
    digest = hashlib.sha256(__version__.encode())
    for path in files_under(GRADER):
        digest.update(str(path.relative_to(GRADER)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def course_digest(kata: Kata, grader: str) -> str:
    """The trusted side of one kata's grade: the grader, the kata's kata.toml and specs."""
    digest = hashlib.sha256(grader.encode())
    digest.update(kata.slug.encode() + b"\0" + (kata.exercise_dir / "kata.toml").read_bytes())
    for path in files_under(kata.spec_dir):
        digest.update(str(path.relative_to(kata.spec_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def submission_digest(kata: Kata, source: Source, course: str) -> str:
    """One kata of one learner: the kata's ``course`` digest and each declared file as the
    workspace would find it."""
    digest = hashlib.sha256(course.encode())
    for owner, name in kata.inputs:
        digest.update(f"\0{owner.slug}/{name}\0".encode())
        found = find_input(source.folders(owner), name)
        link = linked_folder(found) if found is not None else None
        if found is None:
            digest.update(b"missing")
        elif link is not None:  # refused by the workspace: never followed
            digest.update(b"linked folder:" + os.fsencode(os.path.realpath(found)))
        elif found.is_symlink():
            digest.update(b"symlink:" + os.fsencode(os.readlink(found)))
        elif found.is_file() and found.stat().st_size <= MAX_FILE_BYTES:
            digest.update(b"file:" + found.read_bytes())
        elif found.is_file():  # refused by the workspace anyway: never read it whole
            digest.update(b"large:%d:%d" % (found.stat().st_size, found.stat().st_mtime_ns))
        else:
            digest.update(b"other")
    return digest.hexdigest()


State = dict[str, dict[str, str]]  # learner id -> kata slug -> digest of its last grade


def _load_state(output_dir: Path) -> State:
    """The digests of the last batch (a state of an older schema is ignored: all is graded)."""
    try:
        data = json.loads((output_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
        return {}
    return {
        str(learner): {str(slug): str(d) for slug, d in katas.items()}
        for learner, katas in data.get("submissions", {}).items()
        if isinstance(katas, dict)
    }


def _save_state(output_dir: Path, state: State) -> None:
    submissions = {learner: dict(sorted(k.items())) for learner, k in sorted(state.items())}
    data = {"schema": STATE_SCHEMA, "submissions": submissions}
    write_atomic(output_dir / STATE, json.dumps(data, indent=2) + "\n")


def _load_report(path: Path) -> Report | None:
    try:
        return Report.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- grading ------------------------------------------------------------------------------


def _unfinished(katas: Sequence[Kata], label: str, reason: str) -> Report:
    results = [KataResult(k.slug, k.title, k.pillar, "error", 0, 0, 0.0, reason) for k in katas]
    return make_report(results, label)


async def _grade(
    sub: Submission,
    katas: Sequence[Kata],
    kata_jobs: int,
    deadline: float,
    *,
    snapshot: SpecSnapshot | None = None,
    limits: Limits = Limits(),
) -> tuple[Report, bool]:
    """One submission's report, and whether its grading finished (only then is it cached)."""
    source = checkout(sub.path)
    grading = run_grading(list(katas), source, jobs=kata_jobs, limits=limits, snapshot=snapshot)
    try:
        graded = await asyncio.wait_for(grading, deadline)
    except TimeoutError:
        why = f"the grading did not finish within the batch's limit of {deadline:.0f}s"
        return _unfinished(katas, source.label, why), False
    except Exception as err:  # one submission must never stop the class
        why = f"the grader failed on this submission: {type(err).__name__}: {err}"
        return _unfinished(katas, source.label, why), False
    results = tuple(g.result for g in graded)
    if not sub.path.is_dir():
        results = tuple(replace(r, reason=f"{NO_FOLDER}: {sub.path}") for r in results)
    return make_report(results, source.label), True


async def _grade_all(
    subs: Sequence[Submission],
    katas: Sequence[Kata],
    *,
    output_dir: Path,
    jobs: int,
    force: bool,
    progress: Progress | None,
    limits: Limits = Limits(),
) -> list[Row]:
    slots = asyncio.Semaphore(jobs)
    snapshot = SpecSnapshot(katas)  # every learner is graded with the specs read now
    confinement = sandbox_status(limits)
    kata_jobs = max(1, (os.cpu_count() or 1) // jobs)
    grader = grader_digest()
    course = {k.slug: course_digest(k, grader) for k in katas}
    state = {} if force else _load_state(output_dir)
    done = 0

    async def one(sub: Submission) -> Row:
        nonlocal done
        source = checkout(sub.path)
        digests = {k.slug: submission_digest(k, source, course[k.slug]) for k in katas}
        report_path = output_dir / REPORTS / f"{sub.id}.json"
        known = state.get(sub.id, {})
        previous = _load_report(report_path) if known else None
        kept = {
            k.slug: k
            for k in (previous.katas if previous else ())
            if known.get(k.slug) == digests.get(k.slug)
        }
        todo = [k for k in katas if k.slug not in kept]
        if (
            not todo
            and previous is not None
            and [k.slug for k in previous.katas] == [k.slug for k in katas]
        ):
            row = Row(sub.id, previous, skipped=True, reused=len(katas))
        else:
            fresh: dict[str, KataResult] = {}
            duration = 0.0
            if todo:
                deadline = DEADLINE_SLACK + 2 * sum(k.timeout for k in todo)  # listing + run
                async with slots:
                    started = time.monotonic()
                    graded, finished = await _grade(
                        sub, todo, kata_jobs, deadline, snapshot=snapshot, limits=limits
                    )
                    duration = time.monotonic() - started
                fresh = {k.slug: k for k in graded.katas}
                if finished:
                    known = {**known, **{k.slug: digests[k.slug] for k in todo}}
                else:  # never cached: graded again next time
                    known = {s: d for s, d in known.items() if s not in fresh}
            report = make_report(
                [fresh.get(k.slug) or kept[k.slug] for k in katas],
                source.label,
                sandbox=confinement,
            )
            row = Row(
                sub.id,
                report,
                skipped=not fresh,
                duration=duration,
                graded=len(fresh),
                reused=len(katas) - len(fresh),
            )
            write_atomic(report_path, render(report, "json"))
            known = {s: d for s, d in known.items() if s in digests}
            if known:
                state[sub.id] = known
            else:
                state.pop(sub.id, None)
            _save_state(output_dir, state)
        done += 1
        if progress:
            progress(done, len(subs), row)
        return row

    return list(await asyncio.gather(*(one(s) for s in subs)))


# -- merging the reports of several machines ----------------------------------------------


def read_merge(folders: Sequence[Path]) -> list[Row]:
    """Rows from the JSON reports in ``folders`` (batch output folders or their reports/)."""
    rows: dict[str, Row] = {}
    for folder in folders:
        folder = folder / REPORTS if (folder / REPORTS).is_dir() else folder
        if not folder.is_dir():
            raise KataError(f"{folder}: no such folder of reports")
        for path in sorted(folder.glob("*.json")):
            report = _load_report(path)
            if report is None:
                raise KataError(f"{path}: not a backend-katas/report@1 report")
            if path.stem in rows:
                raise KataError(f"{path}: a second report for {path.stem!r}")
            rows[path.stem] = Row(path.stem, report, skipped=True)
    if not rows:
        raise KataError(f"no reports in {', '.join(map(str, folders))}")
    return [rows[name] for name in sorted(rows)]


# -- the gradebook and the class summary: rows in, text out -------------------------------


def _columns(rows: Sequence[Row]) -> dict[str, int]:
    """Each kata of the class, in the order first seen, with its points possible."""
    columns: dict[str, int] = {}
    for row in rows:
        for k in row.report.katas:
            columns[k.slug] = max(columns.get(k.slug, 0), k.max_score)
    return columns


def gradebook_csv(rows: Sequence[Row]) -> str:
    """id, a column per kata, total, percent, status; the first row under the header holds
    the points possible, as LMS gradebooks expect."""
    columns = _columns(rows)
    possible = sum(columns.values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", *columns, "total", "percent", "status"])
    writer.writerow([POINTS_POSSIBLE, *columns.values(), possible, "100.00", ""])
    for row in rows:
        scores = {k.slug: k.score for k in row.report.katas}
        total = sum(scores.values())
        percent = f"{100 * total / possible:.2f}" if possible else "0.00"
        writer.writerow([row.id, *(scores.get(s, "") for s in columns), total, percent, row.status])
    return out.getvalue()


@dataclass(frozen=True)
class KataSummary:
    slug: str
    title: str
    max_score: int
    learners: int
    passed: int
    median: float
    most_failed: tuple[tuple[str, int], ...]  # (spec title, learners who attempted and failed it)


@dataclass(frozen=True)
class ClassSummary:
    learners: int
    max_score: int
    median_total: float
    katas: tuple[KataSummary, ...]
    attention: tuple[tuple[str, str], ...]  # (id, status) of every row that is not ``ok``
    graded: int = 0  # rows graded by this run; the others were unchanged or merged
    elapsed: float = 0.0  # seconds, the whole run
    katas_graded: int = 0  # kata grades computed by this run
    katas_reused: int = 0  # kata grades reused from the last run (their files unchanged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "learners": self.learners,
            "max_score": self.max_score,
            "median_total": self.median_total,
            "graded": self.graded,
            "elapsed": round(self.elapsed, 2),
            "katas_graded": self.katas_graded,
            "katas_reused": self.katas_reused,
            "katas": [
                {
                    "slug": k.slug,
                    "title": k.title,
                    "max_score": k.max_score,
                    "learners": k.learners,
                    "passed": k.passed,
                    "median": k.median,
                    "most_failed": [{"title": t, "learners": n} for t, n in k.most_failed],
                }
                for k in self.katas
            ],
            "attention": [{"id": i, "status": s} for i, s in self.attention],
        }


def _kata_summary(slug: str, max_score: int, rows: Sequence[Row]) -> KataSummary:
    results = [k for row in rows for k in row.report.katas if k.slug == slug]
    failed: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for result in results:
        if result.status == "not_started":  # an untouched stub fails everything: no signal
            continue
        for spec in result.failing:
            if spec.outcome == "not_run":  # the run died before it: the spec said nothing
                continue
            failed[spec.id] += 1
            titles[spec.id] = spec.title
    order = {spec_id: i for i, spec_id in enumerate(titles)}  # ties: the order of the specs
    top = sorted(failed, key=lambda spec_id: (-failed[spec_id], order[spec_id]))[:MOST_FAILED]
    return KataSummary(
        slug=slug,
        title=results[0].title,
        max_score=max_score,
        learners=len(results),
        passed=sum(r.status == "passed" for r in results),
        median=float(statistics.median(r.score for r in results)),
        most_failed=tuple((titles[s], failed[s]) for s in top),
    )


def summarize(rows: Sequence[Row], *, elapsed: float = 0.0) -> ClassSummary:
    """Per kata: how many passed, the median score, the specs most often failed."""
    columns = _columns(rows)
    totals = [row.report.score for row in rows]
    return ClassSummary(
        learners=len(rows),
        max_score=sum(columns.values()),
        median_total=float(statistics.median(totals)) if totals else 0.0,
        katas=tuple(_kata_summary(slug, m, rows) for slug, m in columns.items()),
        attention=tuple((row.id, row.status) for row in rows if row.status != "ok"),
        graded=sum(not row.skipped for row in rows),
        elapsed=elapsed,
        katas_graded=sum(row.graded for row in rows),
        katas_reused=sum(row.reused for row in rows),
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(summary: ClassSummary) -> str:
    median_pct = 100 * summary.median_total / summary.max_score if summary.max_score else 0.0
    out = [
        f"## Class summary: {summary.learners} learner(s)",
        "",
        f"Median total: {summary.median_total:g}/{summary.max_score} ({median_pct:.1f}%). "
        f"Graded now: {summary.graded} learner(s), {summary.katas_graded} kata grade(s); "
        f"re-used unchanged: {summary.katas_reused}; in {summary.elapsed:.1f}s.",
        "",
        "| kata | passed | median score | specs most often failed |",
        "|---|---|---|---|",
    ]
    for k in summary.katas:
        failed = "<br>".join(f"{_md(t)} ({n})" for t, n in k.most_failed) or "-"
        out.append(
            f"| {_md(k.title)} (`{k.slug}`) | {k.passed}/{k.learners} "
            f"| {k.median:g}/{k.max_score} | {failed} |"
        )
    if summary.attention:
        out += ["", "### Needs a look", ""]
        out += [f"- `{learner}`: {status}" for learner, status in summary.attention]
    return "\n".join(out) + "\n"


# -- the command --------------------------------------------------------------------------


def _write_outputs(
    output_dir: Path, rows: Sequence[Row], summary: ClassSummary, *, merged: bool
) -> None:
    if merged:  # the merged reports join the gradebook: the output is one whole class
        for row in rows:
            write_atomic(output_dir / REPORTS / f"{row.id}.json", render(row.report, "json"))
    write_atomic(output_dir / "gradebook.csv", gradebook_csv(rows))
    write_atomic(output_dir / "summary.md", summary_markdown(summary))
    write_atomic(output_dir / "summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    write_atomic(output_dir / CLASS_REPORT, to_html(rows, summary))


def main(
    *,
    root: Path | None = None,
    submissions: Path | None = None,
    roster: Path | None = None,
    output_dir: Path,
    jobs: int | None = None,
    force: bool = False,
    sandbox: bool = True,
    require_sandbox: bool = False,
    slugs: Sequence[str] = (),
    merge: Sequence[Path] = (),
    progress: Progress | None = None,
) -> Batch:
    """Grade every submission (or, with ``merge``, gather reports) into ``output_dir``:
    ``gradebook.csv``, ``summary.md``, ``summary.json``, ``class-report.html`` and
    ``reports/<id>.json``."""
    started = time.monotonic()
    output_dir = output_dir.resolve()
    if merge:
        if submissions or roster:
            raise KataError("--merge builds a gradebook from reports; it takes no submissions")
        rows = read_merge(merge)
    else:
        if root is None:
            raise KataError("batch grading needs the course checkout (--root)")
        if roster is not None:
            subs = read_roster(roster, submissions or roster.parent)
        elif submissions is not None:
            subs = find_submissions(submissions, exclude=[output_dir])
        else:
            raise KataError("name a folder of submissions, a --roster, or reports to --merge")
        katas = select(discover(root), list(slugs))
        jobs = jobs or os.cpu_count() or 1
        limits = Limits(sandbox=sandbox)
        confinement = sandbox_status(limits)
        if require_sandbox and not confinement.startswith("landlock"):
            raise KataError(f"no kernel sandbox to grade in ({confinement}); --require-sandbox")
        run = _grade_all(
            subs,
            katas,
            output_dir=output_dir,
            jobs=jobs,
            force=force,
            progress=progress,
            limits=limits,
        )
        rows = asyncio.run(run)
    elapsed = time.monotonic() - started
    summary = summarize(rows, elapsed=elapsed)
    _write_outputs(output_dir, rows, summary, merged=bool(merge))
    graded = sum(not r.skipped for r in rows)
    return Batch(tuple(rows), summary, output_dir, elapsed, graded)
