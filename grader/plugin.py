"""The grader's pytest plugin: runs inside the spec process and reports over the signed channel.

Theory of operation: ``grader.child`` builds one :class:`GraderPlugin` before pytest starts
and hands it to ``pytest.main(plugins=[...])``. In *collect* mode (run on the trusted stub)
it reports the expected specs: id, title, points. In *run* mode it reports, for each spec, a
``start`` record before the spec runs and a ``result`` record after it. The grader trusts
nothing else: not pytest's exit code, not its terminal output, not any file.

Feedback for learners is the spec's title and the assertion message, never the spec's code:
the grader runs pytest with ``--assert=plain``, so an assertion's message is exactly what the
spec author wrote.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .channel import Writer
from .imports import is_forbidden

__all__ = ["MESSAGE_LIMIT", "GraderPlugin", "guard_imports", "spec_points", "spec_title"]

MESSAGE_LIMIT = 500
TIMEOUT_PREFIX = "Timeout (>"  # pytest-timeout's failure message


def spec_title(item: pytest.Item) -> str:
    """The first line of the spec's docstring (the requirement), plus its parameters if any."""
    doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    lines = [line.strip() for line in doc.strip().splitlines() if line.strip()]
    title = lines[0] if lines else getattr(item, "originalname", item.name).replace("_", " ")
    callspec = getattr(item, "callspec", None)
    return f"{title} [{callspec.id}]" if callspec is not None else title


def spec_points(item: pytest.Item) -> int:
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1
    points = marker.args[0] if marker.args else marker.kwargs.get("n")
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.points needs a whole number >= 1")
    return points


