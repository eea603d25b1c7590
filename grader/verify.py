"""``kata verify``: prove that each kata's specs are worth trusting.

For every kata: the reference solution scores full marks on every one of several runs (a
flaky spec fails verify), the untouched stub scores nothing, every mutant of
``solutions/<slug>/mutants.toml`` loses at least one spec, the specs cover the solution's
lines and branches to the bar, and the visible tests pass on the solution and fail on the stub.

Strategy for mutants: a mutant needs one failing spec, and only a spec that executes the
edited lines can fail. The first solution run is measured with coverage, one context per
spec, so each mutant runs only the specs that execute its edited lines, stopping at the
first failure. When no spec executes them (or they run at import time), it runs every spec,
and the verdict says so. ``all_specs=True`` is the old behaviour: every mutant runs every
spec, all at once.

Strategy for processes: the first solution run starts Python as a grade of record does; the
rest of a kata's runs (the spec listing, the other solution runs, the stub's run, the mutant
runs and the visible tests) are forked from one warm process per kata (grader/zygote.py),
which has imported pytest, its plugins and the specs' oracle libraries once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import zygote
from .grading import expected_specs, grade_kata
from .kata import Kata
from .mutants import Mutant, MutantError, apply, diff, load
from .portable import die_with_parent
from .report import columns
from .runner import Limits, _environment
from .scoring import KataResult
from .workspace import Source, checkout, solutions
from .zygote import ForkServer

__all__ = [
    "COVERAGE_BAR",
    "KataVerdict",
    "MutantVerdict",
    "Slots",
    "covering_specs",
    "cpu_load",
    "cpu_seconds",
    "explore",
    "show_mutants",
    "render_verdicts",
    "verdicts_json",
    "verify",
]

COVERAGE_BAR = 90.0
IMPORT_TIME = ""  # the coverage context of code that runs outside any spec (module import)


@dataclass
class MutantVerdict:
    name: str
    bug: str
    result: KataResult | None = None
    scope: str = ""  # which specs ran: "3 covering specs", "all specs: ..."
    error: str = ""  # the mutant could not be applied
    duration: float = 0.0

    @property
    def killed(self) -> bool:
        return bool(_killers(self.result))

    @property
    def killed_by(self) -> str:
        """The first spec that failed on the mutant (or why the kata failed as a whole)."""
        return next(iter(_killers(self.result)), "")


def _killers(result: KataResult | None) -> list[str]:
    """What killed a mutant's run: the specs that ran and failed, in order, else the crash of
    the kata on it (not of a broken kata); [] when nothing did.

    Specs that did not run (after the first failure, or an id that matched nothing) never
    count: a mutant is killed by evidence, not by absence."""
    if result is None:
        return []
    failed = [s.id for s in result.specs if s.outcome in ("failed", "error", "timeout")]
    if failed:
        return failed
    broken_kata = result.reason.startswith("the kata itself is broken")
    return [result.reason] if result.status in ("error", "timeout") and not broken_kata else []


@dataclass
class KataVerdict:
    kata: Kata
    solution_runs: list[KataResult] = field(default_factory=list)
    stub: KataResult | None = None
    mutants: list[MutantVerdict] = field(default_factory=list)
    mutants_error: str = ""  # mutants.toml can't be read
    line_coverage: float | None = None
    branch_coverage: float | None = None
    visible: str = ""  # "" when fine, else what went wrong
    duration: float = 0.0

    @property
    def flakes(self) -> int:
        """Solution runs that lost points."""
        return sum(1 for r in self.solution_runs if r.score != r.max_score or r.status != "passed")

    @property
    def misses(self) -> list[str]:
        out = []
        for i, run in enumerate(self.solution_runs, 1):
            if run.score != run.max_score or run.status != "passed":
                failing = "; ".join(
                    f"{s.title} ({s.outcome}: {s.message})" for s in run.failing[:3]
                )
                out.append(
                    f"solution run {i}: {run.status} {run.score}/{run.max_score}"
                    + (f" — {failing}" if failing else f" — {run.reason}")
                )
        if self.stub is not None and self.stub.score == 0 and self.stub.status != "not_started":
            out.append(
                f"the stub grades as '{self.stub.status}', not 'not_started' "
                f"({self.stub.reason or 'some spec failed without NotImplementedError'})"
            )
        if self.stub is not None and (self.stub.score != 0 or self.stub.max_score == 0):
            passing = [s.title for s in self.stub.specs if s.outcome == "passed"]
            out.append(
                f"stub scores {self.stub.score}/{self.stub.max_score} "
                f"(passes: {'; '.join(passing[:3]) or self.stub.reason})"
            )
        if self.mutants_error:
            out.append(self.mutants_error)
        for m in self.mutants:
            if m.error:
                out.append(m.error)
            elif not m.killed:
                out.append(f"mutant {m.name} survived: every spec passed ({m.scope}) — {m.bug}")
        if not self.mutants and not self.mutants_error:
            out.append(f"no mutants in {self.kata.mutants_file.relative_to(self.kata.root)}")
        elif 0 < len(self.mutants) < 3:
            out.append(f"only {len(self.mutants)} mutant(s); the bar is at least 3")
        if self.line_coverage is None:
            out.append("no coverage data for the solution")
        else:
            if self.line_coverage < COVERAGE_BAR:
                out.append(f"line coverage {self.line_coverage:.1f}% < {COVERAGE_BAR:.0f}%")
            if self.branch_coverage is not None and self.branch_coverage < COVERAGE_BAR:
                out.append(f"branch coverage {self.branch_coverage:.1f}% < {COVERAGE_BAR:.0f}%")
        if self.visible:
            out.append(self.visible)
        return out

    @property
    def spec_seconds(self) -> float:
        """Median wall time of one run of the specs on the solution (startup included)."""
        return (
            statistics.median(r.duration for r in self.solution_runs) if self.solution_runs else 0.0
        )

    @property
    def ok(self) -> bool:
        return not self.misses


def _coverage(report: dict | None, kata: Kata) -> tuple[float | None, float | None]:
    """Line and branch coverage of the kata's own files (not those of a kata it builds on)."""
    if not report:
        return None, None
    totals: dict[str, int] = {}
    for path, data in report.get("files", {}).items():
        if Path(path).name in kata.files:
            for key, value in data.get("summary", {}).items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
    lines = totals.get("num_statements", 0)
    covered = totals.get("covered_lines", 0)
    branches = totals.get("num_branches", 0)
    covered_branches = totals.get("covered_branches", 0)
    line_pct = 100.0 * covered / lines if lines else 100.0
    branch_pct = 100.0 * covered_branches / branches if branches else 100.0
    return line_pct, branch_pct


