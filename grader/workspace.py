"""Build the pristine workspace a kata's specs run in.

The workspace holds the trusted specs (from this checkout's ``exercises/<slug>/.spec/``) and
*only* the files the kata declares, copied from the submission. Nothing else of the
submission (a conftest.py, pytest.ini, sitecustomize.py, an edited spec, a module that shadows
a library) ever reaches the run.

The trusted files are read once, when a grading starts (:class:`SpecSnapshot`): every
workspace of that grading, every learner of a batch, is built from that copy in memory, and
the grading compares the files on disk with it after each kata, so a change made while it
ran is caught, named, and never used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .kata import Kata, KataError

__all__ = [
    "MAX_FILE_BYTES",
    "Source",
    "SpecSnapshot",
    "Workspace",
    "build",
    "copy_specs",
    "checkout",
    "find_input",
    "linked_folder",
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
    folder = folder.resolve()
    return Source(f"mutant {folder.name}", lambda kata: [folder, kata.solution_dir])


@dataclass
class Workspace:
    path: Path
    copied: list[Path] = field(default_factory=list)  # learner files, inside the workspace
    missing: list[str] = field(default_factory=list)  # declared files the submission lacks
    refused: list[str] = field(default_factory=list)  # why a present file was not taken


_NOT_SPECS = ("__pycache__", "*.pyc", ".hypothesis")


def _spec_tree(kata: Kata) -> list[Path]:
    """The files of the kata's ``.spec/`` folder, as copied into a workspace."""
    ignored = shutil.ignore_patterns(*_NOT_SPECS)
    found = []
    for folder in [kata.spec_dir, *sorted(p for p in kata.spec_dir.rglob("*") if p.is_dir())]:
        if any(part in ("__pycache__", ".hypothesis") for part in folder.parts):
            continue
        names = [p.name for p in folder.iterdir()]
        skip = ignored(str(folder), names)
        found += [folder / n for n in sorted(names) if n not in skip and (folder / n).is_file()]
    return found


class SpecSnapshot:
    """The course's trusted files, read once into memory with a digest.

    Held: every file of each kata's ``.spec/`` (what workspaces are built from) and its
    ``kata.toml`` (checked, never copied). Not the visible tests: a learner grading their own
    checkout may well be editing them. :meth:`check` reads the files on disk again and
    returns what changed since the previous check; :meth:`running` names the gradings that
    could have done it.
    """

    def __init__(self, katas: Iterable[Kata]) -> None:
        self.katas = {kata.slug: kata for kata in katas}
        self.specs: dict[str, dict[str, bytes]] = {}
        self.files: dict[Path, bytes] = {}
        for kata in self.katas.values():
            paths = _spec_tree(kata) if kata.spec_dir.is_dir() else []
            tree = {str(p.relative_to(kata.spec_dir)): p.read_bytes() for p in paths}
            self.specs[kata.slug] = tree
            self.files.update({kata.spec_dir / name: data for name, data in tree.items()})
            toml = kata.exercise_dir / "kata.toml"
            if toml.is_file():
                self.files[toml] = toml.read_bytes()
        self.digest = self._digest(self.files)
        self._seen = self.digest
        self._running: dict[tuple[str, str], int] = {}
        self._since: set[tuple[str, str]] = set()

    @staticmethod
    def _digest(files: dict[Path, bytes]) -> str:
        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(str(path).encode() + b"\0" + hashlib.sha256(files[path]).digest())
        return digest.hexdigest()

    def _on_disk(self) -> dict[Path, bytes]:
        found: dict[Path, bytes] = {}
        for kata in self.katas.values():
            paths = [*_spec_tree(kata)] if kata.spec_dir.is_dir() else []
            paths.append(kata.exercise_dir / "kata.toml")
            for path in paths:
                try:
                    found[path] = path.read_bytes()
                except OSError:
                    continue
        return found

    def check(self) -> list[str]:
        """The trusted files that differ on disk from the snapshot (changed, gone or new),
        if the disk changed since the previous check; else an empty list."""
        disk = self._on_disk()
        now = self._digest(disk)
        if now == self._seen:
            self._since = set(self._running)
            return []
        self._seen = now
        paths = set(disk) | set(self.files)
        return sorted(str(p) for p in paths if disk.get(p) != self.files.get(p))

    def begin(self, submission: str, slug: str) -> None:
        key = (submission, slug)
        self._running[key] = self._running.get(key, 0) + 1
        self._since.add(key)

    def end(self, submission: str, slug: str) -> None:
        key = (submission, slug)
        self._running[key] -= 1
        if not self._running[key]:
            del self._running[key]

    def running(self) -> list[tuple[str, str]]:
        """(submission, kata) of every grading that ran since the previous clean check."""
        return sorted(self._since | set(self._running))

    def kata_digest(self, kata: Kata) -> str:
        digest = hashlib.sha256()
        for name, data in sorted(self.specs[kata.slug].items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return digest.hexdigest()


def copy_specs(kata: Kata, dest: Path, specs: SpecSnapshot | None = None) -> None:
    """Copy the kata's trusted specs (``.spec/``, or their snapshot) into ``dest``;
    KataError when there are none."""
    if specs is None:
        kata.spec_files()  # raises KataError when there are no specs
        shutil.copytree(
            kata.spec_dir, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_NOT_SPECS)
        )
        return
    tree = specs.specs[kata.slug]
    if not any(Path(name).match("test_*.py") and "/" not in name for name in tree):
        raise KataError(f"{kata.spec_dir}: no hidden specs (no test_*.py files)")
    for name, data in tree.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def find_input(folders: list[Path], name: str) -> Path | None:
    """The first of ``folders`` that holds ``name`` (a file, a link, anything), as its path."""
    return next((f / name for f in folders if (f / name).is_symlink() or (f / name).exists()), None)


