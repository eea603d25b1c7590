"""Hidden specs for one process: delivery, visibility timeouts, receipts, idempotency keys,
backoff with full jitter, dead letters, ordering groups, and the transactions that keep two
connections from handing out the same job.

Time is the spec's FakeClock; the backoff's randomness is a ScriptedRandom whose every draw
is the same known fraction of its range, so each delay is known exactly.
"""

from __future__ import annotations

import sqlite3

import pytest
from _helpers import T0, ScriptedRandom, connect, heads, open_queue

from grader.spectools import FakeClock, called, step

VT = 30.0  # the visibility timeout the specs configure


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "jobs.db"


def receive(q, queue="work", **kwargs):
    with step(f"queue.receive({queue!r})"):
        return q.receive(queue, **kwargs)


def enqueue(q, body="payload", queue="work", **kwargs):
    with step(
        f"queue.enqueue({queue!r}, {body!r}{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
    ):
        return q.enqueue(queue, body, **kwargs)


def job_id(job):
    return None if job is None else job.id


# --- delivery ---------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_receive_hands_out_the_enqueued_job(path, clock):
    """receive returns the enqueued job: its id, queue, body, a receipt, and receives = 1."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q, "send mail to ada")
    job = receive(q)
    got = None if job is None else (job.id, job.queue, job.body, job.receives)
    want = (jid, "work", "send mail to ada", 1)
    assert got == want, called("queue.receive('work') after one enqueue", got, want)
    assert isinstance(job.receipt, str) and job.receipt, called(
        "queue.receive('work'); its receipt", job.receipt, "a non-empty str"
    )


@pytest.mark.points(1)
def test_receive_on_an_empty_or_other_queue_returns_none(path, clock):
    """receive returns None when the queue has no job; queues are separate."""
    q = open_queue(path, clock, visibility_timeout=VT)
    got = receive(q, "work")
    assert got is None, called("queue.receive('work') on an empty queue", got, None)
    enqueue(q, "for mail", queue="mail")
    got = receive(q, "work")
    assert got is None, called("queue.receive('work') with a job only in 'mail'", got, None)
    got = job_id(receive(q, "mail"))
    assert got is not None, called("queue.receive('mail')", got, "the mail job")


@pytest.mark.points(2)
def test_jobs_are_delivered_once_each_while_visible(path, clock):
    """Five jobs come out of five receives, each exactly once; the sixth receive returns None."""
    q = open_queue(path, clock, visibility_timeout=VT)
    ids = [enqueue(q, f"job {i}") for i in range(5)]
    got = [job_id(receive(q)) for _ in range(6)]
    assert sorted(got[:5]) == sorted(ids) and got[5] is None, called(
        "5 enqueues, then queue.receive('work') 6 times at the same time",
        got,
        "each id once, then None",
    )


@pytest.mark.points(1)
def test_the_queue_uses_wal_mode(path, clock):
    """Opening a JobQueue puts the database in WAL mode (PRAGMA journal_mode = WAL)."""
    q = open_queue(path, clock)
    enqueue(q)
    got = connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert got.lower() == "wal", called("JobQueue(conn, ...); then PRAGMA journal_mode", got, "wal")


@pytest.mark.points(2)
def test_jobs_and_leases_survive_a_reopen(path, clock):
    """Jobs live in the database: a new JobQueue on a new connection sees them, and an in-flight job stays hidden."""
    q = open_queue(path, clock, visibility_timeout=VT)
    first = enqueue(q, "first")
    second = enqueue(q, "second")
    held = job_id(receive(q))
    q.conn.close()
    q2 = open_queue(path, clock, visibility_timeout=VT)
    other = ({first, second} - {held}).pop() if held in (first, second) else None
    got = job_id(receive(q2))
    assert got == other, called(
        "receive one of 2 jobs, reopen on a new connection, queue.receive('work')", got, other
    )
    got = job_id(receive(q2))
    assert got is None, called("...; receive again (the first job is still in flight)", got, None)
    clock.advance(VT)
    got = job_id(receive(q2))
    assert got == held, called("...; receive after the visibility timeout", got, held)


# --- the visibility timeout ---------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("after", "visible"),
    [(VT - 0.001, False), (VT, True), (VT + 0.001, True)],
    ids=["timeout - 1 ms: hidden", "exactly the timeout: visible", "timeout + 1 ms: visible"],
)
def test_an_unacked_job_reappears_after_the_visibility_timeout(path, clock, after, visible):
    """A received job that is not acked is hidden for exactly the visibility timeout, then received again with a new receipt."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q)
    first = receive(q)
    clock.advance(after)
    again = receive(q)
    call = f"receive, then queue.receive('work') {after:g} s later (timeout {VT:g} s)"
    if not visible:
        assert again is None, called(call, again, None)
        return
    got = None if again is None else (again.id, again.receives)
    assert got == (jid, 2), called(call, got, (jid, 2))
    assert again.receipt != first.receipt, called(
        f"{call}; its receipt", again.receipt, f"a new receipt, not {first.receipt!r}"
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("after", "visible"), [(4.999, False), (5.0, True)], ids=["4.999 s: hidden", "5 s: visible"]
)
def test_receive_can_set_its_own_visibility_timeout(path, clock, after, visible):
    """receive(queue, visibility_timeout=5) hides the job for 5 s instead of the queue's default."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q)
    receive(q, visibility_timeout=5.0)
    clock.advance(after)
    got = job_id(receive(q))
    want = jid if visible else None
    assert got == want, called(
        f"receive(visibility_timeout=5), then receive {after:g} s later", got, want
    )


# --- ack, extend, stale receipts -----------------------------------------------------------------


@pytest.mark.points(3)
def test_an_acked_job_is_gone_for_good(path, clock):
    """ack(receipt) returns True and the job never comes back; a second ack returns False."""
    q = open_queue(path, clock, visibility_timeout=VT)
    enqueue(q)
    job = receive(q)
    with step("queue.ack(receipt)"):
        got = q.ack(job.receipt)
    assert got is True, called("queue.ack(receipt) of a job in flight", got, True)
    clock.advance(VT * 10)
    got = job_id(receive(q))
    assert got is None, called("ack, then queue.receive('work') long after the timeout", got, None)
    with step("queue.pending('work')"):
        count = q.pending("work")
    assert count == 0, called("ack; then queue.pending('work')", count, 0)
    with step("queue.ack(receipt) again"):
        got = q.ack(job.receipt)
    assert got is False, called("queue.ack(receipt) a second time", got, False)


@pytest.mark.points(3)
@pytest.mark.parametrize("op", ["ack", "extend", "fail"])
def test_a_stale_receipt_changes_nothing(path, clock, op):
    """Once a timed-out job is received again, the old receipt's ack, extend and fail return False and do nothing."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=5, rng=ScriptedRandom(0.5))
    jid = enqueue(q)
    slow = receive(q)
    clock.advance(VT)
    fresh = receive(q)
    args = (slow.receipt, 100.0) if op == "extend" else (slow.receipt,)
    call = f"queue.{op}(old receipt) after the job was received again"
    with step(call):
        got = getattr(q, op)(*args)
    assert got is False, called(call, got, False)
    got = job_id(receive(q))
    assert got is None, called(f"{call}; then receive (the new lease still holds)", got, None)
    clock.advance(VT)
    got = job_id(receive(q))
    assert got == jid, called(f"{call}; then receive after the new lease ran out", got, jid)
    assert fresh.receipt != slow.receipt, called(
        "receive, let it time out, receive again; the two receipts",
        (slow.receipt, fresh.receipt),
        "two receipts",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("after", "visible"),
    [(59.999, False), (60.0, True)],
    ids=["extended deadline - 1 ms: hidden", "at the extended deadline: visible"],
)
def test_extend_keeps_the_job_hidden_from_now(path, clock, after, visible):
    """extend(receipt, 50) at 10 s hides the job until 60 s after the receive (now + 50), not longer, not shorter."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q)
    job = receive(q)
    clock.advance(10)
    with step("queue.extend(receipt, 50)"):
        ok = q.extend(job.receipt, 50)
    assert ok is True, called("queue.extend(receipt, 50) of a job in flight", ok, True)
    clock.advance(after - 10)
    got = job_id(receive(q))
    want = jid if visible else None
    assert got == want, called(
        f"extend(receipt, 50) 10 s after receive; receive at {after:g} s", got, want
    )


@pytest.mark.points(1)
def test_extend_by_zero_releases_the_job_now(path, clock):
    """extend(receipt, 0) makes the job visible at once; a negative extension raises ValueError."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q)
    job = receive(q)
    with step("queue.extend(receipt, -1)"):
        try:
            q.extend(job.receipt, -1)
            got = "returned"
        except ValueError:
            got = "ValueError"
    assert got == "ValueError", called("queue.extend(receipt, -1)", got, "ValueError")
    with step("queue.extend(receipt, 0)"):
        q.extend(job.receipt, 0)
    got = job_id(receive(q))
    assert got == jid, called("extend(receipt, 0); then receive at the same time", got, jid)


