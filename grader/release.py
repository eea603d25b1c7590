"""Build the learner template of a classroom: what learners get, and nothing they must not see.

Strategy: the template is assembled in a staging folder next to OUTDIR from an allow-list
(each kata's folder without its dot-folders, the grader package, pyproject.toml) plus files
written here for learners (README, noxfile, a workflow that runs the visible tests). Before
anything reaches OUTDIR, every file of the staging folder is searched for the bytes of every
hidden spec and every solution or mutant of the course; one hit and the release stops. A
leaking template never lands, whatever a future kata folder happens to hold.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .kata import Kata, KataError, discover, select

__all__ = ["Leak", "Release", "files_under", "find_leaks", "main", "secret_files"]

GRADER = Path(__file__).resolve().parent
PYPROJECT = GRADER.parent / "pyproject.toml"
CACHES = {"__pycache__", ".ruff_cache", ".pytest_cache", ".hypothesis", ".mypy_cache", ".nox"}
GENERATED = ("exercises", "grader")  # trees of OUTDIR a forced release replaces as a whole


@dataclass(frozen=True)
class Release:
    outdir: Path
    katas: tuple[Kata, ...]
    files: tuple[str, ...]  # every file written, relative to outdir, sorted


@dataclass(frozen=True)
class Leak:
    secret: Path  # a spec, solution or mutant file of the course
    found_in: Path  # a file of the template that holds its bytes


def _ignored(path: Path) -> bool:
    return path.suffix == ".pyc" or any(p in CACHES for p in path.parts)


def files_under(folder: Path) -> Iterator[Path]:
    """The files under ``folder``, sorted, tool caches left out."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _ignored(path.relative_to(folder)):
            yield path


def secret_files(root: Path) -> list[Path]:
    """Every file of the course a learner must not see: hidden specs, solutions, mutants."""
    secrets = [
        p for spec in sorted((root / "exercises").glob("*/.spec")) for p in files_under(spec)
    ]
    if (root / "solutions").is_dir():
        secrets += files_under(root / "solutions")
    return secrets


def find_leaks(folder: Path, secrets: Sequence[Path]) -> list[Leak]:
    """Every (secret, file) pair where a file under ``folder`` contains a secret's bytes.

    A secret that is blank (an empty ``__init__.py``) proves nothing and is not searched for."""
    needles = [(s, s.read_bytes().strip()) for s in secrets]
    needles = [(s, data) for s, data in needles if data]
    leaks = []
    for path in files_under(folder) if folder.is_dir() else ():
        haystack = path.read_bytes()
        leaks += [Leak(s, path) for s, data in needles if data in haystack]
    return leaks


# -- what learners get --------------------------------------------------------------------


