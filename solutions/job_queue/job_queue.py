"""An at-least-once job queue persisted in SQLite.

Theory of operation
-------------------
Every job is one row of ``jobs``. A job is *ready* (waiting or in flight) or *dead*
(dead-lettered); an acknowledged job is deleted. "In flight" is not a state of its own: a
receive sets the job's ``visible_at`` to now + the visibility timeout and gives it a fresh
``receipt``, and every other receive skips it until the clock reaches ``visible_at``. A
worker that dies never acknowledges, so its job simply becomes visible again: nothing has to
notice the crash. That is what makes the queue *at least once*: a job leaves the table only
when a worker that still holds its latest receipt says it is done.

Concurrency: every operation that reads and then writes runs in one ``BEGIN IMMEDIATE``
transaction, which takes SQLite's write lock before the first read. Two receivers therefore
never both see the same job as visible: the second one's BEGIN waits (the connection's busy
timeout) until the first has committed, and then reads the job as in flight. A deferred
``BEGIN`` would read under a shared lock and fail with SQLITE_BUSY when it tried to upgrade.

Crashes: a process killed inside a transaction never reaches COMMIT; SQLite rolls the
transaction back (in WAL mode its frames are ignored) and releases its locks with the process.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Job", "JobQueue"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    -- AUTOINCREMENT: ids grow with every enqueue and are never reused, even once the newest
    -- job is acked (a bare INTEGER PRIMARY KEY would hand its id to the next job).
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    grp         TEXT,                -- ordering group, or NULL for none
    state       TEXT    NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'dead')),
    visible_at  REAL    NOT NULL,    -- receivable when clock() >= visible_at
    receives    INTEGER NOT NULL DEFAULT 0,
    receipt     TEXT    UNIQUE       -- the latest receive's handle
);
CREATE INDEX IF NOT EXISTS jobs_by_queue ON jobs (queue, state, visible_at);
CREATE TABLE IF NOT EXISTS idempotency (
    queue      TEXT NOT NULL,
    key        TEXT NOT NULL,
    job_id     INTEGER NOT NULL,
    expires_at REAL NOT NULL,                -- the window: [enqueued at, expires_at)
    PRIMARY KEY (queue, key)
);
"""

# The oldest visible job of the queue whose group (if any) has no earlier job still pending:
# a group's jobs go out one at a time, in enqueue order.
_NEXT = """
SELECT id, body, grp, receives FROM jobs AS j
WHERE queue = ? AND state = 'ready' AND visible_at <= ?
  AND (grp IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS e
        WHERE e.queue = j.queue AND e.grp = j.grp AND e.state = 'ready' AND e.id < j.id))
ORDER BY id
LIMIT 1
"""


@dataclass(frozen=True)
class Job:
    """One delivery of a job: ``receipt`` is the handle for ack/extend/fail (None for a dead letter)."""

    id: int
    queue: str
    body: str
    receipt: str | None
    receives: int
    group: str | None = None


