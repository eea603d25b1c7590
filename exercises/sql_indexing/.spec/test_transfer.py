"""Hidden specs for the write half: the overdraft constraint, transfer's transaction, its
retries on SQLITE_BUSY, atomicity across a killed process, and concurrent writers.

The crash and concurrency specs run the learner's transfer in real child processes
(``sys.executable``): the crash spec pauses the child at a point it controls (the child's
trace callback writes "paused" to a pipe and blocks) and kills it with SIGKILL, then opens
the database as the next process would. Lock contention is made deterministic in-process:
the spec holds the write lock on a second connection and releases it from the learner's own
trace callback.
"""

from __future__ import annotations

import ast
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sql_indexing
from _helpers import connect
from sql_indexing import InsufficientFunds, UnknownAccount, create_accounts, transfer

from grader.spectools import called, step

START = {1: 100, 2: 100, 3: 100}
TOTAL = sum(START.values())


def open_bank(path: Path, balances: dict[int, int] = START, journal: str = "wal") -> None:
    conn = connect(path)
    try:
        conn.execute(f"PRAGMA journal_mode = {journal}")
        with step("create_accounts(conn)"):
            create_accounts(conn)
        conn.executemany(
            "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)",
            [(i, f"owner {i}", b) for i, b in balances.items()],
        )
    finally:
        conn.close()


def balances(path: Path) -> dict[int, int]:
    conn = connect(path)
    try:
        return dict(conn.execute("SELECT id, balance FROM accounts ORDER BY id"))
    finally:
        conn.close()


@pytest.fixture
def bank(tmp_path) -> Path:
    path = tmp_path / "bank.db"
    open_bank(path)
    return path


def heads(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:2]).upper() for s in statements if s.strip()]


def begins(statements: list[str]) -> int:
    return sum(1 for s in statements if s.lstrip().upper().startswith("BEGIN"))


# --- the schema ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("balance", "accepted"), [(-1, False), (0, True), (1, True)], ids=["-1", "0", "1"]
)
def test_schema_rejects_a_negative_balance(tmp_path, balance, accepted):
    """The accounts table itself refuses a negative balance (a CHECK constraint): 0 is allowed, -1 is not."""
    conn = connect(tmp_path / "bank.db")
    with step("create_accounts(conn)"):
        create_accounts(conn)
    conn.execute("INSERT INTO accounts (id, owner, balance) VALUES (1, 'a', 5)")
    for sql in (
        f"INSERT INTO accounts (id, owner, balance) VALUES (2, 'b', {balance})",
        f"UPDATE accounts SET balance = {balance} WHERE id = 1",
    ):
        try:
            conn.execute(sql)
            got = "accepted"
        except sqlite3.IntegrityError as exc:
            got = f"IntegrityError: {exc}"
        want = "accepted" if accepted else "IntegrityError"
        assert got.startswith(want), called(sql + " after create_accounts(conn)", got, want)
    conn.close()


# --- one transfer ----------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize("amount", [1, 30, 100], ids=["1", "30", "whole balance 100"])
def test_transfer_moves_the_amount(bank, amount):
    """transfer(conn, 1, 2, amount) takes amount from account 1 and adds it to account 2, up to the whole balance."""
    conn = connect(bank)
    with step(f"transfer(conn, 1, 2, {amount})"):
        transfer(conn, 1, 2, amount)
    got = balances(bank)
    want = {1: 100 - amount, 2: 100 + amount, 3: 100}
    assert got == want, called(f"transfer(conn, 1, 2, {amount}); then balances", got, want)
    assert not conn.in_transaction, called(
        f"transfer(conn, 1, 2, {amount}); then conn.in_transaction", True, False
    )


