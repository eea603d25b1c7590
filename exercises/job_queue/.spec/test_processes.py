"""Hidden specs with real processes: workers killed with SIGKILL mid-job and inside a
transaction, and concurrent receivers draining one queue.

Every worker is a child process (sys.executable) with its own SQLite connection; the spec
sends it commands one JSON line at a time, each with the time to use as "now", so every
process shares the spec's clock (see _helpers.WORKER). SIGKILL gives the learner's code no
chance to clean up: what survives is what was committed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import pytest
from _helpers import PAUSER, T0, Worker, integrity, last_line, module_folder, open_queue

from grader.spectools import FakeClock, called, step

VT = 10.0
OPTIONS = {"visibility_timeout": VT, "max_receives": 10}


def seed_jobs(path, n: int, clock: FakeClock) -> list[int]:
    q = open_queue(path, clock, **OPTIONS)
    with step(f"queue.enqueue('work', ...) x {n}"):
        ids = [q.enqueue("work", f"job {i}") for i in range(n)]
    q.conn.close()
    return ids


@pytest.mark.points(5)
def test_workers_killed_mid_job_lose_no_job(tmp_path):
    """Workers killed with SIGKILL between receive and ack lose nothing: every job is acked at least once, none dead-lettered.

    Three worker processes receive in turn at the spec's time; a seeded coin kills the worker
    holding a job (a new worker replaces it) or lets it ack. Time moves 4 s per round
    (visibility timeout 10 s), so a dead worker's job reappears three rounds later. The spec
    also checks that no job is handed out while a live lease on it still runs.
    """
    path = tmp_path / "jobs.db"
    clock = FakeClock(T0)
    ids = seed_jobs(path, 12, clock)
    coin = random.Random(20240)
    workers = [Worker(path, OPTIONS, clock()) for _ in range(3)]
    acked: set[int] = set()
    leases: dict[int, float] = {}  # job id -> when its latest lease ends
    kills = 0
    try:
        for w in workers:
            w.reply("starting a worker")
        for _ in range(60):
            if acked == set(ids):
                break
            for slot, w in enumerate(workers):
                answer = w.ask("queue.receive('work')", op="receive", queue="work", now=clock())
                if answer["job"] is None:
                    continue
                jid, receipt, _ = answer["job"]
                assert leases.get(jid, -1.0) <= clock(), called(
                    f"queue.receive('work') at t={clock() - T0:g} s in a worker",
                    f"job {jid}, whose lease runs until t={leases.get(jid, 0) - T0:g} s",
                    "no job that another worker still holds",
                )
                leases[jid] = clock() + VT
                if coin.random() < 0.35:
                    w.kill()  # mid-job: received, not acked
                    kills += 1
                    workers[slot] = Worker(path, OPTIONS, clock())
                    workers[slot].reply("starting a replacement worker")
                else:
                    ok = w.ask("queue.ack(receipt)", op="ack", receipt=receipt, now=clock())["ok"]
                    assert ok is True, called("queue.ack(receipt) right after receive", ok, True)
                    acked.add(jid)
            clock.advance(4.0)
    finally:
        for w in workers:
            w.close()
    missing = sorted(set(ids) - acked)
    assert not missing, called(
        f"12 jobs, 3 workers, {kills} killed mid-job, 60 rounds; jobs never acked", missing, []
    )
    q = open_queue(path, clock, **OPTIONS)
    with step("queue.dead_letters('work'); queue.pending('work')"):
        dead = [j.id for j in q.dead_letters("work")]
        pending = q.pending("work")
    assert (dead, pending) == ([], 0), called(
        f"after {kills} kills and every job acked: dead_letters, pending", (dead, pending), ([], 0)
    )
    assert kills >= 3, f"the spec's coin killed only {kills} workers; it must kill at least 3"
    assert integrity(path) == "ok", called("PRAGMA integrity_check", integrity(path), "ok")


@pytest.mark.points(4)
def test_concurrent_receivers_never_share_a_visible_job(tmp_path):
    """Four processes receiving at once from one queue get every job exactly once while no lease expires."""
    path = tmp_path / "jobs.db"
    clock = FakeClock(T0)
    ids = seed_jobs(path, 60, clock)
    workers = [Worker(path, OPTIONS, clock()) for _ in range(4)]
    try:
        for w in workers:
            w.reply("starting a worker")
        for w in workers:  # all four start draining at once
            w.send(op="drain", queue="work", now=clock())
        got = [w.reply("receive until None, in 4 processes at once")["got"] for w in workers]
    finally:
        for w in workers:
            w.close()
    every = sorted(i for part in got for i in part)
    twice = sorted({i for i in every if every.count(i) > 1})
    assert not twice, called(
        "4 processes call receive('work') until None, at the same time (60 jobs)",
        f"jobs handed out twice: {twice}",
        "each job once",
    )
    assert every == sorted(ids), called(
        "4 processes call receive('work') until None (60 jobs); jobs received",
        f"{len(every)} jobs",
        f"all {len(ids)}",
    )


def run_paused(path, options, now, op, point):
    """Run ``op`` in a child that pauses at ``point``; SIGKILL it there. Returns what it said."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PAUSER,
            module_folder(),
            str(path),
            json.dumps(options),
            str(now),
            op,
            point,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = proc.stdout.readline().strip()
        if said == "paused":
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = last_line(proc.stderr.read())
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    assert said == "paused" or said.startswith("done"), called(
        f"queue.{op}(...) in a child process",
        f"it said {said!r}; stderr: {err}",
        "it to pause or finish",
    )
    return said


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "point",
    ["after its first INSERT", "before COMMIT"],
    ids=["killed after the first INSERT", "killed before COMMIT"],
)
def test_a_producer_killed_inside_enqueue_leaves_all_or_nothing(tmp_path, point):
    """A producer killed inside enqueue(key=...) leaves the job and its key together or neither: its retry makes exactly one job."""
    path = tmp_path / "jobs.db"
    clock = FakeClock(T0)
    q = open_queue(path, clock, **OPTIONS)
    with step("queue.enqueue('work', 'other')"):
        q.enqueue("work", "other")
    said = run_paused(path, OPTIONS, clock(), "enqueue", point)
    with step("queue.enqueue('work', 'payload', key='k1') (the producer's retry)"):
        q.enqueue("work", "payload", key="k1")
    got = q.pending("work") - 1
    assert got == 1, called(
        f"enqueue(key='k1') in a child killed {point} ({said}); the retry enqueue(key='k1'); jobs for k1",
        got,
        1,
    )
    assert integrity(path) == "ok", called("PRAGMA integrity_check", integrity(path), "ok")


