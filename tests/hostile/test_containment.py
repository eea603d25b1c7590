"""Hostile submissions that try to hang, exhaust or outlive the grader.

One course, graded once, several katas at a time: hangs, bombs, crashes, floods and
leftover processes, next to an honest kata. Each attack must stay inside its own kata and
its time limit, get a status a learner understands, and leave no process behind; the
honest kata is reported in full.
"""

from __future__ import annotations

import socket
import time

import pytest

from grader.runner import OUTPUT_KEEP

from .kit import (
    ADD_POINTS,
    CORRECT,
    FULL,
    HostileCourse,
    at_import,
    kill_leftovers,
    marked_processes,
    pids_in,
    wait_dead,
    with_mul,
)

HANG = 8.0  # the wall-clock limit of a kata that hangs: it is reached, so it stays short
TIMEOUT = 30.0  # the others': generous, so that a loaded machine cannot change their status
SLACK = 4.0  # stopping, killing and reaping, on a loaded 2-core machine

SWALLOW_TIMEOUTS = """
import time
while True:
    try:
        time.sleep(10)
    except BaseException:  # swallows the spec's timeout, and anything else
        pass
"""

# A bounded fork bomb: every process forks until 150 of them are recorded, then sleeps.
FORK_BOMB = (
    """
import os, time
root = os.getpid()
with open({pids!r}, "ab") as record:
    while os.path.getsize({pids!r}) < 150 * 8:
        try:
            child = os.fork()
        except OSError:
            break
        if child == 0:
            os.write(record.fileno(), b"%7d\\n" % os.getpid())
if os.getpid() != root:
    time.sleep(120)
    os._exit(0)
"""
    + SWALLOW_TIMEOUTS
)

# Processes left behind: a plain child, a double-forked daemon in its own session with an
# empty environment (no marker), one that ignores SIGTERM, and a listening socket server.
DAEMON = """
import os, sys
def daemon(code):
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.execve(sys.executable, [sys.executable, "-c", code], {{}})
        os.write(write, b"%d" % pid)
        os._exit(0)
    os.close(write)
    pid = int(os.read(read, 32))
    with open({pids!r}, "a") as record:
        record.write(f"{{pid}}\\n")
"""

LEFTOVERS = (
    DAEMON
    + """
import subprocess
daemon("import time; time.sleep(300)")
daemon("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
       "signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(300)")
daemon("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
       "open({port!r}, 'w').write(str(s.getsockname()[1])); time.sleep(300)")
while not os.path.exists({port!r}):
    pass
with open({pids!r}, "a") as record:
    record.write(f"{{subprocess.Popen(['sleep', '300']).pid}}\\n")
return a * b
"""
)

OUTPUT_FLOOD = """
import json, os, stat, sys
chunk = b"x" * (1 << 20)
for _ in range(50):  # captured by pytest
    sys.stdout.buffer.write(chunk)
channel = json.loads(sys.argv[-1])["out_fd"]
for fd in range(3, 64):  # pytest's saved copy of the real stdout: the grader's pipe
    try:
        if fd != channel and stat.S_ISFIFO(os.fstat(fd).st_mode):
            for _ in range(50):
                os.write(fd, chunk)
            break
    except OSError:
        pass
return a * b
"""

