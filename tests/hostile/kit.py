"""Building blocks of the hostile-submission suite.

Every hostile kata is a copy of the ``adder`` kata of ``tests/conftest.py`` under its own slug,
with the same five specs (6 points, in this order): ``test_add`` (2 points), ``test_add_zero[0]``,
``test_add_zero[7]``, ``test_mul``, ``test_async_add``. A hostile submission is the correct
solution plus an attack, usually in ``mul``: the add specs (4 points) run before the attack
and must keep their points, whatever the attack does to the rest of the run.

A course holds one honest kata and many hostile ones and is graded once, for real, so that
each case also proves that the other katas' results are intact.

The spec process runs in the grader's Landlock sandbox, which lets it write nothing outside
its own run folder. A suite that needs evidence from the submission (the pids it started, a
marker proving that a file did *not* run) gives it a *window*: a folder of the test's own,
added to the sandbox's writable paths for this grading only (:meth:`HostileCourse.grade`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import textwrap
import time
from pathlib import Path

from grader import runner
from grader.grading import Graded, run_grading
from grader.kata import discover
from grader.runner import MARKER, Limits
from grader.workspace import checkout

from ..conftest import ADDER_SOLUTION, ADDER_SPEC, ADDER_STUB, Course

ADD_POINTS = 4  # test_add (2) + test_add_zero[0] + test_add_zero[7]: the specs before test_mul
FULL = 6

CORRECT = ADDER_SOLUTION


def spec_for(slug: str) -> str:
    return ADDER_SPEC.replace("adder", slug)


def with_mul(body: str, *, prelude: str = "") -> str:
    """A submission whose ``add`` is right and whose ``mul`` runs ``body`` (indented for you)."""
    return (
        textwrap.dedent(prelude)
        + "\n\ndef add(a: int, b: int) -> int:\n    return a + b\n\n\ndef mul(a: int, b: int) -> int:\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n"
    )


def at_import(prelude: str, solution: str = CORRECT) -> str:
    """A submission that runs ``prelude`` when the specs import it."""
    return textwrap.dedent(prelude) + "\n\n" + solution


class HostileCourse:
    """A course and one submission, filled kata by kata, graded once."""

    def __init__(self, root: Path, *, timeout: float, spec_timeout: float) -> None:
        self.course = Course(root / "course")
        self.submission = root / "submission"
        self.timeout = timeout
        self.spec_timeout = spec_timeout
        self.run_ids: list[str] = []  # the marker of every run of this course's grading
        self.window = root / "window"  # the one folder outside its run the submission may write
        self.window.mkdir(parents=True, exist_ok=True)
        self._order = 0

    def kata(
        self,
        slug: str,
        learner: str,
        *,
        specs: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
        forbid: tuple[str, ...] = (),
        timeout: float | None = None,
        spec_timeout: float | None = None,
    ) -> None:
        """Add kata ``slug`` and the submission's ``learner`` file for it (plus ``extra`` files
        in the submission's kata folder: the stray files a hostile submission brings)."""
        self._order += 1
        self.course.add_kata(
            slug,
            stub=ADDER_STUB,
            solution=CORRECT,
            specs=specs or {f"test_{slug}.py": spec_for(slug)},
            order=self._order,
            forbid=forbid,
            timeout=timeout or self.timeout,
            spec_timeout=spec_timeout or self.spec_timeout,
        )
        files = {f"{slug}.py": learner, **(extra or {})}
        for name, text in files.items():
            path = self.submission / "exercises" / slug / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def grade(
        self, jobs: int, *, windows: tuple[Path, ...] = (), limits: Limits = Limits()
    ) -> dict[str, Graded]:
        """Grade the course once; the submission may write in ``self.window`` and ``windows``."""
        katas = discover(self.course.root)
        environment, paths = runner._environment, runner.sandbox_paths
        writable = [str(self.window), *map(str, windows)]

        def recording(run_dir: Path, run_id: str) -> dict[str, str]:
            self.run_ids.append(run_id)
            return environment(run_dir, run_id)

        def with_windows(run_dir: Path, workspace: Path) -> tuple[list[str], list[str]]:
            write, read = paths(run_dir, workspace)
            return write + writable, read

        runner._environment, runner.sandbox_paths = recording, with_windows
        try:
            grading = run_grading(katas, checkout(self.submission), jobs=jobs, limits=limits)
            graded = asyncio.run(grading)
        finally:
            runner._environment, runner.sandbox_paths = environment, paths
        return {g.result.slug: g for g in graded}


# -- processes -----------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def pids_in(path: Path) -> list[int]:
    if not path.is_file():
        return []
    return [int(p) for p in path.read_text().split() if p.strip().isdigit()]


def marked_processes(run_ids: list[str]) -> list[int]:
    """Live processes that carry the marker of one of ``run_ids`` in their environment (other
    gradings may be running on the same machine: their processes are not ours to judge)."""
    markers = {f"{MARKER}={run_id}".encode() for run_id in run_ids}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            if environ & markers and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def wait_dead(pids: list[int], within: float = 3.0) -> list[int]:
    """The pids still alive after ``within`` seconds (killed processes take a moment to go)."""
    deadline = time.monotonic() + within
    while True:
        living = [p for p in pids if alive(p)]
        if not living or time.monotonic() > deadline:
            return living
        time.sleep(0.05)


def kill_leftovers(pids: list[int]) -> None:
    """Clean up after a failing containment test, so that it cannot harm the machine."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)
