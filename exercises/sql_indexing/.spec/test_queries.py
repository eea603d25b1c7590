"""Hidden specs for the read half: results, plans and work of each query on 200 000 orders.

Three checks per query, each against an independent oracle measured in the same run:

* results: the learner's rows equal those of a plain reference query on an unindexed copy of
  the same database (for orders_on_day the reference is the slow ``date()`` formulation);
* plan: ``EXPLAIN QUERY PLAN`` of the SQL the learner's function ran (captured with a trace
  callback) shows the access path the lesson asks for;
* work: the virtual-machine instructions the call executed, counted by a progress handler,
  are a small fraction of the reference query's on the unindexed copy. VM steps do not depend
  on the machine's load, and the margin is wide (the lesson's solution does 20x to 1000x
  better than the bar).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import pytest
import sql_indexing
from _helpers import (
    STEP,
    T0,
    TABLES,
    automatic,
    build_shop,
    connect,
    copy_db,
    counted,
    index_scans,
    partial_indexes,
    plan,
    searches,
    show,
    sorts,
    table_scans,
)

from grader.spectools import called, short, step


def email(i: int) -> str:
    return f"user{i}@mail{i % 97}.example"


@dataclass(frozen=True)
class Case:
    id: str
    func: str
    args: tuple
    ref_sql: str
    ref_args: tuple
    one: bool = False  # the reference is fetchone(), not fetchall()

    def call_text(self) -> str:
        return f"{self.func}(conn, {', '.join(short(a, 40) for a in self.args)})"


DAY = dt.date(2024, 5, 5)
LATE = T0 + 600 * 86_400

FIND = "SELECT id, email, country FROM users WHERE email = ?"
RECENT = (
    "SELECT id, total_cents, created_at FROM orders WHERE user_id = ? AND status = ?"
    " AND created_at >= ? ORDER BY created_at, id"
)
SPEND = (
    "SELECT status, count(*), sum(total_cents) FROM orders WHERE user_id = ?"
    " GROUP BY status ORDER BY status"
)
PENDING = (
    "SELECT id, user_id, created_at FROM orders WHERE status = 'pending'"
    " ORDER BY created_at, id LIMIT ?"
)
NEWEST = (
    "SELECT id, email, created_at FROM users WHERE country = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)
JOINED = (
    "SELECT o.id, o.status, o.total_cents FROM orders AS o"
    " WHERE o.user_id IN (SELECT id FROM users WHERE email = ?) ORDER BY o.id"
)
ON_DAY = (
    "SELECT id, user_id, total_cents FROM orders WHERE date(created_at, 'unixepoch') = ?"
    " ORDER BY created_at, id"
)

# The representative call of each query: its plan and its work are checked on this one.
MAIN = {
    "find_user": Case("find_user", "find_user", (email(777),), FIND, (email(777),), one=True),
    "recent_orders": Case(
        "recent_orders", "recent_orders", (7, "paid", LATE), RECENT, (7, "paid", LATE)
    ),
    "spend_by_status": Case("spend_by_status", "spend_by_status", (5,), SPEND, (5,)),
    "oldest_pending": Case("oldest_pending", "oldest_pending", (10,), PENDING, (10,)),
    "newest_users": Case("newest_users", "newest_users", ("DE", 5), NEWEST, ("DE", 5)),
    "user_orders": Case("user_orders", "user_orders", (email(1234),), JOINED, (email(1234),)),
    "orders_on_day": Case("orders_on_day", "orders_on_day", (DAY,), ON_DAY, (DAY.isoformat(),)),
}

RESULT_CASES = [
    *MAIN.values(),
    Case("find_user: last user", "find_user", (email(20_000),), FIND, (email(20_000),), True),
    Case(
        "find_user: unknown email",
        "find_user",
        ("nobody@example.org",),
        FIND,
        ("nobody@example.org",),
        True,
    ),
    Case(
        "find_user: exact case only",
        "find_user",
        (email(777).upper(),),
        FIND,
        (email(777).upper(),),
        True,
    ),
    Case(
        "recent_orders: ordinary user, since T0",
        "recent_orders",
        (1234, "shipped", T0),
        RECENT,
        (1234, "shipped", T0),
    ),
    Case(
        "recent_orders: big customer, pending",
        "recent_orders",
        (3, "pending", T0),
        RECENT,
        (3, "pending", T0),
    ),
    Case(
        "recent_orders: since after the last order",
        "recent_orders",
        (7, "paid", T0 + 3 * 365 * 86_400),
        RECENT,
        (7, "paid", T0 + 3 * 365 * 86_400),
    ),
    Case("spend_by_status: ordinary user", "spend_by_status", (4321,), SPEND, (4321,)),
    Case("spend_by_status: no such user", "spend_by_status", (0,), SPEND, (0,)),
    Case("oldest_pending: limit 1", "oldest_pending", (1,), PENDING, (1,)),
    Case("oldest_pending: limit 0", "oldest_pending", (0,), PENDING, (0,)),
    Case("oldest_pending: limit past the end", "oldest_pending", (5_000,), PENDING, (5_000,)),
    Case("newest_users: rare country, limit 1", "newest_users", ("NO", 1), NEWEST, ("NO", 1)),
    Case("newest_users: limit 0", "newest_users", ("US", 0), NEWEST, ("US", 0)),
    Case("newest_users: no such country", "newest_users", ("ZZ", 5), NEWEST, ("ZZ", 5)),
    Case("user_orders: big customer", "user_orders", (email(7),), JOINED, (email(7),)),
    Case(
        "user_orders: unknown email",
        "user_orders",
        ("nobody@example.org",),
        JOINED,
        ("nobody@example.org",),
    ),
    Case(
        "orders_on_day: first day", "orders_on_day", (dt.date(2024, 1, 1),), ON_DAY, ("2024-01-01",)
    ),
    Case(
        "orders_on_day: leap day", "orders_on_day", (dt.date(2024, 2, 29),), ON_DAY, ("2024-02-29",)
    ),
    Case(
        "orders_on_day: before the shop opened",
        "orders_on_day",
        (dt.date(2023, 12, 31),),
        ON_DAY,
        ("2023-12-31",),
    ),
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """(reference connection on the unindexed database, learner's connection on an indexed copy)."""
    folder = tmp_path_factory.mktemp("shop")
    base = folder / "base.db"
    build_shop(base)
    learner = connect(copy_db(base, folder / "learner.db"))
    reference = connect(base)
    try:
        with step("create_indexes(conn) on the filled tables"):
            sql_indexing.create_indexes(learner)
        yield reference, learner
    finally:
        learner.close()
        reference.close()


def reference_rows(conn: sqlite3.Connection, case: Case) -> Any:
    cursor = conn.execute(case.ref_sql, case.ref_args)
    return cursor.fetchone() if case.one else cursor.fetchall()


def learner_run(conn: sqlite3.Connection, case: Case):
    """Call the learner's function with its work counted; rows become tuples (inside the count,
    so a lazy cursor returned by the function is read while the steps are counted)."""
    function = getattr(sql_indexing, case.func)

    def call():
        result = function(conn, *case.args)
        if result is None:
            return None
        return tuple(result) if case.one else [tuple(row) for row in result]

    with step(case.call_text()):
        return counted(conn, call)


# --- results ---------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize("case", RESULT_CASES, ids=[c.id for c in RESULT_CASES])
def test_results_match_the_reference_query(shop, case):
    """Each query returns exactly the rows, in the order, that its contract describes."""
    reference, learner = shop
    got = learner_run(learner, case).result
    want = reference_rows(reference, case)
    assert got == want, called(case.call_text(), got, want)


# --- plans -----------------------------------------------------------------------------------


def main_plan(shop, name: str) -> tuple[list[str], str]:
    _, learner = shop
    case = MAIN[name]
    run = learner_run(learner, case)
    lines = plan(learner, run.statements)
    assert lines, called(
        case.call_text(),
        f"no SELECT among the statements it ran: {run.statements!r}",
        show_expected=False,
    )
    return lines, case.call_text()


def plan_message(call: str, lines: list[str], want: str) -> str:
    return f"Called {call}; EXPLAIN QUERY PLAN of its SQL: {show(lines)}; expected {want}"


@pytest.mark.points(2)
@pytest.mark.parametrize("name", list(MAIN), ids=list(MAIN))
def test_no_query_reads_a_whole_table(shop, name):
    """No query reads the whole users or orders table: its plan has no bare SCAN."""
    lines, call = main_plan(shop, name)
    assert not table_scans(lines), plan_message(call, lines, "no SCAN of a table")


@pytest.mark.points(2)
def test_find_user_searches_an_index_on_email(shop):
    """find_user is a point lookup: SEARCH users USING INDEX ... (email=?)."""
    lines, call = main_plan(shop, "find_user")
    assert any(s.terms == ("email=?",) for s in searches(lines)), plan_message(
        call, lines, "SEARCH users USING INDEX <name> (email=?)"
    )


@pytest.mark.points(3)
def test_recent_orders_index_has_equality_columns_before_the_range(shop):
    """recent_orders searches one index with user_id=? and status=? first, then the range on created_at."""
    lines, call = main_plan(shop, "recent_orders")
    ok = False
    for s in searches(lines):
        *equal, last = s.terms
        ok |= sorted(equal) == ["status=?", "user_id=?"] and last.startswith("created_at>")
    assert ok, plan_message(
        call, lines, "SEARCH orders USING INDEX <name> (user_id=? AND status=? AND created_at>?)"
    )


@pytest.mark.points(1)
def test_recent_orders_come_in_index_order(shop):
    """recent_orders is returned in index order: SQLite does not sort it (no TEMP B-TREE)."""
    lines, call = main_plan(shop, "recent_orders")
    assert not sorts(lines), plan_message(call, lines, "no USE TEMP B-TREE FOR ORDER BY")


@pytest.mark.points(3)
def test_spend_by_status_is_answered_from_a_covering_index(shop):
    """spend_by_status reads only an index: SEARCH orders USING COVERING INDEX ... (user_id=?)."""
    lines, call = main_plan(shop, "spend_by_status")
    ok = any(s.covering and s.terms[0] == "user_id=?" for s in searches(lines))
    assert ok, plan_message(call, lines, "SEARCH orders USING COVERING INDEX <name> (user_id=?...)")


@pytest.mark.points(3)
def test_oldest_pending_reads_a_partial_index(shop):
    """oldest_pending reads a partial index (CREATE INDEX ... WHERE status = 'pending')."""
    _, learner = shop
    lines, call = main_plan(shop, "oldest_pending")
    partial = partial_indexes(learner, "orders")
    used = {s.index for s in searches(lines)} | set(index_scans(lines))
    assert used & partial, plan_message(
        call, lines, f"one of the partial indexes on orders {sorted(partial)} (none if empty)"
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("name", ["oldest_pending", "newest_users"])
def test_order_by_limit_is_served_by_the_index(shop, name):
    """ORDER BY ... LIMIT n reads the first n entries of an index: no TEMP B-TREE sort."""
    lines, call = main_plan(shop, name)
    assert not sorts(lines), plan_message(call, lines, "no USE TEMP B-TREE FOR ORDER BY")


@pytest.mark.points(1)
def test_newest_users_searches_by_country(shop):
    """newest_users searches an index on country: SEARCH users USING INDEX ... (country=?)."""
    lines, call = main_plan(shop, "newest_users")
    ok = any(s.terms == ("country=?",) for s in searches(lines))
    assert ok, plan_message(call, lines, "SEARCH users USING INDEX <name> (country=?)")


@pytest.mark.points(3)
def test_join_searches_the_inner_table_by_an_index(shop):
    """user_orders finds the user by email, then its orders by an index on orders.user_id."""
    lines, call = main_plan(shop, "user_orders")
    terms = [s.terms for s in searches(lines)]
    assert not automatic(lines), plan_message(
        call, lines, "no AUTOMATIC index: SQLite builds one when no index of yours fits"
    )
    assert ("email=?",) in terms and any(t[0] == "user_id=?" for t in terms), plan_message(
        call, lines, "SEARCH users ... (email=?) then SEARCH orders ... (user_id=?)"
    )


@pytest.mark.points(3)
def test_orders_on_day_is_a_range_on_the_bare_column(shop):
    """orders_on_day searches created_at by a range: no function applied to the column."""
    lines, call = main_plan(shop, "orders_on_day")
    ok = any(
        len(s.terms) == 2
        and s.terms[0].startswith("created_at>")
        and s.terms[1].startswith("created_at<")
        for s in searches(lines)
    )
    assert ok, plan_message(
        call, lines, "SEARCH orders USING INDEX <name> (created_at>? AND created_at<?)"
    )


# --- work ------------------------------------------------------------------------------------

# How many times fewer VM steps than the reference on the unindexed table each query must take.
# The reference solution's own factor is in the comment: each bar leaves 4x room or more
# (VM steps are counted, not timed, so the machine's load does not move them).
FACTOR = {
    "find_user": 100,  # the reference solution: no measurable work vs ~60 000 steps
    "recent_orders": 100,  # about 600x
    "spend_by_status": 15,  # about 60x (a big customer: 1 000 index entries)
    "oldest_pending": 500,  # about 7 000x
    "newest_users": 200,  # about 1 500x
    "user_orders": 1000,  # about 13 000x
    "orders_on_day": 100,  # about 400x
}


@pytest.mark.points(2)
@pytest.mark.parametrize("name", list(MAIN), ids=list(MAIN))
def test_index_cuts_the_work(shop, name):
    """Each query executes a small fraction of the VM instructions of a full-table reference."""
    reference, learner = shop
    case = MAIN[name]
    mine = learner_run(learner, case)
    base = counted(reference, lambda: reference_rows(reference, case))
    bar = FACTOR[name]
    assert mine.steps * bar <= base.steps, (
        f"Called {case.call_text()}; it took {mine.steps * STEP} VM steps, the reference query on "
        f"the unindexed table {base.steps * STEP}; expected at most 1/{bar} of that"
    )


# --- boundaries, on a hand-made database of a few rows ---------------------------------------

MAY_5 = 1_714_867_200  # 2024-05-05T00:00:00Z


@pytest.fixture
def tiny(tmp_path):
    conn = connect(tmp_path / "tiny.db")
    conn.executescript(TABLES)
    conn.execute("INSERT INTO users VALUES (1, 'a@example.org', 'SE', ?)", (MAY_5,))
    conn.execute("INSERT INTO users VALUES (2, 'b@example.org', 'SE', ?)", (MAY_5,))  # no orders
    conn.executemany(
        "INSERT INTO orders VALUES (?, 1, 'paid', ?, ?)",
        [
            (1, 100, MAY_5 - 1),  # 2024-05-04T23:59:59Z
            (2, 200, MAY_5),  # 2024-05-05T00:00:00Z
            (3, 300, MAY_5 + 86_399),  # 2024-05-05T23:59:59Z
            (4, 400, MAY_5 + 86_400),  # 2024-05-06T00:00:00Z
        ],
    )
    with step("create_indexes(conn) on a database of 4 orders"):
        sql_indexing.create_indexes(conn)
    yield conn
    conn.close()


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("day", "want"),
    [
        (dt.date(2024, 5, 4), [(1, 1, 100)]),
        (dt.date(2024, 5, 5), [(2, 1, 200), (3, 1, 300)]),
        (dt.date(2024, 5, 6), [(4, 1, 400)]),
    ],
    ids=["day before", "the day", "day after"],
)
def test_orders_on_day_includes_midnight_and_excludes_the_next(tiny, day, want):
    """orders_on_day(day) holds the orders from 00:00:00 UTC up to, not including, the next midnight."""
    with step(f"orders_on_day(conn, {day!r})"):
        got = [tuple(row) for row in sql_indexing.orders_on_day(tiny, day)]
    assert got == want, called(f"orders_on_day(conn, {day!r}) around midnights", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("since", "want_ids"),
    [(MAY_5 - 1, [1, 2, 3, 4]), (MAY_5, [2, 3, 4]), (MAY_5 + 1, [3, 4])],
    ids=["since one second before", "since exactly an order's time", "since one second after"],
)
def test_recent_orders_since_is_inclusive(tiny, since, want_ids):
    """recent_orders includes an order created exactly at `since`."""
    call = f"recent_orders(conn, 1, 'paid', {since})"
    with step(call):
        got = [row[0] for row in sql_indexing.recent_orders(tiny, 1, "paid", since)]
    assert got == want_ids, called(call + " (order ids)", got, want_ids)


@pytest.mark.points(1)
def test_user_orders_of_a_user_without_orders_is_empty(tiny):
    """user_orders of a user who never ordered is [] (an inner join: no row of NULLs)."""
    with step("user_orders(conn, 'b@example.org')"):
        got = [tuple(row) for row in sql_indexing.user_orders(tiny, "b@example.org")]
    assert got == [], called(
        "user_orders(conn, 'b@example.org') for a user with no orders", got, []
    )


@pytest.fixture
def eastern_time():
    """The process's local time zone set to UTC-5 (a POSIX TZ string: no tz database needed)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "EST+5"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.points(2)
def test_orders_on_day_is_the_utc_day_whatever_the_local_zone(tiny, eastern_time):
    """orders_on_day counts the day in UTC, also when the machine's local time zone is not UTC."""
    day = dt.date(2024, 5, 5)
    with step(f"orders_on_day(conn, {day!r}) with TZ=EST+5"):
        got = [tuple(row) for row in sql_indexing.orders_on_day(tiny, day)]
    want = [(2, 1, 200), (3, 1, 300)]
    assert got == want, called(f"orders_on_day(conn, {day!r}) with local time UTC-5", got, want)
