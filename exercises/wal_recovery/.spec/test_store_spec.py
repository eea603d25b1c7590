"""Hidden specs for wal_recovery: commits, the log on disk, replay and checkpoints."""

from __future__ import annotations

import json

import pytest
from _helpers import DATA, LOG, TEMP, SimFS, oracle_payload, oracle_record, oracle_records
from wal_recovery import DiskFS, WalStore

from grader.spectools import called, step


def opened(fs):
    with step("WalStore.open(fs)"):
        return WalStore.open(fs)


def test_new_store_is_empty():
    """A store opened on an empty directory holds nothing."""
    store = opened(SimFS())
    with step("store.snapshot(); store.get('a')"):
        got = (store.snapshot(), store.get("a"))
    assert got == ({}, None), called(
        "store.snapshot(), store.get('a') on a new store", got, ({}, None)
    )


@pytest.mark.points(2)
def test_commit_puts_and_deletes():
    """commit sets each key to its value and deletes the keys whose value is None."""
    store = opened(SimFS())
    with step("store.commit({'a': '1', 'b': '2'}); store.commit({'a': None, 'c': '3'})"):
        store.commit({"a": "1", "b": "2"})
        store.commit({"a": None, "c": "3"})
        got = (store.snapshot(), store.get("a"), store.get("b"))
    want = ({"b": "2", "c": "3"}, None, "2")
    assert got == want, called("store.snapshot(), get('a'), get('b') after two commits", got, want)


@pytest.mark.points(2)
def test_commit_appends_one_record_of_its_changes():
    """Each commit appends one record to the log "wal" whose payload is the compact, key-sorted JSON of its changes."""
    fs = SimFS()
    store = opened(fs)
    commits = [{"b": "2", "a": "1"}, {"a": None}, {"é": "日本"}]
    with step("store.commit(...) three times"):
        for changes in commits:
            store.commit(changes)
    got = oracle_records(fs.read(LOG))
    want = [oracle_payload(c) for c in commits]
    assert got == want, called("fs.read('wal') after 3 commits, decoded", got, want)
    assert fs.read(LOG) == b"".join(oracle_record(p) for p in want), called(
        "fs.read('wal') after 3 commits", fs.read(LOG), b"".join(oracle_record(p) for p in want)
    )


def test_empty_commit_writes_nothing():
    """commit({}) changes nothing and appends nothing."""
    fs = SimFS()
    store = opened(fs)
    with step("store.commit({})"):
        store.commit({})
    assert fs.read(LOG) == b"", called("fs.read('wal') after commit({})", fs.read(LOG), b"")


@pytest.mark.points(3)
def test_commit_is_durable_when_it_returns():
    """When commit returns, its record survives any crash: the log was fsynced (and a new log's name made durable)."""
    fs = SimFS()
    store = opened(fs)
    for i in range(3):
        with step(f"store.commit({{'k{i}': 'v'}})"):
            store.commit({f"k{i}": "v"})
        want = {f"k{j}": "v" for j in range(i + 1)}
        for state in fs.crash_states():
            got = opened(SimFS(state)).snapshot()
            assert got == want, called(
                f"WalStore.open() after a crash right after commit #{i + 1} returned, disk {state}",
                got,
                want,
            )


def test_commit_fsyncs_once_alone():
    """A commit with no other commit in flight fsyncs the log exactly once."""
    fs = SimFS()
    store = opened(fs)
    before = fs.fsyncs[LOG]
    with step("store.commit({'a': '1'})"):
        store.commit({"a": "1"})
    got = fs.fsyncs[LOG] - before
    assert got == 1, called("store.commit({'a': '1'}); counted fsyncs of 'wal'", got, 1)


