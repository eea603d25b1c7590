"""Indexes, queries and a money transfer for a shop's SQLite database.

Two halves, one module:

* reading fast: ``create_indexes`` gives the workload's tables (``TABLES``) the indexes its
  queries need, and each query function runs one SQL statement the planner can answer with
  a ``SEARCH`` of an index instead of a ``SCAN`` of 200 000 rows;
* writing safely: ``create_accounts`` puts the no-overdraft rule into the schema, and
  ``transfer`` moves money in one ``BEGIN IMMEDIATE`` transaction, retried when another
  writer holds the lock (``SQLITE_BUSY``).

Every query takes its values as bound parameters (``?``), never pasted into the SQL text.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import sqlite3
import time

__all__ = [
    "TABLES",
    "InsufficientFunds",
    "UnknownAccount",
    "create_accounts",
    "create_indexes",
    "find_user",
    "newest_users",
    "oldest_pending",
    "orders_on_day",
    "recent_orders",
    "spend_by_status",
    "transfer",
    "user_orders",
]

# The workload's tables: given, not yours to change (the specs create them and fill them).
TABLES = """
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    email      TEXT    NOT NULL,
    country    TEXT    NOT NULL,     -- ISO 3166 alpha-2, about 20 distinct values
    created_at INTEGER NOT NULL      -- Unix seconds, UTC
);
CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    status      TEXT    NOT NULL,    -- 'paid', 'shipped', 'refunded' or (1 in 100) 'pending'
    total_cents INTEGER NOT NULL,
    created_at  INTEGER NOT NULL     -- Unix seconds, UTC
);
"""


def create_indexes(conn: sqlite3.Connection) -> None:
    """Create the indexes the queries below need on the (filled) tables of ``TABLES``.

    The specs call it once on a database of 20 000 users and 200 000 orders, then check each
    query's plan (EXPLAIN QUERY PLAN) and count the VM instructions it executes.

    TODO: users by email (a point lookup; emails are unique).
    TODO: recent_orders: equality columns first, the range column last (and an index order
          that already gives ORDER BY created_at, id: the rowid is every index's last column).
    TODO: spend_by_status: a covering index (every column the query reads is in the index).
    TODO: oldest_pending: a partial index (CREATE INDEX ... WHERE status = 'pending').
    TODO: newest_users: an index that gives ORDER BY created_at DESC ... LIMIT for one country.
    TODO: user_orders: the inner table of the join (orders) reachable by user_id.
    TODO: orders_on_day: a range on orders.created_at.
    """
    raise NotImplementedError


def find_user(conn: sqlite3.Connection, email: str) -> tuple[int, str, str] | None:
    """The user with this exact email (case-sensitive) as ``(id, email, country)``, or None.

    TODO: SELECT ... WHERE email = ? (bind the value; never format it into the SQL).
    """
    raise NotImplementedError


def recent_orders(
    conn: sqlite3.Connection, user_id: int, status: str, since: int
) -> list[tuple[int, int, int]]:
    """A user's orders in ``status`` created at or after ``since`` (inclusive): ``(id,
    total_cents, created_at)`` ordered by created_at, then id.

    TODO: the plan must be SEARCH orders USING INDEX ... (user_id=? AND status=? AND
          created_at>?) with no TEMP B-TREE sort.
    """
    raise NotImplementedError


def spend_by_status(conn: sqlite3.Connection, user_id: int) -> list[tuple[str, int, int]]:
    """Per status, a user's number of orders and their total: ``(status, count, sum of
    total_cents)`` ordered by status; statuses with no orders are absent.

    TODO: GROUP BY status; the plan must read only an index: USING COVERING INDEX.
    """
    raise NotImplementedError


def oldest_pending(conn: sqlite3.Connection, limit: int) -> list[tuple[int, int, int]]:
    """The ``limit`` oldest pending orders: ``(id, user_id, created_at)`` ordered by
    created_at, then id (``limit`` may be 0, or more than there are).

    TODO: use a partial index; the planner can use it only if the query's WHERE clause
          visibly implies the index's WHERE clause while the statement is prepared.
    """
    raise NotImplementedError


def newest_users(conn: sqlite3.Connection, country: str, limit: int) -> list[tuple[int, str, int]]:
    """The ``limit`` most recently created users of ``country``: ``(id, email, created_at)``
    ordered by created_at descending, then id descending.

    TODO: the index gives the order; no TEMP B-TREE sort, LIMIT stops the walk early.
    """
    raise NotImplementedError


def user_orders(conn: sqlite3.Connection, email: str) -> list[tuple[int, str, int]]:
    """The orders of the user with this email: ``(order id, status, total_cents)`` ordered by
    order id; [] for an unknown email.

    TODO: one JOIN of users and orders; users found by email, then orders by an index on
          user_id (no SCAN, no AUTOMATIC index).
    """
    raise NotImplementedError


def orders_on_day(conn: sqlite3.Connection, day: dt.date) -> list[tuple[int, int, int]]:
    """The orders created on this UTC day (00:00:00 included, the next midnight excluded):
    ``(id, user_id, total_cents)`` ordered by created_at, then id.

    TODO: WHERE date(created_at, 'unixepoch') = ? is correct but reads every row: rewrite
          it as a range on the bare column (calendar.timegm gives the day's first second).
    """
    raise NotImplementedError


# --- the money --------------------------------------------------------------------------------


class InsufficientFunds(Exception):
    """The source account's balance is smaller than the amount."""


class UnknownAccount(LookupError):
    """No account has this id."""


def create_accounts(conn: sqlite3.Connection) -> None:
    """Create the ``accounts`` table: ``id INTEGER PRIMARY KEY, owner TEXT NOT NULL,
    balance INTEGER NOT NULL`` (cents).

    TODO: the schema itself refuses a negative balance (a CHECK constraint): any writer, not
          only transfer, gets sqlite3.IntegrityError for balance -1; 0 is allowed.
    """
    raise NotImplementedError


def transfer(
    conn: sqlite3.Connection,
    src: int,
    dst: int,
    amount: int,
    *,
    attempts: int = 50,
    rng: random.Random | None = None,
) -> None:
    """Move ``amount`` cents from account ``src`` to ``dst``: all of it, or nothing.

    ``conn`` was opened with ``isolation_level=None`` (autocommit: you write BEGIN and COMMIT
    yourself); its busy timeout may be small or 0.

    TODO: amount <= 0 or src == dst: ValueError, before touching the database.
    TODO: one transaction that starts with BEGIN IMMEDIATE (the write lock up front) and ends
          with COMMIT: no other connection ever sees the debit without the credit, and a
          process killed half-way leaves both balances as they were.
    TODO: an overdraft (the CHECK constraint raises sqlite3.IntegrityError): ROLLBACK and raise
          InsufficientFunds. No such account (an UPDATE changed 0 rows): ROLLBACK and raise
          UnknownAccount. Never leave a transaction open (conn.in_transaction is False after).
    TODO: SQLITE_BUSY (sqlite3.OperationalError whose sqlite_errorcode & 0xFF is
          sqlite3.SQLITE_BUSY, "database is locked"): roll back if needed and retry the whole
          transaction after a short random sleep, at most ``attempts`` attempts in all; then
          raise that OperationalError. Any other error is raised at once, not retried.
    """
    raise NotImplementedError