class JobQueue:
    """Named queues of jobs in one SQLite database; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        visibility_timeout: float = 30.0,
        max_receives: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        dedup_window: float = 300.0,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.visibility_timeout = visibility_timeout
        self.max_receives = max_receives
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.dedup_window = dedup_window
        # WAL: readers never block the writer and the writer never blocks readers; a commit is
        # one append to the -wal file.
        conn.execute("PRAGMA journal_mode = WAL")
        with self._write():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def _write(self) -> _Transaction:
        return _Transaction(self.conn)

    # --- producers ----------------------------------------------------------------------------

    def enqueue(
        self, queue: str, body: str, *, key: str | None = None, group: str | None = None
    ) -> int:
        """Add a job; with ``key``, a repeat within the dedup window returns the first job's id."""
        now = self.clock()
        with self._write():
            # Keys whose window has passed are forgotten, so the table stays bounded.
            self.conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            if key is not None:
                row = self.conn.execute(
                    "SELECT job_id FROM idempotency WHERE queue = ? AND key = ?", (queue, key)
                ).fetchone()
                if row is not None:
                    return row[0]  # a duplicate: the job exists (or existed) already
            job_id = self.conn.execute(
                "INSERT INTO jobs (queue, body, grp, visible_at) VALUES (?, ?, ?, ?)",
                (queue, body, group, now),
            ).lastrowid
            if key is not None:
                self.conn.execute(
                    "INSERT INTO idempotency (queue, key, job_id, expires_at) VALUES (?, ?, ?, ?)",
                    (queue, key, job_id, now + self.dedup_window),
                )
            return job_id

    # --- consumers ----------------------------------------------------------------------------

    def receive(self, queue: str, *, visibility_timeout: float | None = None) -> Job | None:
        """Hand out the next visible job, hidden for the visibility timeout; None if there is none."""
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        if timeout <= 0:
            raise ValueError("the visibility timeout must be positive")
        now = self.clock()
        with self._write():
            # A visible job that has used up its receives goes to the dead-letter queue instead.
            self.conn.execute(
                "UPDATE jobs SET state = 'dead', receipt = NULL"
                " WHERE queue = ? AND state = 'ready' AND visible_at <= ? AND receives >= ?",
                (queue, now, self.max_receives),
            )
            row = self.conn.execute(_NEXT, (queue, now)).fetchone()
            if row is None:
                return None
            job_id, body, group, receives = row
            receipt = secrets.token_urlsafe(16)
            self.conn.execute(
                "UPDATE jobs SET receives = receives + 1, receipt = ?, visible_at = ? WHERE id = ?",
                (receipt, now + timeout, job_id),
            )
            return Job(job_id, queue, body, receipt, receives + 1, group)

    def ack(self, receipt: str) -> bool:
        """The job is done: delete it. False if this receipt is no longer the job's latest."""
        cursor = self.conn.execute(
            "DELETE FROM jobs WHERE receipt = ? AND state = 'ready'", (receipt,)
        )
        return cursor.rowcount == 1

    def extend(self, receipt: str, seconds: float) -> bool:
        """Keep the job hidden until now + ``seconds``. False if the receipt is stale."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        cursor = self.conn.execute(
            "UPDATE jobs SET visible_at = ? WHERE receipt = ? AND state = 'ready'",
            (self.clock() + seconds, receipt),
        )
        return cursor.rowcount == 1

    def fail(self, receipt: str) -> bool:
        """This attempt failed: retry after a backoff, or dead-letter after max_receives."""
        now = self.clock()
        with self._write():
            row = self.conn.execute(
                "SELECT id, receives FROM jobs WHERE receipt = ? AND state = 'ready'", (receipt,)
            ).fetchone()
            if row is None:
                return False
            job_id, receives = row
            if receives >= self.max_receives:
                self.conn.execute(
                    "UPDATE jobs SET state = 'dead', receipt = NULL WHERE id = ?", (job_id,)
                )
            else:
                self.conn.execute(
                    "UPDATE jobs SET visible_at = ? WHERE id = ?",
                    (now + self.backoff(receives), job_id),
                )
            return True

    def backoff(self, attempt: int) -> float:
        """Full jitter (Brooker 2015): uniform in [0, min(cap, base * 2 ** (attempt - 1)))."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return self.rng.uniform(0, ceiling)

    # --- inspection ---------------------------------------------------------------------------

    def pending(self, queue: str) -> int:
        """Jobs of ``queue`` not yet acknowledged nor dead-lettered (waiting or in flight)."""
        (count,) = self.conn.execute(
            "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'ready'", (queue,)
        ).fetchone()
        return count

    def dead_letters(self, queue: str) -> list[Job]:
        """The dead-lettered jobs of ``queue``, in enqueue order (receipt None)."""
        rows = self.conn.execute(
            "SELECT id, body, receives, grp FROM jobs WHERE queue = ? AND state = 'dead'"
            " ORDER BY id",
            (queue,),
        )
        return [Job(i, queue, body, None, receives, grp) for i, body, receives, grp in rows]


class _Transaction:
    """``with``: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the body raised."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE: take the write lock before the first read, so no other writer can change
        # what this transaction read before it writes (and no lock upgrade can deadlock).
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
