"""The grader's pytest plugin: runs inside the spec process and reports over the signed channel.

Theory of operation: ``grader.child`` builds one :class:`GraderPlugin` before pytest starts
and hands it to ``pytest.main(plugins=[...])``. In *collect* mode (run on the trusted stub)
it reports the expected specs: id, title, points. In *run* mode it reports, for each spec, a
``start`` record before the spec runs and a ``result`` record after it. The grader trusts
nothing else: not pytest's exit code, not its terminal output, not any file.

Feedback for learners is the spec's title and the assertion message, never the spec's code:
the grader runs pytest with ``--assert=plain``, so an assertion's message is exactly what the
spec author wrote.

Learner code runs in this process and could rewrite pytest or this plugin. :class:`Integrity`
notices the obvious ways (a replaced pytest function, report property, hook implementation,
recording method or channel writer; a plugin registered or specs deselected while the specs
run; a trace or profile function set) and reports it, which scores the kata nothing. The
plugin sends through a writer method it captured before any learner code existed. What a
determined in-process attacker could still do is written down in docs/THREAT_MODEL.md.
"""

from __future__ import annotations

import builtins
import functools
import gc
import hmac
import importlib
import inspect
import json
import os
import re
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from .channel import Writer
from .imports import GRADER_MODULES, is_forbidden

__all__ = [
    "MESSAGE_LIMIT",
    "SECTION_LIMIT",
    "GraderPlugin",
    "Integrity",
    "spec_points",
    "spec_title",
]

MESSAGE_LIMIT = 500
SECTION_LIMIT = 4096  # characters of a spec's captured output kept in its report
# CPython gh-106905 (fixed in 3.11.8 and 3.12.1): garbage from a failed async spec, collected
# at the wrong moment, can turn into an INTERNALERROR; a collection between specs avoids it.
GC_AFTER_ASYNC_FAILURE = sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 1)
TIMEOUT = re.compile(r"^Timeout \(>?([0-9.]+)s\)")  # pytest-timeout's failure message


SENTENCE_END = re.compile(r"[.!?:;]['\")\]]*$")  # a line that ends the requirement's sentence


def requirement(doc: str) -> str:
    """A spec docstring's requirement: its first line, continued over the next lines of the
    paragraph while the sentence is wrapped (until a line ends it)."""
    taken: list[str] = []
    for line in doc.strip().split("\n"):
        if not line.strip():
            break
        taken.append(line.strip())
        if SENTENCE_END.search(line.strip()):
            break
    return " ".join(taken)


