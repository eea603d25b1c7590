"""Indexes, queries and a money transfer for a shop's SQLite database (reference solution).

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

# One index per access path, each justified by the query it serves.
INDEXES = (
    # find_user and the outer side of user_orders: equality on email, one row.
    "CREATE UNIQUE INDEX users_email ON users (email)",
    # recent_orders: the equality columns first, the range column (created_at) last, so the
    # rows wanted sit next to each other in the index, already in (created_at, rowid) order.
    # Its leading column also serves the inner side of user_orders' join on user_id.
    "CREATE INDEX orders_user_status_created ON orders (user_id, status, created_at)",
    # spend_by_status: every column the query reads is in the index, so it *covers* the query
    # and the table is never read. (Appending total_cents to the index above would cover this
    # too, but would put total_cents between created_at and the rowid: recent_orders' tie
    # break on id would then need a sort.)
    "CREATE INDEX orders_user_status_total ON orders (user_id, status, total_cents)",
    # oldest_pending: only the 1 % of orders that are pending, in created_at order.
    "CREATE INDEX orders_pending_created ON orders (created_at) WHERE status = 'pending'",
    # newest_users: equality on country, then created_at, read backwards for DESC ... LIMIT.
    "CREATE INDEX users_country_created ON users (country, created_at)",
    # orders_on_day: a range on the bare column.
    "CREATE INDEX orders_created ON orders (created_at)",
)


def create_indexes(conn: sqlite3.Connection) -> None:
    """Create the indexes the queries below need on the (filled) tables of ``TABLES``."""
    for statement in INDEXES:
        conn.execute(statement)


def find_user(conn: sqlite3.Connection, email: str) -> tuple[int, str, str] | None:
    """The user with this exact email as ``(id, email, country)``, or None."""
    return conn.execute("SELECT id, email, country FROM users WHERE email = ?", (email,)).fetchone()


def recent_orders(
    conn: sqlite3.Connection, user_id: int, status: str, since: int
) -> list[tuple[int, int, int]]:
    """A user's orders in ``status`` created at or after ``since``: ``(id, total_cents,
    created_at)`` ordered by created_at, then id."""
    return conn.execute(
        "SELECT id, total_cents, created_at FROM orders"
        " WHERE user_id = ? AND status = ? AND created_at >= ?"
        " ORDER BY created_at, id",
        (user_id, status, since),
    ).fetchall()


def spend_by_status(conn: sqlite3.Connection, user_id: int) -> list[tuple[str, int, int]]:
    """Per status, a user's number of orders and their total: ``(status, count, sum of
    total_cents)`` ordered by status; statuses with no orders are absent."""
    return conn.execute(
        "SELECT status, count(*), sum(total_cents) FROM orders"
        " WHERE user_id = ? GROUP BY status ORDER BY status",
        (user_id,),
    ).fetchall()


def oldest_pending(conn: sqlite3.Connection, limit: int) -> list[tuple[int, int, int]]:
    """The ``limit`` oldest pending orders: ``(id, user_id, created_at)`` by created_at, id."""
    # The planner may read a partial index only when it can prove that the query's WHERE
    # implies the index's WHERE. 'pending' written into the SQL makes that proof plain to
    # every planner (SQLite also looks at a bound parameter's value, PostgreSQL's generic
    # plans cannot).
    return conn.execute(
        "SELECT id, user_id, created_at FROM orders WHERE status = 'pending'"
        " ORDER BY created_at, id LIMIT ?",
        (limit,),
    ).fetchall()


def newest_users(conn: sqlite3.Connection, country: str, limit: int) -> list[tuple[int, str, int]]:
    """The ``limit`` most recently created users of ``country``: ``(id, email, created_at)``
    by created_at descending, then id descending."""
    return conn.execute(
        "SELECT id, email, created_at FROM users WHERE country = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (country, limit),
    ).fetchall()


def user_orders(conn: sqlite3.Connection, email: str) -> list[tuple[int, str, int]]:
    """The orders of the user with this email: ``(order id, status, total_cents)`` by order id."""
    return conn.execute(
        "SELECT o.id, o.status, o.total_cents"
        " FROM users AS u JOIN orders AS o ON o.user_id = u.id"
        " WHERE u.email = ? ORDER BY o.id",
        (email,),
    ).fetchall()


def orders_on_day(conn: sqlite3.Connection, day: dt.date) -> list[tuple[int, int, int]]:
    """The orders created on this UTC day: ``(id, user_id, total_cents)`` by created_at, id."""
    # date(created_at, 'unixepoch') = ? would read every row: an index on created_at orders
    # the column's values, not the values of a function of it. Move the function to the
    # other side: the day becomes a half-open range of seconds on the bare column.
    start = calendar.timegm(day.timetuple())
    end = start + 86_400
    return conn.execute(
        "SELECT id, user_id, total_cents FROM orders"
        " WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
        (start, end),
    ).fetchall()


# --- the money --------------------------------------------------------------------------------


class InsufficientFunds(Exception):
    """The source account's balance is smaller than the amount."""


class UnknownAccount(LookupError):
    """No account has this id."""


def create_accounts(conn: sqlite3.Connection) -> None:
    """Create the ``accounts`` table; the schema itself refuses a negative balance."""
    # The CHECK holds for every writer, this module or not: the database, not the
    # application, is the last line of defence for an invariant.
    conn.execute(
        "CREATE TABLE accounts ("
        " id      INTEGER PRIMARY KEY,"
        " owner   TEXT    NOT NULL,"
        " balance INTEGER NOT NULL CHECK (balance >= 0))"
    )


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY (another connection holds the lock), as opposed to any other failure."""
    # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def transfer(
    conn: sqlite3.Connection,
    src: int,
    dst: int,
    amount: int,
    *,
    attempts: int = 50,
    rng: random.Random | None = None,
) -> None:
    """Move ``amount`` cents from account ``src`` to ``dst``: all of it, or nothing."""
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    if src == dst:
        raise ValueError("source and destination are the same account")
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            _transfer_once(conn, src, dst, amount)
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or attempt >= attempts:
                raise
        # Back off a random, growing moment so that the writers that collided do not collide
        # again in lockstep.
        time.sleep(rng.uniform(0, 0.001 * min(2**attempt, 64)))
        attempt += 1


def _transfer_once(conn: sqlite3.Connection, src: int, dst: int, amount: int) -> None:
    # IMMEDIATE takes the write lock now, before the first read. A deferred transaction would
    # read first and ask for the write lock at its first UPDATE; two of them each holding a
    # read lock and both wanting to write is a deadlock, which SQLite answers with
    # SQLITE_BUSY at once, without waiting.
    conn.execute("BEGIN IMMEDIATE")
    try:
        debited = conn.execute(
            "UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, src)
        ).rowcount
        if debited == 0:
            raise UnknownAccount(src)
        credited = conn.execute(
            "UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, dst)
        ).rowcount
        if credited == 0:
            raise UnknownAccount(dst)
        conn.execute("COMMIT")
    except sqlite3.IntegrityError as exc:  # the CHECK (balance >= 0) refused the debit
        conn.execute("ROLLBACK")
        raise InsufficientFunds(f"account {src} has less than {amount}") from exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
