"""Grading on systems without Linux's containment pieces (macOS, Windows): each piece sits
behind grader.portable, and forcing its fallbacks on Linux proves them here. A grade must
come out right, say which protections were off, and never crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from grader import portable
from grader.grading import grade
from grader.kata import discover
from grader.report import render
from grader.workspace import checkout, solutions

from .conftest import ADDER_SOLUTION, ADDER_STUB

ROOT = Path(__file__).resolve().parent.parent
REPORT = json.loads((ROOT / "schemas" / "report-v1.schema.json").read_text())
PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)
HANGS = ADDER_SOLUTION + "\nwhile True:  # at import: no spec timeout can stop it\n    pass\n"


@pytest.fixture
def forced(monkeypatch):
    """Force a host level for this test (the grader and, through its config, the child)."""

    def take(level: str) -> portable.Host:
        monkeypatch.setenv(portable.FORCE_VAR, level)
        return portable.host()

    yield take
    portable.force(None)


def test_each_level_says_what_it_goes_without(forced):
    assert forced("portable").name == "portable"
    off = portable.protections_off()
    assert len(off) == 9 and off[0].startswith("supervisor")
    posix = forced("posix")
    assert (posix.supervisor, posix.rlimits, posix.subreaper, posix.marker_scan) == (
        True,
        True,
        False,
        False,
    )
    assert any(o.startswith("subreaper") for o in portable.protections_off())
    with pytest.raises(ValueError, match="unknown host level"):
        portable.force("beos")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux: the full set")
def test_linux_has_every_piece_and_cannot_be_forced_upwards(forced):
    assert portable.host() == portable.LEVELS["linux"] and portable.protections_off() == []
    portable.force("posix")
    assert portable.host().name == "posix"  # forcing goes down only; env var loses to force()


def test_the_posix_census_falls_back_to_ps(forced):
    forced("posix")
    table = portable.process_table()
    if not table:
        pytest.skip("no `ps` on this system")
    assert table[os.getpid()][0] == os.getppid()
    assert portable.marked_pids(b"PATH=" + os.environ["PATH"].encode()) == []  # Linux only


def test_nothing_to_look_at_where_nothing_is_available(forced):
    forced("portable")
    assert portable.process_table() == {} and portable.marked_pids(b"X=1") == []
    assert portable.preexec(1 << 30, 1 << 20, 64, 10) is None
    options, tokens = portable.spawn_options([5, 6], None)
    if os.name != "nt":
        assert options == {"pass_fds": (5, 6), "start_new_session": False} and tokens == [5, 6]


@pytest.mark.parametrize("level", ["posix", "portable"])
def test_grading_with_the_fallbacks_scores_the_same_and_says_what_was_off(
    make_course, forced, level
):
    course = make_course("course")
    course.add_adder(timeout=60)
    forced(level)
    katas = discover(course.root)
    full = grade(katas, solutions(course.root))
    assert (full.score, full.max_score, full.katas[0].status) == (6, 6, "passed")
    assert full.protections_off == tuple(portable.protections_off())
    data = json.loads(render(full, "json"))
    jsonschema.validate(data, REPORT)
    assert data["protections_off"] and "Protections off on this system: " in render(full, "table")
    assert "<sub>Protections off on this system: " in render(full, "markdown")

    stub = grade(katas, checkout(course.root))
    assert stub.katas[0].status == "not_started" and stub.score == 0
    partial = grade(katas, checkout(course.submission("partial", {"adder/adder.py": PARTIAL})))
    assert (partial.score, partial.katas[0].status) == (5, "failed")

    quick = make_course("quick")  # a hang costs the kata's limit: keep it short
    quick.add_adder(timeout=10, spec_timeout=2)
    hang = grade(
        discover(quick.root), checkout(quick.submission("hang", {"adder/adder.py": HANGS}))
    )
    assert hang.katas[0].status == "timeout" and hang.score == 0  # killed, not waited for


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="Linux")
def test_linux_reports_nothing_off(course):
    course.add_adder()
    report = grade(discover(course.root), solutions(course.root))
    assert report.protections_off == () and "Protections off" not in render(report, "table")