def _edited_lines(kata: Kata, mutant: Mutant) -> dict[str, list[range]] | None:
    """The solution lines each edit replaces, per file (one range per edit: two edits far
    apart do not take the lines between them along); None when an edit only matches after
    another."""
    spans: dict[str, list[range]] = {}
    for edit in mutant.edits:
        text = (kata.solution_dir / edit.file).read_text(encoding="utf-8")
        if text.count(edit.old) != 1:
            return None
        first = text[: text.index(edit.old)].count("\n") + 1
        spans.setdefault(edit.file, []).append(range(first, first + edit.old.count("\n") + 1))
    return spans


def covering_specs(coverage: dict | None, kata: Kata, mutant: Mutant) -> tuple[list[str], str]:
    """The specs that execute ``mutant``'s edited lines, and a word on the choice.

    An empty list means: run every spec (no data, import-time code, or lines no spec runs).
    """
    if not coverage:
        return [], "all specs: no coverage data"
    lines = _edited_lines(kata, mutant)
    if lines is None:
        return [], "all specs: an edit applies only after another"
    by_name = {Path(path).name: data for path, data in coverage.get("files", {}).items()}
    chosen: dict[str, None] = {}
    for name, spans in lines.items():
        data = by_name.get(name)
        if data is None or "contexts" not in data:
            return [], "all specs: no per-spec coverage data"
        executable = set(data.get("executed_lines", [])) | set(data.get("missing_lines", []))
        wanted = []
        for span in spans:
            here = [n for n in span if n in executable]
            if not here:  # inside a multi-line statement: coverage counts it at its first line
                above = [n for n in executable if n < span.start]
                here = [max(above)] if above else []
            wanted += here
        for n in wanted:
            contexts = data["contexts"].get(str(n), [])
            if IMPORT_TIME in contexts:
                return [], "all specs: the edited lines run at import time"
            chosen.update(dict.fromkeys(c for c in contexts if c))
    if not chosen:
        return [], "all specs: no spec executes the edited lines"
    return list(chosen), f"{len(chosen)} covering spec(s)"