@pytest.mark.points(3)
def test_a_receiver_killed_before_commit_leaves_the_job_visible(tmp_path):
    """A receiver killed inside receive before its COMMIT took nothing: the job is receivable at once, not after a timeout."""
    path = tmp_path / "jobs.db"
    clock = FakeClock(T0)
    (jid,) = seed_jobs(path, 1, clock)
    said = run_paused(path, OPTIONS, clock(), "receive", "before COMMIT")
    q = open_queue(path, clock, **OPTIONS)
    with step("queue.receive('work')"):
        job = q.receive("work")
    if said == "paused":
        got = None if job is None else (job.id, job.receives)
        assert got == (jid, 1), called(
            "receive in a child killed before its COMMIT; then receive('work') at the same time",
            got,
            (jid, 1),
        )
    else:  # no COMMIT statement: a single-statement receive committed; the lease must hold
        assert job is None, called(
            "receive in a child that finished; receive('work') at the same time", job, None
        )
        clock.advance(VT)
        with step("queue.receive('work') after the visibility timeout"):
            job = q.receive("work")
        assert job is not None and job.id == jid, called(
            "receive in a child that finished; receive after the timeout", job, jid
        )
    assert integrity(path) == "ok", called("PRAGMA integrity_check", integrity(path), "ok")