def refused(bank: Path, call: str, error: type[BaseException], *args) -> None:
    conn = connect(bank)
    got: object = "returned normally"
    with step(call):
        try:
            transfer(conn, *args)
        except error as exc:
            got = exc
    assert isinstance(got, error), called(call, got, f"{error.__name__} raised")
    after = balances(bank)
    assert after == START, called(f"{call}; then balances", after, START)
    assert not conn.in_transaction, called(
        f"{call}; then conn.in_transaction (a transaction left open keeps the lock)", True, False
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("amount", [101, 1000], ids=["balance + 1", "1000"])
def test_overdraft_raises_insufficient_funds_and_changes_nothing(bank, amount):
    """A transfer of more than the balance raises InsufficientFunds, changes nothing and leaves no transaction open."""
    refused(bank, f"transfer(conn, 1, 2, {amount})", InsufficientFunds, 1, 2, amount)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("src", "dst"), [(9, 2), (1, 9)], ids=["unknown source", "unknown destination"]
)
def test_unknown_account_raises_and_changes_nothing(bank, src, dst):
    """A transfer from or to an account that does not exist raises UnknownAccount and changes nothing."""
    refused(bank, f"transfer(conn, {src}, {dst}, 10)", UnknownAccount, src, dst, 10)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("src", "dst", "amount"),
    [(1, 2, 0), (1, 2, -5), (1, 1, 10)],
    ids=["amount 0", "negative amount", "same account"],
)
def test_invalid_transfer_raises_value_error(bank, src, dst, amount):
    """An amount of 0 or less, or a transfer from an account to itself, raises ValueError."""
    refused(bank, f"transfer(conn, {src}, {dst}, {amount})", ValueError, src, dst, amount)


@pytest.mark.points(2)
def test_transfer_begins_immediate(bank):
    """transfer takes the write lock up front: its transaction starts with BEGIN IMMEDIATE."""
    conn = connect(bank)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    with step("transfer(conn, 1, 2, 10)"):
        transfer(conn, 1, 2, 10)
    first = heads(statements)[:1]
    assert first in (["BEGIN IMMEDIATE"], ["BEGIN EXCLUSIVE"]), called(
        "transfer(conn, 1, 2, 10); its first statement", first, "BEGIN IMMEDIATE"
    )


@pytest.mark.points(3)
def test_no_other_connection_sees_half_a_transfer(bank):
    """While a transfer runs, another connection always sees the money complete: both updates commit together."""
    conn = connect(bank)
    spy = connect(bank)
    seen: list[dict[int, int]] = []
    conn.set_trace_callback(
        lambda sql: seen.append(dict(spy.execute("SELECT id, balance FROM accounts")))
    )
    with step("transfer(conn, 1, 2, 10)"):
        transfer(conn, 1, 2, 10)
    conn.set_trace_callback(None)
    seen.append(balances(bank))
    torn = [s for s in seen if s not in (START, {1: 90, 2: 110, 3: 100})]
    assert not torn, called(
        "transfer(conn, 1, 2, 10); another connection read the balances before each statement",
        torn[0] if torn else None,
        f"{START} before the commit and {{1: 90, 2: 110, 3: 100}} after",
    )


@pytest.mark.points(2)
def test_an_interrupted_transfer_raises_and_changes_nothing(bank):
    """A write interrupted inside transfer raises its OperationalError at once (no retry), leaves no transaction open and moves no money."""
    conn = connect(bank)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)

    def interrupt_writes() -> int:
        writing = any(s.split()[0] in ("UPDATE", "INSERT", "REPLACE") for s in heads(statements))
        return 1 if writing else 0  # non-zero aborts the statement (SQLITE_INTERRUPT)

    conn.set_progress_handler(interrupt_writes, 1)
    call = "transfer(conn, 1, 2, 10) with its first write interrupted"
    got: object = "returned normally"
    with step(call):
        try:
            transfer(conn, 1, 2, 10, attempts=5)
        except sqlite3.OperationalError as exc:
            got = exc
    conn.set_progress_handler(None, 1)
    conn.set_trace_callback(None)
    assert isinstance(got, sqlite3.OperationalError), called(call, got, "OperationalError")
    assert begins(statements) == 1, called(f"{call}; BEGINs issued", begins(statements), 1)
    assert not conn.in_transaction, called(f"{call}; then conn.in_transaction", True, False)
    assert balances(bank) == START, called(f"{call}; then balances", balances(bank), START)


# --- SQLITE_BUSY -----------------------------------------------------------------------------


