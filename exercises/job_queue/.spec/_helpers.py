"""Helpers for the job_queue specs: connections, a scripted RNG, and worker processes.

A worker is a real child process (``sys.executable``) running a small script that drives the
learner's JobQueue over its own SQLite connection. The spec talks to it one JSON line at a
time on stdin/stdout; every command carries the time, so the clock of every process is the
spec's clock and moves only when the spec says so. Replies are read by one thread per worker
into a queue, and every wait on them is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import job_queue
from job_queue import JobQueue

from grader.spectools import FakeClock, called, step

T0 = 1000.0


def connect(path: Path | str, timeout: float = 10.0) -> sqlite3.Connection:
    """A connection in autocommit mode (``isolation_level=None``), as the API asks for.

    ``synchronous = OFF``: no fsync. A commit still survives the death of its process (the
    written pages are in the kernel's cache), which is all these specs kill; only a power cut
    could lose it, and fsyncs on a busy shared disk would dominate the specs' time.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
    conn.execute("PRAGMA synchronous = OFF")
    return conn


def open_queue(path: Path | str, clock: FakeClock, conn_timeout: float = 10.0, **options: Any):
    """A JobQueue on a fresh connection to ``path``."""
    conn = connect(path, conn_timeout)
    with step(f"JobQueue(conn, clock=clock, {fmt(options)})"):
        return JobQueue(conn, clock=clock, **options)


def fmt(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


class ScriptedRandom:
    """An RNG whose every draw is the same fraction ``u`` of its range: ``random()`` returns u,
    ``uniform(a, b)`` returns a + (b - a) * u. Full jitter then gives exactly u * ceiling."""

    def __init__(self, u: float) -> None:
        self.u = u
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return self.u

    def uniform(self, a: float, b: float) -> float:
        self.draws += 1
        return a + (b - a) * self.u


def heads(statements: list[str]) -> list[str]:
    """The first two words of each statement, upper-cased: "BEGIN IMMEDIATE", "SELECT ID,"."""
    return [" ".join(s.split()[:2]).upper() for s in statements if s.strip()]


def module_folder() -> str:
    return str(Path(job_queue.__file__).resolve().parent)


# --- worker processes -------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sqlite3, sys
    sys.path.insert(0, sys.argv[1])
    from job_queue import JobQueue

    path, options = sys.argv[2], json.loads(sys.argv[3])
    now = [float(sys.argv[4])]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous = OFF")
    q = JobQueue(conn, clock=lambda: now[0], **options)

    def reply(**message):
        sys.stdout.write(json.dumps(message) + "\\n")
        sys.stdout.flush()

    reply(ready=True)
    for line in sys.stdin:
        command = json.loads(line)
        now[0] = command["now"]
        op = command["op"]
        if op == "receive":
            job = q.receive(command["queue"])
            reply(job=None if job is None else [job.id, job.receipt, job.receives])
        elif op == "ack":
            reply(ok=q.ack(command["receipt"]))
        elif op == "drain":
            got = []
            while (job := q.receive(command["queue"])) is not None:
                got.append(job.id)
            reply(got=got)
    """
)

# Runs one operation with a trace callback that stops the process at a chosen point (it says
# "paused" and blocks) so that the spec can SIGKILL it there.
PAUSER = textwrap.dedent(
    """
    import json, sqlite3, sys
    sys.path.insert(0, sys.argv[1])
    from job_queue import JobQueue

    path, options, now, op, point = sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous = OFF")
    q = JobQueue(conn, clock=lambda: now, **options)
    inserted = [False]

    def pause():
        sys.stdout.write("paused\\n")
        sys.stdout.flush()
        sys.stdin.read()  # blocks until the spec kills this process

    def trace(sql):
        head = sql.lstrip().split(None, 1)[0].upper()
        if point == "after its first INSERT" and inserted[0]:
            pause()
        if head == "INSERT":
            inserted[0] = True
        if point == "before COMMIT" and head in ("COMMIT", "END"):
            pause()

    conn.set_trace_callback(trace)
    if op == "enqueue":
        result = q.enqueue("work", "payload", key="k1")
    else:
        job = q.receive("work")
        result = None if job is None else job.id
    conn.set_trace_callback(None)
    print("done " + json.dumps(result), flush=True)
    """
)


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else "(nothing on stderr)"


class Worker:
    """A child process running WORKER; ``ask`` sends one command and waits (bounded) for the reply."""

    def __init__(self, path: Path, options: dict[str, Any], now: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                module_folder(),
                str(path),
                json.dumps(options),
                str(now),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output: the process exited

    def reply(self, what: str, timeout: float = 60.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"waited {timeout:g} s for a worker's answer to {what}; it never came"
            ) from None
        if not line:
            self.proc.wait(timeout=10)
            err = last_line(self.proc.stderr.read())
            raise AssertionError(f"Called {what} in a worker process; it died: {err}")
        return json.loads(line)

    def send(self, **command: Any) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ask(self, what: str, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.reply(what)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finally, no COMMIT."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()


def integrity(path: Path) -> str:
    conn = connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


__all__ = [
    "T0",
    "ScriptedRandom",
    "Worker",
    "called",
    "connect",
    "heads",
    "integrity",
    "open_queue",
]
