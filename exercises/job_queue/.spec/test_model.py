"""Hidden specs: the queue against a model, over generated histories, and a queue that forgets.

The histories are seeded random walks (the same on every run) with chosen weights: a
receive or a fail with a fresh receipt must be common, or the deep states (backoff at the
cap, dead letters, groups held back) are never reached.

The model is a few dicts that follow the lesson's rules to the letter: visible means
``clock() >= visible_at``; a receive dead-letters every visible job of the queue that used
up its receives, then hands out one of the eligible jobs (any one: the spec accepts the
learner's choice among them and follows it); a grouped job is eligible only when no earlier
job of its group is pending; receipts go stale on the next receive; a failed job comes back
after uniform(0, min(cap, base * 2 ** (n - 1))) with every draw half its range. All times are
multiples of 0.25 s, so every sum is exact in floating point.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from _helpers import T0, ScriptedRandom, open_queue

from grader.spectools import FakeClock, called, step

OPTIONS = {
    "visibility_timeout": 10.0,
    "max_receives": 3,
    "backoff_base": 1.0,
    "backoff_cap": 1.5,
    "dedup_window": 20.0,
}
QUEUES = ["a", "a", "b"]
GROUPS = [None, None, "g", "h"]
KEYS = [None, None, "k1", "k2"]
STEPS = [
    "advance 0.25",
    "advance 0.5",
    "advance 1",
    "advance 2",
    "advance 4",
    "advance 10",
    "advance 20",
]


@dataclass
class Entry:
    """The model of one job that is neither acked nor forgotten."""

    id: int
    queue: str
    body: str
    group: str | None
    visible_at: float
    receives: int = 0
    receipt: str | None = None
    dead: bool = False


class QueueVersusModel:
    """enqueue, receive, ack, extend, fail, time passing and reopening, checked against the model."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "jobs.db"
        self.clock = FakeClock(T0)
        self.q = self.open()
        self.jobs: dict[int, Entry] = {}
        self.keys: dict[tuple[str, str], tuple[int, float]] = {}
        self.receipts: list[str] = []
        self.last_id = -1
        self.bodies = 0
        self.log: list[str] = []

    def close(self) -> None:
        self.q.conn.close()
        self.dir.cleanup()

    def open(self):
        return open_queue(self.path, self.clock, rng=ScriptedRandom(0.5), **OPTIONS)

    def call(self, text: str):
        self.log.append(f"t={self.clock() - T0:g}: {text}")
        return step(self.history())

    def history(self) -> str:
        return "; ".join(self.log[-8:])

    def valid(self, receipt: str) -> Entry | None:
        return next((e for e in self.jobs.values() if not e.dead and e.receipt == receipt), None)

    # --- producers ----------------------------------------------------------------------------

    def enqueue(self, queue, key, group):
        self.bodies += 1
        body = f"body {self.bodies}"
        with self.call(f"enqueue({queue!r}, {body!r}, key={key!r}, group={group!r})"):
            got = self.q.enqueue(queue, body, key=key, group=group)
        now = self.clock()
        remembered = self.keys.get((queue, key)) if key is not None else None
        if remembered is not None and now < remembered[1]:
            assert got == remembered[0], called(self.history(), got, remembered[0])
            return
        assert isinstance(got, int) and got > self.last_id, called(
            self.history(), got, f"a new id greater than {self.last_id}"
        )
        self.last_id = got
        self.jobs[got] = Entry(got, queue, body, group, now)
        if key is not None:
            self.keys[(queue, key)] = (got, now + OPTIONS["dedup_window"])

    # --- consumers ----------------------------------------------------------------------------

    def receive(self, queue):
        with self.call(f"receive({queue!r})"):
            job = self.q.receive(queue)
        now = self.clock()
        mine = [e for e in self.jobs.values() if e.queue == queue and not e.dead]
        for e in mine:
            if e.visible_at <= now and e.receives >= OPTIONS["max_receives"]:
                e.dead, e.receipt = True, None
        pending = sorted((e for e in mine if not e.dead), key=lambda e: e.id)
        eligible = {
            e.id
            for e in pending
            if e.visible_at <= now
            and (e.group is None or not any(p.group == e.group and p.id < e.id for p in pending))
        }
        if job is None:
            assert not eligible, called(self.history(), None, f"one of the jobs {sorted(eligible)}")
            return
        assert job.id in eligible, called(
            self.history(), f"job {job.id}", f"one of the visible, eligible jobs {sorted(eligible)}"
        )
        e = self.jobs[job.id]
        got = (job.queue, job.body, job.group, job.receives)
        want = (e.queue, e.body, e.group, e.receives + 1)
        assert got == want, called(f"{self.history()}; (queue, body, group, receives)", got, want)
        e.receives += 1
        e.receipt = job.receipt
        e.visible_at = now + OPTIONS["visibility_timeout"]
        self.receipts.append(job.receipt)

    def receipt_rule(self, name, index, apply, extra=""):
        if not self.receipts:
            return
        position = max(len(self.receipts) - 1 - index, 0)  # mostly the latest few receipts
        receipt = self.receipts[position]
        entry = self.valid(receipt)
        with self.call(f"{name}(receipt #{position + 1}{extra})"):
            got = apply(receipt)
        assert got is (entry is not None), called(self.history(), got, entry is not None)
        return entry

    def ack(self, index):
        entry = self.receipt_rule("ack", index, self.q.ack)
        if entry is not None:
            del self.jobs[entry.id]

    def extend(self, index, seconds):
        entry = self.receipt_rule(
            "extend", index, lambda r: self.q.extend(r, seconds), f", {seconds:g}"
        )
        if entry is not None:
            entry.visible_at = self.clock() + seconds

    def fail(self, index):
        entry = self.receipt_rule("fail", index, self.q.fail)
        if entry is None:
            return
        if entry.receives >= OPTIONS["max_receives"]:
            entry.dead, entry.receipt = True, None
        else:
            ceiling = min(
                OPTIONS["backoff_cap"], OPTIONS["backoff_base"] * 2 ** (entry.receives - 1)
            )
            entry.visible_at = self.clock() + 0.5 * ceiling

    # --- the world ----------------------------------------------------------------------------

    def advance(self, seconds):
        self.clock.advance(seconds)
        self.log.append(f"advance({seconds:g})")

    def reopen(self):
        self.q.conn.close()
        with self.call("close; JobQueue on a new connection"):
            self.q = self.open()

    def counts_and_dead_letters_agree(self):
        for queue in ("a", "b"):
            with step(f"{self.history()}; pending({queue!r}); dead_letters({queue!r})"):
                pending = self.q.pending(queue)
                dead = [(j.id, j.receives) for j in self.q.dead_letters(queue)]
            mine = sorted((e for e in self.jobs.values() if e.queue == queue), key=lambda e: e.id)
            want_pending = sum(1 for e in mine if not e.dead)
            want_dead = [(e.id, e.receives) for e in mine if e.dead]
            assert pending == want_pending, called(
                f"{self.history()}; pending({queue!r})", pending, want_pending
            )
            assert dead == want_dead, called(
                f"{self.history()}; dead_letters({queue!r})", dead, want_dead
            )