CHANNEL_FLOOD = """
import json, os, sys
channel = json.loads(sys.argv[-1])["out_fd"]
junk = b"z" * (1 << 20)
for _ in range(64):  # one 64 MiB line
    os.write(channel, junk)
os.write(channel, b"\\n" + b"{not json}\\n" * 1000)
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("containment")
    hostile = HostileCourse(root, timeout=TIMEOUT, spec_timeout=3)
    hostile.files = {
        "bomb": hostile.window / "bomb.pids",
        "left": hostile.window / "left.pids",
        "port": hostile.window / "server.port",
    }
    add = hostile.kata
    add("honest", CORRECT)
    add("loop_at_import", at_import("while True:\n    pass"), timeout=HANG)
    add("loop_in_spec", with_mul("while True:\n    pass"))
    add("swallowed_timeout", with_mul(SWALLOW_TIMEOUTS), timeout=HANG)
    add(
        "gil_hog",
        with_mul("""
        import threading, time
        threading.Thread(target=lambda: sum(range(10**15)), daemon=True).start()
        time.sleep(0.1)
        return a * b
        """),
        timeout=HANG,
    )
    add(
        "busy_thread",
        at_import("""
        import threading
        def spin():
            while True:
                try:
                    pass
                except BaseException:
                    pass
        threading.Thread(target=spin).start()
        """),
    )
    add(
        "memory_bomb",
        with_mul("""
        hoard = []
        while True:
            hoard.append(bytes(256 << 20))
        """),
    )
    add("fork_bomb", with_mul(FORK_BOMB.format(pids=str(hostile.files["bomb"]))))
    add(
        "leftovers",
        with_mul(
            LEFTOVERS.format(pids=str(hostile.files["left"]), port=str(hostile.files["port"]))
        ),
    )
    add("output_flood", with_mul(OUTPUT_FLOOD), spec_timeout=10)  # 100 MiB takes a while
    add("channel_flood", at_import(CHANNEL_FLOOD))
    add(
        "deep_recursion",
        with_mul("""
        nested = ()
        for _ in range(200_000):
            nested = (nested,)
        return hash(nested)  # recurses in C, 200,000 deep: the stack overflows
        """),
        spec_timeout=5,
    )
    add("ctypes_segfault", with_mul("import ctypes\nreturn ctypes.string_at(0)"))
    return hostile


@pytest.fixture(scope="module")
def graded(course):
    started = time.monotonic()
    try:
        results = course.grade(jobs=3)
    finally:
        pids = [p for f in ("bomb", "left") for p in pids_in(course.files[f])]
        survivors = wait_dead(pids)
        kill_leftovers(survivors)
    results["_"] = (time.monotonic() - started, survivors)
    return results


def kata(graded, slug):
    return graded[slug].result


def spec(result, name):
    (found,) = [s for s in result.specs if s.id.split("::")[-1] == name]
    return found


def within_limit(result, limit: float = HANG) -> bool:
    return result.duration <= limit + SLACK


@pytest.fixture(autouse=True)
def _others_intact(graded):
    yield
    honest = kata(graded, "honest")
    assert (honest.status, honest.score) == ("passed", FULL), honest


# -- hangs ---------------------------------------------------------------------------------


def test_an_endless_loop_at_import_times_out(graded):
    result = kata(graded, "loop_at_import")
    assert (result.status, result.score) == ("timeout", 0)
    assert "ran out of time" in result.reason
    assert within_limit(result)


def test_an_endless_loop_in_a_spec_fails_only_that_spec(graded):
    result = kata(graded, "loop_in_spec")
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert spec(result, "test_mul").outcome == "timeout"
    assert "time limit" in spec(result, "test_mul").message


def test_a_swallowed_spec_timeout_ends_at_the_kata_limit_keeping_earlier_results(graded):
    result = kata(graded, "swallowed_timeout")
    assert (result.status, result.score) == ("timeout", ADD_POINTS)
    assert spec(result, "test_mul").outcome == "timeout"
    assert spec(result, "test_async_add").outcome == "not_run"
    assert within_limit(result)


def test_a_thread_holding_the_interpreter_lock_is_stopped_at_the_kata_limit(graded):
    result = kata(graded, "gil_hog")
    assert (result.status, result.score) == ("timeout", ADD_POINTS)
    assert within_limit(result)


def test_a_busy_background_thread_does_not_hold_the_run_open(graded):
    result = kata(graded, "busy_thread")
    assert (result.status, result.score) == ("passed", FULL)
    assert result.duration < TIMEOUT / 2


# -- resources -----------------------------------------------------------------------------


def test_a_memory_bomb_hits_the_address_space_limit(graded):
    result = kata(graded, "memory_bomb")
    assert (result.status, result.score) == ("failed", FULL - 1)
    assert "MemoryError" in spec(result, "test_mul").message
    assert "memory limit" in spec(result, "test_mul").message


def test_a_fork_bomb_is_stopped_and_every_process_killed(graded, course):
    result = kata(graded, "fork_bomb")
    assert (result.status, result.score) == ("error", ADD_POINTS)
    assert "processes" in result.reason
    assert within_limit(result, TIMEOUT)
    pids = pids_in(course.files["bomb"])
    assert len(pids) >= 100, "the bomb did not go off"
    assert graded["_"][1] == [], "fork bomb processes outlived the grading"


def test_no_process_of_a_kata_outlives_its_grading(graded, course):
    result = kata(graded, "leftovers")
    assert (result.status, result.score) == ("passed", FULL)
    pids = pids_in(course.files["left"])
    assert len(pids) == 4, "the submission did not start its processes"
    assert graded["_"][1] == [], "processes outlived the grading"
    marked = wait_dead(marked_processes(course.run_ids))
    assert marked == [], "processes with a run marker outlived the grading"


def test_a_socket_server_left_listening_is_gone(graded, course):
    port = int(course.files["port"].read_text())
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# -- output --------------------------------------------------------------------------------


def test_100_mb_of_output_is_drained_and_capped(graded):
    result, run = kata(graded, "output_flood"), graded["output_flood"].run
    assert (result.status, result.score) == ("passed", FULL)
    assert run.output_bytes >= 50 << 20  # and 50 MiB more that pytest captured
    assert len(run.output) <= 2 * OUTPUT_KEEP + 100


def test_a_flooded_results_channel_is_survived(graded):
    result = kata(graded, "channel_flood")
    assert (result.status, result.score) == ("passed", FULL)
    assert "forged or corrupt" in result.reason
    assert result.duration < TIMEOUT / 2


# -- crashes -------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["deep_recursion", "ctypes_segfault"])
def test_a_crash_is_an_error_that_keeps_earlier_results(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("error", ADD_POINTS)
    assert "SIGSEGV" in result.reason and "4 of 5" in result.reason
    assert spec(result, "test_async_add").outcome == "not_run"


def test_the_whole_course_is_graded_within_its_limits(graded):
    duration, _ = graded["_"]
    assert duration < 4 * (HANG + SLACK)