def _copy_kata(kata: Kata, dest: Path) -> None:
    """The kata's folder: kata.toml, lesson, stubs, visible tests; no dot-folder (.spec/)."""
    for path in files_under(kata.exercise_dir):
        rel = path.relative_to(kata.exercise_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        target = dest / "exercises" / kata.slug / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _readme(katas: Sequence[Kata]) -> str:
    rows = "\n".join(
        f"| {i} | {k.title} | `{k.slug}` | {k.pillar} | {k.difficulty} | "
        + ", ".join(f"`exercises/{k.slug}/{f}`" for f in k.files)
        + " |"
        for i, k in enumerate(katas, 1)
    )
    first = katas[0].slug
    return f"""\
# Backend katas

Exercises in the fundamentals of backend engineering. Each kata is a folder in `exercises/`
with a lesson (`README.md`), a stub for you to complete and a few visible example tests.

## Your katas

| # | kata | slug | pillar | difficulty | the files you complete |
|---|---|---|---|---|---|
{rows}

## Working on a kata

1. Read the lesson: `exercises/<slug>/README.md`. Hints stay folded until you open them.
2. Complete the stub, following its docstrings and `TODO:` lines. Use the standard library
   only; a kata may forbid some modules, and its lesson says which.
3. Run the visible tests (you need Python 3.11 or newer and `pip install nox`):

   ```console
   $ nox -s list              # the curriculum
   $ nox -s try -- {first}    # the examples of one kata
   $ nox -s try               # the examples of every kata
   ```

4. Commit and push. GitHub Actions runs the visible tests of every kata on each push; the
   *Actions* tab shows which pass.

## How you are graded

Your instructor grades your repository with hidden specs that check much more than the
visible tests: passing the examples is a start, not the grade. The grader takes **only the
files listed above** from your repository (edits anywhere else are ignored), runs each
kata's specs against them with time and resource limits, and scores each spec it saw pass.
For every failing spec you will see its requirement in one sentence and the assertion
message, never the spec's code.

`nox -s grade` needs the hidden specs, which this repository does not have: your grade comes
from your instructor.
"""


def _noxfile() -> str:
    return '''\
"""Sessions for learners: run the visible tests of the katas, list the curriculum."""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["try"]


@nox.session(name="try")
def try_(session: nox.Session) -> None:
    """Run the visible examples: nox -s try -- SLUG (one kata), or every kata without SLUG."""
    session.install("-q", "-e", ".")
    if session.posargs:
        session.run("kata", "try", *session.posargs)
    else:
        session.run("pytest", "exercises")


@nox.session(name="list")
def list_(session: nox.Session) -> None:
    """The curriculum in order."""
    session.install("-q", "-e", ".")
    session.run("kata", "list")
'''


def _workflow(katas: Sequence[Kata]) -> str:
    slugs = ", ".join(k.slug for k in katas)
    return f"""\
# Runs the visible tests of each kata on every push: one check per kata.
# Grades are not computed here: your instructor grades with the hidden specs.
name: visible tests

on:
  push:
  pull_request:
  workflow_dispatch:

permissions:
  contents: read

jobs:
  test:
    name: ${{{{ matrix.kata }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 15
    strategy:
      fail-fast: false
      matrix:
        kata: [{slugs}]
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
        with:
          python-version: "3.11"
      - name: Install nox
        run: python -m pip install nox
      - name: Visible tests
        run: nox -s try -- "${{{{ matrix.kata }}}}"
"""


GITIGNORE = """\
__pycache__/
*.pyc
.nox/
.kata/
*.egg-info/
.pytest_cache/
.hypothesis/
"""


def _write(staging: Path, katas: Sequence[Kata]) -> None:
    for kata in katas:
        _copy_kata(kata, staging)
    shutil.copytree(GRADER, staging / "grader", ignore=shutil.ignore_patterns(*CACHES, "*.pyc"))
    shutil.copyfile(PYPROJECT, staging / "pyproject.toml")
    texts = {
        "README.md": _readme(katas),
        "noxfile.py": _noxfile(),
        ".gitignore": GITIGNORE,
        ".github/workflows/test.yml": _workflow(katas),
    }
    for rel, text in texts.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text, encoding="utf-8")


def _check_outdir(outdir: Path, root: Path, force: bool) -> None:
    if outdir == root or outdir in root.parents:
        raise KataError(f"{outdir}: the template cannot be written over the course itself")
    if outdir.exists() and not outdir.is_dir():
        raise KataError(f"{outdir}: exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()) and not force:
        raise KataError(
            f"{outdir}: the folder is not empty; pass --force to write the template into it "
            f"(its {' and '.join(f'{g}/' for g in GENERATED)} are replaced, other files kept)"
        )


def main(*, root: Path, outdir: Path, slugs: Sequence[str] = (), force: bool = False) -> Release:
    """Write the learner template of the katas ``slugs`` (default: all) to ``outdir``."""
    katas = select(discover(root), list(slugs))
    if not katas:
        raise KataError(f"{root}: no katas to release")
    outdir = outdir.resolve()
    _check_outdir(outdir, root.resolve(), force)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-release-", dir=outdir.parent))
    try:
        _write(staging, katas)
        leaks = find_leaks(staging, secret_files(root))
        if leaks:
            where = "; ".join(
                f"{leak.secret.relative_to(root)} in {leak.found_in.relative_to(staging)}"
                for leak in leaks[:5]
            )
            raise KataError(f"release stopped: hidden files would leak into the template: {where}")
        files = tuple(sorted(str(p.relative_to(staging)) for p in files_under(staging)))
        outdir.mkdir(exist_ok=True)
        for name in GENERATED:
            shutil.rmtree(outdir / name, ignore_errors=True)
        shutil.copytree(staging, outdir, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Release(outdir, tuple(katas), files)
