"""Hidden specs for wal_recovery: group commit, counted through a blocking fsync.

The spec makes the log's first fsync block, starts one commit (the leader), waits until
that fsync is running, starts 8 more commits and waits until all 8 records are appended,
then releases the fsync. Group commit covers the 8 with one more fsync; each commit must
still return only once an fsync that began after its append has finished.
"""

from __future__ import annotations

import threading

import pytest
from _helpers import LOG, SimFS, model
from wal_recovery import WalStore

from grader.spectools import called, step

FOLLOWERS = 8


def concurrent_commits():
    fs = SimFS()
    with step("WalStore.open(fs)"):
        store = WalStore.open(fs)
    errors: list[BaseException] = []

    def commit(i):
        try:
            store.commit({f"k{i}": str(i)})
        except BaseException as exc:  # reported by the spec
            errors.append(exc)

    before = fs.fsyncs[LOG]
    fs.block_fsync()
    threads = [threading.Thread(target=commit, args=(0,), daemon=True)]
    threads[0].start()
    entered = fs.fsync_entered.wait(5)
    batched = False
    if entered:
        threads += [
            threading.Thread(target=commit, args=(i,), daemon=True) for i in range(1, FOLLOWERS + 1)
        ]
        for t in threads[1:]:
            t.start()
        batched = fs.wait_appends(LOG, FOLLOWERS + 1, timeout=5)
    fs.release_fsync()
    for t in threads:
        t.join(10)
    alive = sum(t.is_alive() for t in threads)
    for exc in errors:
        if isinstance(exc, NotImplementedError):
            raise exc
    assert not errors, called("store.commit(...) from 9 threads", errors, "no exception")
    assert entered, called(
        "store.commit({'k0': '0'}) with the log's fsync blocked",
        "no fsync of 'wal' started",
        "an fsync",
    )
    assert alive == 0, called(
        "store.commit(...) from 9 threads, fsync released", f"{alive} threads still waiting", 0
    )
    return fs, store, batched, fs.fsyncs[LOG] - before


@pytest.mark.points(4)
def test_concurrent_commits_share_an_fsync():
    """Commits arriving while the log's fsync runs are appended meanwhile and covered together by one more fsync (2 fsyncs for 9 commits)."""
    fs, store, batched, fsyncs = concurrent_commits()
    assert batched, called(
        "store.commit(...) from 8 threads while the leader's fsync of 'wal' is blocked",
        f"{fs.appends[LOG]} records appended",
        f"{FOLLOWERS + 1}: a commit appends its record while another commit's fsync runs",
    )
    assert fsyncs == 2, called("9 concurrent store.commit(...); counted fsyncs of 'wal'", fsyncs, 2)


@pytest.mark.points(3)
def test_every_concurrent_commit_is_durable_when_it_returns():
    """Each concurrent commit returns only after an fsync that began after its append: all 9 survive any crash."""
    fs, store, _, _ = concurrent_commits()
    want = model([{f"k{i}": str(i)} for i in range(FOLLOWERS + 1)])
    got = store.snapshot()
    assert got == want, called("store.snapshot() after 9 concurrent commits returned", got, want)
    for state in fs.crash_states(every_byte=False):
        with step("WalStore.open() after a crash once the 9 commits returned"):
            got = WalStore.open(SimFS(state)).snapshot()
        assert got == want, called(
            "WalStore.open().snapshot() after a crash once 9 concurrent commits returned", got, want
        )


@pytest.mark.points(2)
def test_a_commit_is_invisible_until_durable():
    """A commit's changes are not visible to get() while its fsync runs, and are once commit returns."""
    fs = SimFS()
    with step("WalStore.open(fs)"):
        store = WalStore.open(fs)
    errors: list[BaseException] = []

    def commit():
        try:
            store.commit({"a": "1"})
        except BaseException as exc:  # reported by the spec
            errors.append(exc)

    fs.block_fsync()
    thread = threading.Thread(target=commit, daemon=True)
    thread.start()
    entered = fs.fsync_entered.wait(5)
    during = store.get("a")
    fs.release_fsync()
    thread.join(10)
    for exc in errors:
        if isinstance(exc, NotImplementedError):
            raise exc
    assert entered and not errors, called(
        "store.commit({'a': '1'}) with the log's fsync blocked", errors, "an fsync"
    )
    assert during is None, called(
        "store.get('a') while commit({'a': '1'}) waits for its fsync", during, None
    )
    after = store.get("a")
    assert after == "1", called("store.get('a') once commit({'a': '1'}) returned", after, "1")


@pytest.mark.points(2)
def test_checkpoint_during_concurrent_commits_loses_none():
    """A checkpoint taken while commits wait on the log's fsync holds them all afterwards, and so does every crash state."""
    fs = SimFS()
    with step("WalStore.open(fs)"):
        store = WalStore.open(fs)
    errors: list[BaseException] = []

    def run(call):
        try:
            call()
        except BaseException as exc:  # reported by the spec
            errors.append(exc)

    fs.block_fsync()
    threads = [threading.Thread(target=run, args=(lambda: store.commit({"a": "1"}),), daemon=True)]
    threads[0].start()
    entered = fs.fsync_entered.wait(5)
    threads.append(
        threading.Thread(target=run, args=(lambda: store.commit({"b": "2"}),), daemon=True)
    )
    threads[1].start()
    appended = fs.wait_appends(LOG, 2, timeout=5)
    threads.append(threading.Thread(target=run, args=(store.checkpoint,), daemon=True))
    threads[2].start()
    fs.release_fsync()
    for t in threads:
        t.join(10)
    for exc in errors:
        if isinstance(exc, NotImplementedError):
            raise exc
    assert entered and appended and not errors, called(
        "commit({'a': '1'}) blocked in fsync, commit({'b': '2'}), checkpoint() from 3 threads",
        errors,
        "no exception",
    )
    want = {"a": "1", "b": "2"}
    got = store.snapshot()
    assert got == want, called(
        "store.snapshot() after the commits and the checkpoint returned", got, want
    )
    for state in fs.crash_states(every_byte=False):
        with step("WalStore.open() after a crash once the commits and checkpoint returned"):
            got = WalStore.open(SimFS(state)).snapshot()
        assert got == want, called(
            "WalStore.open().snapshot() after the commits and the checkpoint", got, want
        )
