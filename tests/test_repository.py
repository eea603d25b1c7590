"""The repository keeps its promises: every kata has the standard shape, and the README's
curriculum table is the curriculum of exercises/*/kata.toml, in order."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from grader.kata import discover
from grader.mutants import load as load_mutants
from grader.mutants import mutated_text
from grader.plugin import SENTENCE_END, requirement

ROOT = Path(__file__).resolve().parent.parent
KATAS = discover(ROOT)


def test_readme_curriculum_matches_the_katas():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- curriculum:start")[1].split("<!-- curriculum:end")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    listed = [re.search(r"`([a-z0-9_]+)`", row).group(1) for row in rows]
    assert listed == [k.slug for k in KATAS], (
        "README curriculum table is out of step with kata.toml"
    )
    for row, kata in zip(rows, KATAS, strict=True):
        assert f"| {kata.pillar} |" in row and f"| {kata.difficulty} |" in row, row


@pytest.mark.parametrize("kata", KATAS, ids=lambda k: k.slug)
def test_every_kata_has_the_standard_shape(kata):
    folder = kata.exercise_dir
    for path in [folder / "README.md", kata.visible_tests, *(folder / f for f in kata.files)]:
        assert path.is_file(), f"{path} is missing"
    assert kata.spec_files()
    for name in kata.files:
        assert (kata.solution_dir / name).is_file(), f"no reference solution for {name}"
        stub = (folder / name).read_text()
        assert "raise NotImplementedError" in stub and "TODO" in stub, f"{name}: not a stub"
    assert not (kata.solution_dir / "mutants").exists(), "mutants are edits in mutants.toml"
    mutants = load_mutants(kata)  # raises MutantError naming the mutant that doesn't apply
    assert len(mutants) >= 3, f"{kata.slug}: {len(mutants)} mutants; the bar is 3"
    for mutant in mutants:
        mutated_text(kata, mutant)


@pytest.mark.parametrize("kata", KATAS, ids=lambda k: k.slug)
def test_every_spec_states_its_requirement_as_one_readable_sentence(kata):
    """The grader shows a failing spec's requirement (plugin.requirement of its docstring):
    it must exist, end its sentence, and hold no control character (a docstring that says
    \\r\\n in a non-raw string holds a real CR LF and reads as nonsense)."""
    bad = []
    for path in kata.spec_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test"
            ):
                title = requirement(ast.get_docstring(node, clean=False) or "")
                if not title or not SENTENCE_END.search(title) or any(ord(c) < 32 for c in title):
                    bad.append(f"{path.name}::{node.name}: {title!r}")
    assert not bad, "specs without a readable requirement:\n" + "\n".join(bad)


@pytest.mark.parametrize("kata", KATAS, ids=lambda k: k.slug)
def test_every_lesson_has_the_sections_a_learner_needs(kata):
    lesson = (kata.exercise_dir / "README.md").read_text()
    for heading in ("The task", "Hints", "References"):
        assert re.search(rf"^#+ .*{heading}", lesson, re.M | re.I), (
            f"{kata.slug}: no '{heading}' section"
        )
    assert "<details>" in lesson, f"{kata.slug}: hints should stay folded until asked"


def _nox_sessions() -> set[str]:
    """The session names noxfile.py defines (``name=`` or the function's own name)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        for deco in getattr(node, "decorator_list", []):
            target = deco.func if isinstance(deco, ast.Call) else deco
            if ast.unparse(target) != "nox.session":
                continue
            given = [k.value.value for k in getattr(deco, "keywords", []) if k.arg == "name"]
            names.add(given[0] if given else node.name)
    return names


def test_every_nox_command_the_docs_name_exists():
    """A lesson, a visible test or a guide that names `nox -s X` names a real session."""
    sessions = _nox_sessions()
    assert {"list", "try", "grade", "tests"} <= sessions, sessions
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for kata in KATAS:
        texts += [kata.exercise_dir / "README.md", kata.visible_tests]
    unknown = sorted(
        f"{path.relative_to(ROOT)}: nox -s {name}"
        for path in texts
        if path.is_file()
        for name in re.findall(r"nox -s ([\w-]+)", path.read_text(encoding="utf-8"))
        if name not in sessions
    )
    assert not unknown, "commands that name no session:\n" + "\n".join(unknown)
