"""Mutants as data: the classic mistakes of a kata, each an exact edit of its reference solution.

``solutions/<slug>/mutants.toml`` holds one table per mutant::

    [[mutant]]
    name = "full_at_2t"
    bug = "A node counts as full at 2t keys instead of 2t - 1, so nodes overflow before they split."
    file = "btree_index.py"          # optional when the kata declares one file
    [[mutant.edit]]
    old = "return 2 * self.t - 1"
    new = "return 2 * self.t"

Each edit replaces text that occurs exactly once in the file as the previous edits left it, so
a mutant can never silently drift from the solution it mutates: when the solution changes
under it, applying the mutant fails and names it. A mutant reads as a diff
(``kata verify --show-mutants SLUG``), which is how a reviewer reads the catalogue of mistakes.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .kata import Kata, KataError

__all__ = ["Edit", "Mutant", "MutantError", "apply", "diff", "load", "mutated_text"]

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MUTANT_KEYS = {"name", "bug", "file", "edit"}
EDIT_KEYS = {"file", "old", "new"}


class MutantError(KataError):
    """A mutants.toml that can't be read, or a mutant that no longer applies; says which."""


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(e.file for e in self.edits))


def _edit(raw: object, default_file: str | None, kata: Kata, where: str) -> Edit:
    if not isinstance(raw, dict):
        raise MutantError(f"{where}: an edit must be a table with 'old' and 'new'")
    unknown = sorted(set(raw) - EDIT_KEYS)
    if unknown:
        raise MutantError(f"{where}: unknown key(s) {', '.join(unknown)} in an edit")
    file = raw.get("file", default_file)
    if file is None:
        raise MutantError(
            f"{where}: no 'file' (the kata declares {len(kata.files)} files; name the one edited)"
        )
    if file not in kata.files:
        raise MutantError(
            f"{where}: file {file!r} is not one of the kata's files ({', '.join(kata.files)})"
        )
    old, new = raw.get("old"), raw.get("new")
    if not isinstance(old, str) or not old:
        raise MutantError(f"{where}: 'old' must be the non-empty text the edit replaces")
    if not isinstance(new, str):
        raise MutantError(f"{where}: 'new' must be text (empty to delete)")
    if old == new:
        raise MutantError(f"{where}: 'old' and 'new' are the same text; the edit changes nothing")
    return Edit(file, old, new)


def load(kata: Kata) -> list[Mutant]:
    """The mutants of ``kata`` from ``solutions/<slug>/mutants.toml``; [] when there is none."""
    path = kata.mutants_file
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise MutantError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - {"mutant"})
    if unknown:
        raise MutantError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; use [[mutant]]")
    tables = data.get("mutant", [])
    if not isinstance(tables, list):
        raise MutantError(f"{path}: 'mutant' must be an array of tables ([[mutant]])")
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for i, raw in enumerate(tables, 1):
        name = raw.get("name")
        where = f"{path}: mutant {name!r}" if isinstance(name, str) else f"{path}: mutant #{i}"
        if not isinstance(name, str) or not NAME.match(name):
            raise MutantError(f"{where}: 'name' must be a lower-case identifier")
        if name in seen:
            raise MutantError(f"{where}: the name is used twice")
        seen.add(name)
        unknown = sorted(set(raw) - MUTANT_KEYS)
        if unknown:
            raise MutantError(f"{where}: unknown key(s) {', '.join(unknown)}")
        bug = raw.get("bug")
        if not isinstance(bug, str) or not bug.strip():
            raise MutantError(f"{where}: 'bug' must say the mistake in one sentence")
        default_file = raw.get("file", kata.files[0] if len(kata.files) == 1 else None)
        edits_raw = raw.get("edit", [])
        if not isinstance(edits_raw, list) or not edits_raw:
            raise MutantError(f"{where}: no edits; add at least one [[mutant.edit]]")
        edits = tuple(
            _edit(e, default_file, kata, f"{where}, edit {j}") for j, e in enumerate(edits_raw, 1)
        )
        mutants.append(Mutant(name, " ".join(bug.split()), edits))
    return mutants


def mutated_text(kata: Kata, mutant: Mutant) -> dict[str, str]:
    """The text of every file ``mutant`` changes, after its edits; MutantError if one doesn't apply."""
    texts: dict[str, str] = {}
    for j, edit in enumerate(mutant.edits, 1):
        if edit.file not in texts:
            source = kata.solution_dir / edit.file
            if not source.is_file():
                raise MutantError(f"mutant {mutant.name!r}: the solution has no {edit.file}")
            texts[edit.file] = source.read_text(encoding="utf-8")
        count = texts[edit.file].count(edit.old)
        if count != 1:
            first = edit.old.strip().splitlines()[0] if edit.old.strip() else edit.old
            raise MutantError(
                f"{kata.mutants_file}: mutant {mutant.name!r}, edit {j}: the text to replace "
                f"({first[:60]!r}...) occurs {count} times in {edit.file}; it must occur exactly "
                "once (did the solution change under the mutant?)"
            )
        texts[edit.file] = texts[edit.file].replace(edit.old, edit.new)
    return texts


def apply(kata: Kata, mutant: Mutant, dest: Path) -> Path:
    """Write the files ``mutant`` changes into the folder ``dest``; the rest come from the solution."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in mutated_text(kata, mutant).items():
        (dest / name).write_text(text, encoding="utf-8")
    return dest


def diff(kata: Kata, mutant: Mutant, context: int = 3) -> str:
    """``mutant`` as a unified diff against the reference solution."""
    out = []
    for name, text in mutated_text(kata, mutant).items():
        before = (kata.solution_dir / name).read_text(encoding="utf-8")
        out.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"solutions/{kata.slug}/{name}",
                f"mutant {mutant.name}",
                n=context,
            )
        )
    return "".join(out)
