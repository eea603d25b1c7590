"""`kata batch`: a class graded into a gradebook, per-learner reports and a class summary."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from grader import batch, release
from grader.classroom import BarProgress, LineProgress
from grader.cli import main as kata
from grader.kata import KataError
from grader.scoring import KataResult, Report, SpecResult

from .conftest import ADDER_SOLUTION, ADDER_SPEC, ADDER_STUB

ROOT = Path(__file__).resolve().parent.parent
REPORT_SCHEMA = json.loads((ROOT / "schemas" / "report-v1.schema.json").read_text())

PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)
HOSTILE = """\
import os
print("==================== 6 passed in 0.01s ====================")
for name in ("results.json", "report.json", "../gradebook.csv"):
    try:
        with open(name, "w") as f:
            f.write('{"score": 6, "max_score": 6, "status": "passed"}')
    except OSError:
        pass
os._exit(0)
"""
FORCE_PASS_CONFTEST = """\
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


def _learner(template: Path, folder: Path, files: dict[str, str]) -> Path:
    """A learner's repository made from the released template, with ``files`` edited."""
    shutil.copytree(template, folder)
    for rel, text in files.items():
        (folder / rel).write_text(text)
    return folder


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_release_then_grade_a_class_of_three(course, tmp_path):
    course.add_adder()
    template = release.main(root=course.root, outdir=tmp_path / "template").outdir
    subs = tmp_path / "submissions"
    _learner(template, subs / "perfect", {"exercises/adder/adder.py": ADDER_SOLUTION})
    _learner(template, subs / "partial", {"exercises/adder/adder.py": PARTIAL})
    _learner(
        template,
        subs / "hostile",
        {"exercises/adder/adder.py": HOSTILE, "exercises/adder/conftest.py": FORCE_PASS_CONFTEST},
    )
    out = tmp_path / "grades"

    done = batch.main(root=course.root, submissions=subs, output_dir=out, jobs=2)

    assert _csv(out / "gradebook.csv") == [
        ["id", "adder", "total", "percent", "status"],
        ["Points Possible", "6", "6", "100.00", ""],
        ["hostile", "0", "0", "0.00", "error: adder"],
        ["partial", "5", "5", "83.33", "ok"],
        ["perfect", "6", "6", "100.00", "ok"],
    ]
    reports = {p.stem: json.loads(p.read_text()) for p in (out / "reports").glob("*.json")}
    assert sorted(reports) == ["hostile", "partial", "perfect"]
    for data in reports.values():
        jsonschema.validate(data, REPORT_SCHEMA)
    assert [reports[n]["score"] for n in ("hostile", "partial", "perfect")] == [0, 5, 6]
    (hostile,) = reports["hostile"]["katas"]
    assert hostile["status"] == "error" and "exited early" in hostile["reason"]
    assert reports["partial"]["submission"] == str(subs / "partial")

    summary = json.loads((out / "summary.json").read_text())
    (adder,) = summary["katas"]
    assert (adder["learners"], adder["passed"], adder["median"]) == (3, 1, 5.0)
    assert adder["most_failed"] == [{"title": "mul(4, 5) returns 20.", "learners": 1}]
    assert summary["attention"] == [{"id": "hostile", "status": "error: adder"}]
    markdown = (out / "summary.md").read_text()
    assert "| Adder (`adder`) | 1/3 | 5/6 | mul(4, 5) returns 20. (1) |" in markdown
    assert done.graded == 3 and [r.id for r in done.rows] == ["hostile", "partial", "perfect"]


