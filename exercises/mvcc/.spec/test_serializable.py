"""SERIALIZABLE: every history of committed transactions is equivalent to some serial order.

The oracle is a brute-force search: replay the committed transactions one after another in
every order, and accept if some order gives each transaction the values it read and the
store its final contents.
"""

from __future__ import annotations

import contextlib
import itertools

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mvcc import Isolation, SerializationFailure, Store, TransactionClosed

from grader.spectools import called, step

KEYS = (0, 1, 2)
OP = st.one_of(
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("put"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("scan"), st.none()),
)
PROGRAMS = st.lists(st.lists(OP, min_size=1, max_size=4), min_size=2, max_size=4)


@st.composite
def histories(draw):
    programs = draw(PROGRAMS)
    # Each transaction: begin, its ops, commit; the schedule interleaves them in order.
    slots = [i for i, prog in enumerate(programs) for _ in range(len(prog) + 2)]
    order = draw(st.permutations(slots))
    return programs, order


def run(programs, order):
    store = Store({0: 0, 1: 0})
    txns, pos, failed = {}, [0] * len(programs), set()
    reads = {i: [] for i in range(len(programs))}
    writes = {i: [] for i in range(len(programs))}
    trace = []
    for i in order:
        p = pos[i]
        pos[i] += 1
        if i in failed:
            continue
        try:
            if p == 0:
                txns[i] = store.begin(Isolation.SERIALIZABLE)
                trace.append(f"T{i}.begin")
            elif p == len(programs[i]) + 1:
                txns[i].commit()
                trace.append(f"T{i}.commit")
            else:
                kind, key = programs[i][p - 1]
                t = txns[i]
                if kind == "get":
                    got = t.get(key)
                    reads[i].append(("get", key, got))
                    trace.append(f"T{i}.get({key})->{got}")
                elif kind == "scan":
                    got = t.scan()
                    reads[i].append(("scan", None, got))
                    trace.append(f"T{i}.scan()->{got}")
                elif kind == "put":
                    value = 100 * (i + 1) + p
                    t.put(key, value)
                    writes[i].append((key, value))
                    trace.append(f"T{i}.put({key}, {value})")
                else:
                    t.delete(key)
                    writes[i].append((key, None))
                    trace.append(f"T{i}.delete({key})")
        except SerializationFailure:
            failed.add(i)
            trace.append(f"T{i} -> SerializationFailure")
    final = dict(store.begin().scan())
    committed = [i for i in range(len(programs)) if i not in failed]
    return programs, committed, reads, final, "; ".join(trace)


def replay(programs, serial):
    """Run the programs one after another on a dict; return each one's reads and the final dict."""
    state = {0: 0, 1: 0}
    reads = {}
    for i in serial:
        got = []
        for p, (kind, key) in enumerate(programs[i], start=1):
            if kind == "get":
                got.append(("get", key, state.get(key)))
            elif kind == "scan":
                got.append(("scan", None, sorted(state.items())))
            elif kind == "put":
                state[key] = 100 * (i + 1) + p
            else:
                state.pop(key, None)
        reads[i] = got
    return reads, state


def serializable(programs, committed, reads, final):
    for serial in itertools.permutations(committed):
        want_reads, want_final = replay(programs, serial)
        if want_final == final and all(want_reads[i] == reads[i] for i in committed):
            return True
    return False


