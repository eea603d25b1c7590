"""Discover katas and validate their ``kata.toml``: the one source of truth for a kata."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DIFFICULTIES",
    "PILLARS",
    "Kata",
    "KataError",
    "discover",
    "find_root",
    "load_kata",
    "select",
]

PILLARS = ("kernel", "protocols", "execution-patterns", "proxies", "databases", "security")
DIFFICULTIES = ("intro", "easy", "medium", "hard")
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
FILE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DEFAULT_SPEC_TIMEOUT = 10.0


class KataError(Exception):
    """A kata, or the course, is not usable as it stands; the message says where and why."""


@dataclass(frozen=True)
class Kata:
    slug: str
    title: str
    pillar: str
    order: int
    difficulty: str
    files: tuple[str, ...]
    forbid_imports: tuple[str, ...]
    timeout: float
    spec_timeout: float
    root: Path  # the course root: exercises/ and solutions/ live here
    # Katas whose learner files this one builds on (kata.toml ``builds_on``): their files are
    # taken from the same submission and placed beside this kata's own (see ``inputs``).
    builds_on: tuple[Kata, ...] = ()

    @property
    def inputs(self) -> list[tuple[Kata, str]]:
        """Every learner file a grading of this kata takes, with the kata that declares it:
        the files of the katas it builds on first, then its own."""
        return [(k, name) for k in self.builds_on for name in k.files] + [
            (self, name) for name in self.files
        ]

    def examples_env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` for a run of the visible examples in the learner's checkout: the folders of
        the katas this one builds on go on PYTHONPATH, so their modules import."""
        if not self.builds_on:
            return env
        path = [str(k.exercise_dir) for k in self.builds_on]
        if env.get("PYTHONPATH"):
            path.append(env["PYTHONPATH"])
        return {**env, "PYTHONPATH": os.pathsep.join(path)}

    @property
    def exercise_dir(self) -> Path:
        return self.root / "exercises" / self.slug

    @property
    def spec_dir(self) -> Path:
        return self.exercise_dir / ".spec"

    @property
    def solution_dir(self) -> Path:
        return self.root / "solutions" / self.slug

    @property
    def mutants_file(self) -> Path:
        """The kata's known-wrong variants, as edits of the solution (grader/mutants.py)."""
        return self.solution_dir / "mutants.toml"

    @property
    def visible_tests(self) -> Path:
        return self.exercise_dir / f"test_{self.slug}.py"

    def spec_files(self) -> list[Path]:
        """The trusted spec files, sorted; raises KataError when there are none."""
        if not self.spec_dir.is_dir():
            raise KataError(f"{self.spec_dir}: no hidden specs (the .spec/ folder is missing)")
        specs = sorted(self.spec_dir.glob("test_*.py"))
        if not specs:
            raise KataError(f"{self.spec_dir}: no hidden specs (no test_*.py files)")
        return specs


def _field(data: dict, name: str, kind: type | tuple[type, ...], where: Path, expected: str):
    if name not in data:
        raise KataError(f"{where}: missing field '{name}' (expected {expected})")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise KataError(f"{where}: field '{name}' is {value!r}; expected {expected}")
    return value


def _string_list(data: dict, name: str, where: Path, pattern: re.Pattern, what: str) -> tuple:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and pattern.match(v) for v in value
    ):
        raise KataError(f"{where}: field '{name}' is {value!r}; expected a list of {what}")
    return tuple(value)


