"""Versions, snapshots, and the transaction life cycle."""

from __future__ import annotations

import pytest
from _helpers import raises
from mvcc import Isolation, SerializationFailure, Store, TransactionClosed

from grader.spectools import called, step

LEVELS = [Isolation.REPEATABLE_READ, Isolation.SERIALIZABLE]
LEVEL_IDS = ["repeatable_read", "serializable"]


@pytest.mark.parametrize("level", LEVELS, ids=LEVEL_IDS)
def test_reads_own_writes(level):
    """A transaction reads its own uncommitted puts and deletes."""
    with step("Store({'a': 1}); t = store.begin(); t.put('b', 2); t.delete('a')"):
        store = Store({"a": 1})
        t = store.begin(level)
        t.put("b", 2)
        t.put("b", 3)
        t.delete("a")
        got = (t.get("a"), t.get("b"), t.scan())
    want = (None, 3, [("b", 3)])
    assert got == want, called(
        "t.get('a'), t.get('b'), t.scan() after t.put('b', 2), t.put('b', 3), t.delete('a')",
        got,
        want,
    )


def test_missing_key_reads_none():
    """get() of a key that was never written returns None."""
    with step("Store().begin().get('nope')"):
        got = Store().begin().get("nope")
    assert got is None, called("Store().begin().get('nope')", got, None)


def test_snapshot_taken_at_begin():
    """A transaction sees what committed before it began, and nothing that committed after."""
    with step("two transactions around a commit"):
        store = Store({"k": "old"})
        early = store.begin()
        writer = store.begin()
        writer.put("k", "new")
        writer.commit()
        late = store.begin()
        got = (early.get("k"), late.get("k"))
    assert got == ("old", "new"), called(
        "early.get('k'), late.get('k') around a commit of k = 'new'", got, ("old", "new")
    )


def test_delete_visible_after_commit():
    """A committed delete hides the key from later transactions' get and scan."""
    with step("delete 'a' and commit, then read in a new transaction"):
        store = Store({"a": 1, "b": 2})
        t = store.begin()
        t.delete("a")
        t.commit()
        r = store.begin()
        got = (r.get("a"), r.scan())
    assert got == (None, [("b", 2)]), called(
        "get('a'), scan() after a committed delete('a')", got, (None, [("b", 2)])
    )


def test_scan_sorted_half_open_range():
    """scan(lo, hi) returns the visible (key, value) pairs with lo <= key < hi, sorted by key."""
    with step("Store({5: 'e', 1: 'a', 3: 'c', 7: 'g'}); t.scan(...)"):
        store = Store({5: "e", 1: "a", 3: "c", 7: "g"})
        t = store.begin()
        got = (t.scan(), t.scan(3, 7), t.scan(None, 3), t.scan(6), t.scan(4, 4))
    want = (
        [(1, "a"), (3, "c"), (5, "e"), (7, "g")],
        [(3, "c"), (5, "e")],
        [(1, "a")],
        [(7, "g")],
        [],
    )
    assert got == want, called(
        "t.scan(), t.scan(3, 7), t.scan(None, 3), t.scan(6), t.scan(4, 4)", got, want
    )


def test_put_none_refused():
    """put(key, None) raises ValueError: None means "absent", use delete()."""
    with step("Store().begin()"):
        t = Store().begin()
    raises(ValueError, "t.put('k', None)", lambda: t.put("k", None))


@pytest.mark.parametrize("op", ["get", "put", "delete", "scan", "commit"])
@pytest.mark.parametrize("end", ["commit", "abort"])
def test_finished_transaction_refuses_operations(end, op):
    """After commit or abort, every operation on the transaction raises TransactionClosed."""
    calls = {
        "get": lambda t: t.get("k"),
        "put": lambda t: t.put("k", 2),
        "delete": lambda t: t.delete("k"),
        "scan": lambda t: t.scan(),
        "commit": lambda t: t.commit(),
    }
    with step(f"t = Store({{'k': 1}}).begin(); t.{end}()"):
        t = Store({"k": 1}).begin()
        getattr(t, end)()
    raises(TransactionClosed, f"t.{op}(...) after t.{end}()", lambda: calls[op](t))


def test_abort_after_commit_refused():
    """abort() after commit() raises TransactionClosed: a commit is final."""
    with step("t = Store().begin(); t.put('k', 1); t.commit()"):
        store = Store()
        t = store.begin()
        t.put("k", 1)
        t.commit()
    raises(TransactionClosed, "t.abort() after t.commit()", t.abort)
    with step("store.begin().get('k')"):
        got = store.begin().get("k")
    assert got == 1, called("store.begin().get('k') after a commit and a refused abort", got, 1)


def test_abort_after_failure_is_harmless():
    """After a SerializationFailure the transaction is aborted; abort() on it is a no-op."""
    with step("two writers of one key"):
        store = Store({"k": 0})
        t1, t2 = store.begin(), store.begin()
        t1.put("k", 1)
    raises(
        SerializationFailure,
        "t2.put('k', 2) while t1 holds an uncommitted version of k",
        lambda: t2.put("k", 2),
    )
    with step("t2.abort(); t1.commit()"):
        t2.abort()
        t2.abort()
        t1.commit()
    raises(TransactionClosed, "t2.get('k') after its SerializationFailure", lambda: t2.get("k"))


def test_abort_releases_the_key():
    """After a writer aborts, its versions are gone: another transaction writes the key and commits."""
    with step("t1.put('k', 1); t1.abort(); t2.put('k', 2); t2.commit()"):
        store = Store({"k": 0})
        t1, t2 = store.begin(), store.begin()
        t1.put("k", 1)
        t1.abort()
        t2.put("k", 2)
        t2.commit()
        got = store.begin().get("k")
    assert got == 2, called("get('k') after t1 aborted and t2 committed k = 2", got, 2)


@pytest.mark.parametrize("level", LEVELS, ids=LEVEL_IDS)
def test_serial_transactions_never_fail(level):
    """Transactions that run one after another never get a SerializationFailure."""
    with step(f"30 read-modify-write transactions run one at a time at {level.value}"):
        store = Store({k: 0 for k in range(3)})
        model = {k: 0 for k in range(3)}
        for i in range(30):
            t = store.begin(level)
            rows = t.scan()
            t.put(i % 3, sum(v for _, v in rows) + 1)
            t.get((i + 1) % 3)
            t.commit()
            model[i % 3] = sum(model.values()) + 1
        got = store.begin().scan()
    want = sorted(model.items())
    assert got == want, called(
        "store.begin().scan() after 30 serial read-modify-write transactions", got, want
    )


def test_begin_defaults_to_repeatable_read():
    """begin() without an argument starts a REPEATABLE READ transaction: a write skew commits."""
    with step("t1, t2 = store.begin(), store.begin(); each reads both keys, writes one"):
        store = Store({"a": 1, "b": 1})
        t1, t2 = store.begin(), store.begin()
        t1.get("a"), t1.get("b"), t2.get("a"), t2.get("b")
        t1.put("a", 0)
        t2.put("b", 0)
        t1.commit()
        t2.commit()
        got = store.begin().scan()
    assert got == [("a", 0), ("b", 0)], called(
        "a write skew of two store.begin() transactions (no isolation argument)",
        got,
        "both commit: [('a', 0), ('b', 0)] (snapshot isolation allows write skew)",
    )
