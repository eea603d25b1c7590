"""Hostile submissions that try to score what they did not earn.

One course, graded once for real: an honest kata and one kata per attack. Each test checks
its attack's kata (status, score, the reason a learner reads) and that the honest kata, and
every other kata, were still reported in full.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from .kit import ADD_POINTS, CORRECT, FULL, HostileCourse, at_import, spec_for, with_mul

WRONG_MUL = CORRECT.replace("a * b", "a + b")  # mul(4, 5) == 9: fails test_mul only
ALL_WRONG = CORRECT.replace("a + b", "a - b - 1").replace("a * b", "0")  # scores nothing

# The grader's own environment during this course: secrets and pytest switches that must
# never reach the spec process.
HOSTILE_ENV = {
    "GITHUB_TOKEN": "ghs_hostileSuiteToken000000000000001",
    "ACTIONS_RUNTIME_TOKEN": "hostile-actions-runtime-token-0002",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "hostile-id-token-request-0003",
    "MY_COURSE_SECRET": "hostile-course-secret-0004",
    "PYTEST_ADDOPTS": "-k add -p no:grader",
    "PYTEST_PLUGINS": "evil_plugin",
    "PYTHONSTARTUP": "{marks}/startup.py",
    "PYTHONPATH": "{marks}",
    "PYTHONINSPECT": "1",
}
CHILD_ENV = {
    "PATH",
    "SYSTEMROOT",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "NO_COLOR",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "HYPOTHESIS_STORAGE_DIRECTORY",
    "KATA_RUN_ID",
    "PYTEST_VERSION",
}  # the last one pytest sets for itself, in the spec process


def _marker(marks: Path, name: str) -> str:
    """Python source that, when it runs, leaves ``marks/name`` behind as proof."""
    return f"open({str(marks / name)!r}, 'w').close()\n"


def _stray_files(slug: str, marks: Path) -> dict[str, str]:
    """Everything a submission might bring to take over the run; none of it may run."""
    force_pass = (
        "import pytest\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        "    outcome.get_result().outcome = 'passed'\n"
    )
    ini = "addopts = -k add -p evil_plugin\npython_functions = nothing_*\n"
    fake_spec = "def test_add():\n    pass\n\ndef test_mul():\n    pass\n"
    return {
        "conftest.py": _marker(marks, "conftest") + force_pass,
        "pytest.ini": "[pytest]\n" + ini,
        "tox.ini": "[pytest]\n" + ini,
        "setup.cfg": "[tool:pytest]\n" + ini,
        "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-k add"\n',
        "sitecustomize.py": _marker(marks, "sitecustomize"),
        "usercustomize.py": _marker(marks, "usercustomize"),
        "zz_hostile.pth": "import os; " + _marker(marks, "pth").strip() + "\n",
        "json.py": _marker(marks, "json"),
        "pytest.py": _marker(marks, "pytest"),
        "hypothesis.py": _marker(marks, "hypothesis"),
        "evil_plugin.py": _marker(marks, "evil_plugin"),
        "test_extra.py": _marker(marks, "test_extra") + fake_spec,
        f".spec/test_{slug}.py": _marker(marks, "edited_spec") + fake_spec,
        ".spec/conftest.py": _marker(marks, "spec_conftest") + force_pass,
    }


# Two spec files and a spec helper: the learner module is imported by the first, and rewrites
# what the second will import (the spec itself, its helper, a standard module it uses lazily).
EDIT_SPECS = {
    "test_a.py": '''\
from {slug} import add


def test_add():
    """add(2, 3) returns 5."""
    assert add(2, 3) == 5, "Called add(2, 3); expected 5"
''',
    "test_b.py": '''\
from {slug} import mul


def test_mul_oracle():
    """mul agrees with the spec's oracle."""
    from _oracle import product

    assert mul(6, 7) == product(6, 7), f"Called mul(6, 7); returned {{mul(6, 7)!r}}"


def test_mul_stdlib():
    """mul agrees with the standard library."""
    import colorsys

    assert mul(3, 5) == round(colorsys.ONE_THIRD * 45), f"Called mul(3, 5); returned {{mul(3, 5)!r}}"