VISIBLE_TIMEOUT = -2  # _visible_tests: the run did not finish in time


@contextlib.contextmanager
def _visible_folder(
    kata: Kata, folder: Callable[[Kata], Path]
) -> Iterator[tuple[Path, list[str], dict[str, str]]]:
    """A temporary folder holding the visible tests and the learner files in ``folder(kata)``
    (and those of the katas it builds on, in ``folder(that kata)``), with the pytest arguments
    and environment that run them as a learner's ``nox -s try`` does."""
    with tempfile.TemporaryDirectory(prefix="kata-visible-") as tmp:
        shutil.copy(kata.visible_tests, tmp)
        for owner, name in kata.inputs:
            if (folder(owner) / name).is_file():
                shutil.copy(folder(owner) / name, tmp)
        args = ["-q", "-p", "no:cacheprovider", "-x", "-c", str(kata.root / "pyproject.toml")]
        yield Path(tmp), [*args, "--rootdir", tmp, tmp], {**os.environ, "PYTEST_ADDOPTS": ""}


def _visible_tests(kata: Kata, folder: Callable[[Kata], Path]) -> int:
    """Run the visible tests against the learner files in ``folder(kata)`` (and those of the
    katas it builds on, in ``folder(that kata)``): pytest's exit status, -1 when the kata has
    none, VISIBLE_TIMEOUT when they did not finish in time."""
    if not kata.visible_tests.is_file():
        return -1
    with _visible_folder(kata, folder) as (tmp, args, env):
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", *args],
                cwd=tmp,
                env=env,
                capture_output=True,
                timeout=kata.timeout * 4,
            )
        except subprocess.TimeoutExpired:
            return VISIBLE_TIMEOUT
    return proc.returncode


async def _visible_tests_forked(
    kata: Kata, folder: Callable[[Kata], Path], server: ForkServer | None
) -> int:
    """``_visible_tests``, its pytest forked from the kata's fork server when there is one
    (and started afresh when there is none, or it is gone)."""
    code = None
    if server is not None and not server.broken and kata.visible_tests.is_file():
        code = await _forked_pytest(kata, folder, server)
    if code is None:
        return await asyncio.to_thread(_visible_tests, kata, folder)
    return code


async def _forked_pytest(
    kata: Kata, folder: Callable[[Kata], Path], server: ForkServer
) -> int | None:
    """The visible tests in a child of ``server``: pytest's exit status, VISIBLE_TIMEOUT, or
    None when the server is gone."""
    limits = Limits()
    cpu = int(kata.timeout * 4 + limits.cpu_slack)
    with _visible_folder(kata, folder) as (tmp, args, env):
        with open(os.devnull, "wb") as sink:
            try:
                proc = await server.spawn(
                    None,
                    {"log_fd": sink.fileno()},
                    env,
                    str(tmp),
                    (limits.address_space, limits.file_size, limits.open_files, cpu),
                    pytest_args=args,
                )
            except ConnectionError:
                return None
        try:
            code = await asyncio.wait_for(proc.wait(), kata.timeout * 4)
        except TimeoutError:
            code = VISIBLE_TIMEOUT
        except ConnectionError:  # the server died under it
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: leftovers go too
        with contextlib.suppress(ConnectionError):
            await proc.wait()
    return code


