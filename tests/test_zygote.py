"""verify's fork server: a forked spec process is the spec process a spawn would have made
(sandboxed, limited, stopped on time), and the server never imports a learner's module."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader import sandbox, zygote
from grader.grading import grade_kata
from grader.kata import discover
from grader.verify import _fork_server
from grader.workspace import solutions

pytestmark = [
    pytest.mark.skipif(not zygote.available(), reason="the fork server is Linux-only"),
    pytest.mark.timeout(120),
]

OUTSIDE = Path(tempfile.gettempdir()) / "kata-zygote-outside-probe"

PROBE_SPEC = f'''\
import os
import sqlite3
import sys
import time

from adder import add


def test_add():
    """add(2, 3) returns 5."""
    got = add(2, 3)
    assert got == 5, f"Called add(2, 3); returned {{got!r}}; expected 5"


def test_identity():
    """The run's own environment, folder and limits: not the server's."""
    import resource

    assert os.environ["TMPDIR"] == os.path.dirname(os.getcwd()) + "/tmp", "TMPDIR"
    assert os.getsid(0) == os.getpgid(0), "its own session"
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    assert soft == 4 << 30, f"address space limit {{soft}}"


def test_sqlite_sorts_in_the_runs_own_tmpdir():
    """An index too big to sort in memory: SQLite's temporary files go to the run's TMPDIR."""
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute("CREATE TEMP TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(64),) for _ in range(20000)])
    conn.execute("CREATE INDEX i ON t (x)")  # raises "unable to open database file" if not


def test_writes_outside_are_refused():
    """A write outside the workspace is refused."""
    try:
        open({str(OUTSIDE)!r}, "w").close()
    except PermissionError:
        return
    raise AssertionError("wrote outside the workspace")


def test_hang():
    """Hangs."""
    if os.environ.get("KATA_HANG") or os.path.exists("hang"):
        time.sleep(600)
'''


def _probe(course, timeout):
    course.add_adder(specs={"test_adder.py": PROBE_SPEC}, spec_timeout=60, timeout=timeout)
    (kata,) = discover(course.root)
    return kata


@pytest.fixture
def probe(course):
    """The probe kata with room for a spawned run on a loaded machine."""
    return _probe(course, timeout=60)


@pytest.fixture
def short_probe(course):
    """The probe kata with a short wall clock, for the spec that hangs."""
    return _probe(course, timeout=5)


def _run(kata, server, select, **options):
    async def main():
        return await grade_kata(
            kata, solutions(kata.root), select=select, fork_server=server, **options
        )

    return main()


async def _with_server(kata, body):
    with tempfile.TemporaryDirectory() as tmp:
        server = await _fork_server(kata, Path(tmp))
        assert server is not None, "the fork server did not start"
        try:
            return await body(server)
        finally:
            await server.close()


def test_a_forked_run_grades_like_a_spawned_one(probe):
    async def body(server):
        return await _run(probe, server, ["test_adder.py::test_add"])

    graded = asyncio.run(_with_server(probe, body))
    assert graded.result.status == "passed", graded.run.output
    assert graded.result.score == 1


def test_a_forked_spec_process_has_the_runs_environment_session_and_limits(probe):
    async def body(server):
        return await _run(probe, server, ["test_adder.py::test_identity"])

    graded = asyncio.run(_with_server(probe, body))
    assert graded.result.status == "passed", [s.message for s in graded.result.specs]


@pytest.mark.skipif(not sandbox.probe().startswith("landlock"), reason="no Landlock here")
def test_a_forked_spec_process_is_sandboxed(probe):
    OUTSIDE.unlink(missing_ok=True)

    async def body(server):
        return await _run(probe, server, ["test_adder.py::test_writes_outside_are_refused"])

    graded = asyncio.run(_with_server(probe, body))
    assert graded.run.sandbox.startswith("landlock")
    assert graded.result.status == "passed", [s.message for s in graded.result.specs]
    assert not OUTSIDE.exists()


def test_a_forked_run_that_hangs_is_stopped_and_leaves_no_process(short_probe):
    probe = short_probe
    solution = probe.solution_dir / "adder.py"
    solution.write_text(solution.read_text() + "\nopen('hang', 'w').close()\n")

    async def body(server):
        graded = await _run(probe, server, ["test_adder.py::test_hang"])
        return graded, _children(server.proc.pid)

    graded, left = asyncio.run(_with_server(probe, body))
    assert graded.run.timed_out
    assert left == []
    assert not (probe.solution_dir / "hang").exists()  # made in the workspace, not here


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == parent and fields[0] not in "ZX":
                found.append(int(entry.name))
    return found


def test_when_the_server_is_gone_runs_are_spawned(probe):
    async def body(server):
        server.proc.send_signal(signal.SIGKILL)
        await server.proc.wait()
        await asyncio.sleep(0.1)
        return await _run(probe, server, ["test_adder.py::test_add"])

    graded = asyncio.run(_with_server(probe, body))
    assert graded.result.status == "passed", graded.run.output


def test_the_server_preloads_oracles_never_learner_or_spec_modules(tmp_path):
    spec = tmp_path / "test_x.py"
    spec.write_text(
        "import h11\nimport adder\nfrom _helpers import thing\nfrom . import sibling\n"
        "import cryptography.hazmat.primitives.hashes as h\nfrom hypothesis import given\n"
    )
    found = zygote.preload_modules([spec], {"adder", "_helpers", "conftest"})
    assert found == ["h11", "cryptography.hazmat.primitives.hashes", "hypothesis"]


def test_a_preloaded_oracle_leaves_no_module_named_like_a_learner_file():
    # h2 imports the hpack library; a learner's hpack.py (http2_server builds on it) must still
    # be what `import hpack` finds in the forked spec process.
    code = (
        "import sys; from grader.zygote import _preload; _preload(['h2.connection'], ['hpack']);"
        "print('h2.connection' in sys.modules, any(n.split('.')[0] == 'hpack' for n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_a_child_that_exits_before_its_spawner_resumes_is_still_waited_for():
    # The server's two replies (the pid, then its exit) can be read in one go, before the
    # spawner runs again: the spawner must still get that child's exit.
    import json as json_module
    import socket

    async def main():
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server = zygote.ForkServer([], set(), {}, Path("."))
        ours.setblocking(False)
        server.sock = ours
        server._reader = asyncio.ensure_future(server._read())
        spawning = asyncio.ensure_future(server.spawn({}, {}, {}, ".", ()))
        await asyncio.sleep(0)
        theirs.recv(1 << 16)
        theirs.send(json_module.dumps({"pid": 4242}).encode())
        theirs.send(json_module.dumps({"exit": 4242, "returncode": 3}).encode())
        forked = await asyncio.wait_for(spawning, 10)
        code = await asyncio.wait_for(forked.wait(), 10)
        theirs.close()
        await server.close()
        return forked.pid, code

    assert asyncio.run(main()) == (4242, 3)


def test_a_forked_listing_lists_what_a_spawned_one_does(probe):
    from grader import grading

    async def body(server):
        grading._LISTINGS.clear()
        forked = await grading.expected_specs(probe, fork_server=server)
        grading._LISTINGS.clear()
        spawned = await grading.expected_specs(probe)
        return forked, spawned

    forked, spawned = asyncio.run(_with_server(probe, body))
    assert [s.id for s in forked] == [s.id for s in spawned]
    assert len(forked) == 5, forked


def test_forked_visible_tests_pass_on_the_solution_and_fail_on_the_stub(probe):
    from grader.verify import _visible_tests_forked

    async def body(server):
        on_solution = await _visible_tests_forked(probe, lambda k: k.solution_dir, server)
        on_stub = await _visible_tests_forked(probe, lambda k: k.exercise_dir, server)
        return on_solution, on_stub, _children(server.proc.pid)

    on_solution, on_stub, left = asyncio.run(_with_server(probe, body))
    assert (on_solution, on_stub) == (0, 1)  # pytest: all passed / some failed
    assert left == []


def test_forked_visible_tests_that_hang_are_a_verdict_and_leave_no_process(short_probe):
    from grader.verify import VISIBLE_TIMEOUT, _visible_tests_forked

    probe = short_probe
    probe.visible_tests.write_text(
        "import time\n\n\ndef test_hangs():\n    time.sleep(600)\n", encoding="utf-8"
    )

    async def body(server):
        code = await _visible_tests_forked(probe, lambda k: k.solution_dir, server)
        return code, _children(server.proc.pid)

    code, left = asyncio.run(_with_server(probe, body))
    assert code == VISIBLE_TIMEOUT
    assert left == []


def test_visible_tests_are_run_by_pytest_when_the_server_is_gone(probe):
    from grader.verify import _visible_tests_forked

    async def body(server):
        server.proc.send_signal(signal.SIGKILL)
        await server.proc.wait()
        await asyncio.sleep(0.1)
        return await _visible_tests_forked(probe, lambda k: k.solution_dir, server)

    assert asyncio.run(_with_server(probe, body)) == 0


def test_the_server_reads_hypothesis_constants_of_its_modules_once_for_every_child():
    code = (
        "import sys; from grader.zygote import _preload; _preload(['hypothesis'], []);"
        "from hypothesis.internal.conjecture import providers as p;"
        "print(len(p._seen_modules) >= len(sys.modules) - 5)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True"], done.stderr


def test_a_forked_spec_process_uses_sqlite_with_its_own_tmpdir(probe):
    async def body(server):
        assert "sqlite3" in server.preload, "the probe's server preloads sqlite3"
        return await _run(
            probe, server, ["test_adder.py::test_sqlite_sorts_in_the_runs_own_tmpdir"]
        )

    graded = asyncio.run(_with_server(probe, body))
    assert graded.result.status == "passed", [s.message for s in graded.result.specs]


def test_the_server_preloads_sqlite_and_a_child_points_it_at_its_own_tmpdir(tmp_path):
    server_tmp, child_tmp = tmp_path / "server", tmp_path / "child"
    server_tmp.mkdir()
    child_tmp.mkdir()
    code = (
        "import os, sys, sqlite3; from grader.zygote import _preload, _sqlite_follows_tmpdir;"
        "_preload(['sqlite3'], []);"
        "os.environ['TMPDIR'] = sys.argv[1];"  # what a forked child's environment says
        "ok = _sqlite_follows_tmpdir(os.environ);"
        "now = sqlite3.connect(':memory:').execute('PRAGMA temp_store_directory').fetchone()[0];"
        "print('sqlite3' in sys.modules, ok, now == sys.argv[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(child_tmp)],
        env={**os.environ, "TMPDIR": str(server_tmp)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["True", "True", "True"], done.stderr
