"""Helpers for the mvcc specs: a step-by-step schedule driver and the Hermitage cases.

The cases are ported from Hermitage (Martin Kleppmann, https://github.com/ept/hermitage,
postgres.md, run against PostgreSQL 9.3.5): the schedules and PostgreSQL's outcomes at
"repeatable read" and "serializable". Table: `test (id, value)` = {1: 10, 2: 20}; a
transaction T1, T2, ... is a handle the driver calls step by step. Where PostgreSQL blocks a
write on another's uncommitted row, the kata fails that write at once (the lesson explains
why); the victim is the transaction PostgreSQL aborts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mvcc import Isolation, SerializationFailure, Store

from grader.spectools import called, short, step

INITIAL = {1: 10, 2: 20}
FAILED = object()  # what a step returns when its transaction got a SerializationFailure


class Schedule:
    """Drive several transactions of one Store step by step, recording what happened."""

    def __init__(self, level: Isolation, initial: dict[Any, Any] | None = None) -> None:
        self.level = level
        initial = dict(INITIAL if initial is None else initial)
        with step(f"Store({initial!r})"):
            self.store = Store(initial)
        self.tx: dict[str, Any] = {}
        self.failed: dict[str, str] = {}  # name -> the step that raised SerializationFailure
        self.trace: list[str] = []

    def history(self) -> str:
        return "; ".join(self.trace) or "(nothing yet)"

    def begin(self, name: str) -> None:
        with step(f"store.begin({self.level}) after: {self.history()}"):
            self.tx[name] = self.store.begin(self.level)
        self.trace.append(f"{name}.begin")

    def run(self, name: str, text: str, fn: Callable[[Any], Any]) -> Any:
        if name in self.failed:
            self.trace.append(f"{name}.{text} skipped")
            return FAILED
        with step(f"{name}.{text} after: {self.history()}"):
            try:
                result = fn(self.tx[name])
            except SerializationFailure:
                self.failed[name] = text
                self.trace.append(f"{name}.{text} -> SerializationFailure")
                return FAILED
        self.trace.append(
            f"{name}.{text} -> {short(result, 60)}" if result is not None else f"{name}.{text}"
        )
        return result

    def get(self, name: str, key: Any) -> Any:
        return self.run(name, f"get({key!r})", lambda t: t.get(key))

    def put(self, name: str, key: Any, value: Any) -> Any:
        return self.run(name, f"put({key!r}, {value!r})", lambda t: t.put(key, value))

    def delete(self, name: str, key: Any) -> Any:
        return self.run(name, f"delete({key!r})", lambda t: t.delete(key))

    def scan(self, name: str, where: Callable[[Any], bool] = lambda v: True) -> Any:
        rows = self.run(name, "scan()", lambda t: t.scan())
        return rows if rows is FAILED else [(k, v) for k, v in rows if where(v)]

    def commit(self, name: str) -> Any:
        return self.run(name, "commit()", lambda t: t.commit())

    def abort(self, name: str) -> None:
        if name not in self.failed:
            self.run(name, "abort()", lambda t: t.abort())

    def saw(self, got: Any, want: Any, what: str) -> None:
        """A read returned what PostgreSQL returns (unless its transaction failed there)."""
        if got is not FAILED:
            assert got == want, called(f"{what} in the schedule {self.history()}", got, want)

    def final(self) -> dict[Any, Any]:
        with step(f"a fresh transaction's scan() after: {self.history()}"):
            reader = self.store.begin(Isolation.REPEATABLE_READ)
            rows = dict(reader.scan())
            reader.commit()
        return rows


RR, SER = Isolation.REPEATABLE_READ, Isolation.SERIALIZABLE


# Each case drives a schedule; OUTCOMES says, per level, which transactions fail and what the
# table holds afterwards (a list when either of two victims is correct).


def g0(s: Schedule) -> None:
    """G0 write cycles: T2's write to a row T1 wrote (uncommitted) fails."""
    s.begin("T1"), s.begin("T2")
    s.put("T1", 1, 11)
    s.put("T2", 1, 12)  # PostgreSQL: blocks, then fails when T1 commits
    s.put("T1", 2, 21)
    s.commit("T1")
    s.put("T2", 2, 22)
    s.commit("T2")


def g1a(s: Schedule) -> None:
    """G1a aborted reads: T2 never sees T1's write, which T1 aborts."""
    s.begin("T1"), s.begin("T2")
    s.put("T1", 1, 101)
    s.saw(s.get("T2", 1), 10, "T2.get(1)")
    s.abort("T1")
    s.saw(s.get("T2", 1), 10, "T2.get(1)")
    s.commit("T2")


