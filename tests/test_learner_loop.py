"""The learner's loop as nox and the reports present it: session names that can't be
confused, one virtualenv built once, quiet nox, a job summary that doesn't repeat itself."""

from __future__ import annotations

import functools
import importlib.util
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.report import closing_line, render, to_markdown, to_table
from grader.scoring import KataResult, Report, SpecResult

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _noxfile():
    pytest.importorskip("nox")
    spec = importlib.util.spec_from_file_location("course_noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- nox ---------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("nox"), reason="nox is not installed")
def test_nox_lists_the_learners_loop_and_no_session_one_letter_from_tests():
    listed = subprocess.run(
        ["nox", "-l"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    names = [line[2:].split(" -> ")[0] for line in listed.splitlines() if " -> " in line]
    assert names[:4] == ["list", "try", "watch", "grade"]  # the loop, in order
    assert "tests" in names and "test" not in names  # item 5: nothing one letter away
    for a in names:
        for b in names:
            if a != b and len(a) + 1 == len(b):
                assert not b.startswith(a), f"`{a}` and `{b}` differ by one letter"


class FakeSession:
    """Records what a session runs; ``python -m venv`` makes the interpreter file."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, ...]] = []
        self.logs: list[str] = []

    def log(self, message: str) -> None:
        self.logs.append(message)

    def run(self, *args: str, **_: object) -> None:
        self.runs.append(args)
        if args[1:3] == ("-m", "venv"):
            location = Path(args[-1])
            python = location / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
            python.parent.mkdir(parents=True, exist_ok=True)
            python.write_text("")


def test_learner_sessions_share_one_virtualenv_built_once_and_say_so(tmp_path, monkeypatch):
    noxfile = _noxfile()
    monkeypatch.setattr(noxfile, "VENVS", tmp_path / ".nox")
    session = FakeSession()
    for command in ("list", "try", "grade", "watch"):  # what the learner's sessions run
        noxfile.kata(session, command)
    installs = [r for r in session.runs if "pip" in r]
    assert len(installs) == 1, session.runs  # one build for every learner session
    assert [r[0].rsplit("/", 1)[-1].removesuffix(".exe") for r in session.runs[2:]] == ["kata"] * 4
    assert len(session.logs) == 1 and "installing the grader once" in session.logs[0]
    assert "30 s" in session.logs[0]
    (tmp_path / ".nox" / "kata" / ".backend-katas-installed").write_text("stale")
    noxfile.kata(session, "list")  # pyproject.toml (or the interpreter) changed: rebuilt
    assert len([r for r in session.runs if "pip" in r]) == 2


def test_nox_noise_is_filtered_but_failures_are_not():
    noxfile = _noxfile()
    quiet = noxfile._Quiet()

    def shown(message: str) -> bool:
        return quiet.filter(logging.LogRecord("nox", logging.INFO, "", 0, message, (), None))

    assert not shown("uv binary not found.")
    assert not shown("Session grade was successful in 3 seconds.")
    assert not shown("Session list was successful.")
    assert shown("Session tests was successful in 300 seconds.")  # maintainers keep it
    assert shown("Session grade failed.")
    assert shown("Running session grade")


def test_nox_uses_no_uv_and_ci_still_runs_the_maintainers_tests():
    noxfile = _noxfile()
    import nox

    assert nox.options.default_venv_backend == "none"  # nothing to look up or fall back on
    assert "nox -s tests" in (ROOT / ".ci" / "run").read_text()
    assert "tests" in dir(noxfile) and callable(noxfile.tests)


# -- the reports -------------------------------------------------------------------------


def _kata(slug: str, status: str, failing: int = 0, passing: int = 1, reason: str = ""):
    specs = tuple(
        SpecResult(f"{slug}::p{i}", f"{slug} passes {i}", 1, "passed") for i in range(passing)
    ) + tuple(
        SpecResult(f"{slug}::f{i}", f"{slug} requirement {i}", 1, "failed", f"Called f({i})")
        for i in range(failing)
    )
    score = sum(s.score for s in specs)
    return KataResult(slug, slug.title(), "kernel", status, score, len(specs), 0.1, reason, specs)


STUB = "every spec hit NotImplementedError: the stub is untouched"


def _report() -> Report:
    return Report(
        (
            _kata("alpha", "passed", passing=3),
            _kata("beta", "failed", failing=2, passing=1),
            _kata("gamma", "failed", failing=7, passing=0),
            *(_kata(f"n{i}", "not_started", failing=3, passing=0, reason=STUB) for i in range(8)),
        ),
        "x",
        "2026-01-01T00:00:00+00:00",
        "0.1.0",
    )


def test_the_job_summary_lists_untouched_katas_in_one_line():
    md = to_markdown(_report())
    lines = md.splitlines()
    assert lines[0].startswith("## Backend katas: 4/")
    assert lines[2] == "| kata | pillar | status | score |"  # the table on top
    assert "NotImplementedError" not in md  # no section per untouched kata
    assert md.count("###") == 2  # beta and gamma only
    assert "**Not started** (the stub is untouched): `n0`, `n1`, `n2`" in md
    assert md.count("`n7`") == 2  # its table row and the one line
    # a short list of failing requirements is open; a long one is folded
    beta = md[md.index("### Beta") : md.index("### Gamma")]
    assert "<details>" not in beta and "| beta requirement 1 | failed | Called f(1) |" in beta
    gamma = md[md.index("### Gamma") :]
    assert "<details><summary>7 failing requirements</summary>" in gamma
    assert "| gamma requirement 6 | failed | Called f(6) |" in gamma


def test_the_terminal_table_lists_untouched_katas_in_one_line():
    text = to_table(_report())
    assert "NotImplementedError" not in text
    assert text.rstrip().splitlines()[-1] == (
        "Not started (the stub is untouched): n0, n1, n2, n3, n4, n5, n6, n7"
    )
    assert "  ✗ beta requirement 0 [failed]" in text


def test_a_kata_without_its_files_still_says_so():
    report = Report((_kata("k", "not_started", reason="the submission has no k.py"),))
    assert "the submission has no k.py" in to_markdown(report)
    assert "k: the submission has no k.py" in to_table(report)


def test_the_closing_line_counts_katas_in_the_reports_words():
    report = _report()
    assert closing_line(report) == "4/37 (11%): 1 passed, 2 failed, 8 not started"
    line = closing_line(report, "`nox -s grade -- beta`")
    assert line.endswith(" — next: `nox -s grade -- beta`")
    assert closing_line(report) in render(report, "markdown")


# -- the README and CI -------------------------------------------------------------------


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_readme_starts_with_the_learners_loop():
    readme = (ROOT / "README.md").read_text()
    start = _section(readme, "Start here")
    steps = [
        start.index(c) for c in ("nox -s list", "README.md", "nox -s try --", "nox -s grade --")
    ]
    assert steps == sorted(steps)  # list -> read the lesson -> examples -> grade
    assert "nox -s watch --" in start
    assert "about 30 s, once" in start  # the first run's wait, said before it happens
    assert "nox -s tests" not in start  # the maintainers' command lives under its own title
    assert "nox -s tests" in _section(readme, "For maintainers")
    learners = _section(readme, "For learners")
    assert "**Exit status.**" in learners and "--fail-under" in learners
    assert "nox -s test " not in readme and "nox -s test --" not in readme


def test_ci_runs_on_the_learners_systems_and_installs_a_browser_only_when_missing():
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert '"3.14"' in ci and "macos-latest" in ci and "windows-latest" in ci
    assert "--solutions --fail-under 100" in ci and "nox -s try --" in ci
    run = (ROOT / ".ci" / "run").read_text()
    guard = run.index("if ! have chromium")
    assert guard < run.index("apt-get install -y -qq chromium") < run.index("nox -s tests")
    if shutil.which("actionlint"):
        lint = subprocess.run(["actionlint", str(ROOT / ".github/workflows/ci.yml")], text=True)
        assert lint.returncode == 0
