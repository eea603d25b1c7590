"""`kata release`: the learner template holds what learners need and not one byte of a hidden
spec, a solution or a mutant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import release
from grader.cli import main as kata
from grader.kata import KataError

from .conftest import ADDER_SOLUTION

GREETER_STUB = '''\
def greet(name: str) -> str:
    """Return 'Hello, NAME!'."""
    # TODO: greet by name
    raise NotImplementedError
'''
GREETER_SOLUTION = "def greet(name: str) -> str:\n    return f'Hello, {name}!'\n"
GREETER_SPEC = '''\
from greeter import greet


def test_greet():
    """greet('Ada') says hello to Ada."""
    got = greet("Ada")
    assert got == "Hello, Ada!", f"Called greet('Ada'); returned {got!r}"
'''
GREETER_VISIBLE = "from greeter import greet\n\n\ndef test_example():\n    assert greet('x')\n"


@pytest.fixture
def two_katas(course):
    course.add_adder()
    (course.root / "exercises" / "adder" / "README.md").write_text("# Adder\n\nAdd numbers.\n")
    course.add_kata(
        "greeter",
        stub=GREETER_STUB,
        solution=GREETER_SOLUTION,
        specs={"test_greeter.py": GREETER_SPEC, "_helpers.py": "HIDDEN_EXPECTED = 'Hello'\n"},
        visible=GREETER_VISIBLE,
        mutants={"rude": ("no greeting.", "f'Hello, {name}!'", "name")},
        order=2,
        pillar="protocols",
    )
    return course


def _every_file(folder: Path) -> list[Path]:
    """Every file under ``folder``, dot-files and dot-folders included."""
    return [Path(d) / f for d, _, files in os.walk(folder) for f in files]


def test_template_holds_no_byte_of_a_spec_or_solution(two_katas, tmp_path):
    out = tmp_path / "template"
    done = release.main(root=two_katas.root, outdir=out)

    secrets = [
        *_every_file(two_katas.root / "exercises" / "adder" / ".spec"),
        *_every_file(two_katas.root / "exercises" / "greeter" / ".spec"),
        *_every_file(two_katas.root / "solutions"),
    ]
    assert len(secrets) == 7  # 3 spec files, 2 solutions, 2 mutants.toml
    template = _every_file(out)
    assert template and sorted(str(p.relative_to(out)) for p in template) == list(done.files)
    contents = {path: path.read_bytes() for path in template}
    for secret in secrets:
        needle = secret.read_bytes().strip()
        assert needle, f"{secret} is blank: it would prove nothing"
        for path, data in contents.items():
            assert needle not in data, f"{secret} leaked into {path}"
    assert not any(".spec" in p.parts or "solutions" in p.parts for p in template)
    assert not any(p.name == "mutants.toml" for p in template)


def test_template_has_what_learners_need(two_katas, tmp_path):
    out = tmp_path / "template"
    release.main(root=two_katas.root, outdir=out)
    for rel in [
        "exercises/adder/kata.toml",
        "exercises/adder/adder.py",
        "exercises/adder/README.md",
        "exercises/adder/test_adder.py",
        "exercises/greeter/greeter.py",
        "exercises/greeter/test_greeter.py",
        "grader/__init__.py",
        "grader/cli.py",
        "pyproject.toml",
        "noxfile.py",
        "README.md",
        ".gitignore",
        ".github/workflows/test.yml",
    ]:
        assert (out / rel).is_file(), f"{rel} is missing from the template"
    assert not list(out.rglob("__pycache__"))
    readme = (out / "README.md").read_text()
    assert "`exercises/adder/adder.py`" in readme and "nox -s try -- adder" in readme
    workflow = (out / ".github/workflows/test.yml").read_text()
    assert "kata: [adder, greeter]" in workflow and "on:\n  push:" in workflow


def test_a_subset_of_katas(two_katas, tmp_path):
    out = tmp_path / "template"
    done = release.main(root=two_katas.root, outdir=out, slugs=["greeter"])
    assert [k.slug for k in done.katas] == ["greeter"]
    assert not (out / "exercises" / "adder").exists()
    assert "kata: [greeter]" in (out / ".github/workflows/test.yml").read_text()


def test_refuses_a_non_empty_folder_unless_forced(two_katas, tmp_path):
    out = tmp_path / "template"
    (out / "exercises" / "old_kata").mkdir(parents=True)
    (out / "exercises" / "old_kata" / "old.py").write_text("stale\n")
    (out / "LICENSE").write_text("mine\n")
    with pytest.raises(KataError, match="not empty; pass --force"):
        release.main(root=two_katas.root, outdir=out)
    assert not (out / "README.md").exists()

    release.main(root=two_katas.root, outdir=out, force=True)
    assert (out / "LICENSE").read_text() == "mine\n"  # other files are kept
    assert not (out / "exercises" / "old_kata").exists()  # exercises/ is replaced whole
    assert (out / "exercises" / "adder" / "adder.py").is_file()


def test_refuses_to_write_over_the_course(two_katas):
    with pytest.raises(KataError, match="over the course"):
        release.main(root=two_katas.root, outdir=two_katas.root, force=True)
    assert (two_katas.root / "exercises" / "adder" / ".spec").is_dir()


def test_a_lesson_that_quotes_a_spec_stops_the_release(two_katas, tmp_path):
    lesson = two_katas.root / "exercises" / "greeter" / "README.md"
    lesson.write_text("# Greeter\n\n```python\n" + GREETER_SPEC + "```\n")
    out = tmp_path / "template"
    with pytest.raises(KataError, match=r"leak.*test_greeter\.py in exercises/greeter/README\.md"):
        release.main(root=two_katas.root, outdir=out)
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.glob(".template-release-*"))  # the staging folder is gone


def test_cli_release_and_its_refusal(two_katas, tmp_path, capsys):
    out = tmp_path / "template"
    assert kata(["--root", str(two_katas.root), "release", str(out), "--katas", "adder"]) == 0
    assert "no spec or solution byte" in capsys.readouterr().err
    assert kata(["--root", str(two_katas.root), "release", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_visible_tests_run_in_the_template_with_its_own_grader(two_katas, tmp_path):
    out = tmp_path / "template"
    release.main(root=two_katas.root, outdir=out, slugs=["adder"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-m", "grader", "try", "adder", "-q", "-p", "no:cacheprovider"]
    (out / "exercises" / "adder" / "adder.py").write_text(ADDER_SOLUTION)  # the learner's work
    solved = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
    assert solved.returncode == 0, solved.stdout[-2000:] + solved.stderr[-2000:]
    assert "1 passed" in solved.stdout


@pytest.mark.skipif(not shutil.which("actionlint"), reason="actionlint is not installed")
def test_template_workflow_passes_actionlint(two_katas, tmp_path):
    out = tmp_path / "template"
    release.main(root=two_katas.root, outdir=out)
    lint = subprocess.run(
        ["actionlint", str(out / ".github/workflows/test.yml")], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.skipif(not shutil.which("nox"), reason="nox is not installed")
def test_template_noxfile_offers_try_and_list(two_katas, tmp_path):
    out = tmp_path / "template"
    release.main(root=two_katas.root, outdir=out)
    listed = subprocess.run(["nox", "-l"], cwd=out, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "* try" in listed.stdout and "list" in listed.stdout
