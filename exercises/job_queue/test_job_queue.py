"""Visible examples for the job_queue kata. Run them with `nox -s try -- job_queue`.

They show the shape of success in one process with a hand-moved clock; the hidden specs also
check every limit at the limit and one step either side, race two connections at every
statement, and kill worker processes with SIGKILL in the middle of a job.
"""

from __future__ import annotations

import sqlite3

import pytest

try:
    from job_queue import JobQueue
except ImportError as err:
    raise ImportError("MISSING CLASS --> could not import JobQueue from job_queue.py") from err


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path, clock) -> JobQueue:
    conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None, timeout=5)
    return JobQueue(conn, clock=clock, visibility_timeout=30, max_receives=3)


def test_receive_then_ack(queue):
    job_id = queue.enqueue("mail", "welcome ada@example.org")
    job = queue.receive("mail")
    assert (job.id, job.body, job.receives) == (job_id, "welcome ada@example.org", 1)
    assert queue.ack(job.receipt) is True
    assert queue.pending("mail") == 0


def test_an_unacked_job_comes_back_after_the_visibility_timeout(queue, clock):
    job_id = queue.enqueue("mail", "welcome")
    first = queue.receive("mail")
    assert queue.receive("mail") is None  # hidden while in flight
    clock.now += 30
    again = queue.receive("mail")
    assert (again.id, again.receives) == (job_id, 2)
    assert queue.ack(first.receipt) is False  # the slow worker's receipt is stale


def test_a_repeated_idempotency_key_is_ignored(queue):
    first = queue.enqueue("payments", "charge order 7", key="order-7")
    assert queue.enqueue("payments", "charge order 7", key="order-7") == first
    assert queue.pending("payments") == 1


def test_a_poison_job_ends_in_the_dead_letters(queue, clock):
    job_id = queue.enqueue("mail", "poison")
    for _ in range(3):
        queue.receive("mail")
        clock.now += 30  # never acked
    assert queue.receive("mail") is None
    assert [j.id for j in queue.dead_letters("mail")] == [job_id]


def test_a_group_is_delivered_in_order(queue):
    a = queue.enqueue("ledger", "open account", group="acct-1")
    b = queue.enqueue("ledger", "deposit", group="acct-1")
    job = queue.receive("ledger")
    assert job.id == a
    assert queue.receive("ledger") is None  # b waits for a
    queue.ack(job.receipt)
    assert queue.receive("ledger").id == b


class HalfRange:
    """An RNG whose every draw is the middle of its range."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2

    def random(self) -> float:
        return 0.5


def test_a_failed_job_backs_off_with_full_jitter(tmp_path, clock):
    conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None, timeout=5)
    queue = JobQueue(conn, clock=clock, rng=HalfRange(), backoff_base=2.0, backoff_cap=60.0)
    job_id = queue.enqueue("mail", "flaky")
    job = queue.receive("mail")
    assert queue.fail(job.receipt) is True
    # first retry: uniform(0, min(60, 2 * 2 ** 0)) = 1.0 s with this RNG
    clock.now += 0.999
    assert queue.receive("mail") is None
    clock.now += 0.001
    job = queue.receive("mail")
    assert (job.id, job.receives) == (job_id, 2)
    assert queue.fail(job.receipt) is True
    # second retry: uniform(0, min(60, 2 * 2 ** 1)) = 2.0 s
    clock.now += 2.0
    assert queue.receive("mail").receives == 3