@pytest.mark.points(2)
def test_open_replays_the_log_over_the_data_file():
    """open() loads the data file, then applies the log's records over it in order."""
    log = b"".join(oracle_record(oracle_payload(c)) for c in [{"a": "2", "c": "3"}, {"b": None}])
    fs = SimFS({DATA: json.dumps({"a": "1", "b": "1"}).encode(), LOG: log})
    got = opened(fs).snapshot()
    want = {"a": "2", "c": "3"}
    assert got == want, called(
        "WalStore.open(fs).snapshot() on data {a:1,b:1} and 2 records", got, want
    )


@pytest.mark.points(2)
def test_open_stops_at_the_first_corrupt_record():
    """open() applies no record at or after the first corrupt one, even valid ones after it."""
    records = [oracle_record(oracle_payload(c)) for c in [{"a": "1"}, {"b": "2"}, {"c": "3"}]]
    bad = bytearray(records[1])
    bad[-2] ^= 0xFF
    fs = SimFS({LOG: records[0] + bytes(bad) + records[2]})
    got = opened(fs).snapshot()
    assert got == {"a": "1"}, called(
        "WalStore.open(fs).snapshot() with record 2 of 3 corrupt", got, {"a": "1"}
    )


@pytest.mark.points(3)
def test_open_cuts_the_torn_tail_so_new_commits_survive():
    """open() truncates the log after its last valid record, so commits made after recovery are read back."""
    good = oracle_record(oracle_payload({"a": "1"}))
    torn = oracle_record(oracle_payload({"b": "2"}))
    for cut in range(1, len(torn)):
        fs = SimFS({LOG: good + torn[:cut]})
        store = opened(fs)
        with step("store.commit({'c': '3'}) after recovering a torn log"):
            store.commit({"c": "3"})
        for state in fs.crash_states(every_byte=False):
            got = opened(SimFS(state)).snapshot()
            want = {"a": "1", "c": "3"}
            assert got == want, called(
                f"WalStore.open() after a log torn {cut} bytes into record 2, a commit and a crash",
                got,
                want,
            )


@pytest.mark.points(2)
def test_checkpoint_writes_the_data_file_and_empties_the_log():
    """checkpoint() writes every key to the data file "data" (a JSON object) and leaves the log empty."""
    fs = SimFS()
    store = opened(fs)
    with step("store.commit(...); store.checkpoint()"):
        store.commit({"a": "1", "b": "2"})
        store.commit({"b": None, "c": "日本"})
        store.checkpoint()
    got = (json.loads(fs.read(DATA)), fs.read(LOG), fs.exists(TEMP))
    want = ({"a": "1", "c": "日本"}, b"", False)
    assert got == want, called(
        "json of 'data', bytes of 'wal', 'data.tmp' exists, after checkpoint()", got, want
    )


@pytest.mark.points(4)
def test_checkpoint_is_atomic_under_a_crash_at_every_step():
    """A crash anywhere in checkpoint() loses nothing: recovery gives every committed key (temp, fsync, rename, fsync dir, then truncate)."""
    commits = [{"a": "1", "b": "2"}, {"b": None, "c": "3"}]
    want = {"a": "1", "c": "3"}
    crash_at = 0
    while True:
        fs = SimFS()
        store = opened(fs)
        with step("store.commit(...) twice"):
            for changes in commits:
                store.commit(changes)
        fs.crash_at = fs.count + crash_at
        try:
            with step("store.checkpoint()"):
                store.checkpoint()
            finished = True
        except BaseException as exc:
            if type(exc).__name__ != "Crashed":
                raise
            finished = False
        for state in fs.crash_states():
            got = opened(SimFS(state)).snapshot()
            assert got == want, called(
                f"WalStore.open() after a crash at step {crash_at} of checkpoint() ({fs.trace[-1:]} done last)",
                got,
                want,
            )
        if finished:
            break
        crash_at += 1
    assert crash_at >= 4, called("counting checkpoint()'s file operations", crash_at, ">= 4")