WEIGHTS = {
    "enqueue": 20,
    "receive": 30,
    "ack": 10,
    "extend": 6,
    "fail": 12,
    "advance": 19,
    "reopen": 3,
}


def walk(seed: int, steps: int) -> None:
    """One seeded history of ``steps`` operations, every answer and count checked against the model."""
    rng = random.Random(seed)
    machine = QueueVersusModel()
    ops, weights = list(WEIGHTS), list(WEIGHTS.values())
    try:
        for _ in range(steps):
            op = rng.choices(ops, weights)[0]
            if op == "enqueue":
                machine.enqueue(rng.choice(QUEUES), rng.choice(KEYS), rng.choice(GROUPS))
            elif op == "receive":
                machine.receive(rng.choice(QUEUES))
            elif op == "ack":
                machine.ack(rng.randrange(3))
            elif op == "extend":
                machine.extend(rng.randrange(3), rng.choice([0.0, 3.0, 10.0]))
            elif op == "fail":
                machine.fail(rng.randrange(3))
            elif op == "advance":
                machine.advance(float(rng.choice(STEPS).split()[1]))
            else:
                machine.reopen()
            machine.counts_and_dead_letters_agree()
    finally:
        machine.close()


@pytest.mark.points(5)
@pytest.mark.parametrize(
    "seeds", [range(0, 20), range(20, 40)], ids=["histories 0-19", "histories 20-39"]
)
def test_the_queue_behaves_like_its_model(seeds):
    """Any mix of enqueue (keys, groups), receive, ack, extend, fail, time passing and reopening follows the queue's rules."""
    for seed in seeds:
        walk(seed, 80)


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(str(path))
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.mark.points(2)
def test_the_database_forgets_acked_jobs_and_expired_keys(tmp_path):
    """Once every job is acked and every key's window has passed, the database keeps no trace of them: it stays bounded."""
    path = tmp_path / "jobs.db"
    clock = FakeClock(T0)
    q = open_queue(path, clock, visibility_timeout=10.0, dedup_window=60.0)
    with step("50 x (enqueue with a key, receive, ack)"):
        for i in range(50):
            q.enqueue("work", f"job {i}", key=f"key-{i}")
            job = q.receive("work")
            q.ack(job.receipt)
    clock.advance(60.0)
    with step("after the window: enqueue one more with a key, receive it, ack it"):
        q.enqueue("work", "last", key="last")
        job = q.receive("work")
        q.ack(job.receipt)
        q.receive("work")
    got = rows(path)
    assert sum(got.values()) <= 5, called(
        "50 keyed jobs acked, 60 s (the window) later one more; rows in each table",
        got,
        "at most 5 rows in all",
    )