def _mutant_sources(
    kata: Kata, mutants: list[Mutant], tmp: Path
) -> tuple[dict[str, Source], dict[str, str]]:
    """Each mutant applied in its own folder under ``tmp``, as a source to grade (its files
    first, the rest from the solution); and, by name, why a mutant could not be applied."""
    sources: dict[str, Source] = {}
    errors: dict[str, str] = {}
    for m in mutants:
        folder = tmp / m.name
        try:
            apply(kata, m, folder)
        except MutantError as err:
            errors[m.name] = str(err)
            continue
        sources[m.name] = Source(f"mutant {m.name}", lambda k, f=folder: [f, k.solution_dir])
    return sources, errors


async def _fork_server(kata: Kata, tmp: Path) -> ForkServer | None:
    """A warm process that forks the mutant runs' spec processes (grader/zygote.py), with the
    oracle libraries the specs import already imported; None where it can't be had."""
    if not zygote.available():
        return None
    local = {Path(f).stem for _, f in kata.inputs}
    local.update(p.stem for p in kata.spec_dir.iterdir())
    # The server's own environment is a spec run's (each forked child gets its run's own).
    home = tmp / "fork-server"
    (home / "tmp" / "home").mkdir(parents=True)
    env = _environment(home, "fork-server")
    spec_modules = sorted(kata.spec_dir.rglob("*.py"))
    server = ForkServer(zygote.preload_modules(spec_modules, local), local, env, home)
    return server if await server.start() else None


class Slots:
    """Job slots, one per core by default: ``async with slots() as started`` holds one for a
    job, and ``started(pid)`` tells it the job's spec process.

    Elastic slots lend themselves: a job whose spec process has used under IDLE_SHARE of a core
    for a whole IDLE_WINDOW (a mutant waiting out a spec's timeout, a spec sleeping through an
    idle period) gives its slot to the next job, and does not take one back. At most twice the
    slots run at once, so the machine is never busier than under ``verify --load``, the
    load every kata's specs are proved to hold under (one burner per core beside a job per
    core). Where a process's CPU time can't be read (no /proc), no slot is lent.
    """

    IDLE_SHARE = 0.15
    IDLE_WINDOW = 1.0
    PERIOD = 0.25

    def __init__(self, slots: int, *, elastic: bool = False) -> None:
        self.elastic = elastic
        self._cores = asyncio.Semaphore(slots)
        self._running = asyncio.Semaphore(2 * slots if elastic else slots)
        self.lent = 0  # slots lent so far (the verify report's curiosity, and the tests')

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Callable[[int], None]]:
        async with self._running:
            await self._cores.acquire()
            held = True
            watchers: list[asyncio.Task] = []

            def lend() -> None:
                nonlocal held
                if held:
                    held = False
                    self.lent += 1
                    self._cores.release()

            def started(pid: int) -> None:
                if self.elastic:
                    watchers.append(asyncio.ensure_future(self._watch(pid, lend)))

            try:
                yield started
            finally:
                for watcher in watchers:
                    watcher.cancel()
                if held:
                    self._cores.release()

    async def _watch(self, pid: int, lend: Callable[[], None]) -> None:
        """Lend the slot once ``pid`` has used under IDLE_SHARE of a core for IDLE_WINDOW."""
        samples: list[float] = []
        keep = round(self.IDLE_WINDOW / self.PERIOD) + 1
        while (used := cpu_seconds(pid)) is not None:
            samples = [*samples, used][-keep:]
            if (
                len(samples) == keep
                and samples[-1] - samples[0] < self.IDLE_SHARE * self.IDLE_WINDOW
            ):
                lend()
                return
            await asyncio.sleep(self.PERIOD)


