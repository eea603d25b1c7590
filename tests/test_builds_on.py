"""A kata that builds on another (kata.toml ``builds_on``): the learner's files of both are
graded together, verify uses both solutions, and only the kata's own files are its to cover."""

from __future__ import annotations

import json
import os

import pytest

from grader.cli import main
from grader.grading import grade
from grader.kata import KataError, discover
from grader.workspace import checkout, solutions

from .conftest import ADDER_SOLUTION, ADDER_STUB

DOUBLER_STUB = '''\
from adder import add


def double(a: int) -> int:
    """Return a + a, with the adder of the adder kata."""
    raise NotImplementedError
'''

DOUBLER_SOLUTION = """\
from adder import add


def double(a: int) -> int:
    return add(a, a)
"""

DOUBLER_SPEC = '''\
from doubler import double


def test_double():
    """double(21) returns 42."""
    got = double(21)
    assert got == 42, f"Called double(21); returned {got!r}; expected 42"


def test_double_zero():
    """double(0) returns 0."""
    got = double(0)
    assert got == 0, f"Called double(0); returned {got!r}; expected 0"
'''

DOUBLER_VISIBLE = """\
from doubler import double


def test_double_example():
    assert double(2) == 4
"""


@pytest.fixture
def doubler(course):
    course.add_adder()
    course.add_kata(
        "doubler",
        stub=DOUBLER_STUB,
        solution=DOUBLER_SOLUTION,
        specs={"test_doubler.py": DOUBLER_SPEC},
        visible=DOUBLER_VISIBLE,
        order=2,
        builds_on=("adder",),
        mutants={
            "triple": ("Adds three times.", "add(a, a)", "add(add(a, a), a)"),
            "zero": ("Returns zero.", "return add(a, a)", "return 0"),
            "square": ("Squares.", "add(a, a)", "a * a"),
        },
    )
    return course


def _grade(course, source, slug="doubler"):
    katas = [k for k in discover(course.root) if k.slug == slug]
    (result,) = grade(katas, source).katas
    return result


def test_the_kata_takes_the_files_of_the_kata_it_builds_on(doubler):
    (adder, doubler_kata) = discover(doubler.root)
    assert doubler_kata.builds_on == (adder,)
    assert [(k.slug, f) for k, f in doubler_kata.inputs] == [
        ("adder", "adder.py"),
        ("doubler", "doubler.py"),
    ]


def test_the_solutions_of_both_katas_score_full_marks(doubler):
    result = _grade(doubler, solutions(doubler.root))
    assert (result.status, result.score, result.max_score) == ("passed", 2, 2)


def test_the_learner_file_of_the_other_kata_is_the_one_graded(doubler):
    wrong_adder = ADDER_SOLUTION.replace("a + b", "a - b")
    sub = doubler.submission(
        "wrong-adder", {"adder/adder.py": wrong_adder, "doubler/doubler.py": DOUBLER_SOLUTION}
    )
    result = _grade(doubler, checkout(sub))
    assert result.status == "failed"
    assert "returned 0; expected 42" in result.failing[0].message


def test_a_missing_file_of_the_other_kata_is_named_with_its_kata(doubler):
    sub = doubler.submission("no-adder", {"doubler/doubler.py": DOUBLER_SOLUTION})
    result = _grade(doubler, checkout(sub))
    assert result.status == "not_started"
    assert "adder.py (of kata adder, which this kata builds on)" in result.reason


def test_the_stub_of_the_other_kata_leaves_the_kata_not_started(doubler):
    sub = doubler.submission(
        "stub-adder", {"adder/adder.py": ADDER_STUB, "doubler/doubler.py": DOUBLER_SOLUTION}
    )
    result = _grade(doubler, checkout(sub))
    assert result.score == 0
    assert all("NotImplementedError" in s.message for s in result.specs)


@pytest.mark.timeout(300)
def test_verify_uses_both_solutions_and_covers_only_the_katas_own_files(doubler, capsys, tmp_path):
    report = tmp_path / "verify.json"
    code = main(["--root", str(doubler.root), "verify", "doubler", "--json", str(report)])
    out, _ = capsys.readouterr()
    assert code == 0, out
    (kata,) = json.loads(report.read_text())
    assert kata["ok"] and all(m["killed"] for m in kata["mutants"])
    # adder.py's mul() never runs under doubler's specs; it is not doubler's to cover
    assert kata["coverage"] == {"lines": 100.0, "branches": 100.0}


def test_the_examples_run_with_the_other_katas_folder_importable(doubler, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    (_, kata) = discover(doubler.root)
    env = kata.examples_env(dict(os.environ))
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(doubler.root.resolve() / "exercises" / "adder"),
        "/somewhere",
    ]


def test_kata_try_imports_the_other_katas_learner_file(doubler, capsys):
    (doubler.root / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)
    (doubler.root / "exercises" / "doubler" / "doubler.py").write_text(DOUBLER_SOLUTION)
    assert (
        main(["--root", str(doubler.root), "try", "doubler", "-q", "-p", "no:cacheprovider"]) == 0
    )


@pytest.mark.parametrize(
    ("builds_on", "says"),
    [
        ('["nowhere"]', "names 'nowhere', but"),
        ('["doubler"]', "names the kata itself"),
        ('["adder"]', "builds on base itself"),
        ('"adder"', "expected a list of kata slugs"),
    ],
    ids=["unknown-kata", "itself", "two-levels", "not-a-list"],
)
def test_a_bad_builds_on_names_the_file_and_the_field(doubler, builds_on, says):
    adder_toml = doubler.root / "exercises" / "adder" / "kata.toml"
    doubler_toml = doubler.root / "exercises" / "doubler" / "kata.toml"
    doubler.add_kata("base", stub="", solution="", specs={"test_base.py": ""}, order=3)
    adder_toml.write_text(adder_toml.read_text() + 'builds_on = ["base"]\n')
    text = doubler_toml.read_text().replace('builds_on = ["adder"]', f"builds_on = {builds_on}")
    doubler_toml.write_text(text)
    with pytest.raises(KataError) as err:
        discover(doubler.root)
    assert str(doubler_toml) in str(err.value) and "'builds_on'" in str(err.value)
    assert says in str(err.value)


def test_a_file_name_both_katas_declare_is_refused(doubler):
    toml = doubler.root / "exercises" / "doubler" / "kata.toml"
    toml.write_text(toml.read_text().replace('files = ["doubler.py"]', 'files = ["adder.py"]'))
    with pytest.raises(KataError, match="also declares adder.py; file names must not clash"):
        discover(doubler.root)
