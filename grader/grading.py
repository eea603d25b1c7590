"""Grade katas: discover -> workspace -> run -> score, katas in parallel.

The expected specs of a kata are listed from the trusted spec files with every learner module
replaced by a phantom (``grader.child.install_phantoms``), so the list is known before, and
apart from, any learner code. The learner's run is then checked against that list.

A grading can be stopped (``stop`` event; SIGINT or SIGTERM in :func:`grade`): the katas still
running are stopped, every process of theirs killed, and reported as errors with the reason
INTERRUPTED, next to the finished katas' results, so the report is partial but valid.

The trusted files are read once per grading (``workspace.SpecSnapshot``); every workspace is
built from that copy, and after each kata the files on disk are compared with it. A change
stops the grading with :class:`CourseChanged`, which names the submission and the katas that
were running: nothing graded after it uses the changed files, and it is never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, portable
from .imports import find_violations
from .kata import Kata, KataError
from .runner import Limits, RunResult, run_specs, sandbox_status
from .scoring import KataResult, Observed, Report, Spec, SpecResult, score_kata
from .workspace import Source, SpecSnapshot, build, copy_specs

if TYPE_CHECKING:
    from .zygote import ForkServer

__all__ = [
    "INTERRUPTED",
    "CourseChanged",
    "Graded",
    "expected_specs",
    "grade",
    "grade_kata",
    "interrupted_katas",
    "make_report",
    "run_grading",
]

INTERRUPTED = "grading was interrupted before this kata finished"
LISTING_AFTER_STOP = 10.0  # seconds to list an interrupted kata's specs for its report

Progress = Callable[[int, int, KataResult], None]
_LISTINGS: dict[str, list[Spec]] = {}
_LISTING_LOCKS: dict[tuple[str, int], asyncio.Lock] = {}


@dataclass
class Graded:
    result: KataResult
    run: RunResult | None  # None when the specs were not run


class CourseChanged(KataError):
    """The course's trusted files changed on disk while a grading ran."""