def cpu_seconds(pid: int) -> float | None:
    """The CPU time ``pid`` has used (user and system, with its reaped children), from
    /proc; None where there is no such process, or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after "pid (comm)": state is field 3, utime..cstime are fields 14..17
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _jobs(kata: Kata, slots: Slots):
    """Grade ``kata`` from a source, one of ``slots`` at a time."""

    async def job(source: Source, **options):
        async with slots() as started:
            return await grade_kata(kata, source, on_start=started, **options)

    return job


async def verify_kata(
    kata: Kata,
    runs: int,
    slots: Slots,
    *,
    all_specs: bool = False,
    servers: asyncio.Semaphore | None = None,
) -> KataVerdict:
    verdict = KataVerdict(kata)
    started = time.monotonic()
    job = _jobs(kata, slots)

    try:
        mutants = load(kata)
    except MutantError as err:
        mutants, verdict.mutants_error = [], str(err)
    verdict.mutants = [MutantVerdict(m.name, m.bug) for m in mutants]

    with tempfile.TemporaryDirectory(prefix=f"kata-mutants-{kata.slug}-") as tmp:
        sources, errors = _mutant_sources(kata, mutants, Path(tmp))
        for mv in verdict.mutants:
            mv.error = errors.get(mv.name, "")

        spec_seconds: dict[str, float] = {}  # each spec's time in the first solution run

        async def run_mutant(
            m: Mutant, mv: MutantVerdict, coverage: dict | None, server: ForkServer | None
        ) -> None:
            if all_specs:
                select, mv.scope = [], "all specs (--all-specs)"
            else:
                select, mv.scope = covering_specs(coverage, kata, m)
                if not select and spec_seconds:  # every spec, still in the order below
                    select = [spec.id for spec in await expected_specs(kata)]
                # the quickest first: the run ends at the first failure
                select.sort(key=lambda spec: spec_seconds.get(spec, float("inf")))
            graded = await job(
                sources[m.name], select=select, exitfirst=not all_specs, fork_server=server
            )
            # the spec process's own time, not the wait for a job slot before it
            mv.result, mv.duration = graded.result, graded.run.duration if graded.run else 0.0

        def mutant_runs(coverage: dict | None, server: ForkServer | None) -> list:
            return [
                run_mutant(m, mv, coverage, server)
                for m, mv in zip(mutants, verdict.mutants, strict=True)
                if m.name in sources
            ]

        if all_specs:
            # The old behaviour, for comparison: every process spawned, every mutant at once.
            first, stub, *rest = await asyncio.gather(
                job(solutions(kata.root), coverage=True),
                job(checkout(kata.root)),
                *(job(solutions(kata.root)) for _ in range(runs - 1)),
                *mutant_runs(None, None),
            )
            rest = rest[: runs - 1]
            on_solution, on_stub = await _visible_pair(kata, None, slots)
        else:
            # One warm fork server per kata (as many at once as job slots) forks the listing,
            # the solution's runs after the first, the stub's run, the mutant runs (only the
            # specs covering the edit, to the first failure) and the visible tests. The first
            # solution run, measured with coverage per spec, starts Python as a grade does.
            async with servers or contextlib.nullcontext():
                server = await _fork_server(kata, Path(tmp))
                try:
                    # a listing that fails is grade_kata's to report, on the first run
                    with contextlib.suppress(Exception):
                        await expected_specs(kata, fork_server=server)
                    first = await job(solutions(kata.root), coverage=True)
                    data = first.run.coverage if first.run else None
                    for record in first.run.of_kind("result") if first.run else ():
                        spec_seconds[record["id"]] = float(record.get("duration") or 0)
                    stub, *rest = await asyncio.gather(
                        job(checkout(kata.root), fork_server=server),
                        *(job(solutions(kata.root), fork_server=server) for _ in range(runs - 1)),
                        *mutant_runs(data, server),
                    )
                    rest = rest[: runs - 1]
                    on_solution, on_stub = await _visible_pair(kata, server, slots)
                finally:
                    if server is not None:
                        await server.close()
    verdict.solution_runs = [first.result] + [g.result for g in rest]
    verdict.line_coverage, verdict.branch_coverage = _coverage(
        first.run.coverage if first.run else None, kata
    )
    verdict.stub = stub.result
    if on_solution == -1:
        verdict.visible = f"no visible tests ({kata.visible_tests.name})"
    elif VISIBLE_TIMEOUT in (on_solution, on_stub):
        which = "solution" if on_solution == VISIBLE_TIMEOUT else "stub"
        verdict.visible = (
            f"visible tests on the {which} did not finish in {kata.timeout * 4:g} s (a hang?)"
        )
    elif on_solution != 0:
        verdict.visible = f"visible tests fail on the solution (pytest exit {on_solution})"
    elif on_stub == 0:
        verdict.visible = "visible tests pass on the stub"
    verdict.duration = time.monotonic() - started
    return verdict


async def _visible_pair(kata: Kata, server: ForkServer | None, slots: Slots) -> tuple[int, int]:
    """The visible tests' exit status on the solution and on the stub (one job slot)."""
    async with slots():
        on_solution, on_stub = await asyncio.gather(
            _visible_tests_forked(kata, lambda k: k.solution_dir, server),
            _visible_tests_forked(kata, lambda k: k.exercise_dir, server),
        )
    return on_solution, on_stub