def spec_title(item: pytest.Item) -> str:
    """The spec's requirement (:func:`requirement` of its docstring), plus its parameters."""
    doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    title = requirement(doc) or getattr(item, "originalname", item.name).replace("_", " ")
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
    text = text[: 4 * limit].strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GraderPlugin:
    """Records spec outcomes and sends them, signed, to the grader."""

    def __init__(self, writer: Writer, *, mode: str, learner_files: list[str]) -> None:
        # Bound now, from the class as it is before any learner code exists.
        self._send = functools.partial(Writer.send, writer)
        self._mode = mode
        self._learner = {Path(f).name for f in learner_files}
        self._phases: dict[str, dict[str, Any]] = {}
        self._async: set[str] = set()  # ids of async specs (see GC_AFTER_ASYNC_FAILURE)
        self._started: dict[str, float] = {}
        self._forbidden: set[str] = set()
        self._integrity = Integrity(self, writer, learner_files) if mode == "run" else None
        self._config: pytest.Config | None = None

    def send(self, kind: str, **data: Any) -> None:
        self._send(kind, **data)

    def forbidden_import(self, module: str, file: str) -> None:
        """Called by the run-time import guard: the violation is reported once, by name."""
        if module not in self._forbidden:
            self._forbidden.add(module)
            why = (
                "the grader's own machinery, which learner files may not use"
                if is_forbidden(module, GRADER_MODULES)
                else "which this kata forbids"
            )
            self.send(
                "forbidden_import",
                module=module,
                message=f"{file} imports '{module}' at run time, {why}",
            )

    def finish(self, exitstatus: int) -> None:
        """The last record of a run: said by ``grader.child`` after pytest has returned."""
        self._check()
        self.send("done", exitstatus=exitstatus)

    def _check(self) -> None:
        if self._integrity is not None and self._config is not None:
            problem = self._integrity.check(self._config.pluginmanager)
            if problem:
                self.send("tamper", message=problem)

    # -- configuration -------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        """Register the points marker and a deterministic hypothesis profile."""
        self._config = config
        config.addinivalue_line("markers", "points(n): how many points a spec is worth")
        try:
            from hypothesis import HealthCheck, Phase, settings
        except ImportError:  # pragma: no cover - hypothesis is a grader dependency
            return
        settings.register_profile(
            "grader",
            deadline=None,
            # "explain" names spec lines (not the learner's) and is slow on a failing stub
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            derandomize=True,
            database=None,
            print_blob=False,
            suppress_health_check=[HealthCheck.too_slow],
        )
        settings.load_profile("grader")

    # -- collection ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """The last moment before learner code can run: what the grader relies on is noted."""
        if self._integrity is not None:
            self._integrity.snapshot(session.config.pluginmanager)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A spec module that cannot be imported, or was skipped while importing learner
        code, is reported with the learner-facing reason."""
        if report.failed:
            self.send("collect_error", where=report.nodeid, message=self._collect_reason(report))
        elif report.skipped and self._mode == "run":
            self.send(
                "collect_error",
                where=report.nodeid,
                message=_truncate(
                    f"the spec module was skipped while importing your code ({_skip_reason(report)})"
                ),
            )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """The grader deselects nothing: a deselection comes from code that should not."""
        if self._mode == "run" and items:
            self.send("tamper", message=f"{len(items)} spec(s) were deselected during the run")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """In collect mode, report the expected specs: id, title, points."""
        if self._mode != "collect":
            self._check()
            return
        for item in session.items:
            self.send("collected", id=item.nodeid, title=spec_title(item), points=spec_points(item))

    # -- running -------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Say which spec is about to run, so a hang is pinned on the right one."""
        self._started[nodeid] = time.monotonic()
        self.send("start", id=nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        """Turn each phase (setup, call, teardown) into an outcome and a learner-facing message."""
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        phases = self._phases.setdefault(item.nodeid, {})
        phases[report.when] = self._phase(report, call)
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            self._async.add(item.nodeid)
        # captured output is kept per spec, capped: a flood must not pile up in memory
        report.sections = [(name, text[:SECTION_LIMIT]) for name, text in report.sections]

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
        self._check()
        self.send(
            "result",
            id=nodeid,
            outcome=outcome,
            message=_truncate(message),
            exc_type=exc_type,
            duration=round(duration, 4),
        )
        if outcome != "passed" and nodeid in self._async and GC_AFTER_ASYNC_FAILURE:
            # A failed async spec can leave tasks behind; collecting them here, between specs,
            # sidesteps CPython gh-106905 (an INTERNALERROR on 3.11 before 3.11.8). Only
            # there: a full collection after every failed spec made a stub's run 4x slower.
            gc.collect()

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        """KeyboardInterrupt or pytest.exit() from learner code stops the run: say so."""
        exc = excinfo.value
        if isinstance(exc, pytest.exit.Exception):
            what = f"your code called pytest.exit({_truncate(str(exc.msg), 100)!r})"
        else:
            what = f"your code raised {type(exc).__name__}"
        self.send("interrupted", message=f"{what}, which stopped the run")

    def pytest_internalerror(self, excinfo: pytest.ExceptionInfo) -> None:
        """A SystemExit (or the like) from learner code that pytest could not contain."""
        if self._mode == "run":
            exc = excinfo.value
            text = _truncate(str(exc), 100)
            what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            where = self._learner_frame(excinfo)
            if where:
                message = f"your code raised {what} (at {where}), which stopped the run"
            else:
                message = f"the spec run stopped on an internal error: {what}"
            self.send("crash", message=message)

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
        limit = TIMEOUT.match(str(exc)) if isinstance(exc, pytest.fail.Exception) else None
        if limit:
            return {
                "outcome": "timeout",
                "message": f"the spec did not finish within its time limit ({limit[1]}s)",
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
        text = str(exc)[: 4 * MESSAGE_LIMIT].strip()
        if isinstance(exc, AssertionError):
            message = text or "a requirement was not met"
        elif isinstance(exc, MemoryError):
            message = "MemoryError: the spec process reached its memory limit"
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
            line.strip()
            for line in text.splitlines()
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


# -- integrity ---------------------------------------------------------------------------

# The hooks an outcome passes through, from collection to the record.
WATCHED_HOOKS = (
    "pytest_collection_modifyitems",
    "pytest_deselected",
    "pytest_itemcollected",
    "pytest_collectreport",
    "pytest_make_collect_report",
    "pytest_pycollect_makeitem",
    "pytest_runtestloop",
    "pytest_runtest_protocol",
    "pytest_runtest_logstart",
    "pytest_runtest_setup",
    "pytest_runtest_call",
    "pytest_pyfunc_call",
    "pytest_runtest_teardown",
    "pytest_runtest_makereport",
    "pytest_runtest_logreport",
    "pytest_runtest_logfinish",
    "pytest_report_teststatus",
    "pytest_exception_interact",
    "pytest_keyboard_interrupt",
    "pytest_sessionfinish",
)


def _surface(plugin: GraderPlugin, writer: Writer) -> dict[str, object]:
    """Label -> object, for everything between a spec's outcome and the record sent."""
    import _pytest.outcomes
    import _pytest.python
    import _pytest.reports
    import _pytest.runner
    import _pytest.skipping
    import pluggy
    import pluggy._callers

    from . import channel

    owners = [
        (_pytest.python.Function, ("runtest", "setup", "_getobj", "obj")),
        (_pytest.python, ("pytest_pyfunc_call",)),
        (
            _pytest.runner,
            (
                "call_and_report",
                "runtestprotocol",
                "call_runtest_hook",
                "check_interactive_exception",
                "pytest_runtest_makereport",
                "pytest_runtest_protocol",
                "pytest_runtest_setup",
                "pytest_runtest_call",
                "pytest_runtest_teardown",
            ),
        ),
        (_pytest.runner.CallInfo, ("from_call", "__init__")),
        (_pytest.reports.BaseReport, ("passed", "failed", "skipped")),
        (
            _pytest.reports.TestReport,
            ("from_item_and_call", "__init__", "passed", "failed", "skipped"),
        ),
        (
            _pytest.skipping,
            (
                "pytest_runtest_makereport",
                "pytest_runtest_setup",
                "pytest_runtest_call",
                "evaluate_skip_marks",
                "evaluate_xfail_marks",
            ),
        ),
        (_pytest.outcomes, ("skip", "fail", "xfail", "exit")),
        (pluggy.PluginManager, ("_hookexec", "register", "get_hookcallers")),
        (pluggy.HookCaller, ("__call__", "get_hookimpls")),
        (pluggy._callers, ("_multicall",)),
        (GraderPlugin, tuple(vars(GraderPlugin))),
        (Writer, ("send", "__init__")),
        (channel, ("_mac",)),
        (hmac, ("new",)),
        (json, ("dumps",)),
        (os, ("write",)),
        (importlib, ("import_module", "__import__")),
        (
            time,
            (
                "monotonic",
                "monotonic_ns",
                "perf_counter",
                "perf_counter_ns",
                "time",
                "time_ns",
                "process_time",
                "sleep",
            ),
        ),
        (sys, ("meta_path",)),
    ]
    found: dict[str, object] = {}
    for owner, names in owners:
        label = getattr(owner, "__qualname__", getattr(owner, "__name__", "?"))
        for name in names:
            found[f"{label}.{name}"] = inspect.getattr_static(owner, name, None)
    for name, value in vars(builtins).items():  # isinstance, len, __import__, ...
        if name != "_":
            found[f"builtins.{name}"] = value
    found["sys.meta_path[0]"] = sys.meta_path[0] if sys.meta_path else None
    found["the plugin's attributes"] = tuple(vars(plugin))
    for name, value in vars(plugin).items():
        found[f"GraderPlugin().{name}"] = value
    for name in ("_fd", "_key"):
        found[f"Writer().{name}"] = getattr(writer, name)
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is not None:
        found["hypothesis.settings.default"] = hypothesis.settings.default
    found.update(_tracing())
    for label, value in list(found.items()):  # replacing __code__ changes a function in place
        function = getattr(value, "__func__", None) or getattr(value, "fget", None) or value
        code = getattr(function, "__code__", None)
        if code is not None:
            found[f"{label}.__code__"] = code
    return found


def _tracing() -> dict[str, object]:
    """The interpreter's trace and profile hooks. A trace function jumps over any line of any
    frame (``frame.f_lineno = ...``): over the call of the spec function in
    pytest_pyfunc_call, which then passes without running."""
    found: dict[str, object] = {
        "sys.gettrace()": sys.gettrace(),
        "sys.getprofile()": sys.getprofile(),
        "threading.gettrace()": threading.gettrace(),
        "threading.getprofile()": threading.getprofile(),
    }
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: the same power, by tool id
    if monitoring is not None:
        found["sys.monitoring tools"] = tuple(
            (monitoring.get_tool(i), monitoring.get_events(i)) for i in range(6)
        )
    return found


class Integrity:
    """Notices the obvious ways in which code in the spec process interferes with grading.

    ``snapshot`` runs just before collection, the last moment before any learner code; each
    ``check`` then compares: the objects of :func:`_surface` (by identity, names compared by
    value) and the implementations of WATCHED_HOOKS. A hook implementation may appear later
    only from a module outside the workspace or a trusted spec file (a conftest.py deeper in
    the specs); one from a learner file, or any object that is not a module, is interference.
    """

    def __init__(self, plugin: GraderPlugin, writer: Writer, learner_files: list[str]) -> None:
        self._plugin = plugin
        self._writer = writer
        self._learner = {os.path.realpath(f) for f in learner_files}
        self._before: dict[str, object] = {}
        self._plugins: list[object] = []
        self._hooks: dict[tuple[str, int], object] = {}
        self._reported = False

    def snapshot(self, pluginmanager: Any) -> None:
        self._before = _surface(self._plugin, self._writer)
        hooks = _tracing()
        tools = hooks.pop("sys.monitoring tools", ())
        if any(hook is not None for hook in hooks.values()) or any(t for t, _ in tools):
            # Something traces before learner code exists (coverage, in verify's runs of the
            # trusted solution): the hooks are its own, and it changes them as it goes.
            for label in _tracing():
                self._before.pop(label, None)
                self._before.pop(f"{label}.__code__", None)
        self._before["pluginmanager._inner_hookexec"] = pluginmanager._inner_hookexec
        self._plugins = list(pluginmanager.get_plugins())
        self._hooks = {}
        self._hook_problem(pluginmanager)

    def check(self, pluginmanager: Any) -> str:
        """A description of the first interference found since the snapshot, else ""."""
        if self._reported or not self._before:
            return ""
        now = _surface(self._plugin, self._writer)
        now["pluginmanager._inner_hookexec"] = pluginmanager._inner_hookexec
        problem = ""
        for label, before in self._before.items():
            after = now.get(label)
            if after is not before and not (isinstance(before, str | tuple) and before == after):
                problem = f"{label} was replaced while the specs ran"
                break
        problem = problem or self._hook_problem(pluginmanager)
        self._reported = bool(problem)
        return problem

    def _hook_problem(self, pluginmanager: Any) -> str:
        for name in WATCHED_HOOKS:
            caller = getattr(pluginmanager.hook, name, None)
            if caller is None:
                continue
            for impl in caller.get_hookimpls():
                key = (name, id(impl.plugin))
                if key not in self._hooks:
                    if not self._trusted_plugin(impl.plugin):
                        return f"a plugin ({impl.plugin_name}) was registered while the specs ran"
                    self._hooks[key] = impl.function
                elif self._hooks[key] is not impl.function:
                    return f"the {name} hook of {impl.plugin_name} was replaced while the specs ran"
        return ""

    def _trusted_plugin(self, plugin: object) -> bool:
        if any(plugin is known for known in self._plugins):
            return True
        file = getattr(plugin, "__file__", None) if isinstance(plugin, types.ModuleType) else None
        return bool(file) and os.path.realpath(file) not in self._learner