def _spec_digest(kata: Kata, snapshot: SpecSnapshot | None = None) -> str:
    digest = hashlib.sha256(__version__.encode())
    if snapshot is not None:
        digest.update(snapshot.kata_digest(kata).encode())
    else:
        for path in sorted(kata.spec_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                name = str(path.relative_to(kata.spec_dir)).encode()
                digest.update(name + b"\0" + path.read_bytes())
    digest.update(repr(([(k.slug, f) for k, f in kata.inputs], kata.spec_timeout)).encode())
    return digest.hexdigest()


def _temp_run_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kata-run-"))


async def expected_specs(
    kata: Kata,
    limits: Limits = Limits(),
    snapshot: SpecSnapshot | None = None,
    *,
    fork_server: ForkServer | None = None,
) -> list[Spec]:
    """The specs the grader expects, listed from the trusted specs alone (cached per content).
    ``fork_server``: list them in a process forked from it (``kata verify``)."""
    key = _spec_digest(kata, snapshot)
    if key in _LISTINGS:
        return _LISTINGS[key]
    lock = _LISTING_LOCKS.setdefault((key, id(asyncio.get_running_loop())), asyncio.Lock())
    async with lock:
        if key not in _LISTINGS:
            _LISTINGS[key] = await _list_specs(kata, limits, snapshot, fork_server)
    return _LISTINGS[key]


async def _list_specs(
    kata: Kata, limits: Limits, snapshot: SpecSnapshot | None, fork_server: ForkServer | None
) -> list[Spec]:
    run_dir = _temp_run_dir()
    try:
        workspace = run_dir / "ws"
        workspace.mkdir()
        copy_specs(kata, workspace, snapshot)
        run = await run_specs(
            kata, workspace, [], mode="collect", limits=limits, fork_server=fork_server
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    errors = run.of_kind("collect_error")
    if errors:
        raise KataError(f"{kata.spec_dir}: the specs cannot be listed: {errors[0]['message']}")
    specs = [Spec(r["id"], r["title"], r["points"]) for r in run.of_kind("collected")]
    if not specs:
        tail = run.output.strip().splitlines()[-5:]
        raise KataError(f"{kata.spec_dir}: no specs were collected. " + " / ".join(tail))
    return specs


async def grade_kata(
    kata: Kata,
    source: Source,
    *,
    coverage: bool = False,
    limits: Limits = Limits(),
    select: list[str] | None = None,
    exitfirst: bool = False,
    explore_seed: int | None = None,
    snapshot: SpecSnapshot | None = None,
    fork_server: ForkServer | None = None,
    on_start: Callable[[int], None] | None = None,
) -> Graded:
    """Grade one kata of one submission.

    ``select`` (spec ids) grades only those specs: the expected list shrinks to them.
    ``exitfirst`` stops at the first failure; the specs after it count as not run. Both are
    for ``kata verify``'s mutant runs, never for a grade of record; so are ``explore_seed``
    (random hypothesis inputs from that seed, ten times the examples) and ``fork_server``
    (spec processes forked from a warm one, grader/zygote.py) and ``on_start`` (told the
    spec process's pid).
    """
    try:
        expected_task = asyncio.ensure_future(expected_specs(kata, limits, snapshot))
        run_dir = _temp_run_dir()
        try:
            workspace = build(kata, source, run_dir / "ws", snapshot)
            violations = [str(v) for v in find_violations(workspace.copied, kata.forbid_imports)]
            run = None
            if not (workspace.missing or workspace.refused or violations):
                run = await run_specs(
                    kata,
                    workspace.path,
                    workspace.copied,
                    coverage=coverage,
                    limits=limits,
                    select=select,
                    exitfirst=exitfirst,
                    explore_seed=explore_seed,
                    fork_server=fork_server,
                    on_start=on_start,
                )
            expected = await expected_task
            if select:
                chosen = set(select)
                expected = [s for s in expected if s.id in chosen]
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    except asyncio.CancelledError:
        expected_task.cancel()  # the grading was stopped: so is the listing of the specs
        raise
    except KataError as err:
        expected_task.cancel()
        result = KataResult(
            kata.slug,
            kata.title,
            kata.pillar,
            "error",
            0,
            0,
            0.0,
            f"the kata itself is broken: {err}",
        )
        return Graded(result, None)
    observed = None
    if run is not None:
        observed = Observed(
            tuple(run.records),
            run.timed_out,
            run.returncode,
            run.rejected,
            run.duration,
            run.output_bytes,
            run.stopped,
        )
    result = score_kata(
        kata,
        expected,
        observed,
        missing=workspace.missing,
        refused=workspace.refused,
        violations=violations,
    )
    return Graded(result, run)


def _interrupted(kata: Kata, snapshot: SpecSnapshot | None = None) -> Graded:
    """The result of a kata whose grading was stopped: an error, its specs not run."""
    expected = _LISTINGS.get(_spec_digest(kata, snapshot), [])
    specs = tuple(SpecResult(s.id, s.title, s.points, "not_run", INTERRUPTED) for s in expected)
    result = KataResult(
        kata.slug,
        kata.title,
        kata.pillar,
        "error",
        0,
        sum(s.points for s in expected),
        0.0,
        INTERRUPTED,
        specs,
    )
    return Graded(result, None)


async def run_grading(
    katas: list[Kata],
    source: Source,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    coverage: bool = False,
    limits: Limits = Limits(),
    stop: asyncio.Event | None = None,
    snapshot: SpecSnapshot | None = None,
) -> list[Graded]:
    """Grade ``katas`` of one submission, ``jobs`` at a time, in curriculum order.

    When ``stop`` is set, the katas still running are stopped (their processes killed) and
    come back as errors with the reason INTERRUPTED; the finished ones keep their results.
    If this coroutine is cancelled, it stops the katas the same way, then lets the
    cancellation through.

    Workspaces are built from ``snapshot`` (by default, one taken now); when the course's
    trusted files on disk change, the grading stops with :class:`CourseChanged`.
    """
    snapshot = snapshot if snapshot is not None else SpecSnapshot(katas)
    slots = asyncio.Semaphore(jobs or os.cpu_count() or 1)
    stop = stop if stop is not None else asyncio.Event()
    done = 0

    async def one(kata: Kata) -> Graded:
        nonlocal done
        async with slots:
            snapshot.begin(source.label, kata.slug)
            try:
                graded = await grade_kata(
                    kata, source, coverage=coverage, limits=limits, snapshot=snapshot
                )
            finally:
                snapshot.end(source.label, kata.slug)
            _check_course(snapshot, stop)
        done += 1
        if progress:
            progress(done, len(katas), graded.result)
        return graded

    tasks = [asyncio.ensure_future(one(k)) for k in katas]
    stopped = asyncio.ensure_future(stop.wait())
    try:
        pending = set(tasks)
        while pending and not stop.is_set():
            _, pending = await asyncio.wait(
                {*pending, stopped}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopped)
    finally:
        stopped.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # A kata stopped before its specs were listed still reports what it was worth: the
    # listing runs the trusted specs alone (no learner code) and takes a moment.
    unlisted = [k for k, t in zip(katas, tasks, strict=True) if t.cancelled()]
    await asyncio.gather(
        *(
            asyncio.wait_for(expected_specs(k, limits, snapshot), LISTING_AFTER_STOP)
            for k in unlisted
        ),
        return_exceptions=True,
    )
    graded = []
    for kata, task in zip(katas, tasks, strict=True):
        if task.cancelled():
            graded.append(_interrupted(kata, snapshot))
        elif task.exception() is not None:
            raise task.exception()
        else:
            graded.append(task.result())
    return graded


def _check_course(snapshot: SpecSnapshot, stop: asyncio.Event) -> None:
    """Stop the grading if the trusted files on disk are no longer the snapshot's."""
    changed = snapshot.check()
    if changed:
        stop.set()
        suspects = "; ".join(f"{kata} of {submission}" for submission, kata in snapshot.running())
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if changed[5:] else "")
        raise CourseChanged(
            f"the course's trusted files changed on disk while grading ({suspects}): {shown}. "
            "The grading was stopped; nothing graded after the change used the changed files."
        )


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` while inside (main thread of the process only)."""
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def grade(
    katas: list[Kata],
    source: Source,
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    limits: Limits = Limits(),
    require_sandbox: bool = False,
) -> Report:
    """Grade a submission and return its report: finished, or partial if interrupted.

    Ctrl-C (SIGINT) or SIGTERM while grading stops it cleanly: every process of the katas
    still running is killed, and the report holds the finished katas' results and the others
    as errors with the reason INTERRUPTED (see :func:`interrupted_katas`). Signals are only
    caught when this runs in the main thread. The report says how the spec processes were
    confined; ``require_sandbox`` refuses (KataError) to grade without a kernel sandbox.
    """
    confinement = sandbox_status(limits)
    if require_sandbox and not confinement.startswith("landlock"):
        raise KataError(f"no kernel sandbox to grade in ({confinement}); --require-sandbox")

    async def main() -> list[Graded]:
        stop = asyncio.Event()
        with _stop_on_signals(stop):
            return await run_grading(
                katas, source, jobs=jobs, progress=progress, limits=limits, stop=stop
            )

    graded = asyncio.run(main())
    return make_report([g.result for g in graded], source.label, sandbox=confinement)


def make_report(results: Iterable[KataResult], submission: str, *, sandbox: str = "") -> Report:
    """A finished report of ``results``, stamped with the time, this grader's version and
    how the spec processes were confined."""
    return Report(
        katas=tuple(results),
        submission=submission,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        grader_version=__version__,
        sandbox=sandbox,
        protections_off=tuple(portable.protections_off()),
    )


def interrupted_katas(report: Report) -> list[str]:
    """The slugs of the katas whose grading was interrupted (empty for a finished report)."""
    return [k.slug for k in report.katas if k.reason == INTERRUPTED]