async def verify(
    katas: list[Kata],
    *,
    runs: int = 3,
    jobs: int | None = None,
    all_specs: bool = False,
    elastic: bool = True,
    progress: Callable[[KataVerdict], None] | None = None,
) -> list[KataVerdict]:
    # elastic slots (Slots): a job that waits lends its core; the old way (--all-specs) keeps
    # its plain slots, for the side-by-side comparison
    slots = Slots(jobs or os.cpu_count() or 1, elastic=elastic and not all_specs)
    servers = asyncio.Semaphore(jobs or os.cpu_count() or 1)

    async def one(kata: Kata) -> KataVerdict:
        verdict = await verify_kata(kata, runs, slots, all_specs=all_specs, servers=servers)
        if progress:
            progress(verdict)
        return verdict

    return list(await asyncio.gather(*(one(k) for k in katas)))


async def explore_kata(kata: Kata, seeds: list[int], slots: Slots) -> list[str]:
    """Findings of ``kata verify --explore`` for one kata: what random inputs found that the
    fixed seed of grading does not."""
    job = _jobs(kata, slots)
    findings: list[str] = []
    try:
        mutants = load(kata)
    except MutantError as err:
        return [str(err)]
    first = await job(solutions(kata.root), coverage=True)
    data = first.run.coverage if first.run else None
    with tempfile.TemporaryDirectory(prefix=f"kata-explore-{kata.slug}-") as tmp:
        sources, errors = _mutant_sources(kata, mutants, Path(tmp))
        findings += errors.values()
        scopes = {m.name: covering_specs(data, kata, m)[0] for m in mutants if m.name in sources}

        async def one_seed(seed: int):
            solution = job(solutions(kata.root), explore_seed=seed)
            runs = [job(sources[name], select=scopes[name], explore_seed=seed) for name in sources]
            return await asyncio.gather(solution, *runs)

        per_seed = await asyncio.gather(*(one_seed(s) for s in seeds))
    killers: dict[str, list[set[str]]] = {name: [] for name in sources}
    for seed, (solution, *runs) in zip(seeds, per_seed, strict=True):
        for spec in solution.result.failing:
            findings.append(
                f"the solution lost {spec.id} with seed {seed}: {spec.outcome}: {spec.message}"
            )
        for name, graded in zip(sources, runs, strict=True):
            killers[name].append(set(_killers(graded.result)))
    for name, sets in killers.items():
        always = set.intersection(*sets) if sets else set()
        ever = set.union(*sets) if sets else set()
        if not ever:
            findings.append(f"mutant {name} survives every seed ({', '.join(map(str, seeds))})")
        elif not always:
            lucky = sorted(ever)
            findings.append(
                f"mutant {name} is killed by luck: no spec kills it under every seed "
                f"(killers per seed: {[sorted(s) for s in sets]}); add @example cases to "
                + ", ".join(lucky[:3])
            )
    return findings