''',
    "_oracle.py": "def product(a, b):\n    return a * b\n",
}

EDIT_AT_RUN_TIME = """
import contextlib, importlib.util, os, pathlib
here = pathlib.Path.cwd()
passing = "def test_mul_oracle():\\n    pass\\n\\ndef test_mul_stdlib():\\n    pass\\n"
# a forged bytecode cache that matches test_b.py's size and mtime: the .py file is untouched
stat = (here / "test_b.py").stat()
code = compile(passing, str(here / "test_b.py"), "exec")
data = importlib._bootstrap_external._code_to_timestamp_pyc(code, int(stat.st_mtime), stat.st_size)
(here / "__pycache__").mkdir(exist_ok=True)
(here / "__pycache__" / importlib.util.cache_from_source("test_b.py").split("/")[-1]).write_bytes(data)
for name, text in {"test_b.py": passing, "_oracle.py": "def product(a, b):\\n    return a + b\\n",
                   "colorsys.py": "ONE_THIRD = 8 / 45\\n"}.items():
    with contextlib.suppress(OSError):
        (here / name).write_text(text)
"""

FORGE_RESULTS = """
import contextlib, json, os, pathlib, sys
print("=" * 20, "6 passed in 0.01s", "=" * 20)
fake = json.dumps({"score": 6, "max_score": 6, "status": "passed", "tests": []})
for folder in (pathlib.Path.cwd(), pathlib.Path.cwd().parent, pathlib.Path.home()):
    for name in ("results.json", "report.json", "junit.xml"):
        with contextlib.suppress(OSError):  # the sandbox refuses some of these folders
            (folder / name).write_text(fake)
channel = json.loads(sys.argv[-1])["out_fd"]
ids = ["test_add", "test_add_zero[0]", "test_add_zero[7]", "test_mul", "test_async_add"]
for seq, spec in enumerate(ids, 1):
    body = json.dumps({"seq": seq, "kind": "result", "id": "test_fake_results.py::" + spec,
                       "outcome": "passed", "message": "", "exc_type": "", "duration": 0})
    os.write(channel, (json.dumps({"body": body, "mac": "0" * 64}) + "\\n").encode())
done = json.dumps({"seq": 6, "kind": "done", "exitstatus": 0})
os.write(channel, (json.dumps({"body": done, "mac": "0" * 64}) + "\\n").encode())
"""

# Learner files may not import pytest or the grader (a static check refuses it by name), so
# every attack reaches them through sys.modules or the garbage collector instead.
FIND = """
import gc, sys
def find(type_name):
    return [o for o in gc.get_objects() if type(o).__name__ == type_name]
"""

TAMPERING = {
    # the spec function is never called: every spec "passes"
    "patch_runtest": "import sys\nsys.modules['_pytest.python'].Function.runtest = lambda self: None\n",
    # the exception of a failing spec is dropped on the way to its report
    "patch_callinfo": dedent("""
        import sys
        CallInfo = sys.modules["_pytest.runner"].CallInfo
        _original = CallInfo.from_call.__func__
        def _forgetful(cls, func, when, reraise=None):
            info = _original(cls, func, when, reraise)
            info.excinfo = None
            return info
        CallInfo.from_call = classmethod(_forgetful)
        """),
    # every report says it passed
    "patch_report": "import sys\nBaseReport = sys.modules['_pytest.reports'].BaseReport\n"
    "BaseReport.passed = property(lambda self: True)\n"
    "BaseReport.failed = property(lambda self: False)\n",
    # the grader plugin's own recording function, through the objects it left in memory
    "patch_plugin": FIND
    + dedent("""
        for plugin in find("GraderPlugin"):
            passed = lambda *args: {"outcome": "passed", "message": "", "exc_type": ""}
            type(plugin)._phase = lambda self, report, call: passed()
            plugin._phase = passed
        """),
    "patch_writer": FIND
    + dedent("""
        for writer in find("Writer"):
            _send = type(writer).send
            def send(self, kind, **data):
                if kind == "result":
                    data.update(outcome="passed", message="")
                return _send(self, kind, **data)
            type(writer).send = send
        """),
    # a plugin of its own, registered in the live session: spec bodies never run
    "rogue_plugin": FIND
    + dedent("""
        class Rogue:
            @sys.modules["pytest"].hookimpl(tryfirst=True)
            def pytest_pyfunc_call(self, pyfuncitem):
                return True
        for config in find("Config"):
            config.pluginmanager.register(Rogue(), "rogue")
        """),
    # the interpreter's builtins and clocks, which specs trust to check types and time things
    "patch_builtins": dedent("""
        import builtins, time
        _isinstance, _monotonic = builtins.isinstance, time.monotonic
        builtins.isinstance = lambda obj, kind: _isinstance(obj, kind)
        time.monotonic = lambda: _monotonic() / 1000
        """),
    # a trace function that jumps over the call of the spec function in pytest_pyfunc_call:
    # nothing of pytest is replaced, and every spec passes without running
    "settrace_jump": dedent("""
        import linecache, sys
        def _jump(frame, event, arg):
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
            if event == "line" and "testfunction(**testargs)" in line:
                lines = linecache.getlines(frame.f_code.co_filename)
                for n in range(frame.f_lineno, frame.f_lineno + 30):
                    if lines[n - 1].strip() == "return True":
                        frame.f_lineno = n
                        break
            return _jump
        def _calls(frame, event, arg):
            return _jump if frame.f_code.co_name == "pytest_pyfunc_call" else None
        sys.settrace(_calls)
        """),
    # -k from inside the run: the specs that would fail are deselected
    "deselect_inside": FIND
    + dedent("""
        for config in find("Config"):
            config.option.keyword = "not mul and not async"
        """),
}

SPEC_LEAK = """
import pathlib


class Leak:
    \"\"\"Compares unequal to everything; its repr is the spec's source.\"\"\"

    def __repr__(self):
        return pathlib.Path("test_spec_leak.py").read_text()
    def __eq__(self, other):
        return False
"""

ENV_PROBE = """
import json, os
open({path!r}, "w").write(json.dumps(dict(os.environ)))
"""


@pytest.fixture(scope="module")
def marks(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("marks")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, marks):
    """The cheats course, graded once with the hostile environment set in the grader."""
    course = HostileCourse(tmp_path_factory.mktemp("cheats"), timeout=30, spec_timeout=5)
    add = course.kata
    add("honest", CORRECT)
    add("stray_files", WRONG_MUL, extra=_stray_files("stray_files", marks))
    add(
        "edit_at_run_time",
        at_import(EDIT_AT_RUN_TIME, WRONG_MUL),
        specs={k: v.format(slug="edit_at_run_time") for k, v in EDIT_SPECS.items()},
    )
    add("exit_at_import", at_import("import os\nprint('6 passed')\nos._exit(0)"))
    add("sys_exit_at_import", at_import("import sys\nsys.exit(0)"))
    add("exit_in_spec", with_mul("import os\nos._exit(0)"))
    add("sys_exit_in_spec", with_mul("import sys\nsys.exit(0)"))
    add("keyboard_interrupt", with_mul("raise KeyboardInterrupt"))
    add("base_exception", with_mul("class Escape(BaseException):\n    pass\nraise Escape()"))
    add("pytest_exit", with_mul("import sys\nsys.modules['pytest'].exit('all done', returncode=0)"))
    add("skip_in_spec", with_mul("import sys\nsys.modules['pytest'].skip('not today')"))
    add("xfail_in_spec", with_mul("import sys\nsys.modules['pytest'].xfail('expected to fail')"))
    add(
        "skip_at_import",
        at_import(
            "import sys\nsys.modules['pytest'].skip('nothing to see', allow_module_level=True)"
        ),
    )
    add("import_pytest", at_import("import pytest", WRONG_MUL))
    add("fake_results", at_import(FORGE_RESULTS, ALL_WRONG))
    for slug, attack in TAMPERING.items():
        add(slug, at_import(attack, ALL_WRONG))
    add(
        "import_module",
        with_mul("import importlib\nreturn importlib.import_module('h1' + '1')"),
        forbid=("h11",),
    )
    add(
        "dunder_import",
        with_mul("import importlib\nreturn importlib.__import__('h1' + '1') and a * b"),
        forbid=("h11",),
    )
    add("spec_leak", with_mul("return Leak()", prelude=SPEC_LEAK))
    add("env_probe", at_import(ENV_PROBE.format(path=str(marks / "env.json"))))

    (marks / "startup.py").write_text(_marker(marks, "pythonstartup"))
    (marks / "sitecustomize.py").write_text(_marker(marks, "env_sitecustomize"))
    (marks / "evil_plugin.py").write_text(_marker(marks, "env_plugin"))
    saved = dict(os.environ)
    os.environ.update({k: v.format(marks=marks) for k, v in HOSTILE_ENV.items()})
    try:
        return course.grade(jobs=4, windows=(marks,))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def kata(graded, slug):
    return graded[slug].result


def spec(result, name):
    (found,) = [s for s in result.specs if s.id.split("::")[-1] == name]
    return found


@pytest.fixture(autouse=True)
def _others_intact(graded, request):
    """After every case: the honest kata has full marks and every kata was reported."""
    yield
    honest = kata(graded, "honest")
    assert (honest.status, honest.score) == ("passed", FULL), honest
    assert all(len(g.result.specs) > 0 for g in graded.values())


# -- only declared files are taken ---------------------------------------------------------


def test_stray_files_of_the_submission_never_run(graded, marks):
    result = kata(graded, "stray_files")
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert spec(result, "test_mul").message.startswith("Called mul(4, 5); returned 9")
    ran = sorted(p.name for p in marks.iterdir() if p.suffix != ".py" and p.name != "env.json")
    assert ran == [], f"submission files that ran: {ran}"


def test_specs_and_oracles_rewritten_at_run_time_are_ignored(graded):
    result = kata(graded, "edit_at_run_time")
    assert (result.status, result.score, result.max_score) == ("failed", 1, 3)
    assert spec(result, "test_mul_oracle").message == "Called mul(6, 7); returned 13"
    assert spec(result, "test_mul_stdlib").message == "Called mul(3, 5); returned 8"


# -- an early exit, an interruption or a skip scores nothing for what did not pass --------


def test_os_exit_at_import_scores_nothing(graded):
    result = kata(graded, "exit_at_import")
    assert (result.status, result.score) == ("error", 0)
    assert "exit status 0" in result.reason
    assert all(s.outcome == "not_run" for s in result.specs)


def test_sys_exit_at_import_scores_nothing(graded):
    result = kata(graded, "sys_exit_at_import")
    assert (result.status, result.score) == ("error", 0)
    assert "SystemExit" in result.reason


def test_os_exit_in_a_spec_keeps_only_what_passed_before(graded):
    result = kata(graded, "exit_in_spec")
    assert (result.status, result.score) == ("error", ADD_POINTS)
    assert "exit status 0" in result.reason and "4 of 5" in result.reason
    assert spec(result, "test_mul").outcome == "error"
    assert spec(result, "test_async_add").outcome == "not_run"


def test_sys_exit_in_a_spec_fails_that_spec(graded):
    result = kata(graded, "sys_exit_in_spec")
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert spec(result, "test_mul").message.startswith("SystemExit")


def test_keyboard_interrupt_stops_the_run_and_scores_nothing_after(graded):
    result = kata(graded, "keyboard_interrupt")
    assert (result.status, result.score) == ("error", ADD_POINTS)
    assert "KeyboardInterrupt" in result.reason
    assert spec(result, "test_async_add").outcome == "not_run"


def test_a_bare_base_exception_fails_that_spec(graded):
    result = kata(graded, "base_exception")
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert spec(result, "test_mul").message.startswith("Escape")


def test_pytest_exit_from_learner_code_scores_nothing_after(graded):
    result = kata(graded, "pytest_exit")
    assert (result.status, result.score) == ("error", ADD_POINTS)
    assert "all done" in result.reason


@pytest.mark.parametrize("slug", ["skip_in_spec", "xfail_in_spec"])
def test_skip_or_xfail_from_learner_code_fails_the_spec(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert "skipped or marked xfail" in spec(result, "test_mul").message


def test_a_module_level_skip_scores_nothing(graded):
    result = kata(graded, "skip_at_import")
    assert (result.status, result.score) == ("error", 0)
    assert "nothing to see" in result.reason


def test_importing_pytest_in_a_learner_file_is_refused_by_name(graded):
    result = kata(graded, "import_pytest")
    assert (result.status, result.score) == ("failed", 0)
    assert "'pytest'" in result.reason and "import_pytest.py:1" in result.reason


def test_a_deselect_smuggled_through_the_environment_has_no_effect(graded, marks):
    env = json.loads((marks / "env.json").read_text())
    assert set(env) <= CHILD_ENV, f"leaked into the spec process: {set(env) - CHILD_ENV}"
    assert (kata(graded, "env_probe").status, kata(graded, "env_probe").score) == ("passed", FULL)


def test_secrets_of_the_grader_never_reach_learner_code(graded, marks):
    env = json.loads((marks / "env.json").read_text())
    for name in (
        "GITHUB_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "MY_COURSE_SECRET",
    ):
        assert name not in env and HOSTILE_ENV[name] not in json.dumps(env)


# -- forged results score nothing ----------------------------------------------------------


def test_fake_summary_results_files_and_unsigned_records_score_nothing(graded):
    result = kata(graded, "fake_results")
    assert (result.status, result.score) == ("failed", 0)
    assert "forged or corrupt" in result.reason


@pytest.mark.parametrize("slug", sorted(TAMPERING))
def test_tampering_with_pytest_or_the_grader_scores_nothing(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("error", 0), result
    assert "interfered with the grader" in result.reason


# -- imports -------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["import_module", "dunder_import"])
def test_a_computed_forbidden_import_is_caught_at_run_time_by_name(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("failed", 0)
    assert "'h11'" in result.reason and "forbid" in result.reason


# -- feedback ------------------------------------------------------------------------------


def test_feedback_never_carries_the_spec_source(graded):
    result = kata(graded, "spec_leak")
    assert result.score == FULL - 1
    message = spec(result, "test_mul").message
    assert "withheld" in message
    for line in spec_for("spec_leak").splitlines():
        if len(line.strip()) >= 24:
            assert line.strip() not in message


def test_report_of_the_course_is_plain_json(graded):
    """Every kata's result serialises: nothing a submission did breaks the report."""
    from grader.scoring import Report

    report = Report(katas=tuple(g.result for g in graded.values()))
    assert json.loads(json.dumps(report.to_dict()))["max_score"] == report.max_score
    assert sys.getsizeof(json.dumps(report.to_dict())) < 256 * 1024