def locked(bank: Path) -> sqlite3.Connection:
    """A second connection holding the write lock (BEGIN IMMEDIATE, not yet committed)."""
    holder = connect(bank)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.points(3)
def test_transfer_retries_while_another_writer_holds_the_lock(bank):
    """transfer retries on SQLITE_BUSY ("database is locked") and succeeds once the other writer commits."""
    holder = locked(bank)
    conn = connect(bank, timeout=0)  # no waiting inside SQLite: every collision is SQLITE_BUSY
    statements: list[str] = []

    def trace(sql: str) -> None:
        statements.append(sql)
        if begins(statements) == 3 and holder.in_transaction:
            holder.execute("COMMIT")  # two attempts failed; let the third one through

    conn.set_trace_callback(trace)
    with step("transfer(conn, 1, 2, 10) while another connection holds the write lock"):
        transfer(conn, 1, 2, 10)
    conn.set_trace_callback(None)
    tries = begins(statements)
    assert tries >= 3, called(
        "transfer(conn, 1, 2, 10) under a lock released at its 3rd BEGIN; BEGINs issued",
        tries,
        ">= 3",
    )
    got = balances(bank)
    assert got == {1: 90, 2: 110, 3: 100}, called(
        "...; then balances", got, {1: 90, 2: 110, 3: 100}
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("attempts", [1, 3], ids=["attempts=1", "attempts=3"])
def test_transfer_gives_up_after_its_attempts(bank, attempts):
    """Under a lock that never goes, transfer makes exactly `attempts` attempts, then raises the sqlite3.OperationalError."""
    holder = locked(bank)
    conn = connect(bank, timeout=0)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    call = f"transfer(conn, 1, 2, 10, attempts={attempts}) under a lock that never goes"
    got: object = "returned normally"
    with step(call):
        try:
            transfer(conn, 1, 2, 10, attempts=attempts)
        except sqlite3.OperationalError as exc:
            got = exc
    assert isinstance(got, sqlite3.OperationalError), called(call, got, "OperationalError")
    assert begins(statements) == attempts, called(
        f"{call}; BEGINs issued", begins(statements), attempts
    )
    assert not conn.in_transaction, called(f"{call}; then conn.in_transaction", True, False)
    holder.execute("ROLLBACK")
    assert balances(bank) == START, called(f"{call}; then balances", balances(bank), START)


@pytest.mark.points(2)
def test_transfer_does_not_retry_other_errors(tmp_path):
    """An OperationalError that is not SQLITE_BUSY (here: no accounts table) is raised at the first attempt."""
    conn = connect(tmp_path / "empty.db")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    call = "transfer(conn, 1, 2, 10) on a database without an accounts table"
    got: object = "returned normally"
    with step(call):
        try:
            transfer(conn, 1, 2, 10, attempts=5)
        except sqlite3.OperationalError as exc:
            got = exc
    assert isinstance(got, sqlite3.OperationalError), called(call, got, "OperationalError")
    assert begins(statements) == 1, called(f"{call}; BEGINs issued", begins(statements), 1)


# --- real processes --------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sqlite3, sys
    sys.path.insert(0, sys.argv[1])
    import sql_indexing

    path, point = sys.argv[2], sys.argv[3]
    conn = sqlite3.connect(path, isolation_level=None)
    writes = 0

    def pause():
        sys.stdout.write("paused\\n")
        sys.stdout.flush()
        sys.stdin.read()  # blocks until the spec kills this process

    def trace(sql):
        global writes
        head = sql.lstrip().split(None, 1)[0].upper()
        if head in ("UPDATE", "INSERT", "REPLACE", "DELETE"):
            writes += 1
            if point == "between the two updates" and writes == 2:
                pause()
        if head in ("COMMIT", "END") and point == "just before COMMIT":
            pause()

    conn.set_trace_callback(trace)
    sql_indexing.transfer(conn, 1, 2, 30)
    conn.set_trace_callback(None)
    if point == "after transfer returned":
        pause()
    print("done", flush=True)
    """
)


def last_line(stderr: str) -> str:
    """The last line of a child's stderr: the exception that ended it, if any."""
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else "(nothing on stderr)"


def module_folder() -> str:
    return str(Path(sql_indexing.__file__).resolve().parent)


def read_line(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """The child's next stdout line, waited for with a bound."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else f"(nothing within {timeout:g} s)"


@pytest.mark.points(4)
@pytest.mark.parametrize("journal", ["wal", "delete"], ids=["WAL", "rollback journal"])
@pytest.mark.parametrize(
    "point",
    ["between the two updates", "just before COMMIT", "after transfer returned"],
    ids=["killed between the updates", "killed before COMMIT", "killed after returning"],
)
def test_a_transfer_killed_mid_way_is_all_or_nothing(tmp_path, journal, point):
    """A process killed (SIGKILL) inside transfer leaves the money untouched; killed after it returned, the transfer is kept."""
    path = tmp_path / "bank.db"
    open_bank(path, journal=journal)
    conn = connect(path)
    with step("transfer(conn, 3, 1, 10) (before the crash test)"):
        transfer(conn, 3, 1, 10)
    conn.close()
    before = {1: 110, 2: 100, 3: 90}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, module_folder(), str(path), point],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = read_line(proc)
        if said == "paused":
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr = last_line(proc.stderr.read())
        proc.stdout.close()
        proc.stderr.close()
        proc.stdin.close()
    call = f"transfer(conn, 1, 2, 30) in a child process ({journal} mode), killed {point}"
    assert said in ("paused", "done"), called(
        call, f"the child said {said!r}; stderr: {stderr}", "it to pause or finish"
    )
    completed = said == "done" or point == "after transfer returned"
    if said == "done" and point == "just before COMMIT":
        pytest.fail(
            called(
                call,
                "the transfer finished without a COMMIT statement",
                "one transaction that ends with COMMIT",
            )
        )
    want = {1: 80, 2: 130, 3: 90} if completed else before
    got = balances(path)
    assert got == want, called(f"{call}; then balances", got, want)
    check = connect(path).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok", called(f"{call}; then PRAGMA integrity_check", check, "ok")


WORKER = textwrap.dedent(
    """
    import random, sqlite3, sys
    sys.path.insert(0, sys.argv[1])
    import sql_indexing

    path, seed, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.002)
    rng = random.Random(seed)
    net = {}
    sys.stdin.readline()  # wait for "go": every worker starts at once
    for _ in range(rounds):
        src, dst = rng.sample(range(1, 6), 2)
        amount = rng.randrange(1, 50)
        sql_indexing.transfer(conn, src, dst, amount, attempts=1000)
        net[src] = net.get(src, 0) - amount
        net[dst] = net.get(dst, 0) + amount
    print(repr(net), flush=True)
    """
)


@pytest.mark.points(4)
def test_concurrent_writers_lose_no_transfer(tmp_path):
    """Four processes transferring at once: every transfer lands exactly once and the total never changes."""
    path = tmp_path / "bank.db"
    start = {i: 1_000_000 for i in range(1, 6)}
    open_bank(path, start)
    conn = connect(path)
    with step("transfer(conn, 1, 2, 1) (before the concurrent writers)"):
        transfer(conn, 1, 2, 1)
    conn.close()
    expected = dict(start)
    expected[1] -= 1
    expected[2] += 1
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, module_folder(), str(path), str(seed), "40"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    outputs = []
    try:
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        for w in workers:
            out, err = w.communicate(timeout=120)
            outputs.append((w.returncode, out.strip(), last_line(err)))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for code, out, err in outputs:
        assert code == 0 and out, called(
            "transfer(...) 40 times in each of 4 processes at once",
            f"a worker exited with status {code}: {err}",
            "every transfer to succeed (retrying on SQLITE_BUSY)",
        )
        for account, delta in ast.literal_eval(out).items():
            expected[account] += delta
    got = balances(path)
    assert sum(got.values()) == sum(start.values()), called(
        "4 processes x 40 transfers; then the sum of balances",
        sum(got.values()),
        sum(start.values()),
    )
    assert got == expected, called("4 processes x 40 transfers; then balances", got, expected)
