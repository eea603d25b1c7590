"""Hermitage (Kleppmann): each isolation anomaly prevented or allowed exactly as PostgreSQL does.

Ported from https://github.com/ept/hermitage (postgres.md): the schedules, and PostgreSQL's
outcome at "repeatable read" (snapshot isolation) and "serializable" (SSI). See _helpers.py.
"""

from __future__ import annotations

import pytest
from _helpers import CASES, RR, SER, Schedule

from grader.spectools import called

PARAMS = [(cid, level) for cid in CASES for level in (RR, SER)]
IDS = [f"{cid}-{'repeatable_read' if level is RR else 'serializable'}" for cid, level in PARAMS]


@pytest.mark.points(2)
@pytest.mark.parametrize(("cid", "level"), PARAMS, ids=IDS)
def test_hermitage_case_matches_postgresql(cid, level):
    """Each Hermitage schedule reads, fails and commits as PostgreSQL does at the same level."""
    schedule_fn, outcomes = CASES[cid]
    s = Schedule(level)
    schedule_fn(s)
    failed = frozenset(s.failed)
    final = s.final()
    got = (sorted(failed), final)
    wanted = [(sorted(f), table) for f, table in outcomes[level]]
    assert got in wanted, called(
        f"the {cid} schedule at {level.value}: {s.history()}; transactions failed, final table",
        got,
        wanted[0] if len(wanted) == 1 else " or ".join(map(repr, wanted)),
    )