def g1b(s: Schedule) -> None:
    """G1b intermediate reads: T2 never sees T1's intermediate value."""
    s.begin("T1"), s.begin("T2")
    s.put("T1", 1, 101)
    s.saw(s.get("T2", 1), 10, "T2.get(1)")
    s.put("T1", 1, 11)
    s.commit("T1")
    s.saw(s.get("T2", 1), 10, "T2.get(1)")  # a snapshot: still 10 at repeatable read
    s.commit("T2")


def g1c(s: Schedule) -> None:
    """G1c circular information flow: neither transaction reads the other's uncommitted write."""
    s.begin("T1"), s.begin("T2")
    s.put("T1", 1, 11)
    s.put("T2", 2, 22)
    s.saw(s.get("T1", 2), 20, "T1.get(2)")
    s.saw(s.get("T2", 1), 10, "T2.get(1)")
    s.commit("T1")
    s.commit("T2")


def otv(s: Schedule) -> None:
    """OTV observed transaction vanishes: T3 sees all of T1 or none of it, and nothing of T2."""
    s.begin("T1"), s.begin("T2"), s.begin("T3")
    s.put("T1", 1, 11)
    s.put("T1", 2, 19)
    s.put("T2", 1, 12)  # PostgreSQL: blocks, then fails when T1 commits
    s.commit("T1")
    s.saw(s.get("T3", 1), 10, "T3.get(1)")
    s.put("T2", 2, 18)
    s.saw(s.get("T3", 2), 20, "T3.get(2)")
    s.commit("T2")
    s.saw(s.get("T3", 2), 20, "T3.get(2)")
    s.saw(s.get("T3", 1), 10, "T3.get(1)")
    s.commit("T3")


def pmp(s: Schedule) -> None:
    """PMP predicate-many-preceders: a predicate read does not see a row inserted after the snapshot."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.scan("T1", lambda v: v == 30), [], "T1.scan() where value = 30")
    s.put("T2", 3, 30)
    s.commit("T2")
    s.saw(s.scan("T1", lambda v: v % 3 == 0), [], "T1.scan() where value % 3 = 0")
    s.commit("T1")


def pmp_write(s: Schedule) -> None:
    """PMP for write predicates: T2's delete of a row T1 updated fails."""
    s.begin("T1"), s.begin("T2")
    rows = s.scan("T1")
    for key, value in [] if rows is FAILED else rows:
        s.put("T1", key, value + 10)
    rows = s.scan("T2", lambda v: v == 20)
    s.saw(rows, [(2, 20)], "T2.scan() where value = 20")
    for key, _ in [] if rows is FAILED else rows:
        s.delete("T2", key)  # PostgreSQL: blocks, then fails when T1 commits
    s.commit("T1")
    s.commit("T2")


def p4(s: Schedule) -> None:
    """P4 lost update: the second of two read-modify-writes of a row fails."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.get("T1", 1), 10, "T1.get(1)")
    s.saw(s.get("T2", 1), 10, "T2.get(1)")
    s.put("T1", 1, 11)
    s.put("T2", 1, 11)  # PostgreSQL: blocks, then fails when T1 commits
    s.commit("T1")
    s.commit("T2")


def g_single(s: Schedule) -> None:
    """G-single read skew: T1 reads both rows from one snapshot."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.get("T1", 1), 10, "T1.get(1)")
    s.get("T2", 1), s.get("T2", 2)
    s.put("T2", 1, 12)
    s.put("T2", 2, 18)
    s.commit("T2")
    s.saw(s.get("T1", 2), 20, "T1.get(2)")
    s.commit("T1")


def g_single_predicate(s: Schedule) -> None:
    """G-single with predicate reads: T1's second predicate read uses the first one's snapshot."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.scan("T1", lambda v: v % 5 == 0), [(1, 10), (2, 20)], "T1.scan() where value % 5 = 0")
    rows = s.scan("T2", lambda v: v == 10)
    for key, _ in [] if rows is FAILED else rows:
        s.put("T2", key, 12)
    s.commit("T2")
    s.saw(s.scan("T1", lambda v: v % 3 == 0), [], "T1.scan() where value % 3 = 0")
    s.commit("T1")


def g_single_write(s: Schedule) -> None:
    """G-single with a write predicate: T1's delete of a row T2 changed after T1's snapshot fails."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.get("T1", 1), 10, "T1.get(1)")
    s.scan("T2")
    s.put("T2", 1, 12)
    s.put("T2", 2, 18)
    s.commit("T2")
    rows = s.scan("T1", lambda v: v == 20)
    s.saw(rows, [(2, 20)], "T1.scan() where value = 20")
    for key, _ in [] if rows is FAILED else rows:
        s.delete("T1", key)
    s.commit("T1")


