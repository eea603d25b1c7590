"""Visible examples for the sql_indexing kata. Run them with `nox -s try -- sql_indexing`.

They use a tiny database of a few rows, so they run in a blink; the hidden specs use
20 000 users and 200 000 orders, read each query's EXPLAIN QUERY PLAN, count the VM
instructions it executes, and kill processes in the middle of a transfer.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

try:
    from sql_indexing import (
        TABLES,
        InsufficientFunds,
        create_accounts,
        create_indexes,
        find_user,
        orders_on_day,
        transfer,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import TABLES, InsufficientFunds, create_accounts, "
        "create_indexes, find_user, orders_on_day and transfer from sql_indexing.py"
    ) from err

MAY_5 = 1_714_867_200  # 2024-05-05T00:00:00Z


@pytest.fixture
def shop():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(TABLES)
    conn.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?)",
        [(1, "ada@example.org", "GB", MAY_5 - 86_400), (2, "linus@example.org", "FI", MAY_5)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (10, 1, "paid", 1999, MAY_5 - 1),  # 2024-05-04T23:59:59Z
            (11, 1, "paid", 500, MAY_5),  # 2024-05-05T00:00:00Z
            (12, 2, "pending", 750, MAY_5 + 86_399),  # 2024-05-05T23:59:59Z
            (13, 2, "paid", 120, MAY_5 + 86_400),  # 2024-05-06T00:00:00Z
        ],
    )
    create_indexes(conn)
    yield conn
    conn.close()


def test_find_user_by_email(shop):
    got = find_user(shop, "ada@example.org")
    assert tuple(got) == (1, "ada@example.org", "GB"), f"Called find_user(ada); returned {got!r}"
    assert find_user(shop, "nobody@example.org") is None


def test_find_user_searches_an_index(shop):
    plan = [
        row[3]
        for row in shop.execute(
            "EXPLAIN QUERY PLAN SELECT id, email, country FROM users WHERE email = ?", ("x",)
        )
    ]
    assert any(line.startswith("SEARCH") and "(email=?)" in line for line in plan), (
        f"after create_indexes, the plan of a lookup by email is {plan!r}; expected a SEARCH "
        "USING INDEX ... (email=?)"
    )


def test_orders_on_day_is_a_half_open_day(shop):
    got = [tuple(row) for row in orders_on_day(shop, dt.date(2024, 5, 5))]
    assert got == [(11, 1, 500), (12, 2, 750)], (
        f"Called orders_on_day(2024-05-05); returned {got!r}"
    )


def test_transfer_moves_money_and_refuses_an_overdraft():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_accounts(conn)
    conn.executemany(
        "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", [(1, "a", 100), (2, "b", 0)]
    )
    transfer(conn, 1, 2, 40)
    assert dict(conn.execute("SELECT id, balance FROM accounts")) == {1: 60, 2: 40}
    with pytest.raises(InsufficientFunds):
        transfer(conn, 2, 1, 41)
    assert dict(conn.execute("SELECT id, balance FROM accounts")) == {1: 60, 2: 40}
    assert not conn.in_transaction, "transfer left a transaction open"
