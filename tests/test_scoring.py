"""The scoring model is pure: signed records in, scores out. Nothing else counts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from grader.channel import Reader, Writer, new_key
from grader.scoring import Observed, Report, Spec, score_kata

KATA = SimpleNamespace(slug="toy", title="Toy", pillar="kernel")
SPECS = [Spec("t.py::a", "A holds.", 2), Spec("t.py::b", "B holds."), Spec("t.py::c", "C holds.")]


def observed(*records, **facts):
    numbered = tuple({"seq": i, **r} for i, r in enumerate(records, 1))
    return Observed(records=numbered, **facts)


def start(i):
    return {"kind": "start", "id": i}


def result(i, outcome="passed", message="", exc_type=""):
    return {"kind": "result", "id": i, "outcome": outcome, "message": message, "exc_type": exc_type}


DONE = {"kind": "done", "exitstatus": 0}


def test_full_marks_only_when_every_expected_spec_passed():
    run = observed(*(x for s in SPECS for x in (start(s.id), result(s.id))), DONE)
    kata = score_kata(KATA, SPECS, run)
    assert (kata.status, kata.score, kata.max_score) == ("passed", 4, 4)


def test_a_spec_without_a_result_scores_nothing_even_on_a_clean_exit():
    run = observed(start("t.py::a"), result("t.py::a"), DONE, returncode=0)
    kata = score_kata(KATA, SPECS, run)
    assert kata.score == 2
    assert [s.outcome for s in kata.specs] == ["passed", "not_run", "not_run"]
    assert kata.status == "failed"


def test_results_for_specs_that_were_not_expected_are_ignored():
    run = observed(start("t.py::zzz"), result("t.py::zzz"), DONE)
    kata = score_kata(KATA, SPECS, run)
    assert kata.score == 0


def test_a_death_mid_run_is_an_error_naming_the_signal():
    run = observed(start("t.py::a"), result("t.py::a"), start("t.py::b"), returncode=-11)
    kata = score_kata(KATA, SPECS, run)
    assert kata.status == "error"
    assert "SIGSEGV" in kata.reason and "after 2 of 3 specs" in kata.reason
    assert [s.outcome for s in kata.specs] == ["passed", "error", "not_run"]


def test_a_timeout_pins_the_running_spec():
    run = observed(
        start("t.py::a"), result("t.py::a"), start("t.py::b"), timed_out=True, returncode=-9
    )
    kata = score_kata(KATA, SPECS, run)
    assert kata.status == "timeout"
    assert [s.outcome for s in kata.specs] == ["passed", "timeout", "not_run"]
    assert kata.score == 2


def test_not_started_when_every_spec_hits_not_implemented():
    records = [
        x
        for s in SPECS
        for x in (start(s.id), result(s.id, "failed", "NotImplementedError", "NotImplementedError"))
    ]
    kata = score_kata(KATA, SPECS, observed(*records, DONE))
    assert kata.status == "not_started"


def test_failed_when_some_failures_are_real():
    records = [start("t.py::a"), result("t.py::a", "failed", "wrong", "AssertionError")]
    records += [
        x
        for s in SPECS[1:]
        for x in (start(s.id), result(s.id, "failed", "", "NotImplementedError"))
    ]
    kata = score_kata(KATA, SPECS, observed(*records, DONE))
    assert kata.status == "failed"


def test_missing_files_mean_not_started():
    kata = score_kata(KATA, SPECS, None, missing=["toy.py"])
    assert kata.status == "not_started" and "toy.py" in kata.reason
    assert all(s.outcome == "not_run" for s in kata.specs)


def test_rejected_lines_are_reported():
    run = observed(*(x for s in SPECS for x in (start(s.id), result(s.id))), DONE, rejected=3)
    kata = score_kata(KATA, SPECS, run)
    assert kata.score == 4 and "3 forged or corrupt" in kata.reason


def test_report_round_trips_through_json_dict():
    kata = score_kata(
        KATA, SPECS, observed(start("t.py::a"), result("t.py::a", "failed", "m"), DONE)
    )
    report = Report(katas=(kata,), submission="x", generated_at="now", grader_version="0")
    again = Report.from_dict(report.to_dict())
    assert again == report
    assert report.to_dict()["schema"] == "backend-katas/report@1"
    with pytest.raises(ValueError):
        Report.from_dict({**report.to_dict(), "schema": "other@9"})


# -- the channel ------------------------------------------------------------------------


def _pipe_records(write, key):
    import os

    r, w = os.pipe()
    write(Writer(w, key))
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    return data


def test_signed_records_are_accepted_in_order():
    key = new_key()
    data = _pipe_records(
        lambda wr: (wr.send("start", id="a"), wr.send("result", id="a", outcome="passed")), key
    )
    reader = Reader(key)
    reader.feed(data[:7])
    reader.feed(data[7:])
    assert [r["kind"] for r in reader.records] == ["start", "result"]
    assert reader.rejected == 0


def test_forged_replayed_and_wrong_key_lines_are_rejected():
    key = new_key()
    data = _pipe_records(lambda wr: wr.send("result", id="a", outcome="passed"), key)
    forged = b'{"body": "{\\"seq\\": 2, \\"kind\\": \\"result\\"}", "mac": "00"}\n'
    other_key = _pipe_records(lambda wr: wr.send("result", id="b", outcome="passed"), new_key())
    reader = Reader(key)
    reader.feed(data + data + forged + other_key + b"not json\n")
    assert len(reader.records) == 1  # the replayed copy is out of sequence
    assert reader.rejected == 4