def test_checkpoint_after_an_interrupted_one_replaces_its_temp_file():
    """A checkpoint after a crashed one replaces whatever data.tmp the crash left behind, whole."""
    commits = [{"a": "1", "b": "2"}, {"b": None, "c": "3"}]
    want = {"a": "1", "c": "3", "d": "4"}
    crash_at, leftovers = 0, 0
    while True:
        fs = SimFS()
        store = opened(fs)
        with step("store.commit(...) twice"):
            for changes in commits:
                store.commit(changes)
        fs.crash_at = fs.count + crash_at
        try:
            with step("store.checkpoint()"):
                store.checkpoint()
            break
        except BaseException as exc:
            if type(exc).__name__ != "Crashed":
                raise
        for state in fs.crash_states(every_byte=False):
            leftovers += TEMP in state
            after = SimFS(state)
            with step(
                f"after a crash at step {crash_at} of checkpoint() (files {sorted(state)}): "
                "WalStore.open(fs); commit({'d': '4'}); checkpoint(); WalStore.open() again"
            ):
                again = WalStore.open(after)
                again.commit({"d": "4"})
                again.checkpoint()
                got = WalStore.open(SimFS(after.durable_view())).snapshot()
            assert got == want, called(
                f"WalStore.open() after a checkpoint that followed a crash at step {crash_at} of "
                f"the previous one, which left {sorted(state)} (data.tmp: {state.get(TEMP, b'')[:40]!r})",
                got,
                f"{want} (write data.tmp afresh: never add to what a crash left in it)",
            )
        crash_at += 1
    assert leftovers > 0, called(
        "store.checkpoint(), crashed at each step",
        "no crash state holds a data.tmp",
        "some do: a checkpoint writes data.tmp, then renames it over data",
    )


def test_reopen_without_a_crash_gives_the_same_map():
    """Opening the same files again after commits and a checkpoint gives the same map."""
    fs = SimFS()
    store = opened(fs)
    with step("commits and a checkpoint"):
        store.commit({"a": "1"})
        store.checkpoint()
        store.commit({"b": "2"})
        store.commit({"a": None})
    got = opened(fs).snapshot()
    assert got == {"b": "2"}, called("WalStore.open(same fs).snapshot()", got, {"b": "2"})


def test_real_disk(tmp_path):
    """The store works on DiskFS: commits, a checkpoint, more commits, reopened from the directory."""
    with step("WalStore.open(DiskFS(tmp_path)) with commits and a checkpoint"):
        store = WalStore.open(DiskFS(tmp_path))
        store.commit({"a": "1", "b": "2"})
        store.checkpoint()
        store.commit({"a": None, "c": "3"})
        got = WalStore.open(DiskFS(tmp_path)).snapshot()
    assert got == {"b": "2", "c": "3"}, called(
        "WalStore.open(DiskFS(dir)).snapshot()", got, {"b": "2", "c": "3"}
    )


@pytest.mark.points(2)
def test_a_crash_during_recovery_loses_nothing():
    """A crash at any file operation of a recovery that cuts a torn tail, or of the commit after it, keeps every returned commit."""
    good = oracle_record(oracle_payload({"a": "1"}))
    torn = oracle_record(oracle_payload({"b": "2"}))[:5]
    crash_at = 0
    while True:
        fs = SimFS({LOG: good + torn}, crash_at=crash_at)
        acked = False
        try:
            with step("WalStore.open(fs) on a torn log, then store.commit({'c': '3'})"):
                WalStore.open(fs).commit({"c": "3"})
            acked = True
        except BaseException as exc:
            if type(exc).__name__ != "Crashed":
                raise
        allowed = [{"a": "1", "c": "3"}] if acked else [{"a": "1"}, {"a": "1", "c": "3"}]
        for state in fs.crash_states():
            got = opened(SimFS(state)).snapshot()
            assert got in allowed, called(
                f"WalStore.open() after recovery + commit crashed before file operation {crash_at}",
                got,
                " or ".join(map(repr, allowed)),
            )
        if acked:
            return
        crash_at += 1
