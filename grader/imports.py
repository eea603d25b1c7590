"""Static check of a learner's imports against the kata's ``forbid_imports`` (by AST).

The spec process enforces the same list again at run time (:func:`guard_imports`, installed
by ``grader.child`` before any learner code), which catches ``importlib.import_module`` and
``__import__`` with a computed name, and reports the violation by name.

Whatever a kata forbids, learner files may never import the grader's own machinery
(GRADER_MODULES): pytest and its plugins, hypothesis, the grader. A learner's implementation
has no use for them, and they are the handles by which code would skip, rewrite or weaken
the specs that judge it.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GRADER_MODULES", "Violation", "find_violations", "guard_imports", "is_forbidden"]

GRADER_MODULES = (
    "grader",
    "pytest",
    "_pytest",
    "pluggy",
    "pytest_timeout",
    "pytest_asyncio",
    "hypothesis",
    "_hypothesis_pytestplugin",
    "coverage",
)


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    module: str

    def __str__(self) -> str:
        if is_forbidden(self.module, GRADER_MODULES):
            why = "the grader's own machinery, which learner files may not use"
        else:
            why = "which this kata forbids"
        return f"{self.file}:{self.line} imports '{self.module}', {why}"


def is_forbidden(module: str, forbidden: tuple[str, ...]) -> bool:
    """True when ``module`` is a forbidden module or inside one (``http.client`` under ``http``)."""
    return any(module == f or module.startswith(f + ".") for f in forbidden)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # ``from http import client`` imports http.client
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (
                    isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("import_module", "__import__")
                )
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def find_violations(files: list[Path], forbidden: tuple[str, ...]) -> list[Violation]:
    """Every forbidden import in ``files`` (the grader's machinery always included); a file
    that does not parse is left to the run (which reports why: the spec process meets the
    same error, a nesting too deep for the parser included, when it imports the file)."""
    forbidden = tuple(forbidden) + GRADER_MODULES
    violations = []
    for path in files:
        try:
            tree = ast.parse(path.read_bytes(), filename=path.name)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # the spec run reports the error (a syntax error with its line)
        for line, module in _imported(tree):
            if is_forbidden(module, forbidden):
                violations.append(Violation(path.name, line, module))
    return sorted(set(violations), key=lambda v: (v.file, v.line, v.module))


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


def guard_imports(
    forbidden: tuple[str, ...],
    learner_files: list[str],
    report: Callable[[str, str], None] | None = None,
) -> None:
    """Refuse, at run time, a forbidden import made by learner code, and ``report`` it.

    The static check (``grader.imports``) sees import statements; this catches computed
    names (``__import__(name)``, ``importlib.import_module(name)``, ``importlib.__import__``)
    and modules the specs already imported; an audit hook, which cannot be removed, catches
    the interpreter's own import machinery when called by learner code some other way. Only
    imports whose caller is a learner file are refused: the specs themselves may use the
    forbidden library as an oracle. The grader's own machinery (pytest, the grader, ...) is
    always forbidden to learner files.
    """
    learner = {_real(f) for f in learner_files}
    if not learner:
        return
    forbidden = tuple(forbidden) + GRADER_MODULES
    original_import = builtins.__import__
    original_import_module = importlib.import_module
    original_bootstrap_import = importlib.__import__

    # Every import statement that runs goes through here, in every module (hypothesis runs
    # imports inside functions it calls per example): thousands per spec run. So the caller's
    # file is looked up in a dict, resolved once per file name, and anything but a learner
    # file goes straight through.
    verdicts: dict[str, bool] = {}

    def learner_file(*files: str | None) -> str:
        for f in files:
            if isinstance(f, str):
                mine = verdicts.get(f)
                if mine is None:
                    if len(verdicts) > 4096:  # file names made up at run time: keep it bounded
                        verdicts.clear()
                    mine = verdicts[f] = _real(f) in learner
                if mine:
                    return f
        return ""

    def check(name: str, *callers: str | None) -> None:
        caller = learner_file(*callers)
        if caller and is_forbidden(name, forbidden):
            if report is not None:
                report(name, Path(caller).name)
            raise ImportError(f"import of '{name}' is forbidden in this kata")

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            caller = learner_file(
                (globals or {}).get("__file__"), sys._getframe(1).f_code.co_filename
            )
            if caller:
                check(name, caller)
                for sub in fromlist or ():
                    check(f"{name}.{sub}", caller)
        return original_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package=None):
        check(name, sys._getframe(1).f_code.co_filename)
        return original_import_module(name, package)

    def guarded_bootstrap_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            check(name, (globals or {}).get("__file__"), sys._getframe(1).f_code.co_filename)
        return original_bootstrap_import(name, globals, locals, fromlist, level)

    def audit(event: str, args: tuple) -> None:
        if event != "import" or not isinstance(args[0], str):
            return
        frame = sys._getframe(1)
        while frame is not None and (
            frame.f_code.co_filename.startswith("<frozen") or frame.f_code.co_filename == __file__
        ):
            frame = frame.f_back
        if frame is not None:
            check(args[0], frame.f_code.co_filename)

    builtins.__import__ = guarded_import
    importlib.import_module = guarded_import_module
    importlib.__import__ = guarded_bootstrap_import
    sys.addaudithook(audit)