def test_unchanged_submissions_are_not_graded_again(course, tmp_path):
    course.add_adder()
    subs = tmp_path / "subs"
    alice = subs / "alice" / "exercises" / "adder"
    alice.mkdir(parents=True)
    (alice / "adder.py").write_text(PARTIAL)
    (alice / "notes.txt").write_text("not a graded file\n")
    out = tmp_path / "grades"

    def run(**options) -> batch.Batch:
        return batch.main(root=course.root, submissions=subs, output_dir=out, **options)

    first = run()
    stamp = (out / "reports" / "alice.json").read_text()
    assert first.graded == 1
    (alice / "notes.txt").write_text("edited, but the grader never takes this file\n")
    again = run()
    assert again.graded == 0 and again.rows[0].skipped
    assert (out / "reports" / "alice.json").read_text() == stamp
    assert _csv(out / "gradebook.csv")[2] == ["alice", "5", "5", "83.33", "ok"]

    (alice / "adder.py").write_text(ADDER_SOLUTION)  # the learner pushed again
    assert run().graded == 1
    assert _csv(out / "gradebook.csv")[2] == ["alice", "6", "6", "100.00", "ok"]

    spec = course.root / "exercises" / "adder" / ".spec" / "test_adder.py"
    spec.write_text(spec.read_text() + "\n# the instructor tightened a spec\n")
    assert run().graded == 1  # the specs changed: every grade is stale
    assert run(force=True).graded == 1
    assert run().graded == 0


def test_only_the_katas_that_changed_are_graded_again(course, tmp_path, monkeypatch):
    """Item 12: the cache is per learner and kata; the summary says how many were re-used."""
    course.add_adder()
    course.add_kata(
        "twin",
        stub=ADDER_STUB,
        solution=ADDER_SOLUTION,
        specs={"test_twin.py": ADDER_SPEC.replace("from adder", "from twin")},
        order=2,
    )
    subs = tmp_path / "subs"
    for name in ("ann", "bob"):
        for slug in ("adder", "twin"):
            (subs / name / "exercises" / slug).mkdir(parents=True)
            (subs / name / "exercises" / slug / f"{slug}.py").write_text(PARTIAL)
    out = tmp_path / "grades"
    graded: list[tuple[str, ...]] = []
    real = batch.run_grading

    async def spy(katas, source, **options):
        graded.append((Path(source.label).name, *(k.slug for k in katas)))
        return await real(katas, source, **options)

    monkeypatch.setattr(batch, "run_grading", spy)

    def run(**options) -> batch.Batch:
        graded.clear()
        return batch.main(root=course.root, submissions=subs, output_dir=out, **options)

    first = run(jobs=1)
    assert sorted(graded) == [("ann", "adder", "twin"), ("bob", "adder", "twin")]
    assert (first.summary.katas_graded, first.summary.katas_reused) == (4, 0)

    (subs / "ann" / "exercises" / "twin" / "twin.py").write_text(ADDER_SOLUTION)
    again = run(jobs=1)
    assert graded == [("ann", "twin")]  # one kata of one learner, nothing else
    assert (again.summary.katas_graded, again.summary.katas_reused) == (1, 3)
    ann = {r.id: r for r in again.rows}["ann"]
    assert [(k.slug, k.score) for k in ann.report.katas] == [("adder", 5), ("twin", 6)]
    assert (ann.graded, ann.reused, ann.skipped) == (1, 1, False)
    assert _csv(out / "gradebook.csv")[2] == ["ann", "5", "6", "11", "91.67", "ok"]
    assert "1 kata grade(s); re-used unchanged: 3" in (out / "summary.md").read_text()
    assert json.loads((out / "summary.json").read_text())["katas_reused"] == 3

    spec = course.root / "exercises" / "adder" / ".spec" / "test_adder.py"
    spec.write_text(spec.read_text() + "\n# the instructor tightened a spec of adder\n")
    run(jobs=1)
    assert sorted(graded) == [("ann", "adder"), ("bob", "adder")]  # twin's grades stand
    assert run(jobs=1).summary.katas_reused == 4 and graded == []
    assert run(jobs=1, force=True).summary.katas_graded == 4


def test_a_hanging_submission_times_out_and_the_class_goes_on(course, tmp_path):
    course.add_adder(timeout=6, spec_timeout=1)
    subs = tmp_path / "subs"
    for name, text in [
        (
            "hangs",
            ADDER_SOLUTION + "\nwhile True:  # at import: no spec timeout can stop it\n    pass\n",
        ),
        ("solid", ADDER_SOLUTION),
    ]:
        (subs / name / "exercises" / "adder").mkdir(parents=True)
        (subs / name / "exercises" / "adder" / "adder.py").write_text(text)
    out = tmp_path / "grades"
    done = batch.main(root=course.root, submissions=subs, output_dir=out, jobs=2)
    rows = {r.id: r for r in done.rows}
    assert rows["hangs"].status == "timeout: adder"
    assert rows["solid"].status == "ok" and rows["solid"].report.score == 6
    assert _csv(out / "gradebook.csv")[2] == ["hangs", "0", "0", "0.00", "timeout: adder"]


