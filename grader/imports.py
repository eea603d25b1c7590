"""Static check of a learner's imports against the kata's ``forbid_imports`` (by AST).

The spec process enforces the same list again at run time (``grader.plugin``), which catches
``importlib.import_module`` and ``__import__`` with a computed name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Violation", "find_violations", "is_forbidden"]


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports '{self.module}', which this kata forbids"


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
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def find_violations(files: list[Path], forbidden: tuple[str, ...]) -> list[Violation]:
    """Every forbidden import in ``files``; a file that does not parse is left to the run."""
    if not forbidden:
        return []
    violations = []
    for path in files:
        try:
            tree = ast.parse(path.read_bytes(), filename=path.name)
        except (SyntaxError, ValueError):
            continue  # the spec run reports the syntax error with its line
        for line, module in _imported(tree):
            if is_forbidden(module, forbidden):
                violations.append(Violation(path.name, line, module))
    return sorted(set(violations), key=lambda v: (v.file, v.line, v.module))
