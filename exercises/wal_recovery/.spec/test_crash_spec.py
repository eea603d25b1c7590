"""Hidden specs for wal_recovery: a crash at every operation of generated workloads.

After every crash, in every disk state the crash model allows, recovery must give exactly
the committed prefix: every commit that returned, plus (or not) the one in flight, whole.
"""

from __future__ import annotations

import pytest
from _helpers import Crashed, SimFS, model
from hypothesis import example, given, settings
from hypothesis import strategies as st
from wal_recovery import WalStore

from grader.spectools import called, step

CHANGES = st.dictionaries(
    st.sampled_from("abc"), st.none() | st.text("xyé", min_size=1, max_size=3), min_size=1
)
WORKLOAD = st.lists(st.just("checkpoint") | CHANGES, max_size=6)


def run(workload, crash_at):
    """Run ``workload`` on a fresh SimFS that crashes before operation ``crash_at``."""
    fs = SimFS(crash_at=crash_at)
    acked, inflight = [], None
    try:
        store = WalStore.open(fs)
        for item in workload:
            if item == "checkpoint":
                store.checkpoint()
            else:
                inflight = item
                store.commit(item)
                acked.append(item)
                inflight = None
    except Crashed:
        return fs, acked, inflight, False
    return fs, acked, inflight, True


def check_every_crash(workload, every_byte):
    crash_at = 0
    while True:
        with step(f"the workload {workload} with a crash before file operation {crash_at}"):
            fs, acked, inflight, finished = run(workload, crash_at)
        allowed = [model(acked)]
        if inflight is not None:
            allowed.append(model([*acked, inflight]))
        for state in fs.crash_states(every_byte):
            with step(f"WalStore.open() on the disk after a crash before operation {crash_at}"):
                got = WalStore.open(SimFS(state)).snapshot()
            assert got in allowed, called(
                f"WalStore.open().snapshot() after {workload} crashed before file operation {crash_at} "
                f"(last done: {fs.trace[-1:]}; {len(acked)} commits had returned)",
                got,
                " or ".join(map(repr, allowed)),
            )
        if finished:
            return
        crash_at += 1


@pytest.mark.points(5)
@settings(max_examples=25)
@given(WORKLOAD)
@example([])
@example([{"a": "x"}])
@example([{"a": "x"}, {"a": None}])
@example(["checkpoint"])
@example([{"a": "x", "b": "y"}, "checkpoint", {"b": None, "c": "é"}, "checkpoint", {"a": "yy"}])
def test_recovery_gives_the_committed_prefix(workload):
    """After a crash at any file operation, recovery holds every returned commit, no partial one, nothing uncommitted."""
    check_every_crash(workload, every_byte=False)


@pytest.mark.points(3)
def test_recovery_after_a_tear_at_every_byte():
    """A crash that tears the in-flight record at any byte recovers the commits before it, whole, and nothing of it."""
    check_every_crash(
        [{"a": "xyz", "b": "é"}, {"a": None, "c": "x"}, "checkpoint", {"b": "yy"}], every_byte=True
    )