def load_kata(path: Path, root: Path | None = None) -> Kata:
    """Read and validate one ``kata.toml``; every error names the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise KataError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise KataError(f"{path}: cannot be read ({err.strerror})") from None

    slug = _field(data, "slug", str, path, "a lower-case identifier such as 'btree_index'")
    if not SLUG.match(slug):
        raise KataError(f"{path}: field 'slug' is {slug!r}; expected a lower-case identifier")
    if slug != path.parent.name:
        raise KataError(
            f"{path}: field 'slug' is {slug!r} but the folder is {path.parent.name!r}; "
            "they must match"
        )
    title = _field(data, "title", str, path, "a non-empty string")
    if not title.strip():
        raise KataError(f"{path}: field 'title' is empty; expected a non-empty string")
    pillar = _field(data, "pillar", str, path, f"one of {', '.join(PILLARS)}")
    if pillar not in PILLARS:
        raise KataError(
            f"{path}: field 'pillar' is {pillar!r}; expected one of {', '.join(PILLARS)}"
        )
    order = _field(data, "order", int, path, "a whole number (position in the curriculum)")
    difficulty = _field(data, "difficulty", str, path, f"one of {', '.join(DIFFICULTIES)}")
    if difficulty not in DIFFICULTIES:
        raise KataError(
            f"{path}: field 'difficulty' is {difficulty!r}; expected one of {', '.join(DIFFICULTIES)}"
        )
    files = _string_list(data, "files", path, FILE_NAME, "Python file names such as 'kata.py'")
    if not files:
        raise KataError(f"{path}: field 'files' is missing or empty; expected at least one file")
    forbid = _string_list(data, "forbid_imports", path, MODULE, "module names")
    timeout = _field(data, "timeout", (int, float), path, "seconds for the whole kata (> 0)")
    spec_timeout = data.get("spec_timeout", min(DEFAULT_SPEC_TIMEOUT, timeout))
    if isinstance(spec_timeout, bool) or not isinstance(spec_timeout, int | float):
        raise KataError(f"{path}: field 'spec_timeout' is {spec_timeout!r}; expected seconds (> 0)")
    if timeout <= 0 or spec_timeout <= 0:
        raise KataError(f"{path}: 'timeout' and 'spec_timeout' must be positive numbers of seconds")
    known = {
        "slug",
        "title",
        "pillar",
        "order",
        "difficulty",
        "files",
        "forbid_imports",
        "timeout",
        "spec_timeout",
        "builds_on",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise KataError(
            f"{path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    root = (root or path.parent.parent.parent).resolve()
    builds_on = _builds_on(data, path, slug, files, root)
    return Kata(
        slug=slug,
        title=title,
        pillar=pillar,
        order=order,
        difficulty=difficulty,
        files=files,
        forbid_imports=forbid,
        timeout=float(timeout),
        spec_timeout=float(spec_timeout),
        root=root,
        builds_on=builds_on,
    )


def _builds_on(data: dict, path: Path, slug: str, files: tuple, root: Path) -> tuple[Kata, ...]:
    """The katas named by ``builds_on``: each must exist, build on nothing itself (one level
    keeps a learner's failure easy to place) and declare no file name this kata declares."""
    names = _string_list(data, "builds_on", path, SLUG, "kata slugs such as 'hpack'")
    found = []
    for name in names:
        if name == slug:
            raise KataError(f"{path}: field 'builds_on' names the kata itself")
        other = root / "exercises" / name / "kata.toml"
        if not other.is_file():
            raise KataError(f"{path}: field 'builds_on' names {name!r}, but {other} does not exist")
        kata = load_kata(other, root)
        if kata.builds_on:
            raise KataError(
                f"{path}: field 'builds_on' names {name!r}, which builds on "
                f"{', '.join(k.slug for k in kata.builds_on)} itself; build on those directly"
            )
        taken = set(files).union(*(k.files for k in found))
        clash = sorted(taken.intersection(kata.files))
        if clash:
            raise KataError(
                f"{path}: kata {name!r} (builds_on) also declares {', '.join(clash)}; "
                "file names must not clash"
            )
        found.append(kata)
    return tuple(found)


def discover(root: Path) -> list[Kata]:
    """Every kata under ``root/exercises``, in curriculum order."""
    exercises = root / "exercises"
    if not exercises.is_dir():
        raise KataError(f"{root}: no exercises/ folder; is this a backend-katas checkout?")
    katas = [load_kata(p, root) for p in sorted(exercises.glob("*/kata.toml"))]
    seen: dict[int, str] = {}
    for kata in katas:
        if kata.order in seen:
            raise KataError(
                f"{kata.exercise_dir / 'kata.toml'}: field 'order' is {kata.order}, "
                f"the same as kata '{seen[kata.order]}'; each kata needs its own position"
            )
        seen[kata.order] = kata.slug
    return sorted(katas, key=lambda k: k.order)


def select(katas: list[Kata], slugs: list[str]) -> list[Kata]:
    """The katas named by ``slugs`` (all when empty); an unknown slug lists the known ones."""
    if not slugs:
        return katas
    by_slug = {k.slug: k for k in katas}
    unknown = [s for s in slugs if s not in by_slug]
    if unknown:
        raise KataError(
            f"unknown kata {', '.join(map(repr, unknown))}; known katas: "
            + ", ".join(k.slug for k in katas)
        )
    return [by_slug[s] for s in dict.fromkeys(slugs)]


def find_root(start: Path | None = None) -> Path:
    """The course root: the nearest folder, from ``start`` upwards, holding exercises/*/kata.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "exercises").is_dir() and any((folder / "exercises").glob("*/kata.toml")):
            return folder
    raise KataError(
        f"no backend-katas checkout found at or above {here} (looked for exercises/*/kata.toml); "
        "run from the repository or pass --root"
    )