def test_a_grading_that_fails_as_a_whole_is_a_row_and_is_not_cached(course, tmp_path, monkeypatch):
    course.add_adder(timeout=0.1)
    subs = tmp_path / "subs"
    for name in ("boom", "slow"):
        (subs / name).mkdir(parents=True)

    async def broken(katas, source, *, jobs=None, **_):
        if source.label.endswith("boom"):
            raise RuntimeError("disk on fire")
        await asyncio.sleep(30)

    monkeypatch.setattr(batch, "run_grading", broken)
    monkeypatch.setattr(batch, "DEADLINE_SLACK", 0.3)
    out = tmp_path / "grades"
    done = batch.main(root=course.root, submissions=subs, output_dir=out)
    rows = {r.id: r for r in done.rows}
    assert rows["boom"].status == rows["slow"].status == "error: adder"
    assert "RuntimeError: disk on fire" in rows["boom"].report.katas[0].reason
    assert "did not finish within" in rows["slow"].report.katas[0].reason
    state = json.loads((out / "batch-state.json").read_text())
    assert state["submissions"] == {}  # graded again next time


def test_a_roster_names_learners_and_flags_a_missing_one(course, tmp_path):
    course.add_adder()
    subs = tmp_path / "subs"
    (subs / "repo-of-bob" / "exercises" / "adder").mkdir(parents=True)
    (subs / "repo-of-bob" / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Path,email\nbob,repo-of-bob,bob@example.org\nghost,,\n")
    out = tmp_path / "grades"
    batch.main(root=course.root, submissions=subs, roster=roster, output_dir=out)
    assert _csv(out / "gradebook.csv")[2:] == [
        ["bob", "6", "6", "100.00", "ok"],
        ["ghost", "0", "0", "0.00", "missing"],
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("learner,path\nbob,x\n", "no 'name' column"),
        ("name\nbob\nbob\n", r"roster.csv:3: 'bob' is listed twice \(first on line 2\)"),
        ("name\nBob Smith\n", "roster.csv:2: 'Bob Smith' is not usable as a learner id"),
        ("name\n", "lists nobody"),
    ],
)
def test_roster_errors_name_the_line(tmp_path, text, error):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    with pytest.raises(KataError, match=error):
        batch.read_roster(roster, tmp_path)


def test_a_folder_of_submissions_is_one_folder_per_learner(tmp_path):
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / ".git").mkdir()
    (tmp_path / "subs" / "grades").mkdir()
    found = batch.find_submissions(tmp_path / "subs", exclude=[tmp_path / "subs" / "grades"])
    assert [s.id for s in found] == ["alice"]
    (tmp_path / "one" / "exercises").mkdir(parents=True)
    with pytest.raises(KataError, match="one checkout, not a folder of checkouts"):
        batch.find_submissions(tmp_path / "one")


# -- pure: rows in, gradebook and summary out ---------------------------------------------


def _report(*katas: tuple[str, str, list[str]]) -> Report:
    """A report from (slug, status, spec outcomes); each spec is worth 1 point."""
    results = []
    for slug, status, outcomes in katas:
        specs = tuple(
            SpecResult(f"{slug}::t{i}", f"{slug} spec {i}", 1, outcome)
            for i, outcome in enumerate(outcomes)
        )
        score = sum(s.score for s in specs)
        results.append(
            KataResult(slug, slug.title(), "kernel", status, score, len(specs), 0.1, "", specs)
        )
    return Report(tuple(results), "x", "2026-01-01T00:00:00+00:00", "0.1.0")