def g2_item(s: Schedule) -> None:
    """G2-item write skew: each reads both rows and updates a different one."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.scan("T1"), [(1, 10), (2, 20)], "T1.scan()")
    s.saw(s.scan("T2"), [(1, 10), (2, 20)], "T2.scan()")
    s.put("T1", 1, 11)
    s.put("T2", 2, 21)
    s.commit("T1")
    s.commit("T2")


def g2(s: Schedule) -> None:
    """G2 anti-dependency cycle: each reads a predicate and inserts a row that matches the other's."""
    s.begin("T1"), s.begin("T2")
    s.saw(s.scan("T1", lambda v: v % 3 == 0), [], "T1.scan() where value % 3 = 0")
    s.saw(s.scan("T2", lambda v: v % 3 == 0), [], "T2.scan() where value % 3 = 0")
    s.put("T1", 3, 30)
    s.put("T2", 4, 42)
    s.commit("T1")
    s.commit("T2")


def g2_two_edges(s: Schedule) -> None:
    """G2 with two anti-dependency edges (Fekete et al.): a read-only T3 sees a state no serial order gives."""
    s.begin("T1")
    s.saw(s.scan("T1"), [(1, 10), (2, 20)], "T1.scan()")
    s.begin("T2")
    value = s.get("T2", 2)
    s.put("T2", 2, (20 if value is FAILED else value) + 5)
    s.commit("T2")
    s.begin("T3")
    s.saw(s.scan("T3"), [(1, 10), (2, 25)], "T3.scan()")
    s.commit("T3")
    s.put("T1", 1, 0)
    s.commit("T1")


T = frozenset

# case id -> (schedule, {level: [(failed transactions, final table), ...]})
CASES: dict[
    str, tuple[Callable[[Schedule], None], dict[Isolation, list[tuple[frozenset, dict]]]]
] = {}


def _case(cid: str, fn: Callable[[Schedule], None], rr: list, ser: list | None = None) -> None:
    CASES[cid] = (fn, {RR: rr, SER: rr if ser is None else ser})


_case("G0", g0, [(T({"T2"}), {1: 11, 2: 21})])
_case("G1a", g1a, [(T(), {1: 10, 2: 20})])
_case("G1b", g1b, [(T(), {1: 11, 2: 20})])
# Hermitage runs G1c at read committed only. At repeatable read both commit (snapshot
# isolation, no write-write conflict); at serializable the schedule is also a write skew
# (each read a row the other overwrote), so SSI must abort one of them: either is correct.
_case(
    "G1c",
    g1c,
    [(T(), {1: 11, 2: 22})],
    [(T({"T2"}), {1: 11, 2: 20}), (T({"T1"}), {1: 10, 2: 22})],
)
_case("OTV", otv, [(T({"T2"}), {1: 11, 2: 19})])
_case("PMP", pmp, [(T(), {1: 10, 2: 20, 3: 30})])
_case("PMP-write", pmp_write, [(T({"T2"}), {1: 20, 2: 30})])
_case("P4", p4, [(T({"T2"}), {1: 11, 2: 20})])
_case("G-single", g_single, [(T(), {1: 12, 2: 18})])
_case("G-single-predicate", g_single_predicate, [(T(), {1: 12, 2: 20})])
_case("G-single-write", g_single_write, [(T({"T1"}), {1: 12, 2: 18})])
_case("G2-item", g2_item, [(T(), {1: 11, 2: 21})], [(T({"T2"}), {1: 11, 2: 20})])
_case("G2", g2, [(T(), {1: 10, 2: 20, 3: 30, 4: 42})], [(T({"T2"}), {1: 10, 2: 20, 3: 30})])
_case("G2-two-edges", g2_two_edges, [(T(), {1: 0, 2: 25})], [(T({"T1"}), {1: 10, 2: 25})])


def raises(expected: type[BaseException], call: str, fn: Callable[[], Any]) -> None:
    """fn() raises expected; anything else fails with a message naming call."""
    try:
        result = fn()
    except expected:
        return
    except (AssertionError, NotImplementedError):
        raise
    except Exception as exc:
        raise AssertionError(
            called(call, f"raised {type(exc).__name__}: {exc}", expected.__name__)
        ) from exc
    raise AssertionError(called(call, result, f"{expected.__name__} raised"))
