"""REPEATABLE READ is snapshot isolation: generated interleavings checked step by step against a model.

The model keeps the committed table and, per transaction, the snapshot it began with and its
own writes. Every read must return snapshot + own writes; a write must fail exactly when
another transaction that is still running, or that committed after this one began, wrote the
same key (first committer wins, checked at write time, no waiting); the final table must be
the committed writes applied in commit order.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from mvcc import Isolation, SerializationFailure, Store

from grader.spectools import called, step

KEYS = (0, 1, 2)
OP = st.one_of(
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("put"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("scan"), st.none()),
)


@st.composite
def histories(draw):
    programs = draw(st.lists(st.lists(OP, min_size=1, max_size=4), min_size=2, max_size=4))
    slots = [i for i, prog in enumerate(programs) for _ in range(len(prog) + 2)]
    return programs, draw(st.permutations(slots))


ABSENT = object()


def check(programs, order):
    initial = {0: 0, 1: 0}
    store = Store(dict(initial))
    committed = dict(initial)
    clock = 0
    begun, commit_at, snapshot, own = {}, {}, {}, {}
    txns, pos, failed, trace = {}, [0] * len(programs), set(), []

    def visible(i, key):
        value = own[i].get(key, ABSENT)
        return snapshot[i].get(key) if value is ABSENT else value

    for i in order:
        p = pos[i]
        pos[i] += 1
        if i in failed:
            continue
        history = "; ".join(trace) or "(start)"
        if p == 0:
            with step(f"store.begin() after: {history}"):
                txns[i] = store.begin(Isolation.REPEATABLE_READ)
            begun[i], snapshot[i], own[i] = clock, dict(committed), {}
            trace.append(f"T{i}.begin")
            continue
        if p == len(programs[i]) + 1:
            with step(f"T{i}.commit() after: {history}"):
                txns[i].commit()
            clock += 1
            commit_at[i] = clock
            for key, value in own[i].items():
                if value is None:
                    committed.pop(key, None)
                else:
                    committed[key] = value
            trace.append(f"T{i}.commit")
            continue
        kind, key = programs[i][p - 1]
        t = txns[i]
        if kind == "get":
            with step(f"T{i}.get({key}) after: {history}"):
                got = t.get(key)
            want = visible(i, key)
            assert got == want, called(f"T{i}.get({key}) after: {history}", got, want)
            trace.append(f"T{i}.get({key})->{got}")
        elif kind == "scan":
            with step(f"T{i}.scan() after: {history}"):
                got = t.scan()
            keys = set(snapshot[i]) | set(own[i])
            want = [(k, visible(i, k)) for k in sorted(keys) if visible(i, k) is not None]
            assert got == want, called(f"T{i}.scan() after: {history}", got, want)
            trace.append(f"T{i}.scan()->{got}")
        else:
            value = 100 * (i + 1) + p if kind == "put" else None
            call = f"T{i}.put({key}, {value})" if kind == "put" else f"T{i}.delete({key})"
            rivals = [
                j
                for j in own
                if j != i
                and j not in failed
                and key in own[j]
                and (j not in commit_at or commit_at[j] > begun[i])
            ]
            with step(f"{call} after: {history}"):
                try:
                    t.put(key, value) if kind == "put" else t.delete(key)
                    raised = False
                except SerializationFailure:
                    raised = True
            want = "SerializationFailure" if rivals else "no exception"
            got = "SerializationFailure" if raised else "no exception"
            assert got == want, called(
                f"{call} after: {history} (concurrent writers of {key}: {[f'T{j}' for j in rivals]})",
                got,
                want,
            )
            if raised:
                failed.add(i)
                trace.append(f"{call} -> SerializationFailure")
            else:
                own[i][key] = value
                trace.append(call)
    with step(f"a fresh transaction's scan() after: {'; '.join(trace)}"):
        final = dict(store.begin().scan())
    assert final == committed, called(
        f"a fresh transaction's scan() after: {'; '.join(trace)}", final, committed
    )


# Write skew: both commit at repeatable read.
WRITE_SKEW = (
    [[("get", 0), ("get", 1), ("put", 0)], [("get", 0), ("get", 1), ("put", 1)]],
    [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
)
# A write after a concurrent writer of the same key committed: fails.
COMMITTED_RIVAL = ([[("put", 0)], [("get", 0), ("put", 0)]], [1, 0, 0, 0, 1, 1, 1])
# A write after the rival aborted... here: after the rival failed; and a delete then re-insert.
DELETE_REINSERT = (
    [[("delete", 0), ("put", 0), ("get", 0)], [("scan", None), ("put", 2)]],
    [0, 1, 0, 0, 1, 1, 0, 0, 1],
)


@settings(max_examples=150)
@given(histories())
@example(WRITE_SKEW)
@example(COMMITTED_RIVAL)
@example(DELETE_REINSERT)
def test_repeatable_read_is_snapshot_isolation(history):
    """At REPEATABLE READ, reads come from the snapshot and a write fails exactly on a concurrent writer of its key."""
    check(*history)
