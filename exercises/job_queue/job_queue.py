"""An at-least-once job queue persisted in SQLite.

Producers ``enqueue`` jobs into named queues; workers ``receive`` a job, do the work, and
``ack`` it. A received job is hidden for a *visibility timeout*; if its worker dies (or is too
slow) the job becomes visible again and another worker gets it. A worker that gives up calls
``fail``: the job comes back after a capped exponential backoff with full jitter, and after
``max_receives`` receives it goes to the dead letters instead.

Everything lives in the database the caller's connection points at, so a job survives the
death of any process; several processes may use the same database at once, each with its own
connection.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Job", "JobQueue"]


@dataclass(frozen=True)
class Job:
    """One delivery of a job.

    ``id`` is the job's id (the one ``enqueue`` returned), the same on every delivery;
    ``receipt`` is this delivery's handle for ``ack``/``extend``/``fail`` (a new one on every
    receive; None for a dead letter); ``receives`` counts deliveries so far, this one included.
    """

    id: int
    queue: str
    body: str
    receipt: str | None
    receives: int
    group: str | None = None


class JobQueue:
    """Named queues of jobs in one SQLite database."""

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
        """Use the database behind ``conn``, creating the tables if they are missing.

        ``conn`` was opened with ``isolation_level=None`` (autocommit: you write BEGIN, COMMIT
        and ROLLBACK yourself) and a busy timeout; keep it as ``self.conn`` (the specs trace
        it). ``clock()`` is the time in seconds: read it, never the wall clock. ``rng`` gives
        the backoff's jitter (``rng.uniform(a, b)`` or ``rng.random()``).

        TODO: PRAGMA journal_mode = WAL, then CREATE TABLE IF NOT EXISTS ... (your schema:
              jobs with their queue, body, group, visible-at time, receive count and latest
              receipt; idempotency keys with the time their window ends).
        TODO: another process may be creating the same tables right now: IF NOT EXISTS, in a
              BEGIN IMMEDIATE transaction.
        """
        raise NotImplementedError

    def enqueue(
        self, queue: str, body: str, *, key: str | None = None, group: str | None = None
    ) -> int:
        """Add a job to ``queue``, visible at once; return its id. Ids grow in enqueue order and
        are never reused, not even after the newest job was acked and the table is empty.

        ``key`` is an idempotency key: if the same key was enqueued into the same queue less
        than ``dedup_window`` seconds ago (even if that job is acked or dead by now), add
        nothing and return that first job's id. At exactly ``dedup_window`` seconds the key
        is forgotten and a new job is made. ``group`` names an ordering group (see receive).

        TODO: check the key and insert the job (and the key) in one BEGIN IMMEDIATE
              transaction: two producers racing with the same key must make one job, and a
              producer killed half-way must leave the job and its key together or neither.
        TODO: forget keys whose window has ended, and delete acked jobs: once every job is
              acked and every window has passed, the database keeps (almost) no rows.
        TODO: INTEGER PRIMARY KEY alone reuses the largest id once that row is deleted; SQLite
              never reuses one with AUTOINCREMENT.
        """
        raise NotImplementedError

    def receive(self, queue: str, *, visibility_timeout: float | None = None) -> Job | None:
        """Hand out the next visible job of ``queue``, or None if there is none.

        The job stays hidden from every receive for ``visibility_timeout`` seconds (the
        queue's default if None): until ``clock() >= receive time + timeout``. Each receive
        gives the job a new receipt and adds one to its receive count. Jobs of one ``group``
        are delivered one at a time, in enqueue order: a group's job is not handed out while
        an earlier job of the group is pending (waiting, backing off or in flight).

        TODO: every visible job of the queue already received ``max_receives`` times is not
              delivered again: this receive moves it to the dead letters, and still hands out
              the next eligible job in the same call.
        TODO: find and claim the job in one BEGIN IMMEDIATE transaction: two connections must
              never both get a job while it is visible. (A deferred BEGIN would read under a
              shared lock and then fail with SQLITE_BUSY when it tries to write.)
        TODO: ValueError for a visibility timeout <= 0.
        """
        raise NotImplementedError

    def ack(self, receipt: str) -> bool:
        """The job is done: remove it for good. True if ``receipt`` was the job's latest
        receipt (the job was not received again since, nor dead-lettered); otherwise change
        nothing and return False (a second ack, or a slow worker whose job went to another).

        TODO: one statement that deletes only where the receipt still matches.
        """
        raise NotImplementedError

    def extend(self, receipt: str, seconds: float) -> bool:
        """Keep the job hidden until ``clock() + seconds`` (a worker that needs more time).
        ``seconds = 0`` makes it visible at once. False if the receipt is stale, as for ack.

        TODO: ValueError for negative seconds.
        """
        raise NotImplementedError

    def fail(self, receipt: str) -> bool:
        """This attempt failed: retry the job later. False if the receipt is stale, as for ack.

        After the n-th receive (n = the job's receive count), a failed job is hidden for a
        backoff delay drawn with full jitter:
        ``rng.uniform(0, min(backoff_cap, backoff_base * 2 ** (n - 1)))``. If n has reached
        ``max_receives``, the job goes to the dead letters at once instead.

        The receipt stays the job's latest (ack, extend, fail still work with it) until the
        job is received again.

        TODO: read the receive count and update the job in one BEGIN IMMEDIATE transaction.
        TODO: exactly one draw from ``self.rng`` per retry scheduled.
        """
        raise NotImplementedError

    def pending(self, queue: str) -> int:
        """The number of jobs of ``queue`` not yet acked nor dead-lettered (waiting, backing
        off or in flight)."""
        raise NotImplementedError

    def dead_letters(self, queue: str) -> list[Job]:
        """The dead-lettered jobs of ``queue``, in enqueue order, with ``receipt`` None and
        ``receives`` their receive count."""
        raise NotImplementedError