# --- idempotency keys ------------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("after", "duplicate"),
    [(0.0, True), (299.999, True), (300.0, False), (301.0, False)],
    ids=[
        "at once: duplicate",
        "window - 1 ms: duplicate",
        "exactly the window: new job",
        "window + 1 s: new job",
    ],
)
def test_a_repeated_key_within_the_window_is_ignored(path, clock, after, duplicate):
    """enqueue with a key already used in the last dedup_window seconds returns the first job's id and adds nothing."""
    q = open_queue(path, clock, visibility_timeout=VT, dedup_window=300.0)
    first = enqueue(q, "charge order 7", key="order-7")
    clock.advance(after)
    second = enqueue(q, "charge order 7", key="order-7")
    call = f"enqueue(key='order-7') twice, {after:g} s apart (window 300 s)"
    if duplicate:
        assert second == first, called(f"{call}; the second id", second, first)
        want = 1
    else:
        assert second != first, called(f"{call}; the second id", second, "a new job's id")
        want = 2
    with step("queue.pending('work')"):
        got = q.pending("work")
    assert got == want, called(f"{call}; then queue.pending('work')", got, want)


@pytest.mark.points(2)
def test_a_key_still_deduplicates_after_its_job_is_acked(path, clock):
    """The key is remembered for the whole window, even after its job was acked: a late retry of the producer adds nothing."""
    q = open_queue(path, clock, visibility_timeout=VT, dedup_window=300.0)
    first = enqueue(q, key="order-7")
    job = receive(q)
    q.ack(job.receipt)
    clock.advance(100)
    again = enqueue(q, key="order-7")
    assert again == first, called(
        "enqueue(key), ack its job, enqueue(key) 100 s later", again, first
    )
    got = job_id(receive(q))
    assert got is None, called("...; then queue.receive('work')", got, None)


