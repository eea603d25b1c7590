"""Platform formats: Gradescope's results.json and autograder zip, Exercism's results.json v3,
and the grader's own report@1, each validated against a JSON Schema in schemas/ written from
the published specification."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader import gradescope
from grader.cli import main as kata
from grader.grading import grade
from grader.kata import discover
from grader.report import render
from grader.scoring import KataResult, Report, SpecResult
from grader.workspace import checkout, solutions

from .conftest import ADDER_SOLUTION, ADDER_STUB

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


GRADESCOPE = _schema("gradescope-results.schema.json")
EXERCISM = _schema("exercism-results-v3.schema.json")
REPORT = _schema("report-v1.schema.json")


@pytest.mark.parametrize("schema", [GRADESCOPE, EXERCISM, REPORT], ids=["gs", "ex", "report"])
def test_the_schemas_are_valid_json_schemas(schema):
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.fixture
def partial_report(course) -> Report:
    course.add_adder()
    sub = course.submission("partial", {"adder/adder.py": PARTIAL})
    return grade(discover(course.root), checkout(sub))


def _synthetic(*katas: tuple[str, str, list[str]], reason: str = "") -> Report:
    results = []
    for slug, status, outcomes in katas:
        specs = tuple(
            SpecResult(f"t{i}", f"{slug} {i}", 1, o, "" if o == "passed" else "x" * 800)
            for i, o in enumerate(outcomes)
        )
        score = sum(s.score for s in specs)
        results.append(
            KataResult(slug, slug, "kernel", status, score, len(specs), 0.5, reason, specs)
        )
    return Report(tuple(results), "x", "2026-01-01T00:00:00+00:00", "0.1.0")


# -- report@1 ----------------------------------------------------------------------------


def test_the_json_report_follows_report_v1(partial_report):
    data = json.loads(render(partial_report, "json"))
    jsonschema.validate(data, REPORT)
    assert Report.from_dict(data).to_dict() == data  # round trip (durations are rounded)


# -- Gradescope --------------------------------------------------------------------------


def test_kata_grade_format_gradescope(course, tmp_path):
    course.add_adder(forbid=("fractions",))
    sub = course.submission("partial", {"adder/adder.py": PARTIAL})
    out = tmp_path / "results.json"
    argv = ["--root", str(course.root), "grade", "--submission", str(sub)]
    assert kata([*argv, "--format", "gradescope", "--output", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    jsonschema.validate(data, GRADESCOPE)
    assert {"score", "execution_time", "output", "tests"} <= set(data)
    assert data["score"] == 5 == sum(t["score"] for t in data["tests"])
    for test in data["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
    failing = [t for t in data["tests"] if t["status"] == "failed"]
    assert [t["name"] for t in failing] == ["adder: mul(4, 5) returns 20."]
    assert failing[0]["output"].startswith("NotImplementedError")
    assert "def test_" not in out.read_text()  # a spec's title and message, never its code

    forbidden = course.submission("forbidden", {"adder/adder.py": "import fractions\n" + PARTIAL})
    kata([*argv[:-1], str(forbidden), "--format", "gradescope", "--output", str(out), "--quiet"])
    data = json.loads(out.read_text())
    jsonschema.validate(data, GRADESCOPE)
    assert "fractions" in data["output"]  # the kata's reason reaches the learner


def _unpack(zip_path: Path, home: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = home / "source" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod(info.external_attr >> 16 & 0o777)
    shutil.copy(home / "source" / "run_autograder", home / "run_autograder")


def test_the_gradescope_autograder_zip_grades_a_submission(course, tmp_path):
    course.add_adder()
    zip_path = tmp_path / "autograder.zip"
    assert kata(["--root", str(course.root), "package-gradescope", str(zip_path)]) == 0

    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        secret = [archive.read(n) for n in names]
    assert {"setup.sh", "run_autograder", "pyproject.toml", "grader/gradescope.py"} <= set(names)
    assert "exercises/adder/.spec/test_adder.py" in names  # the image is the instructor's
    assert not any(n.startswith("solutions/") or "__pycache__" in n for n in names)
    solution = (course.root / "solutions" / "adder" / "adder.py").read_bytes().strip()
    assert not any(solution in data for data in secret)
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} is not executable"
    assert (
        subprocess.run(["bash", "-n", "-c", secret[names.index("setup.sh")].decode()]).returncode
        == 0
    )
    rebuilt = tmp_path / "again.zip"
    gradescope.main(root=course.root, outfile=rebuilt)
    assert rebuilt.read_bytes() == zip_path.read_bytes()  # reproducible

    home = tmp_path / "autograder"
    _unpack(zip_path, home)
    (home / "submission").mkdir()
    (home / "submission" / "adder.py").write_text(PARTIAL)  # uploaded bare, not as a repo
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER=str(home), KATA_PYTHON=sys.executable)
    done = subprocess.run(
        [str(home / "run_autograder")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((home / "results" / "results.json").read_text())
    jsonschema.validate(data, GRADESCOPE)
    assert data["score"] == 5 and len(data["tests"]) == 5


def test_autograde_without_a_course_still_writes_results(tmp_path):
    (tmp_path / "source").mkdir()
    assert gradescope.autograde(tmp_path) == 0
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(data, GRADESCOPE)
    assert data["score"] == 0 and "could not grade" in data["output"]


def test_a_submitted_repository_is_graded_from_its_exercises_folder(course, tmp_path):
    course.add_adder()
    repo = tmp_path / "repo"
    (repo / "exercises" / "adder").mkdir(parents=True)
    (repo / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)
    (repo / "adder.py").write_text(ADDER_STUB)  # a stray copy at the top loses to the kata's
    report = grade(discover(course.root), gradescope.submission_source(repo))
    assert report.score == report.max_score == 6


# -- Exercism ----------------------------------------------------------------------------


def test_exercism_v3_from_a_real_grading(course, partial_report):
    data = json.loads(render(partial_report, "exercism"))
    jsonschema.validate(data, EXERCISM)
    assert (data["version"], data["status"], data["message"]) == (3, "fail", None)
    assert [t["status"] for t in data["tests"]] == ["pass", "pass", "pass", "fail", "pass"]
    assert {t["task_id"] for t in data["tests"]} == {1}
    assert data["tests"][3]["message"].startswith("NotImplementedError")

    solved = json.loads(render(grade(discover(course.root), solutions(course.root)), "exercism"))
    jsonschema.validate(solved, EXERCISM)
    assert solved["status"] == "pass"


@pytest.mark.parametrize(
    ("katas", "status"),
    [
        ([("a", "passed", ["passed"]), ("b", "passed", ["passed", "passed"])], "pass"),
        ([("a", "passed", ["passed"]), ("b", "failed", ["passed", "failed"])], "fail"),
        ([("a", "error", ["error", "not_run"]), ("b", "not_started", ["not_run"])], "fail"),
        ([("a", "error", ["not_run"]), ("b", "not_started", ["not_run"])], "error"),
        ([], "error"),
    ],
)
def test_exercism_status_is_error_only_when_no_test_ran(katas, status):
    data = json.loads(render(_synthetic(*katas, reason="why"), "exercism"))
    jsonschema.validate(data, EXERCISM)
    assert data["status"] == status
    if status == "error":
        assert data["message"]
    tasks = [t["task_id"] for t in data["tests"]]
    assert tasks == sorted(tasks) and set(tasks) <= set(range(1, len(katas) + 1))
    assert all(len(t.get("output") or "") <= 500 for t in data["tests"])
    assert "test_code" not in json.dumps(data)


def test_the_exercism_schema_holds_the_platform_rules():
    ok = {"version": 3, "status": "fail", "tests": [{"name": "t", "status": "fail"}]}
    jsonschema.validate(ok, EXERCISM)
    bad = [
        {**ok, "version": 2},
        {**ok, "status": "error"},  # an error needs a message
        {**ok, "message": "only when status is error"},
        {**ok, "tests": [{"name": "t", "status": "fail", "output": "x" * 501}]},
        {**ok, "tests": [{"name": "t", "status": "fail", "task_id": 0}]},
    ]
    for data in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, EXERCISM)
