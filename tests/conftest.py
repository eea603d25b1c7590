"""Fixtures for the grader's own tests: small courses built in a temp folder.

``course`` builds a course with two tiny katas (``adder``: pure functions; ``echo``: an
asyncio server) so tests exercise the real grading flow, end to end, in about a second a kata.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

KATA_TOML = """\
slug = "{slug}"
title = "{title}"
pillar = "{pillar}"
order = {order}
difficulty = "easy"
files = ["{slug}.py"]
forbid_imports = {forbid}
timeout = {timeout}
spec_timeout = {spec_timeout}
"""

ADDER_STUB = '''\
def add(a: int, b: int) -> int:
    """Return a + b."""
    raise NotImplementedError


def mul(a: int, b: int) -> int:
    """Return a * b."""
    raise NotImplementedError
'''

ADDER_SOLUTION = """\
def add(a: int, b: int) -> int:
    return a + b


def mul(a: int, b: int) -> int:
    return a * b
"""

ADDER_SPEC = '''\
import pytest
from adder import add, mul


@pytest.mark.points(2)
def test_add():
    """add(2, 3) returns 5."""
    got = add(2, 3)
    assert got == 5, f"Called add(2, 3); returned {got!r}; expected 5"


@pytest.mark.parametrize("a", [0, 7])
def test_add_zero(a):
    """Adding zero changes nothing."""
    got = add(a, 0)
    assert got == a, f"Called add({a}, 0); returned {got!r}"


def test_mul():
    """mul(4, 5) returns 20."""
    got = mul(4, 5)
    assert got == 20, f"Called mul(4, 5); returned {got!r}; expected 20"


async def test_async_add():
    """add works from async code too."""
    assert add(1, 1) == 2, "Called add(1, 1); expected 2"
'''

ADDER_VISIBLE = """\
from adder import add


def test_add_example():
    assert add(1, 2) == 3
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
    return path


class Course:
    """A course folder under construction; ``add_kata`` writes one kata in the standard shape."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "exercises").mkdir(parents=True, exist_ok=True)
        write(root / "pyproject.toml", '[tool.pytest.ini_options]\nasyncio_mode = "auto"\n')

    def add_kata(
        self,
        slug: str,
        *,
        stub: str,
        solution: str,
        specs: dict[str, str],
        visible: str | None = None,
        mutants: dict[str, tuple[str, str, str]] | None = None,
        order: int = 1,
        pillar: str = "kernel",
        forbid: tuple[str, ...] = (),
        timeout: float = 30,
        spec_timeout: float = 5,
        builds_on: tuple[str, ...] = (),
    ) -> Path:
        folder = self.root / "exercises" / slug
        toml = KATA_TOML.format(
            slug=slug,
            title=slug.replace("_", " ").title(),
            pillar=pillar,
            order=order,
            forbid=list(forbid).__repr__().replace("'", '"'),
            timeout=timeout,
            spec_timeout=spec_timeout,
        )
        if builds_on:
            toml += f"builds_on = {json.dumps(list(builds_on))}\n"
        write(folder / "kata.toml", toml)
        write(folder / f"{slug}.py", stub)
        for name, text in specs.items():
            write(folder / ".spec" / name, text)
        if visible is not None:
            write(folder / f"test_{slug}.py", visible)
        write(self.root / "solutions" / slug / f"{slug}.py", solution)
        if mutants:
            self.write_mutants(slug, mutants)
        return folder

    def write_mutants(self, slug: str, mutants: dict[str, tuple[str, str, str]]) -> Path:
        """solutions/<slug>/mutants.toml from {name: (bug, old text, new text)}."""
        tables = [
            f"[[mutant]]\nname = {json.dumps(name)}\nbug = {json.dumps(bug)}\n"
            f"[[mutant.edit]]\nold = {json.dumps(old)}\nnew = {json.dumps(new)}\n"
            for name, (bug, old, new) in mutants.items()
        ]
        path = self.root / "solutions" / slug / "mutants.toml"
        write(path, "\n".join(tables))
        return path

    def add_adder(self, **overrides) -> Path:
        settings = dict(
            stub=ADDER_STUB,
            solution=ADDER_SOLUTION,
            specs={"test_adder.py": ADDER_SPEC},
            visible=ADDER_VISIBLE,
            mutants={
                "off_by_one": ("add is off by one.", "a + b", "a + b + 1"),
                "mul_is_add": ("mul adds.", "a * b", "a + b"),
                "swap": ("add subtracts.", "a + b", "a - b"),
            },
        )
        settings.update(overrides)
        return self.add_kata("adder", **settings)

    def submission(self, name: str, files: dict[str, str]) -> Path:
        """A learner checkout holding ``files`` ({"slug/file.py": text}) under exercises/."""
        root = self.root.parent / f"submission-{name}"
        for rel, text in files.items():
            write(root / "exercises" / rel, text)
        return root


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return Course(tmp_path / "course")


@pytest.fixture
def make_course(tmp_path: Path) -> Callable[[str], Course]:
    return lambda name="course": Course(tmp_path / name)
