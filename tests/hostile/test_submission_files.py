"""Hostile submissions whose *files* are the attack: what the grader finds in the submission
folder before any learner code runs.

The grader reads the declared learner files itself, outside any sandbox, as the grader's
user. A submission that makes it read something else (through a folder that is a symbolic
link: the course's reference solution, another learner's checkout) would score what it did
not write; a FIFO, a folder or a huge file in place of a learner file must not hang or break
the grading. And what learner code says back (an exception's text) must not take over the
terminal or the report an instructor reads.

One course, graded once for real, next to an honest kata that keeps full marks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from grader.report import to_junit, to_table
from grader.scoring import Report

from .kit import CORRECT, FULL, HostileCourse, at_import, with_mul

WRONG = CORRECT.replace("a + b", "a - b - 1").replace("a * b", "0")  # scores nothing

# A screen cleared, the cursor sent home, and a summary of full marks printed in its place;
# then a newline and a fake total at the start of a line, for a terminal without escapes.
TAKEOVER = (
    "\x00\x07\x1b[2J\x1b[H\x1b[32mall specs passed\x1b[0m\rTotal: 6/6 (100.0%)\nTotal: 6/6 (100.0%)"
)


DEEP_RECORD = """
import json, os, sys
os.write(json.loads(sys.argv[-1])["out_fd"], b"[" * 200_000 + b"\\n")
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> HostileCourse:
    return HostileCourse(tmp_path_factory.mktemp("files"), timeout=30, spec_timeout=5)


def _replace(course: HostileCourse, slug: str, make) -> None:
    """Put ``make(path)`` where the submission's ``<slug>/<slug>.py`` was."""
    path = course.submission / "exercises" / slug / f"{slug}.py"
    path.unlink()
    make(path)


def _link_folder(course: HostileCourse, slug: str, target: Path) -> None:
    """The submission's ``exercises/<slug>`` becomes a symbolic link to ``target``."""
    folder = course.submission / "exercises" / slug
    shutil.rmtree(folder)
    folder.symlink_to(target, target_is_directory=True)


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    add = course.kata
    add("honest", CORRECT)
    # exercises/<slug> -> the course's solutions/<slug>: the grader would copy the reference
    # solution (kit katas are solved by CORRECT) as the learner's work.
    add("link_to_solution", WRONG)
    _link_folder(course, "link_to_solution", course.course.root / "solutions" / "link_to_solution")
    # exercises/<slug> -> a folder outside the submission: another learner's checkout.
    other = tmp_path_factory.mktemp("another_learner") / "link_to_other"
    other.mkdir()
    (other / "link_to_other.py").write_text(CORRECT)
    add("link_to_other", WRONG)
    _link_folder(course, "link_to_other", other)
    # the learner file itself a link (refused before; kept here so that it stays refused)
    add("file_link", WRONG)
    _replace(course, "file_link", lambda p: p.symlink_to(other / "link_to_other.py"))
    # a FIFO with no writer: a blocking read would hang the grader for good
    add("fifo", WRONG)
    _replace(course, "fifo", os.mkfifo)
    add("folder", WRONG)
    _replace(course, "folder", lambda p: p.mkdir())
    add("huge", WRONG)
    _replace(course, "huge", lambda p: p.write_bytes(CORRECT.encode() + b"#" * (2 << 20)))
    # bytes that are not UTF-8, and a NUL: the static import check and the run must cope
    add("not_utf8", WRONG)
    _replace(course, "not_utf8", lambda p: p.write_bytes(b"\xff\xfe\x00" + CORRECT.encode()))
    add("takeover", with_mul(f"raise ValueError({TAKEOVER!r})"))
    # one line of 200,000 "[" on the results channel: the grader's JSON decoder gave up
    # (RecursionError) and stopped reading the channel, so every record after it was lost
    add("deep_record", at_import(DEEP_RECORD))
    # 300,000 subscripts: the parser gives up (RecursionError), in the grader's static import
    # check first, which took the whole grading down with it
    add("deep_nesting", WRONG)
    _replace(course, "deep_nesting", lambda p: p.write_text("x = 1" + "[0]" * 300_000 + "\n"))
    return course.grade(jobs=2)


def kata(graded, slug):
    return graded[slug].result


@pytest.fixture(autouse=True)
def _others_intact(graded):
    yield
    honest = kata(graded, "honest")
    assert (honest.status, honest.score) == ("passed", FULL), honest


@pytest.mark.parametrize("slug", ["link_to_solution", "link_to_other"])
def test_a_folder_linked_elsewhere_is_refused_never_read(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("error", 0), result
    assert graded[slug].run is None, "the specs ran on files read through the link"
    assert f"{slug}.py is reached through a symbolic link ({slug}" in result.reason


@pytest.mark.parametrize(
    ("slug", "why"),
    [
        ("file_link", "is a symbolic link"),
        ("fifo", "is not a regular file"),
        ("folder", "is not a regular file"),
        ("huge", "is larger than 1024 KiB"),
    ],
)
def test_a_learner_file_that_is_no_plain_file_is_refused(graded, slug, why):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("error", 0), result
    assert result.reason == f"{slug}.py {why}" + (
        "; submit the file itself" if "link" in why else ""
    )


def test_a_learner_file_that_is_not_utf8_is_graded_as_a_broken_file(graded):
    result = kata(graded, "not_utf8")
    assert (result.status, result.score) == ("error", 0), result
    assert "could not import your code" in result.reason


def test_a_record_too_deeply_nested_to_decode_is_dropped_and_the_rest_is_read(graded):
    result = kata(graded, "deep_record")
    assert (result.status, result.score) == ("passed", FULL), result
    assert "1 forged or corrupt result line(s) were ignored" in result.reason


def test_a_file_too_deeply_nested_to_parse_is_that_katas_error_not_the_graders(graded):
    result = kata(graded, "deep_nesting")
    assert (result.status, result.score) == ("error", 0), result
    assert "RecursionError" in result.reason, result.reason


def test_learner_text_cannot_drive_the_terminal_or_fake_a_total(graded):
    result = kata(graded, "takeover")
    assert result.score == FULL - 1
    (failed,) = result.failing
    assert "\x1b" not in failed.message and "\r" not in failed.message
    assert failed.message.startswith("ValueError: \\x00\\x07\\x1b[2J\\x1b[H"), failed.message
    table = to_table(Report(katas=(result,)))
    assert "\x1b" not in table and "\r" not in table
    totals = [line for line in table.splitlines() if line.startswith("Total:")]
    assert totals == ["Total: 5/6 (83.3%)"], table
    ElementTree.fromstring(to_junit(Report(katas=(result,))))  # no control character breaks it
