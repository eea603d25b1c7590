"""``kata verify``: prove that each kata's specs are worth trusting.

For every kata: the reference solution scores full marks on every one of several runs (a
flaky spec fails verify), the untouched stub scores nothing, every mutant in
``solutions/<slug>/mutants/`` loses at least one spec, the specs cover the solution's lines
and branches to the bar, and the visible tests pass on the solution and fail on the stub.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .grading import grade_kata
from .kata import Kata
from .report import columns
from .scoring import KataResult
from .workspace import checkout, mutant, solutions

__all__ = ["COVERAGE_BAR", "KataVerdict", "verify"]

COVERAGE_BAR = 90.0


@dataclass
class KataVerdict:
    kata: Kata
    solution_runs: list[KataResult] = field(default_factory=list)
    stub: KataResult | None = None
    mutants: dict[str, KataResult] = field(default_factory=dict)
    line_coverage: float | None = None
    branch_coverage: float | None = None
    visible: str = ""  # "" when fine, else what went wrong
    duration: float = 0.0

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
        for name, result in self.mutants.items():
            if result.max_score == 0 or result.score == result.max_score:
                out.append(f"mutant {name} survived: every spec passed")
        if not self.mutants:
            out.append("no mutants in solutions/<slug>/mutants/")
        elif len(self.mutants) < 3:
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
        durations = sorted(r.duration for r in self.solution_runs)
        return durations[len(durations) // 2] if durations else 0.0

    @property
    def ok(self) -> bool:
        return not self.misses


def _coverage(report: dict | None) -> tuple[float | None, float | None]:
    if not report:
        return None, None
    totals = report.get("totals", {})
    lines = totals.get("num_statements", 0)
    covered = totals.get("covered_lines", 0)
    branches = totals.get("num_branches", 0)
    covered_branches = totals.get("covered_branches", 0)
    line_pct = 100.0 * covered / lines if lines else 100.0
    branch_pct = 100.0 * covered_branches / branches if branches else 100.0
    return line_pct, branch_pct


def _visible_tests(kata: Kata, folder: Path) -> int:
    """Run the visible tests against the learner files of ``folder``; pytest's exit status."""
    if not kata.visible_tests.is_file():
        return -1
    with tempfile.TemporaryDirectory(prefix="kata-visible-") as tmp:
        shutil.copy(kata.visible_tests, tmp)
        for name in kata.files:
            if (folder / name).is_file():
                shutil.copy(folder / name, tmp)
        env = {**os.environ, "PYTEST_ADDOPTS": ""}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-x",
                "-c",
                str(kata.root / "pyproject.toml"),
                "--rootdir",
                tmp,
                tmp,
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            timeout=kata.timeout * 2,
        )
    return proc.returncode


async def verify_kata(kata: Kata, runs: int, slots: asyncio.Semaphore) -> KataVerdict:
    verdict = KataVerdict(kata)
    started = time.monotonic()

    async def job(source, coverage=False):
        async with slots:
            return await grade_kata(kata, source, coverage=coverage)

    mutant_dirs = (
        sorted(p for p in kata.mutants_dir.glob("*") if p.is_dir())
        if kata.mutants_dir.is_dir()
        else []
    )
    jobs = [job(solutions(kata.root), coverage=True)]
    jobs += [job(solutions(kata.root)) for _ in range(runs - 1)]
    jobs.append(job(checkout(kata.root)))
    jobs += [job(mutant(m)) for m in mutant_dirs]
    graded = await asyncio.gather(*jobs)
    verdict.solution_runs = [g.result for g in graded[:runs]]
    verdict.line_coverage, verdict.branch_coverage = _coverage(
        graded[0].run.coverage if graded[0].run else None
    )
    verdict.stub = graded[runs].result
    verdict.mutants = {
        m.name: g.result for m, g in zip(mutant_dirs, graded[runs + 1 :], strict=True)
    }
    async with slots:
        on_solution, on_stub = await asyncio.gather(
            asyncio.to_thread(_visible_tests, kata, kata.solution_dir),
            asyncio.to_thread(_visible_tests, kata, kata.exercise_dir),
        )
    if on_solution == -1:
        verdict.visible = f"no visible tests ({kata.visible_tests.name})"
    elif on_solution != 0:
        verdict.visible = f"visible tests fail on the solution (pytest exit {on_solution})"
    elif on_stub == 0:
        verdict.visible = "visible tests pass on the stub"
    verdict.duration = time.monotonic() - started
    return verdict


async def verify(
    katas: list[Kata],
    *,
    runs: int = 3,
    jobs: int | None = None,
    progress: Callable[[KataVerdict], None] | None = None,
) -> list[KataVerdict]:
    slots = asyncio.Semaphore(jobs or os.cpu_count() or 1)

    async def one(kata: Kata) -> KataVerdict:
        verdict = await verify_kata(kata, runs, slots)
        if progress:
            progress(verdict)
        return verdict

    return list(await asyncio.gather(*(one(k) for k in katas)))


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
            "",
        )
    ]
    for v in verdicts:
        sol = " ".join(f"{r.score}/{r.max_score}" for r in v.solution_runs)
        stub = f"{v.stub.score}/{v.stub.max_score}" if v.stub else "-"
        killed = sum(1 for r in v.mutants.values() if r.max_score and r.score < r.max_score)
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
                "ok" if v.ok else "FAIL",
            )
        )
    out = columns(rows)
    for v in verdicts:
        for miss in v.misses:
            out.append(f"{v.kata.slug}: {miss}")
    return "\n".join(out) + "\n"
