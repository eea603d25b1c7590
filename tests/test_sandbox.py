"""The kernel sandbox of the spec process: what a grading says about it, what it refuses to
do without it, and that everything honest specs do still works inside it."""

from __future__ import annotations

import asyncio
import errno
import json
from pathlib import Path

import jsonschema
import pytest

from grader import sandbox
from grader.cli import main
from grader.grading import grade_kata
from grader.kata import discover
from grader.report import render
from grader.runner import Limits
from grader.scoring import Report
from grader.workspace import solutions

ROOT = Path(__file__).resolve().parents[1]
REPORT_SCHEMA = json.loads((ROOT / "schemas" / "report-v1.schema.json").read_text())
LANDLOCK = sandbox.probe().startswith("landlock")
needs_landlock = pytest.mark.skipif(not LANDLOCK, reason=f"no Landlock here ({sandbox.probe()})")


@pytest.fixture
def adder_course(course):
    course.add_adder()
    return course


@pytest.fixture
def no_landlock(monkeypatch):
    """A machine without Landlock: the probe fails as an old kernel's would."""

    def missing() -> int:
        raise sandbox.SandboxError(errno.ENOSYS, "the kernel has no Landlock (simulated)")

    monkeypatch.setattr(sandbox, "abi", missing)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- what a grading says -------------------------------------------------------------------


@needs_landlock
def test_a_grading_reports_its_landlock_abi(adder_course, capsys):
    code, out, _ = run(capsys, "--root", str(adder_course.root), "grade", "--solutions")
    assert code == 0
    assert f"Sandbox: landlock-abi-{sandbox.abi()} (the kernel confined" in out
    code, out, _ = run(
        capsys, "--root", str(adder_course.root), "grade", "--solutions", "--format", "json"
    )
    data = json.loads(out)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["sandbox"] == f"landlock-abi-{sandbox.abi()}"


def test_without_landlock_the_grading_still_grades_and_says_so(adder_course, capsys, no_landlock):
    assert sandbox.probe() == "none: the kernel has no Landlock (simulated)"
    code, out, _ = run(
        capsys, "--root", str(adder_course.root), "grade", "--solutions", "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["sandbox"] == "none: the kernel has no Landlock (simulated)"
    assert data["percent"] == 100.0
    report = Report.from_dict(data)
    assert "Sandbox: none: the kernel has no Landlock (simulated)" in render(report, "table")
    assert "learner code ran with the grader's rights" in render(report, "markdown")


def test_require_sandbox_refuses_to_grade_without_one(adder_course, capsys, no_landlock):
    code, out, err = run(
        capsys, "--root", str(adder_course.root), "grade", "--solutions", "--require-sandbox"
    )
    assert code == 2 and out == ""
    assert "no kernel sandbox to grade in (none: the kernel has no Landlock" in err
    assert "--require-sandbox" in err


def test_batch_require_sandbox_refuses_too(adder_course, capsys, no_landlock, tmp_path):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    code, _, err = run(
        capsys,
        "--root",
        str(adder_course.root),
        "batch",
        str(tmp_path / "class"),
        "--output-dir",
        str(tmp_path / "grades"),
        "--require-sandbox",
    )
    assert code == 2 and "no kernel sandbox" in err
    assert not (tmp_path / "grades" / "gradebook.csv").exists()


def test_no_sandbox_is_said_in_the_report(adder_course, capsys):
    code, out, _ = run(
        capsys, "--root", str(adder_course.root), "grade", "--solutions", "--no-sandbox"
    )
    assert code == 0 and "Sandbox: none: turned off (--no-sandbox)" in out


def test_the_probe_names_why_not_elsewhere(monkeypatch):
    monkeypatch.setattr(sandbox.sys, "platform", "darwin")
    assert sandbox.probe() == "none: Landlock is a Linux feature (this is darwin)"


def test_an_old_report_without_the_field_still_reads():
    data = Report(katas=(), submission="x").to_dict()
    del data["sandbox"]
    assert Report.from_dict(data).sandbox == ""


# -- what honest specs do, inside the sandbox ---------------------------------------------

STDLIB_SPEC = '''
import asyncio, os, socket, sqlite3, ssl, subprocess, sys, tempfile, zoneinfo

import certifi
import hypothesis.strategies as st
from hypothesis import given

from stdlib_kata import add


def test_subprocess_of_the_interpreter():
    """A spec can run the interpreter in a subprocess."""
    done = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
    assert done.stdout.strip() == "42", done.stderr


def test_sqlite_file_in_tmpdir():
    """SQLite keeps a database file (and its journal) in TMPDIR."""
    path = os.path.join(tempfile.gettempdir(), "db.sqlite")
    with sqlite3.connect(path) as db:
        db.execute("create table t (x)")
        db.execute("insert into t values (?)", (add(2, 3),))
    assert sqlite3.connect(path).execute("select x from t").fetchone() == (5,)


def test_tls_context_with_system_and_certifi_roots():
    """ssl reads the system roots and certifi's."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    assert context.cert_store_stats()["x509_ca"] > 0


def test_tcp_on_port_0_and_udp():
    """A server on 127.0.0.1 port 0 accepts a client; UDP works too."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            conn, _ = server.accept()
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            conn.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
        a.bind(("127.0.0.1", 0))
        a.sendto(b"x", a.getsockname())
        assert a.recv(1) == b"x"


async def test_asyncio_server():
    """An asyncio server on port 0 echoes."""
    async def echo(reader, writer):
        writer.write(await reader.read(4))
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.write(b"pong")
    assert await reader.read(4) == b"pong"
    writer.close()
    server.close()


@given(st.integers(), st.integers())
def test_hypothesis(a, b):
    """hypothesis runs (its database is off under the grader)."""
    assert add(a, b) == a + b


def test_time_zones_cpu_count_and_tmp_path(tmp_path):
    """Time zones, the CPU count and pytest's tmp_path work."""
    assert zoneinfo.ZoneInfo("Europe/Paris").key == "Europe/Paris"
    assert (os.cpu_count() or 0) >= 1
    (tmp_path / "f").write_text("x")
    assert (tmp_path / "f").read_text() == "x"
'''

STDLIB_SOLUTION = "def add(a, b):\n    return a + b\n"


@needs_landlock
def test_what_specs_do_works_inside_the_sandbox(course):
    course.add_kata(
        "stdlib_kata",
        stub="def add(a, b):\n    raise NotImplementedError\n",
        solution=STDLIB_SOLUTION,
        specs={"test_stdlib.py": STDLIB_SPEC},
        timeout=60,
        spec_timeout=30,
    )
    (kata,) = discover(course.root)
    graded = asyncio.run(grade_kata(kata, solutions(course.root), coverage=True))
    assert graded.run.sandbox == sandbox.probe()
    failing = [(s.id, s.message) for s in graded.result.specs if s.outcome != "passed"]
    assert failing == [] and graded.result.status == "passed", failing or graded.run.output
    assert graded.run.coverage is not None  # coverage writes its report inside the sandbox
    assert graded.run.coverage["totals"]["percent_covered"] == 100.0


@needs_landlock
def test_the_sandbox_is_off_with_no_sandbox(course):
    course.add_adder()
    (kata,) = discover(course.root)
    graded = asyncio.run(grade_kata(kata, solutions(course.root), limits=Limits(sandbox=False)))
    assert graded.run.sandbox == "none: turned off (--no-sandbox)"
    assert graded.result.status == "passed"