# Write skew: each reads both keys, writes one.
WRITE_SKEW = (
    [[("get", 0), ("get", 1), ("put", 0)], [("get", 0), ("get", 1), ("put", 1)]],
    [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
)
# Fekete et al.'s read-only anomaly: T0 reads, T1 writes 1 and commits, T2 reads all, T0 writes 0.
READ_ONLY = (
    [[("scan", None), ("put", 0)], [("get", 1), ("put", 1)], [("scan", None)]],
    [0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 0],
)
# A predicate read and an insert of a new key on each side (Hermitage G2).
PHANTOMS = (
    [[("scan", None), ("put", 2)], [("scan", None), ("delete", 0)]],
    [0, 1, 0, 1, 0, 1, 0, 1],
)

# T0 reads 0 and writes 1; T1 overwrites 0 and commits; T2 reads 0 (T1's) and 1 (not T0's):
# T2 -rw-> T0 -rw-> T1 makes T0 a pivot through T2's read, so T0 must fail at its commit.
ACTIVE_PIVOT = (
    [[("get", 0), ("put", 1)], [("put", 0)], [("get", 0), ("get", 1)]],
    [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 0],
)
# The same, but T0 commits before T2's reads: the pivot is committed, so T2 must fail.
COMMITTED_PIVOT = (
    [[("get", 0), ("put", 1)], [("put", 0)], [("get", 0), ("get", 1)]],
    [0, 0, 0, 1, 1, 1, 2, 0, 2, 2, 2],
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
@example(WRITE_SKEW)
@example(READ_ONLY)
@example(PHANTOMS)
@example(ACTIVE_PIVOT)
@example(COMMITTED_PIVOT)
def test_serializable_histories_have_a_serial_order(history):
    """At SERIALIZABLE, the committed transactions of any interleaving read and write as in some serial order."""
    programs, order = history
    with step(f"the interleaving {order} of {programs}"):
        programs, committed, reads, final, trace = run(programs, order)
    assert serializable(programs, committed, reads, final), called(
        f"the history {trace}; committed {[f'T{i}' for i in committed]}, final {final}",
        "no serial order of the committed transactions gives these reads and this final state",
        "some serial order (SSI must abort a transaction in a dangerous structure)",
    )


def _at_most_one_commits(setup: str, reads, writes) -> None:
    """Two SERIALIZABLE transactions each read, then each write, then commit: not both may commit."""
    store = Store({0: 0, 1: 0})
    txns = [store.begin(Isolation.SERIALIZABLE), store.begin(Isolation.SERIALIZABLE)]
    committed = []
    for ops in (reads, writes):
        for t, op in zip(txns, ops, strict=True):
            with contextlib.suppress(SerializationFailure, TransactionClosed):
                op(t)  # a transaction that fails here will not commit
    for name, t in zip(("T1", "T2"), txns, strict=True):
        try:
            t.commit()
            committed.append(name)
        except (SerializationFailure, TransactionClosed):
            pass
    assert committed != ["T1", "T2"], called(
        setup, "both committed", "a SerializationFailure for one of them (an rw-cycle)"
    )


def test_absent_key_read_conflicts_with_its_insert():
    """A get() that finds nothing is a read: a concurrent insert of that key is an rw-antidependency."""
    with step("T1.get(3); T2.get(4); T1.put(4, 1); T2.put(3, 1); commit both"):
        _at_most_one_commits(
            "T1.get(3) -> None; T2.get(4) -> None; T1.put(4, 1); T2.put(3, 1); T1.commit(); T2.commit()",
            (lambda t: t.get(3), lambda t: t.get(4)),
            (lambda t: t.put(4, 1), lambda t: t.put(3, 1)),
        )


def test_bounded_scan_conflicts_with_inserts_at_its_bounds():
    """scan(lo, hi) conflicts with a later insert of any key in lo <= key < hi, lo and hi - 1 included."""
    with step("T1.scan(3, 5); T2.scan(3, 5); T1.put(3, 1); T2.put(4, 1); commit both"):
        _at_most_one_commits(
            "T1.scan(3, 5) -> []; T2.scan(3, 5) -> []; T1.put(3, 1); T2.put(4, 1); commit both",
            (lambda t: t.scan(3, 5), lambda t: t.scan(3, 5)),
            (lambda t: t.put(3, 1), lambda t: t.put(4, 1)),
        )


def test_committed_reader_outlives_gc():
    """gc() keeps a committed reader's reads while it overlaps a running transaction (Fekete's read-only anomaly)."""
    with step("T1.scan(); T2 writes 1 and commits; T3.scan() commits; store.gc()"):
        store = Store({0: 0, 1: 0})
        t1 = store.begin(Isolation.SERIALIZABLE)
        t1.scan()
        t2 = store.begin(Isolation.SERIALIZABLE)
        t2.put(1, 5)
        t2.commit()
        t3 = store.begin(Isolation.SERIALIZABLE)
        seen = t3.scan()
        t3.commit()
        store.gc()
    outcome = "committed"
    with step("T1.put(0, 9); T1.commit()"):
        try:
            t1.put(0, 9)
            t1.commit()
        except SerializationFailure:
            outcome = "SerializationFailure"
    assert outcome == "SerializationFailure", called(
        f"T1.put(0, 9); T1.commit() after T3 read {seen} and committed, then store.gc()",
        outcome,
        "SerializationFailure (T3 -rw-> T1 -rw-> T2: T1 is a pivot; gc() must not forget T3's reads)",
    )