def linked_folder(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that is a symbolic link, if any.

    Every source folder is absolute and resolved (:func:`checkout`, :func:`solutions`), so a
    link on the way is one the submission made: ``exercises/<slug>`` (or ``exercises``)
    pointing at the course's reference solutions, another learner's checkout, any file the
    grader's user can read. The grader reads the files outside any sandbox; it must never
    follow a link the submission made."""
    parent = path.parent
    if os.path.realpath(parent) == os.path.abspath(parent):
        return None
    return next((p for p in [*reversed(parent.parents), parent] if p.is_symlink()), parent)


def _read_input(path: Path) -> bytes | str:
    """The bytes of a learner file, or why it is refused. Opened once, without following a
    link and without blocking (a FIFO swapped in after a check), and read at most
    MAX_FILE_BYTES + 1 bytes (a file that grows after a check)."""
    flags = os.O_RDONLY
    for name in ("O_NOFOLLOW", "O_NONBLOCK", "O_BINARY"):  # what this system has of them
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return "is not a regular file"
    with os.fdopen(fd, "rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return f"is larger than {MAX_FILE_BYTES // 1024} KiB"
    return data


def build(kata: Kata, source: Source, dest: Path, specs: SpecSnapshot | None = None) -> Workspace:
    """Fill the empty folder ``dest`` with the kata's specs (from ``specs``, the snapshot of
    the grading, if given) and the submission's declared files, those of the katas it builds
    on included."""
    dest.mkdir(parents=True, exist_ok=True)
    copy_specs(kata, dest, specs)
    workspace = Workspace(dest)
    for owner, name in kata.inputs:
        found = find_input(source.folders(owner), name)
        if found is None:
            workspace.missing.append(
                name
                if owner is kata
                else f"{name} (of kata {owner.slug}, which this kata builds on)"
            )
            continue
        link = linked_folder(found)
        if found.is_symlink():
            workspace.refused.append(f"{name} is a symbolic link; submit the file itself")
            continue
        if link is not None:
            workspace.refused.append(
                f"{name} is reached through a symbolic link ({link.name}, a folder of the "
                "submission); submit the folder itself"
            )
            continue
        data = _read_input(found)
        if isinstance(data, str):
            workspace.refused.append(f"{name} {data}")
            continue
        target = dest / name
        target.write_bytes(data)
        workspace.copied.append(target)
    return workspace
