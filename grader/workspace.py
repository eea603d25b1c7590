"""Build the pristine workspace a kata's specs run in.

The workspace holds the trusted specs (from this checkout's ``exercises/<slug>/.spec/``) and
*only* the files the kata declares, copied from the submission. Nothing else of the
submission (a conftest.py, pytest.ini, sitecustomize.py, an edited spec, a module that shadows
a library) ever reaches the run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .kata import Kata

__all__ = [
    "MAX_FILE_BYTES",
    "Source",
    "Workspace",
    "build",
    "copy_specs",
    "checkout",
    "mutant",
    "solutions",
]

MAX_FILE_BYTES = 1 << 20  # a learner file bigger than 1 MiB is refused, not copied


@dataclass(frozen=True)
class Source:
    """Where a submission's files come from: folders searched in order for each declared file."""

    label: str
    folders: Callable[[Kata], list[Path]]


def checkout(root: Path) -> Source:
    """A learner checkout: ``root/exercises/<slug>/<file>``."""
    root = root.resolve()
    return Source(str(root), lambda kata: [root / "exercises" / kata.slug])


def solutions(root: Path) -> Source:
    """The reference solutions: ``root/solutions/<slug>/<file>``."""
    root = root.resolve()
    return Source("solutions", lambda kata: [root / "solutions" / kata.slug])


def mutant(folder: Path) -> Source:
    """A mutant: its own files first, the rest from the kata's reference solution."""
    return Source(f"mutant {folder.name}", lambda kata: [folder, kata.solution_dir])


@dataclass
class Workspace:
    path: Path
    copied: list[Path] = field(default_factory=list)  # learner files, inside the workspace
    missing: list[str] = field(default_factory=list)  # declared files the submission lacks
    refused: list[str] = field(default_factory=list)  # why a present file was not taken


def copy_specs(kata: Kata, dest: Path) -> None:
    """Copy the kata's trusted specs (``.spec/``) into ``dest``; KataError when there are none."""
    kata.spec_files()  # raises KataError when there are no specs
    shutil.copytree(
        kata.spec_dir,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis"),
    )


def build(kata: Kata, source: Source, dest: Path) -> Workspace:
    """Fill the empty folder ``dest`` with the kata's specs and the submission's declared files."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_specs(kata, dest)
    workspace = Workspace(dest)
    folders = source.folders(kata)
    for name in kata.files:
        found = next(
            (f / name for f in folders if (f / name).is_symlink() or (f / name).exists()), None
        )
        if found is None:
            workspace.missing.append(name)
        elif found.is_symlink():
            workspace.refused.append(f"{name} is a symbolic link; submit the file itself")
        elif not found.is_file():
            workspace.refused.append(f"{name} is not a regular file")
        elif found.stat().st_size > MAX_FILE_BYTES:
            workspace.refused.append(f"{name} is larger than {MAX_FILE_BYTES // 1024} KiB")
        else:
            target = dest / name
            target.write_bytes(found.read_bytes())
            workspace.copied.append(target)
    return workspace