def _truncate(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GraderPlugin:
    """Records spec outcomes and sends them, signed, to the grader."""

    def __init__(self, writer: Writer, *, mode: str, learner_files: list[str]) -> None:
        self._writer = writer
        self._mode = mode
        self._learner = {Path(f).name for f in learner_files}
        self._phases: dict[str, dict[str, Any]] = {}
        self._started: dict[str, float] = {}

    # -- configuration -------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        """Register the points marker and a deterministic hypothesis profile."""
        config.addinivalue_line("markers", "points(n): how many points a spec is worth")
        try:
            from hypothesis import HealthCheck, settings
        except ImportError:  # pragma: no cover - hypothesis is a grader dependency
            return
        settings.register_profile(
            "grader",
            deadline=None,
            derandomize=True,
            database=None,
            print_blob=False,
            suppress_health_check=[HealthCheck.too_slow],
        )
        settings.load_profile("grader")

    # -- collection ----------------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A spec module that cannot be imported is reported with the learner-facing reason."""
        if report.failed:
            self._writer.send("collect_error", where=report.nodeid, message=self._collect_reason(report))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """In collect mode, report the expected specs: id, title, points."""
        if self._mode != "collect":
            return
        for item in session.items:
            self._writer.send(
                "collected", id=item.nodeid, title=spec_title(item), points=spec_points(item)
            )

    # -- running -------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Say which spec is about to run, so a hang is pinned on the right one."""
        self._started[nodeid] = time.monotonic()
        self._writer.send("start", id=nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Turn each phase (setup, call, teardown) into an outcome and a learner-facing message."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        phases = self._phases.setdefault(item.nodeid, {})
        phases[report.when] = self._phase(report, call)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """Send the spec's result: passed only if setup, call and teardown all passed."""
        phases = self._phases.pop(nodeid, {})
        outcome, message, exc_type = "passed", "", ""
        for when in ("setup", "call", "teardown"):
            phase = phases.get(when)
            if phase is None:
                if when == "call" and outcome == "passed":
                    outcome, message = "failed", "the spec did not run"
                continue
            if phase["outcome"] != "passed" and outcome == "passed":
                outcome, message, exc_type = phase["outcome"], phase["message"], phase["exc_type"]
                if when != "call" and outcome == "failed":
                    outcome = "error"
        duration = time.monotonic() - self._started.pop(nodeid, time.monotonic())
        self._writer.send(
            "result",
            id=nodeid,
            outcome=outcome,
            message=_truncate(message),
            exc_type=exc_type,
            duration=round(duration, 4),
        )

    # -- helpers -------------------------------------------------------------------------

    def _phase(self, report: pytest.TestReport, call: pytest.CallInfo) -> dict[str, str]:
        if report.passed and not hasattr(report, "wasxfail"):
            return {"outcome": "passed", "message": "", "exc_type": ""}
        if report.skipped or hasattr(report, "wasxfail"):
            reason = getattr(report, "wasxfail", "") or _skip_reason(report)
            return {
                "outcome": "failed",
                "message": f"the spec was skipped or marked xfail, so it did not pass ({reason})",
                "exc_type": "Skipped",
            }
        excinfo = call.excinfo
        if excinfo is None:  # pragma: no cover - a failed report always has an exception
            return {"outcome": "failed", "message": "failed", "exc_type": ""}
        exc = excinfo.value
        if isinstance(exc, pytest.fail.Exception) and str(exc).startswith(TIMEOUT_PREFIX):
            return {
                "outcome": "timeout",
                "message": f"the spec did not finish within its time limit ({str(exc).split(')')[0][9:]}s)",
                "exc_type": "Timeout",
            }
        return {
            "outcome": "failed",
            "message": self._describe(excinfo),
            "exc_type": type(exc).__name__,
        }

    def _describe(self, excinfo: pytest.ExceptionInfo) -> str:
        """The assertion message as written; for any other exception, its type and text, and
        where in the learner's own files it was raised."""
        exc = excinfo.value
        text = str(exc).strip()
        if isinstance(exc, AssertionError):
            message = text or "a requirement was not met"
        else:
            message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        where = self._learner_frame(excinfo)
        return f"{message} (raised at {where})" if where else message

    def _learner_frame(self, excinfo: pytest.ExceptionInfo) -> str:
        """``file.py:line in function`` of the innermost traceback frame in a learner file."""
        found = ""
        tb = excinfo.tb
        while tb is not None:
            code = tb.tb_frame.f_code
            if Path(code.co_filename).name in self._learner:
                found = f"{Path(code.co_filename).name}:{tb.tb_lineno} in {code.co_name}"
            tb = tb.tb_next
        return found

    def _collect_reason(self, report: pytest.CollectReport) -> str:
        """The exception lines of a collection error (``E   ...``), without the spec's code."""
        text = str(report.longrepr)
        lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
        learner = [
            line.strip() for line in text.splitlines()
            if any(line.strip().startswith(f"{name}:") for name in self._learner)
        ]
        reason = " / ".join(lines) or "the spec module could not be imported"
        if learner:
            reason += f" (at {learner[-1]})"
        return _truncate(reason)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return "skipped"


def guard_imports(forbidden: tuple[str, ...], learner_files: list[str]) -> None:
    """Refuse, at run time, a forbidden import made by learner code.

    The static check (``grader.imports``) sees import statements; this catches computed
    names (``__import__(name)``, ``importlib.import_module(name)``) and modules the specs
    already imported. Only imports whose caller is a learner file are refused: the specs
    themselves may use the forbidden library as an oracle.
    """
    if not forbidden:
        return
    learner = {str(Path(f).resolve()) for f in learner_files}
    original_import = builtins.__import__
    original_import_module = importlib.import_module

    def check(name: str, caller_file: str | None) -> None:
        if caller_file and str(Path(caller_file).resolve()) in learner and is_forbidden(name, forbidden):
            raise ImportError(f"import of '{name}' is forbidden in this kata")

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            check(name, (globals or {}).get("__file__"))
            for sub in fromlist or ():
                check(f"{name}.{sub}", (globals or {}).get("__file__"))
        return original_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package=None):
        check(name, sys._getframe(1).f_code.co_filename)
        return original_import_module(name, package)

    builtins.__import__ = guarded_import
    importlib.import_module = guarded_import_module
