"""The `kata` command as users run it: list, test, grade (every format), verify."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from grader.cli import main

from .conftest import ADDER_SOLUTION, ADDER_SPEC, ADDER_STUB

PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)


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


def _states(out: str) -> dict[str, str]:
    """slug -> state from the `kata list` table."""
    rows = [line.split() for line in out.splitlines()[2:] if line[:1].isdigit()]
    return {row[2]: " ".join(row[-2:]) if row[-1] == "started" else row[-1] for row in rows}


def test_list_shows_the_state_after_grading(adder_course, capsys):
    code, out, _ = run(capsys, "--root", str(adder_course.root), "list")
    assert code == 0 and _states(out) == {"adder": "?"}
    assert "nox -s try -- <slug>" in out  # the learner's loop, said where they start
    run(capsys, "--root", str(adder_course.root), "grade", "--quiet")
    _, out, _ = run(capsys, "--root", str(adder_course.root), "list")
    assert _states(out) == {"adder": "not started"}


def test_a_grade_of_one_kata_updates_that_kata_in_the_list(adder_course, capsys):
    """Item 9: `kata list` remembers per-kata grades, in the report's own words."""
    root = adder_course.root
    adder_course.add_kata(
        "echo2", stub=ADDER_STUB.replace("adder", "echo2"), solution=ADDER_SOLUTION,
        specs={"test_echo2.py": ADDER_SPEC.replace("from adder", "from echo2")}, order=2,
    )  # fmt: skip
    run(capsys, "--root", str(root), "grade", "--quiet")
    (root / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)
    run(capsys, "--root", str(root), "grade", "adder", "--quiet")  # one kata: adder passes
    _, out, _ = run(capsys, "--root", str(root), "list")
    assert _states(out) == {"adder": "passed", "echo2": "not started"}
    (root / "exercises" / "echo2" / "echo2.py").write_text(ADDER_SOLUTION.replace("a * b", "0"))
    run(capsys, "--root", str(root), "grade", "echo2", "--quiet")
    _, out, _ = run(capsys, "--root", str(root), "list")
    assert _states(out) == {"adder": "passed", "echo2": "failed"}
    # the same words as the table of `kata grade`
    _, out, _ = run(capsys, "--root", str(root), "grade", "--quiet")
    assert {line.split()[0]: line.split()[2] for line in out.splitlines()[2:4]} == {
        "adder": "passed",
        "echo2": "failed",
    }


def test_a_grade_closes_with_the_learners_line(adder_course, capsys):
    """Item 8: the last line says the total, the katas per state and what to do next."""
    root = adder_course.root
    code, _, err = run(capsys, "--root", str(root), "grade")
    assert code == 0
    assert err.splitlines()[-1] == (
        "0/6 (0%): 1 not started — next: read exercises/adder/README.md, then `nox -s try -- adder`"
    )
    (root / "exercises" / "adder" / "adder.py").write_text(PARTIAL)
    _, _, err = run(capsys, "--root", str(root), "grade")
    assert err.splitlines()[-1] == (
        "5/6 (83%): 1 failed — next: `nox -s grade -- adder` "
        "(or `nox -s watch -- adder`) until it passes"
    )
    (root / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)
    _, _, err = run(capsys, "--root", str(root), "grade")
    assert err.splitlines()[-1] == "6/6 (100%): 1 passed — next: every kata passed: well done"
    # an instructor grading someone else's checkout gets the total, not advice
    _, _, err = run(capsys, "--root", str(root), "grade", "--solutions")
    assert err.splitlines()[-1] == "6/6 (100%): 1 passed"


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
    mutants = adder_course.root / "solutions" / "adder" / "mutants.toml"
    mutants.write_text(
        mutants.read_text()
        + '[[mutant]]\nname = "harmless"\nbug = "None at all."\n'
        + '[[mutant.edit]]\nold = "return a * b"\nnew = "return b * a"\n'
    )
    code, out, _ = run(capsys, "--root", str(adder_course.root), "verify", "--runs", "1")
    assert code == 1
    assert "mutant harmless survived" in out


def test_verify_names_a_mutant_that_no_longer_applies(adder_course, capsys):
    solution = adder_course.root / "solutions" / "adder" / "adder.py"
    solution.write_text(solution.read_text().replace("a * b", "b * a"))
    code, out, _ = run(capsys, "--root", str(adder_course.root), "verify", "--runs", "1")
    assert code == 1
    assert "'mul_is_add'" in out and "occurs 0 times" in out


def test_verify_shows_each_mutant_as_a_diff(adder_course, capsys):
    code, out, _ = run(capsys, "--root", str(adder_course.root), "verify", "--show-mutants")
    assert code == 0
    assert "### off_by_one: add is off by one." in out
    assert "-    return a + b\n+    return a + b + 1" in out


def test_verify_runs_a_mutant_only_on_the_specs_that_execute_its_lines(adder_course, capsys):
    report = adder_course.root / "verify.json"
    code, _, _ = run(
        capsys, "--root", str(adder_course.root), "verify", "--runs", "1", "--json", str(report)
    )
    assert code == 0
    (kata,) = json.loads(report.read_text())
    scopes = {m["name"]: (m["scope"], m["killed_by"]) for m in kata["mutants"]}
    assert scopes["mul_is_add"][0] == "1 covering spec(s)", scopes
    assert "mul" in scopes["mul_is_add"][1], scopes
    assert all(m["killed"] for m in kata["mutants"])


@pytest.mark.parametrize("command", ["try", "test"])  # `test`: the released template's name
def test_try_runs_the_visible_examples(adder_course, capsys, monkeypatch, command):
    seen = {}
    monkeypatch.setattr("subprocess.call", lambda cmd, cwd, env: seen.update(cmd=cmd, cwd=cwd) or 0)
    code, _, _ = run(capsys, "--root", str(adder_course.root), command, "adder", "-x")
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