@pytest.mark.points(2)
def test_an_id_is_never_reused(path, clock):
    """Job ids grow in enqueue order and are never reused, not even after the newest job was acked and the table is empty."""
    q = open_queue(path, clock, visibility_timeout=VT)
    first = enqueue(q, "first", key="k")
    job = receive(q)
    with step("queue.ack(receipt)"):
        q.ack(job.receipt)
    second = enqueue(q, "second")
    assert isinstance(second, int) and second > first, called(
        "enqueue, receive, ack (the queue is empty), enqueue again; the new id",
        second,
        f"an id greater than {first}",
    )
    again = enqueue(q, "first", key="k")
    assert again == first, called(
        "...; then enqueue with the first job's key (within the window)", again, first
    )


@pytest.mark.points(1)
def test_keys_are_per_queue_and_no_key_never_deduplicates(path, clock):
    """The same key in two queues makes two jobs, and jobs enqueued without a key are never merged."""
    q = open_queue(path, clock, visibility_timeout=VT)
    a = enqueue(q, queue="a", key="k")
    b = enqueue(q, queue="b", key="k")
    assert a != b, called("enqueue('a', key='k') and enqueue('b', key='k'); ids", (a, b), "two ids")
    x = enqueue(q, "same body")
    y = enqueue(q, "same body")
    assert x != y, called(
        "enqueue('work', 'same body') twice without a key; ids", (x, y), "two ids"
    )


# --- retries: backoff with full jitter, dead letters ----------------------------------------------


def fail_until(q, clock, attempts):
    """Receive and fail the queue's only job ``attempts`` times (each time as soon as it is visible); return the
    time of the last fail and the job's id."""
    jid = None
    for n in range(1, attempts + 1):
        job = receive(q)
        if job is None:  # waiting out a backoff: the job is visible again by now + cap
            clock.advance(1000.0)
            job = receive(q)
        assert job is not None, called(f"receive for attempt {n}", None, "the job")
        jid = job.id
        with step(f"queue.fail(receipt) at attempt {n}"):
            ok = q.fail(job.receipt)
        assert ok is True, called(f"queue.fail(receipt) at attempt {n}", ok, True)
    return clock(), jid


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 16.0), (8, 16.0)],
    ids=[
        "attempt 1: base",
        "attempt 2: 2 x base",
        "attempt 3: one below the cap",
        "attempt 4: exactly the cap",
        "attempt 5: capped",
        "attempt 8: capped",
    ],
)
def test_a_failed_job_returns_after_a_capped_exponential_full_jitter_delay(
    path, clock, attempt, ceiling
):
    """After its n-th failed attempt a job is hidden for uniform(0, min(cap, base * 2 ** (n - 1))) seconds: full jitter."""
    rng = ScriptedRandom(0.75)
    q = open_queue(
        path,
        clock,
        visibility_timeout=VT,
        rng=rng,
        backoff_base=2.0,
        backoff_cap=16.0,
        max_receives=20,
    )
    enqueue(q)
    failed_at, jid = fail_until(q, clock, attempt)
    delay = 0.75 * ceiling
    clock.now = failed_at + delay - 0.001
    got = job_id(receive(q))
    call = f"fail the job {attempt} time(s) (base 2, cap 16, every draw 0.75 of its range)"
    assert got is None, called(
        f"{call}; receive {delay - 0.001:g} s after the last fail", got, None
    )
    clock.now = failed_at + delay
    got = job_id(receive(q))
    assert got == jid, called(f"{call}; receive {delay:g} s after the last fail", got, jid)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "u", [0.0, 0.999], ids=["draw 0: no wait", "draw 0.999: almost the ceiling"]
)
def test_full_jitter_spans_zero_to_the_ceiling(path, clock, u):
    """The jitter draws the whole delay from [0, ceiling): a draw of 0 retries at once, a draw of 0.999 waits 0.999 x ceiling."""
    q = open_queue(
        path,
        clock,
        visibility_timeout=VT,
        rng=ScriptedRandom(u),
        backoff_base=4.0,
        backoff_cap=60.0,
    )
    jid = enqueue(q)
    job = receive(q)
    with step("queue.fail(receipt)"):
        q.fail(job.receipt)
    delay = u * 4.0
    if delay > 0:
        clock.advance(delay - 0.001)
        got = job_id(receive(q))
        assert got is None, called(
            f"fail at attempt 1 (base 4, draw {u}); receive after {delay - 0.001:g} s", got, None
        )
        clock.advance(0.001)
    got = job_id(receive(q))
    assert got == jid, called(
        f"fail at attempt 1 (base 4, draw {u}); receive after {delay:g} s", got, jid
    )


