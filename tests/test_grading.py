"""End-to-end grading of a small course: the flow, the statuses, the scores."""

from __future__ import annotations

from grader.grading import grade
from grader.kata import discover
from grader.workspace import checkout, solutions

from .conftest import ADDER_SOLUTION, ADDER_STUB


def _grade(course, source):
    report = grade(discover(course.root), source)
    (kata,) = report.katas
    return kata


def test_stub_is_not_started(course):
    course.add_adder()
    kata = _grade(course, checkout(course.root))
    assert kata.status == "not_started"
    assert (kata.score, kata.max_score) == (0, 6)
    assert all("NotImplementedError" in s.message for s in kata.specs)


def test_solution_scores_full_marks(course):
    course.add_adder()
    kata = _grade(course, solutions(course.root))
    assert kata.status == "passed"
    assert kata.score == kata.max_score == 6
    titles = [s.title for s in kata.specs]
    assert titles == [
        "add(2, 3) returns 5.",
        "Adding zero changes nothing. [0]",
        "Adding zero changes nothing. [7]",
        "mul(4, 5) returns 20.",
        "add works from async code too.",
    ]


def test_partial_submission_scores_what_passes(course):
    course.add_adder()
    sub = course.submission(
        "partial",
        {
            "adder/adder.py": ADDER_STUB.replace(
                "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
            )
        },
    )
    kata = _grade(course, checkout(sub))
    assert kata.status == "failed"
    assert kata.score == 5
    (failing,) = kata.failing
    assert failing.title == "mul(4, 5) returns 20."
    assert failing.message.startswith("NotImplementedError")
    assert "adder.py:" in failing.message  # where in the learner's own file


def test_assertion_message_is_shown_but_never_spec_code(course):
    course.add_adder()
    sub = course.submission("wrong", {"adder/adder.py": ADDER_SOLUTION.replace("a + b", "a - b")})
    kata = _grade(course, checkout(sub))
    by_title = {s.title: s for s in kata.specs}
    assert by_title["add(2, 3) returns 5."].message == "Called add(2, 3); returned -1; expected 5"
    for spec in kata.specs:
        assert "got = add" not in spec.message and "assert " not in spec.message


def test_missing_learner_file_is_not_started(course):
    course.add_adder()
    sub = course.submission("empty", {"other/readme.py": ""})
    kata = _grade(course, checkout(sub))
    assert kata.status == "not_started"
    assert "adder.py" in kata.reason
    assert all(s.outcome == "not_run" for s in kata.specs)


def test_syntax_error_is_an_error_with_the_reason(course):
    course.add_adder()
    sub = course.submission("syntax", {"adder/adder.py": "def add(a, b)\n    return a + b\n"})
    kata = _grade(course, checkout(sub))
    assert kata.status == "error"
    assert "SyntaxError" in kata.reason
    assert kata.score == 0


def test_forbidden_import_fails_the_kata_by_name(course):
    course.add_adder(forbid=("fractions",))
    sub = course.submission("forbidden", {"adder/adder.py": "import fractions\n" + ADDER_SOLUTION})
    kata = _grade(course, checkout(sub))
    assert kata.status == "failed"
    assert kata.score == 0
    assert "fractions" in kata.reason and "adder.py:1" in kata.reason


def test_a_kata_stopped_before_its_specs_were_listed_still_reports_its_worth(course):
    """Stopped at once (the listing cannot have finished), the kata is an INTERRUPTED error
    whose specs are listed as not run, so the partial report keeps the course's total."""
    import asyncio

    from grader.grading import INTERRUPTED, run_grading

    course.add_adder(spec_timeout=5)

    async def main():
        stop = asyncio.Event()
        stop.set()
        return await run_grading(discover(course.root), checkout(course.root), stop=stop)

    (graded,) = asyncio.run(main())
    kata = graded.result
    assert (kata.status, kata.reason, kata.score) == ("error", INTERRUPTED, 0)
    assert kata.max_score == 6 and {s.outcome for s in kata.specs} == {"not_run"}
