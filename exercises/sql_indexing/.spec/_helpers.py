"""Helpers for the sql_indexing specs: the generated shop database, plans, and VM steps.

The data is generated inside SQLite by arithmetic on the row number (no RNG: the same bytes
on every machine and SQLite version), 20 000 users and 200 000 orders, in one transaction.
The spec keeps its own copy of the tables' DDL: the learner's ``TABLES`` is documentation.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USERS = 20_000
ORDERS = 200_000
HEAVY = 20  # users 1..20 place 10 % of all orders (about 1 000 each): the "big customers"
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
SPAN = 2 * 365 * 86_400
STEP = 16  # the progress handler runs every STEP virtual-machine instructions

TABLES = """
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    email      TEXT    NOT NULL,
    country    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    status      TEXT    NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
"""

# 27 two-letter slots over 20 countries: US, DE, FR and GB are the common ones.
_COUNTRIES = "USUSUSUSDEDEDEFRFRGBGBINBRJPCANLSEESITPLMXKRAUNGZAARNO"

FILL = (
    f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS})
INSERT INTO users
SELECT i, 'user' || i || '@mail' || (i % 97) || '.example',
       substr('{_COUNTRIES}', 1 + 2 * ((i * 2654435761) % 4294967291 % 27), 2),
       {T0} + (i * 40503 * 40503 + 12345) % 2147483647 % {SPAN}
FROM n
""",
    f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ORDERS}),
h(i, a, b, c, d) AS (
    SELECT i, (i * 2654435761) % 4294967291, (i * 2246822519 + 7) % 4294967279,
           (i * 3266489917 + 11) % 4294967231, (i * 668265263 + 13) % 4294967197
    FROM n)
INSERT INTO orders
SELECT i,
       CASE WHEN a % 10 = 0 THEN 1 + b % {HEAVY} ELSE 1 + b % {USERS} END,
       CASE WHEN c % 100 = 0 THEN 'pending' WHEN c % 100 < 5 THEN 'refunded'
            WHEN c % 100 < 20 THEN 'shipped' ELSE 'paid' END,
       100 + d % 99900,
       {T0} + (a / 7 + d) % {SPAN}
FROM h
""",
)


def connect(path: Path | str, **kwargs: Any) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions only where the SQL says BEGIN."""
    return sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, **kwargs)


def build_shop(path: Path) -> None:
    """Create and fill the shop database at ``path`` (no index but the primary keys)."""
    conn = connect(path)
    try:
        conn.executescript(TABLES)
        conn.execute("BEGIN")
        for statement in FILL:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


def copy_db(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


@dataclass
class Run:
    """What one call did: its result, the VM steps it took (in STEP units), the SQL it ran."""

    result: Any
    steps: int
    statements: list[str]


def counted(conn: sqlite3.Connection, call: Callable[[], Any]) -> Run:
    """Call ``call()`` with ``conn`` traced: count its VM steps, record its statements."""
    ticks = [0]
    statements: list[str] = []

    def tick() -> int:
        ticks[0] += 1
        return 0

    conn.set_trace_callback(statements.append)
    conn.set_progress_handler(tick, STEP)
    try:
        result = call()
    finally:
        conn.set_progress_handler(None, STEP)
        conn.set_trace_callback(None)
    return Run(result, ticks[0], statements)


def plan(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    """The EXPLAIN QUERY PLAN lines (the detail column) of every query among ``statements``."""
    lines: list[str] = []
    for sql in statements:
        head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if head in ("SELECT", "WITH", "VALUES"):
            lines += [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return lines


# SQLite >= 3.36 prints "SCAN users" / "SEARCH users USING ..."; older versions say
# "SCAN TABLE users" / "SEARCH TABLE users ...". An alias replaces the table name.
_SEARCH = re.compile(
    r"^SEARCH (?:TABLE )?(?P<table>\S+)(?: AS \S+)? USING (?P<covering>COVERING )?INDEX "
    r"(?P<index>\S+) \((?P<terms>[^)]*)\)"
)
_BARE_SCAN = re.compile(
    r"^SCAN (?:TABLE )?(?!CONSTANT ROW|SUBQUERY|\(subquery|\(join)\S+(?: AS \S+)?$"
)  # a table, not a materialized subquery or view
_INDEX_SCAN = re.compile(
    r"^SCAN (?:TABLE )?\S+(?: AS \S+)? USING (?P<covering>COVERING )?INDEX (?P<index>\S+)"
)


@dataclass(frozen=True)
class Search:
    """One "SEARCH ... USING [COVERING] INDEX name (terms)" line of a plan."""

    index: str
    covering: bool
    terms: tuple[str, ...]


def searches(lines: list[str]) -> list[Search]:
    out = []
    for line in lines:
        m = _SEARCH.match(line)
        if m:
            terms = tuple(t.strip() for t in m["terms"].split(" AND "))
            out.append(Search(m["index"], bool(m["covering"]), terms))
    return out


def table_scans(lines: list[str]) -> list[str]:
    """Plan lines that read a whole table (not an index)."""
    return [line for line in lines if _BARE_SCAN.match(line)]


def index_scans(lines: list[str]) -> list[str]:
    """The names of indexes read from end to end ("SCAN t USING INDEX i")."""
    return [m["index"] for line in lines if (m := _INDEX_SCAN.match(line))]


def sorts(lines: list[str]) -> list[str]:
    """Plan lines where SQLite sorts rows itself: the index did not give the order."""
    return [line for line in lines if "TEMP B-TREE" in line]


def automatic(lines: list[str]) -> list[str]:
    """Plan lines where SQLite builds a throw-away index for this one query."""
    return [line for line in lines if "AUTOMATIC" in line]


def partial_indexes(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA index_list({table})") if row[4]}


def show(lines: list[str]) -> str:
    return " | ".join(lines) or "(no plan)"