@pytest.mark.points(1)
def test_backoff_draws_from_the_injected_rng(path, clock):
    """Each failed attempt draws its delay from the rng passed to JobQueue (seeded runs are reproducible)."""
    rng = ScriptedRandom(0.5)
    q = open_queue(path, clock, visibility_timeout=VT, rng=rng, backoff_base=1.0, backoff_cap=8.0)
    enqueue(q)
    fail_until(q, clock, 3)
    assert rng.draws == 3, called("fail a job 3 times; draws from the injected rng", rng.draws, 3)


@pytest.mark.points(1)
def test_the_rng_is_drawn_only_for_a_scheduled_retry(path, clock):
    """The rng is drawn once per scheduled retry and at no other time: receive, ack, extend, a stale fail and a fail that dead-letters draw nothing.

    An extra draw shifts every later delay of a seeded run (the lesson: "one draw per scheduled
    retry"); the other specs' ScriptedRandom returns the same fraction every time and cannot
    see it.
    """
    rng = ScriptedRandom(0.5)
    q = open_queue(
        path,
        clock,
        visibility_timeout=VT,
        rng=rng,
        backoff_base=1.0,
        backoff_cap=8.0,
        max_receives=2,
    )
    enqueue(q, "done")
    enqueue(q, "poison")
    history = []

    def did(text, ok, want):
        history.append(text)
        assert ok is want, called("; ".join(history), ok, want)
        assert rng.draws == (1 if "fail(poison, receive 1)" in " ".join(history) else 0), called(
            "; ".join(history) + "; draws from the injected rng so far",
            rng.draws,
            "1 after the fail at receive 1 (a scheduled retry), 0 before it, and no more after it",
        )

    done = receive(q)
    with step("queue.extend(receipt, 5); queue.ack(receipt)"):
        did("receive -> done; extend(done, 5)", q.extend(done.receipt, 5.0), True)
        did("ack(done)", q.ack(done.receipt), True)
    first = receive(q)
    with step("queue.fail(receipt) at receive 1 of 2"):
        did("receive -> poison; fail(poison, receive 1)", q.fail(first.receipt), True)
    clock.advance(8.0)
    second = receive(q)
    assert second is not None and second.receives == 2, called(
        "fail(poison) at receive 1 (delay 0.5 s), 8 s later receive", second, "poison, receives = 2"
    )
    with step("queue.fail(stale receipt); queue.fail(receipt) at receive 2 of 2"):
        did("receive -> poison again; fail(stale receipt)", q.fail(first.receipt), False)
        did("fail(poison, receive 2 = max_receives): dead-lettered", q.fail(second.receipt), True)
    with step("queue.dead_letters('work')"):
        letters = [j.body for j in q.dead_letters("work")]
    assert letters == ["poison"], called("...; then dead_letters('work')", letters, ["poison"])


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("timeouts", "dead"),
    [(2, False), (3, True)],
    ids=["received max_receives times: still delivered", "one receive more: dead-lettered"],
)
def test_a_job_received_max_receives_times_goes_to_the_dead_letters(path, clock, timeouts, dead):
    """A job whose visibility timed out max_receives times is not delivered again: the next receive dead-letters it."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=3)
    jid = enqueue(q, "poison")
    for _ in range(timeouts):
        receive(q)
        clock.advance(VT)
    job = receive(q)
    with step("queue.dead_letters('work')"):
        letters = q.dead_letters("work")
    call = f"max_receives=3; let the job time out {timeouts} times; receive"
    if not dead:
        got = None if job is None else (job.id, job.receives)
        assert got == (jid, timeouts + 1), called(call, got, (jid, timeouts + 1))
        assert letters == [], called(f"{call}; then dead_letters('work')", letters, [])
        return
    assert job is None, called(call, job, None)
    got = [(j.id, j.body, j.receives) for j in letters]
    assert got == [(jid, "poison", 3)], called(
        f"{call}; then dead_letters('work')", got, [(jid, "poison", 3)]
    )
    assert q.pending("work") == 0, called(f"{call}; then pending('work')", q.pending("work"), 0)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("fails", "dead"),
    [(2, False), (3, True)],
    ids=["fail at receive 2 of 3: retried", "fail at receive 3 of 3: dead-lettered"],
)
def test_a_failure_at_the_last_receive_dead_letters_at_once(path, clock, fails, dead):
    """fail at the max_receives-th receive moves the job to the dead letters at once; an earlier fail schedules a retry."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=3, rng=ScriptedRandom(0.0))
    jid = enqueue(q)
    fail_until(q, clock, fails)
    with step("queue.dead_letters('work')"):
        got = [j.id for j in q.dead_letters("work")]
    want = [jid] if dead else []
    assert got == want, called(
        f"max_receives=3; receive and fail {fails} times; dead_letters", got, want
    )
    with step("queue.pending('work')"):
        pending = q.pending("work")
    assert pending == (0 if dead else 1), called(
        "...; then pending('work')", pending, 0 if dead else 1
    )