def test_merge_builds_one_gradebook_from_the_reports_of_several_jobs(tmp_path):
    reports = {
        "a/reports/ann": _report(
            ("k1", "passed", ["passed", "passed"]), ("k2", "failed", ["failed", "passed"])
        ),
        "b/reports/cy": _report(
            ("k1", "failed", ["failed", "failed"]), ("k2", "timeout", ["timeout", "not_run"])
        ),
        "b/reports/bo": _report(
            ("k1", "not_started", ["failed", "failed"]), ("k2", "not_started", ["failed", "failed"])
        ),
    }
    for rel, report in reports.items():
        path = tmp_path / f"{rel}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict()))
    out = tmp_path / "gradebook"
    done = batch.main(merge=[tmp_path / "a", tmp_path / "b" / "reports"], output_dir=out)
    assert _csv(out / "gradebook.csv") == [
        ["id", "k1", "k2", "total", "percent", "status"],
        ["Points Possible", "2", "2", "4", "100.00", ""],
        ["ann", "2", "1", "3", "75.00", "ok"],
        ["bo", "0", "0", "0", "0.00", "not started"],
        ["cy", "0", "0", "0", "0.00", "timeout: k2"],
    ]
    assert sorted(p.name for p in (out / "reports").iterdir()) == ["ann.json", "bo.json", "cy.json"]
    k1, k2 = done.summary.katas
    assert (k1.passed, k1.median, k1.most_failed) == (1, 0.0, (("k1 spec 0", 1), ("k1 spec 1", 1)))
    # bo never started (no signal); cy's second spec never ran (no signal either)
    assert k2.most_failed == (("k2 spec 0", 2),)
    assert done.summary.attention == (("bo", "not started"), ("cy", "timeout: k2"))

    (tmp_path / "a" / "reports" / "cy.json").write_text(
        json.dumps(reports["b/reports/cy"].to_dict())
    )
    with pytest.raises(KataError, match="a second report for 'cy'"):
        batch.main(merge=[tmp_path / "a", tmp_path / "b"], output_dir=out)


# -- what the instructor sees -------------------------------------------------------------


def _row(name: str, status: str) -> batch.Row:
    outcome = "passed" if status == "passed" else "error"
    return batch.Row(name, _report(("k1", status, [outcome])), duration=1.25)


def test_progress_is_plain_lines_in_ci_and_a_bar_on_a_terminal():
    lines = io.StringIO()
    LineProgress(lines)(1, 2, _row("ann", "passed"))
    assert lines.getvalue() == "[1/2] ann: 1/1 ok (1.2s)\n"

    bar = io.StringIO()
    draw = BarProgress(bar)
    draw(1, 2, _row("ann", "passed"))
    draw(2, 2, _row("cy", "error"))
    text = bar.getvalue()
    assert text.startswith("\r\033[K") and "grading [###############...............] 1/2" in text
    assert "cy: 0/1 error: k1 (1.2s)\n" in text  # a row that needs a look keeps its own line
    assert text.endswith("grading [##############################] 2/2  cy\n")


def test_cli_batch(course, tmp_path, capsys):
    course.add_adder()
    sub = tmp_path / "subs" / "ann" / "exercises" / "adder"
    sub.mkdir(parents=True)
    (sub / "adder.py").write_text(ADDER_SOLUTION)
    out = tmp_path / "grades"
    argv = ["--root", str(course.root), "batch", str(tmp_path / "subs"), "--output-dir", str(out)]
    assert kata([*argv, "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("## Class summary: 1 learner(s)")
    assert "[1/1] ann: 6/6 ok (" in captured.err  # not a terminal: plain lines
    assert "1 graded, 0 unchanged" in captured.err and "per submission" in captured.err
    assert kata(argv) == 0
    assert "0 graded, 1 unchanged" in capsys.readouterr().err
    assert kata(["batch", "--merge", str(out), "--output-dir", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "gradebook.csv").read_text() == (out / "gradebook.csv").read_text()
    assert kata(["--root", str(course.root), "batch"]) == 2
    assert "name a folder of submissions" in capsys.readouterr().err


@pytest.mark.skipif(not shutil.which("actionlint"), reason="actionlint is not installed")
def test_the_instructor_workflow_template_passes_actionlint():
    path = ROOT / "docs" / "instructor-workflow.yml"
    lint = subprocess.run(["actionlint", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = path.read_text()
    assert "persist-credentials: false" in text and "kata batch --merge" in text