async def explore(
    katas: list[Kata], *, seeds: list[int], jobs: int | None = None
) -> dict[str, list[str]]:
    """``kata verify --explore``: each kata's specs on the solution and on every mutant with
    random hypothesis seeds and ten times the examples. Findings per kata; none is good."""
    slots = Slots(jobs or os.cpu_count() or 1)
    found = await asyncio.gather(*(explore_kata(k, seeds, slots) for k in katas))
    return {k.slug: f for k, f in zip(katas, found, strict=True)}


@contextlib.contextmanager
def cpu_load(processes: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """Burn every core while the body runs (``verify --load``), so the specs run as on a
    busy CI runner; yields the burner processes. They are killed on the way out."""
    burners = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent if os.name == "posix" else None,  # even if verify is killed
        )
        for _ in range(processes or os.cpu_count() or 1)
    ]
    try:
        yield burners
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def show_mutants(kata: Kata) -> str:
    """Every mutant of ``kata`` as its bug in one sentence and a unified diff."""
    out = []
    for m in load(kata):
        out.append(f"### {m.name}: {m.bug}\n")
        out.append(diff(kata, m))
        out.append("\n")
    return "".join(out) if out else f"{kata.slug}: no mutants in {kata.mutants_file}\n"


def render_verdicts(verdicts: list[KataVerdict]) -> str:
    rows = [
        (
            "kata",
            "solution",
            "stub",
            "mutants killed",
            "coverage (lines/branches)",
            "visible",
            "spec run",
            "verify",
            "",
        )
    ]
    for v in verdicts:
        sol = " ".join(f"{r.score}/{r.max_score}" for r in v.solution_runs)
        if len(v.solution_runs) > 4:
            sol = f"{len(v.solution_runs) - v.flakes}/{len(v.solution_runs)} full"
        stub = f"{v.stub.score}/{v.stub.max_score}" if v.stub else "-"
        killed = sum(1 for m in v.mutants if m.killed)
        cov = (
            "-" if v.line_coverage is None else f"{v.line_coverage:.0f}% / {v.branch_coverage:.0f}%"
        )
        rows.append(
            (
                v.kata.slug,
                sol,
                stub,
                f"{killed}/{len(v.mutants)}",
                cov,
                "ok" if not v.visible else "MISS",
                f"{v.spec_seconds:.1f}s",
                f"{v.duration:.0f}s",
                "ok" if v.ok else "FAIL",
            )
        )
    out = columns(rows)
    for v in verdicts:
        for miss in v.misses:
            out.append(f"{v.kata.slug}: {miss}")
    return "\n".join(out) + "\n"


def verdicts_json(verdicts: list[KataVerdict]) -> list[dict]:
    """The verify report as data (``kata verify --json FILE``)."""
    return [
        {
            "slug": v.kata.slug,
            "ok": v.ok,
            "misses": v.misses,
            "duration": round(v.duration, 3),
            "solution": {
                "runs": len(v.solution_runs),
                "flakes": v.flakes,
                "spec_seconds_median": round(v.spec_seconds, 3),
                "scores": [[r.score, r.max_score] for r in v.solution_runs],
                "lost": sorted({s.id for r in v.solution_runs for s in r.failing}),
            },
            "stub": None if v.stub is None else {"status": v.stub.status, "score": v.stub.score},
            "coverage": {"lines": v.line_coverage, "branches": v.branch_coverage},
            "mutants": [
                {
                    "name": m.name,
                    "bug": m.bug,
                    "killed": m.killed,
                    "killed_by": m.killed_by,
                    "scope": m.scope,
                    "seconds": round(m.duration, 3),
                    "error": m.error,
                }
                for m in v.mutants
            ],
            "visible": v.visible or "ok",
        }
        for v in verdicts
    ]