@pytest.mark.points(1)
def test_a_job_acked_at_its_last_receive_is_not_dead(path, clock):
    """A job that succeeds at its max_receives-th receive is acked, not dead-lettered."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=2)
    enqueue(q)
    receive(q)
    clock.advance(VT)
    job = receive(q)
    ok = q.ack(job.receipt)
    letters = q.dead_letters("work")
    assert ok is True and letters == [], called(
        "max_receives=2; time out once, ack at receive 2; ack, dead_letters",
        (ok, letters),
        (True, []),
    )


@pytest.mark.points(2)
def test_dead_lettering_does_not_block_the_next_job(path, clock):
    """The receive that dead-letters an exhausted job hands out the next visible job in the same call."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=1)
    poison = enqueue(q, "poison")
    receive(q)
    clock.advance(VT)
    good = enqueue(q, "good")
    got = job_id(receive(q))
    assert got == good, called(
        "max_receives=1; poison job timed out once; enqueue another; receive", got, good
    )
    letters = [j.id for j in q.dead_letters("work")]
    assert letters == [poison], called("...; then dead_letters('work')", letters, [poison])


@pytest.mark.points(2)
def test_a_receive_dead_letters_every_visible_exhausted_job_of_its_queue(path, clock):
    """A receive moves every visible job of its queue that used up its receives to the dead letters, even one behind the job it hands out.

    The exhausted job has the larger id, so a receive that only dead-letters what its scan
    passes on the way to a deliverable job leaves it pending.
    """
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=2)
    first = enqueue(q, "first")
    poison = enqueue(q, "poison")
    receive(q)  # first: receive 1, hidden for VT
    held = receive(q)  # poison: receive 1
    with step("queue.extend(poison's receipt, 0)"):
        q.extend(held.receipt, 0)
    got = job_id(receive(q))  # poison: receive 2 of 2
    assert got == poison, called(
        "max_receives=2; first in flight; poison released; receive", got, poison
    )
    clock.advance(VT)
    call = (
        "max_receives=2; 'first' (received once) and 'poison' (received twice) both visible"
        " again; receive('work')"
    )
    got = job_id(receive(q))
    assert got == first, called(call, got, first)
    with step("queue.dead_letters('work'); queue.pending('work')"):
        letters = [j.id for j in q.dead_letters("work")]
        pending = q.pending("work")
    assert (letters, pending) == ([poison], 1), called(
        f"{call}; then (dead_letters, pending)", (letters, pending), ([poison], 1)
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("how", ["fail", "receive"], ids=["dead by fail", "dead by receive"])
def test_a_dead_letter_keeps_its_queue_body_group_and_receive_count(path, clock, how):
    """dead_letters returns each dead job with its id, queue, body, group and receive count, and receipt None."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=1)
    jid = enqueue(q, "poison", group="g")
    job = receive(q)
    if how == "fail":
        with step("queue.fail(receipt) at receive 1 of 1"):
            q.fail(job.receipt)
    else:
        clock.advance(VT)
        receive(q)  # the job is visible again and exhausted: this receive dead-letters it
    with step("queue.dead_letters('work')"):
        got = [
            (j.id, j.queue, j.body, j.group, j.receives, j.receipt) for j in q.dead_letters("work")
        ]
    want = [(jid, "work", "poison", "g", 1, None)]
    assert got == want, called(
        f"max_receives=1; enqueue('work', 'poison', group='g'); receive; dead by {how};"
        " dead_letters('work') as (id, queue, body, group, receives, receipt)",
        got,
        want,
    )


@pytest.mark.points(1)
def test_dead_letters_are_listed_in_enqueue_order(path, clock):
    """dead_letters lists the dead jobs in enqueue order, not in the order they died or became visible."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=1)
    first = enqueue(q, "first")
    second = enqueue(q, "second")
    receive(q, visibility_timeout=2 * VT)  # first: hidden for twice as long
    job = receive(q)  # second
    with step("queue.fail(second's receipt) at receive 1 of 1"):
        q.fail(job.receipt)  # second dies now
    clock.advance(2 * VT)
    receive(q)  # first is visible again and exhausted: it dies now
    with step("queue.dead_letters('work')"):
        got = [j.id for j in q.dead_letters("work")]
    assert got == [first, second], called(
        "max_receives=1; 'second' dead-lettered by fail, then 'first' by a later receive;"
        " dead_letters('work') ids",
        got,
        [first, second],
    )


# --- ordering groups ---------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_a_group_is_delivered_one_job_at_a_time_in_order(path, clock):
    """Jobs of one group come out in enqueue order, and the next one only after the one in flight is acked."""
    q = open_queue(path, clock, visibility_timeout=VT)
    g = [enqueue(q, f"account 7 step {i}", group="acct-7") for i in range(3)]
    order = []
    for _ in range(3):
        job = receive(q)
        order.append(job_id(job))
        blocked = job_id(receive(q))
        assert blocked is None, called(
            f"group 'acct-7' with job {job_id(job)} in flight; receive", blocked, None
        )
        if job is not None:
            q.ack(job.receipt)
    assert order == g, called("3 jobs in group 'acct-7': receive and ack one at a time", order, g)


@pytest.mark.points(2)
def test_groups_are_independent_of_each_other_and_of_ungrouped_jobs(path, clock):
    """A job in flight blocks only its own group: other groups and jobs without a group are still delivered."""
    q = open_queue(path, clock, visibility_timeout=VT)
    a1 = enqueue(q, "a1", group="a")
    enqueue(q, "a2", group="a")
    b1 = enqueue(q, "b1", group="b")
    free = enqueue(q, "free")
    got = sorted(filter(None, (job_id(receive(q)) for _ in range(4))))
    want = sorted([a1, b1, free])
    assert got == want, called(
        "a1, a2 (group a), b1 (group b), one without a group; receive 4 times", got, want
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "ending", ["fail", "timeout"], ids=["failed first job", "timed-out first job"]
)
def test_a_retried_job_keeps_its_group_waiting(path, clock, ending):
    """When the first job of a group fails or times out, it is retried before the group's next job is delivered."""
    q = open_queue(
        path,
        clock,
        visibility_timeout=VT,
        rng=ScriptedRandom(0.5),
        backoff_base=2.0,
        max_receives=5,
    )
    first = enqueue(q, "1", group="g")
    enqueue(q, "2", group="g")
    job = receive(q)
    if ending == "fail":
        q.fail(job.receipt)
        got = job_id(receive(q))
        assert got is None, called("group g: first job failed, backing off; receive", got, None)
        clock.advance(1.0)
    else:
        clock.advance(VT)
    got = job_id(receive(q))
    assert got == first, called(
        f"group g: first job ended by {ending}; receive when visible", got, first
    )


@pytest.mark.points(1)
def test_a_dead_lettered_job_unblocks_its_group(path, clock):
    """Once a group's first job is dead-lettered, the group's next job is delivered."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=1)
    enqueue(q, "1", group="g")
    second = enqueue(q, "2", group="g")
    receive(q)
    clock.advance(VT)
    got = job_id(receive(q))
    assert got == second, called(
        "group g, max_receives=1: first job timed out; receive", got, second
    )


# --- transactions -------------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_every_transaction_begins_immediate(path, clock):
    """Every transaction the queue opens is BEGIN IMMEDIATE: a deferred BEGIN reads first and can fail to upgrade with SQLITE_BUSY."""
    q = open_queue(path, clock, visibility_timeout=VT, rng=ScriptedRandom(0.5))
    statements: list[str] = []
    q.conn.set_trace_callback(statements.append)
    with step("enqueue, receive, extend, fail, receive, ack"):
        enqueue(q, key="k")
        job = receive(q)
        q.extend(job.receipt, 5)
        q.fail(job.receipt)
        clock.advance(60)
        job = receive(q)
        q.ack(job.receipt)
    q.conn.set_trace_callback(None)
    begins = [h for h in heads(statements) if h.startswith("BEGIN")]
    deferred = [b for b in begins if b not in ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")]
    assert not deferred, called(
        "enqueue, receive, extend, fail, receive, ack; their BEGINs", begins, "only BEGIN IMMEDIATE"
    )


def racing(path, first_call, second_call, setup):
    """Race two connections at every point of the first one's operation.

    For k = 1, 2, ...: on a fresh database prepared by ``setup(queue)``, run ``first_call(a)``
    on connection a and, just before a's k-th SQL statement, ``second_call(b)`` on connection
    b (busy timeout 0, so a held lock shows as "busy" instead of a wait). Stops when a issues
    fewer than k statements. Yields (k, a, a's result, b's result or "busy: ...").
    """
    for k in range(1, 20):
        run = race_once(path.with_name(f"race{k}.db"), k, first_call, second_call, setup)
        if run is None:
            return
        yield (k, *run)


def race_once(db, k, first_call, second_call, setup):
    """One race of ``racing``: None if a issued fewer than k statements."""
    clock = FakeClock(T0)
    setup(open_queue(db, clock, visibility_timeout=VT))
    a = open_queue(db, clock, visibility_timeout=VT)
    b = open_queue(db, clock, conn_timeout=0.0, visibility_timeout=VT)
    seen = [0]
    box: list[object] = []

    def trace(sql: str) -> None:
        seen[0] += 1
        if seen[0] != k:
            return
        try:
            box.append(second_call(b))
        except sqlite3.OperationalError as exc:
            box.append(f"busy: {exc}")

    a.conn.set_trace_callback(trace)
    try:
        got_a = first_call(a)
    finally:
        a.conn.set_trace_callback(None)
    return (a, got_a, box[0]) if box else None


@pytest.mark.points(3)
def test_two_racing_receives_never_get_the_same_job(path):
    """A receive that runs while another receive is anywhere inside its work never gets the same job."""

    def setup(q):
        enqueue(q)

    with step(
        "receive on connection A, with a receive on connection B run before each of A's statements"
    ):
        for k, _, got_a, got_b in racing(
            path, lambda a: a.receive("work"), lambda b: b.receive("work"), setup
        ):
            ids = [job_id(got_a), got_b if isinstance(got_b, str) else job_id(got_b)]
            delivered = [i for i in ids if isinstance(i, int)]
            assert len(delivered) == len(set(delivered)), called(
                f"receive on connection A; on B just before A's statement {k} (one job)",
                ids,
                "the job handed out at most once",
            )


@pytest.mark.points(3)
def test_two_racing_enqueues_with_one_key_make_one_job(path):
    """An enqueue that runs while another enqueue with the same key is anywhere inside its work makes no second job."""

    def setup(q):
        enqueue(q, "warm-up")

    with step(
        "enqueue(key='k') on connection A, with the same on B run before each of A's statements"
    ):
        for k, a, got_a, got_b in racing(
            path,
            lambda a: a.enqueue("work", "x", key="k"),
            lambda b: b.enqueue("work", "x", key="k"),
            setup,
        ):
            count = a.pending("work") - 1
            assert count == 1, called(
                f"enqueue(key='k') on connection A; on B just before A's statement {k}; jobs made",
                (got_a, got_b, count),
                1,
            )


@pytest.mark.points(2)
@pytest.mark.parametrize("op", ["ack", "extend", "fail"])
def test_a_receipt_that_goes_stale_during_the_call_changes_nothing(path, op):
    """ack, extend or fail whose receipt goes stale while it runs (another worker receives the job) returns False and leaves that worker's job alone.

    A's receipt is the job's latest and the job is visible again (extended by 0); B receives
    it just before each of A's statements. A call that looks the job up by receipt and then
    writes by id, with no transaction around the two, deletes or changes B's job.
    """
    receipts: list[str] = []

    def setup(q):
        enqueue(q)
        job = receive(q)
        q.extend(job.receipt, 0)  # visible again; the receipt is still the latest
        receipts.append(job.receipt)

    def call(a):
        if op == "ack":
            return a.ack(receipts[-1])
        if op == "extend":
            return a.extend(receipts[-1], 100)
        return a.fail(receipts[-1])

    what = f"queue.{op}(receipt) on connection A"
    with step(f"{what}, with receive('work') on connection B run before each of A's statements"):
        for k, _a, got_a, got_b in racing(path, call, lambda b: b.receive("work"), setup):
            took = got_b is not None and not isinstance(got_b, str)
            assert not (took and got_a is not False), called(
                f"{what}; B received the job just before A's statement {k}; A's result",
                got_a,
                False,
            )


@pytest.mark.points(1)
def test_the_receipt_of_a_dead_lettered_job_is_stale(path, clock):
    """A slow worker's ack after its job was dead-lettered returns False, and the dead letter stays."""
    q = open_queue(path, clock, visibility_timeout=VT, max_receives=1)
    jid = enqueue(q, "poison")
    slow = receive(q)
    clock.advance(VT)
    receive(q)  # dead-letters the job
    with step("queue.ack(receipt of the dead-lettered job)"):
        ok = q.ack(slow.receipt)
    letters = [j.id for j in q.dead_letters("work")]
    assert (ok, letters) == (False, [jid]), called(
        "max_receives=1: job timed out and was dead-lettered; ack(old receipt); dead_letters",
        (ok, letters),
        (False, [jid]),
    )


@pytest.mark.points(1)
def test_groups_are_per_queue(path, clock):
    """A group name is scoped to its queue: a job in flight in group g of one queue does not hold back group g of another."""
    q = open_queue(path, clock, visibility_timeout=VT)
    enqueue(q, "a", queue="a", group="g")
    b = enqueue(q, "b", queue="b", group="g")
    receive(q, "a")
    got = job_id(receive(q, "b"))
    assert got == b, called(
        "group g in flight in queue 'a'; receive('b') with group g waiting", got, b
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("timeout", [0.0, -1.0], ids=["0", "-1"])
def test_a_visibility_timeout_must_be_positive(path, clock, timeout):
    """receive with a visibility timeout of 0 or less raises ValueError and hands out nothing."""
    q = open_queue(path, clock, visibility_timeout=VT)
    jid = enqueue(q)
    call = f"queue.receive('work', visibility_timeout={timeout:g})"
    with step(call):
        try:
            got = q.receive("work", visibility_timeout=timeout)
        except ValueError as exc:
            got = exc
    assert isinstance(got, ValueError), called(call, got, "ValueError")
    got = job_id(receive(q))
    assert got == jid, called(f"{call}; then queue.receive('work')", got, jid)


@pytest.mark.points(2)
@pytest.mark.parametrize("op", ["enqueue", "receive", "fail"])
def test_an_operation_that_fails_mid_transaction_rolls_back(path, clock, op):
    """An operation whose write is interrupted raises, leaves no transaction open, changes nothing, and frees the lock."""
    q = open_queue(path, clock, visibility_timeout=VT, rng=ScriptedRandom(0.5))
    jid = enqueue(q, key="k0")
    job = receive(q) if op == "fail" else None
    statements: list[str] = []
    q.conn.set_trace_callback(statements.append)

    def interrupt_writes() -> int:
        writing = any(
            h.split()[0] in ("UPDATE", "INSERT", "DELETE", "REPLACE") for h in heads(statements)
        )
        return 1 if writing else 0  # non-zero aborts the running statement (SQLITE_INTERRUPT)

    q.conn.set_progress_handler(interrupt_writes, 1)
    call = f"queue.{op}(...) with its first write interrupted"
    try:
        with step(call):
            try:
                if op == "enqueue":
                    q.enqueue("work", "new", key="k1")
                elif op == "receive":
                    q.receive("work")
                else:
                    q.fail(job.receipt)
                got: object = "returned normally"
            except sqlite3.OperationalError as exc:
                got = exc
    finally:
        q.conn.set_progress_handler(None, 1)
        q.conn.set_trace_callback(None)
    assert isinstance(got, sqlite3.OperationalError), called(
        call, got, "the OperationalError raised"
    )
    assert not q.conn.in_transaction, called(f"{call}; then conn.in_transaction", True, False)
    other = open_queue(path, clock, conn_timeout=0.0, visibility_timeout=VT)
    with step(f"{call}; then queue.pending('work') and receive('work') on another connection"):
        pending = other.pending("work")
        again = job_id(other.receive("work"))
    want = (1, None) if op == "fail" else (1, jid)
    assert (pending, again) == want, called(
        f"{call}; then pending and receive on another connection", (pending, again), want
    )


@pytest.mark.points(1)
def test_an_enqueue_that_raises_leaves_no_transaction_open(path, clock):
    """An enqueue that raises half-way (a body SQLite cannot store) leaves no transaction open and no lock held."""
    q = open_queue(path, clock, visibility_timeout=VT)
    call = "queue.enqueue('work', {'not': 'a str'}, key='k')"
    try:
        q.enqueue("work", {"not": "a str"}, key="k")
        got: object = "returned normally"
    except NotImplementedError:
        raise
    except Exception as exc:
        got = exc
    assert isinstance(got, Exception), called(call, got, "an exception")
    assert not q.conn.in_transaction, called(f"{call}; then conn.in_transaction", True, False)
    other = open_queue(path, clock, conn_timeout=0.0, visibility_timeout=VT)
    jid = enqueue(other, "fine", key="k")
    got = job_id(receive(other))
    assert got == jid, called(
        f"{call}; then enqueue(key='k') and receive on another connection", got, jid
    )
