"""The `kata` command as users run it: list, test, grade (every format), verify."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from grader.cli import main

from .conftest import ADDER_SOLUTION


@pytest.fixture
def adder_course(course):
    course.add_adder()
    return course


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_grade_the_stub_reports_not_started_and_exits_zero(adder_course, capsys):
    code, out, err = run(capsys, "--root", str(adder_course.root), "grade")
    assert code == 0
    assert "adder" in out and "not started" in out and "Total: 0/6" in out
    assert "[1/1] adder: not started 0/6" in err  # progress


def test_grade_solutions_json_gives_full_marks(adder_course, capsys, tmp_path):
    out_file = tmp_path / "r.json"
    code, _, _ = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--solutions",
        "--format",
        "json",
        "--output",
        str(out_file),
        "--quiet",
    )
    assert code == 0
    report = json.loads(out_file.read_text())
    assert report["schema"] == "backend-katas/report@1"
    assert report["score"] == report["max_score"] == 6
    (kata,) = report["katas"]
    assert set(kata) >= {
        "slug",
        "title",
        "pillar",
        "status",
        "score",
        "max_score",
        "duration",
        "specs",
    }
    assert set(kata["specs"][0]) >= {"id", "title", "points", "outcome", "message"}


def test_markdown_and_junit_list_the_failing_requirements(adder_course, capsys, tmp_path):
    sub = adder_course.submission(
        "wrong", {"adder/adder.py": ADDER_SOLUTION.replace("a * b", "a ** b")}
    )
    code, md, _ = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--submission",
        str(sub),
        "--format",
        "markdown",
        "--quiet",
    )
    assert code == 0
    assert "## Backend katas: 5/6" in md
    assert "| mul(4, 5) returns 20. | failed | Called mul(4, 5); returned 1024; expected 20 |" in md
    code, xml, _ = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--submission",
        str(sub),
        "--format",
        "junit",
        "--quiet",
    )
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.get("failures") == "1" and suite.get("tests") == "5"


def test_fail_under_sets_the_exit_status(adder_course, capsys):
    code, _, err = run(
        capsys, "--root", str(adder_course.root), "grade", "--fail-under", "50", "--quiet"
    )
    assert code == 1 and "under --fail-under 50%" in err
    code, _, _ = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--solutions",
        "--fail-under",
        "100",
        "--quiet",
    )
    assert code == 0


def test_list_shows_the_state_after_grading(adder_course, capsys):
    code, out, _ = run(capsys, "--root", str(adder_course.root), "list")
    assert code == 0 and "adder" in out and "?" in out
    run(capsys, "--root", str(adder_course.root), "grade", "--quiet")
    _, out, _ = run(capsys, "--root", str(adder_course.root), "list")
    assert "not started" in out


def test_user_errors_are_one_line_and_exit_two(adder_course, capsys, tmp_path):
    code, _, err = run(capsys, "--root", str(adder_course.root), "grade", "nope")
    assert code == 2 and "unknown kata 'nope'; known katas: adder" in err
    code, _, err = run(
        capsys, "--root", str(adder_course.root), "grade", "--submission", str(tmp_path / "absent")
    )
    assert code == 2 and "no such folder" in err
    code, _, err = run(capsys, "--root", str(tmp_path), "list")
    assert code == 2 and "no exercises/ folder" in err


def test_a_kata_without_specs_is_reported_not_crashed(adder_course, capsys):
    for spec in (adder_course.root / "exercises" / "adder" / ".spec").iterdir():
        spec.unlink()
    code, out, _ = run(capsys, "--root", str(adder_course.root), "grade", "--quiet")
    assert code == 0
    assert "error" in out and "no hidden specs" in out


def test_verify_is_green_on_a_good_kata_and_names_a_surviving_mutant(adder_course, capsys):
    code, out, _ = run(capsys, "--root", str(adder_course.root), "verify", "--runs", "2")
    assert code == 0, out
    assert "3/3" in out and "100% / 100%" in out
    survivor = adder_course.root / "solutions" / "adder" / "mutants" / "harmless" / "adder.py"
    survivor.parent.mkdir()
    survivor.write_text('"""MUTANT: none at all."""\n' + ADDER_SOLUTION)
    code, out, _ = run(capsys, "--root", str(adder_course.root), "verify", "--runs", "1")
    assert code == 1
    assert "mutant harmless survived" in out


def test_test_command_runs_the_visible_tests(adder_course, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr("subprocess.call", lambda cmd, cwd: seen.update(cmd=cmd, cwd=cwd) or 0)
    code, _, _ = run(capsys, "--root", str(adder_course.root), "test", "adder", "-x")
    assert code == 0
    assert seen["cmd"][-2:] == [str(adder_course.root / "exercises/adder/test_adder.py"), "-x"]


def test_github_annotations_name_the_failing_requirements(adder_course, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    sub = adder_course.submission(
        "wrong", {"adder/adder.py": ADDER_SOLUTION.replace("a * b", "a ** b")}
    )
    _, out, _ = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--submission",
        str(sub),
        "--quiet",
        "--format",
        "json",
        "--output",
        str(sub / "r.json"),
    )
    assert out == (
        "::warning title=adder%3A mul(4%2C 5) returns 20.::"
        "Called mul(4, 5); returned 1024; expected 20\n"
    )


def test_an_interrupted_grading_writes_the_partial_report_and_exits_130(
    adder_course, capsys, tmp_path, monkeypatch
):
    from grader import cli
    from grader.grading import INTERRUPTED
    from grader.scoring import KataResult, Report

    partial = Report(
        katas=(KataResult("adder", "Adder", "kernel", "error", 0, 6, 0.0, INTERRUPTED),)
    )
    monkeypatch.setattr(cli, "grade", lambda *a, **k: partial)
    out_file = tmp_path / "r.json"
    code, _, err = run(
        capsys,
        "--root",
        str(adder_course.root),
        "grade",
        "--format",
        "json",
        "--output",
        str(out_file),
        "--quiet",
    )
    assert code == 130 and "interrupted" in err
    assert json.loads(out_file.read_text())["katas"][0]["reason"] == INTERRUPTED
    assert not (adder_course.root / ".kata" / "last-report.json").exists()
