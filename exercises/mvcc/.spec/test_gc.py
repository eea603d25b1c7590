"""Garbage collection: versions no snapshot can see are reclaimed, and only those (counted)."""

from __future__ import annotations

import contextlib

from mvcc import SerializationFailure, Store

from grader.spectools import called, step


def overwrite(store: Store, key, values) -> None:
    for value in values:
        t = store.begin()
        t.put(key, value)
        t.commit()


def test_gc_reclaims_overwritten_versions():
    """With no transaction running, gc() keeps one version per key and returns how many it reclaimed."""
    with step("Store({'k': 0, 'j': 0}); ten committed overwrites of 'k'; store.gc()"):
        store = Store({"k": 0, "j": 0})
        overwrite(store, "k", range(1, 11))
        before = store.version_count()
        reclaimed = store.gc()
        after = store.version_count()
        value = store.begin().get("k")
    got = (before, reclaimed, after, value)
    assert got == (12, 10, 2, 10), called(
        "version_count(), gc(), version_count(), get('k')", got, (12, 10, 2, 10)
    )


def test_gc_twice_reclaims_nothing_more():
    """A second gc() with nothing new to reclaim returns 0."""
    with step("overwrite 'k' three times; store.gc(); store.gc()"):
        store = Store({"k": 0})
        overwrite(store, "k", [1, 2, 3])
        store.gc()
        got = store.gc()
    assert got == 0, called("store.gc() a second time", got, 0)


def test_gc_keeps_what_a_live_snapshot_sees():
    """gc() never reclaims a version a running transaction can still read."""
    with step("old = store.begin(); overwrite 'k' five times; store.gc()"):
        store = Store({"k": 0})
        old = store.begin()
        overwrite(store, "k", range(1, 6))
        middle = store.begin()
        overwrite(store, "k", range(6, 9))
        before = store.version_count()
        reclaimed = store.gc()
        after = store.version_count()
        got = (old.get("k"), middle.get("k"), store.begin().get("k"))
    assert got == (0, 5, 8), called(
        "old.get('k'), middle.get('k'), new.get('k') after gc()", got, (0, 5, 8)
    )
    assert before - after == reclaimed, called(
        "store.gc()", reclaimed, f"the drop in version_count() ({before} -> {after})"
    )


def test_gc_reclaims_once_the_old_snapshot_ends():
    """When the oldest transaction ends, gc() reclaims the versions only it could see."""
    with step("old = store.begin(); overwrite 'k' five times; old.commit(); store.gc()"):
        store = Store({"k": 0})
        old = store.begin()
        overwrite(store, "k", range(1, 6))
        store.gc()
        old.get("k")
        old.commit()
        store.gc()
        got = (store.version_count(), store.begin().get("k"))
    assert got == (1, 5), called(
        "version_count(), get('k') after the old transaction ended and gc()", got, (1, 5)
    )


def test_gc_removes_deleted_keys():
    """A delete every snapshot sees is reclaimed along with every version before it: nothing is left."""
    with step("put 'k', delete 'k', commit both; store.gc()"):
        store = Store({"k": 0, "j": 1})
        t = store.begin()
        t.delete("k")
        t.commit()
        reclaimed = store.gc()
        got = (reclaimed, store.version_count(), store.begin().scan())
    assert got == (2, 1, [("j", 1)]), called(
        "gc(), version_count(), scan() after a committed delete", got, (2, 1, [("j", 1)])
    )


def test_gc_keeps_deleted_value_for_old_snapshot():
    """A snapshot older than a delete still reads the deleted value after gc()."""
    with step("old = store.begin(); delete 'k' and commit; store.gc()"):
        store = Store({"k": 0})
        old = store.begin()
        t = store.begin()
        t.delete("k")
        t.commit()
        store.gc()
        got = old.get("k")
    assert got == 0, called("old.get('k') after a later delete and gc()", got, 0)


def test_gc_keeps_uncommitted_versions():
    """gc() leaves an uncommitted write in place; it commits and is read afterwards."""
    with step("t.put('k', 1) uncommitted; store.gc(); t.commit()"):
        store = Store({"k": 0})
        t = store.begin()
        t.put("k", 1)
        store.gc()
        t.commit()
        store.gc()
        got = (store.begin().get("k"), store.version_count())
    assert got == (1, 1), called("get('k'), version_count() after gc(), commit, gc()", got, (1, 1))


def test_aborted_versions_do_not_stay():
    """The versions an aborted transaction wrote are gone after abort() and gc()."""
    with step("t writes 50 keys and aborts; store.gc()"):
        store = Store({"k": 0})
        t = store.begin()
        for i in range(50):
            t.put(i, i)
        t.abort()
        store.gc()
        got = store.version_count()
    assert got == 1, called("version_count() after 50 aborted puts and gc()", got, 1)


def test_gc_not_held_back_by_ended_transactions():
    """A transaction that aborted, or failed with SerializationFailure, no longer holds back gc()."""
    with step("one transaction aborts, one fails on a write conflict; overwrite 'k' three times"):
        store = Store({"k": 0, "j": 0})
        quitter, loser, winner = store.begin(), store.begin(), store.begin()
        quitter.get("k")
        quitter.abort()
        winner.put("j", 1)
        with contextlib.suppress(SerializationFailure):
            loser.put("j", 2)
        winner.commit()
        overwrite(store, "k", [1, 2, 3])
        reclaimed = store.gc()
        got = (reclaimed, store.version_count())
    assert got == (4, 2), called(
        "gc(), version_count() with no transaction running (one aborted, one failed)",
        got,
        "(4, 2): one version per key left; an ended transaction's snapshot is no horizon",
    )


def test_version_count_includes_delete_markers():
    """version_count() counts a delete marker as a version."""
    with step("Store({'k': 0}); t.delete('k'); t.commit()"):
        store = Store({"k": 0})
        t = store.begin()
        t.delete("k")
        t.commit()
        got = store.version_count()
    assert got == 2, called(
        "version_count() after a committed delete of 'k', before gc()",
        got,
        "2 (the value and the delete marker)",
    )


def test_abort_after_rewrites_leaves_no_version():
    """A transaction that writes one key several times and aborts leaves no version of it behind."""
    with step("t.put('k', 1); t.put('k', 2); t.delete('k'); t.put('k', 3); t.abort(); store.gc()"):
        store = Store({"k": 0})
        t = store.begin()
        t.put("k", 1)
        t.put("k", 2)
        t.delete("k")
        t.put("k", 3)
        t.abort()
        store.gc()
        count = store.version_count()
    assert count == 1, called("version_count() after the abort and gc()", count, 1)
    with step("a new transaction writes 'k' and commits"):
        t2 = store.begin()
        t2.put("k", 4)
        t2.commit()
        got = store.begin().get("k")
    assert got == 4, called("get('k') after the abort and a new put('k', 4)", got, 4)
