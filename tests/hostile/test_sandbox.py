"""Hostile submissions that act as the grader's user: the kernel sandbox (Landlock) stops them.

One course, graded once for real inside the sandbox, next to an honest kata. Each attack runs
when the specs import the learner module, records what it tried and what the kernel answered
in the test's window, and then behaves: the honest kata keeps full marks, each attacker is
scored on its own code, and the course checkout, the grader's site-packages and ``$HOME`` are
byte-identical afterwards. A second grading after the attacks is clean.

Without the sandbox (a machine without Landlock, or ``--no-sandbox``), the snapshot of the
trusted files still makes a rewritten course loud: the grading stops naming the submission
and the kata, and a batch marks that learner and grades the others from the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import site
import socket
from pathlib import Path

import pytest

from grader import batch, sandbox
from grader.grading import CourseChanged
from grader.runner import GRADER_DIR, Limits

from .kit import CORRECT, FULL, HostileCourse, at_import, spec_for

pytestmark = pytest.mark.skipif(
    not sandbox.probe().startswith("landlock"), reason=f"no Landlock here ({sandbox.probe()})"
)

WRONG_MUL = CORRECT.replace("a * b", "a + b")  # mul(4, 5) == 9: fails test_mul only
ALL_WRONG = CORRECT.replace("a + b", "a - b - 1").replace("a * b", "0")  # scores nothing
TOKEN = secrets.token_hex(6)  # names of files an attack would plant, so cleanup finds them
PLANTED = f"zz_kata_hostile_{TOKEN}"
PASSING_SPEC = "def test_add():\n    pass\n\ndef test_mul():\n    pass\n"

# Every attack reports {what it tried: "done" | "refused: EACCES" | ...} in window/<slug>.json.
RECORD = """
import errno as _errno, json as _json, os as _os, subprocess as _subprocess

_tried = {{}}

def _try(name, action):
    try:
        action()
    except OSError as err:
        _tried[name] = "refused: " + _errno.errorcode.get(err.errno, str(err.errno))
    else:
        _tried[name] = "done"

def _shell(name, command):
    done = _subprocess.run(["sh", "-c", command], capture_output=True)
    _tried[name] = "done" if done.returncode == 0 else "refused: exit %d" % done.returncode

def _report():
    with open({path!r}, "w") as out:
        _json.dump(_tried, out)
"""


def attack(course: HostileCourse, slug: str, body: str, solution: str = CORRECT) -> None:
    """Kata ``slug``: ``solution``, then ``body`` run at import (with RECORD's helpers), so
    that whatever the attack manages to load replaces the learner's own code."""
    record = RECORD.format(path=str(course.window / f"{slug}.json"))
    course.kata(slug, solution + record + body + "\n_report()\n")


def tried(course: HostileCourse, slug: str) -> dict[str, str]:
    return json.loads((course.window / f"{slug}.json").read_text())


def tree_digest(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file under ``root`` (and nothing planted beside them)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def planted(folders: list[str]) -> set[str]:
    """What an attack would have planted there: files named PLANTED..., or sitecustomize.py
    (other gradings and tools on the machine come and go in /tmp and $HOME meanwhile)."""
    return {
        f"{d}/{name}"
        for d in folders
        if os.path.isdir(d)
        for name in os.listdir(d)
        if name.startswith(PLANTED) or name == "sitecustomize.py"
    }


REWRITE_COURSE = """
import pathlib
course = pathlib.Path({course!r})
_tried["enumerate the course"] = "found %d files" % len(list(course.rglob("test_*.py")))
for name in {files!r}:  # the layout is no secret: every spec and visible test, by name
    path = course / name
    _try("write " + name, lambda: path.write_text({fake!r}))
_try("plant a spec", lambda: (course / "exercises/honest/.spec/test_planted.py").write_text("x"))
_try("delete a spec", lambda: (course / "exercises/honest/.spec/test_honest.py").unlink())
_try("rename a spec", lambda: (course / "exercises/honest/.spec/test_honest.py").rename(
    course / "exercises/honest/.spec/test_gone.py"))
_shell("overwrite a visible test from a subprocess",
       "echo 'def test_x(): pass' > {course}/exercises/honest/test_honest.py")
"""

READ_SOLUTION = """
import pathlib, sys
course = pathlib.Path({course!r})
solution = course / "solutions/read_solution/read_solution.py"
_try("read the reference solution", lambda: exec(solution.read_text(), globals()))
_try("read another kata's specs",
     lambda: (course / "exercises/honest/.spec/test_honest.py").read_text())
_try("list the course", lambda: list(course.iterdir()))
_shell("cat the reference solution", "cat " + str(solution))
"""

PLANT_CODE = """
import pathlib, site
payload = "import os; open({marker!r}, 'w').close()\\n"
for folder in site.getsitepackages() + [{grader!r}]:
    folder = pathlib.Path(folder)
    _try("write " + str(folder / {planted!r}) + ".pth",
         lambda: open(folder / ({planted!r} + ".pth"), "x").write(payload))
    _try("write " + str(folder / {planted!r}) + ".py",
         lambda: open(folder / ({planted!r} + ".py"), "x").write(payload))
    if not (folder / "sitecustomize.py").exists():
        _try("write " + str(folder / "sitecustomize.py"),
             lambda: open(folder / "sitecustomize.py", "x").write(payload))
"""

WRITE_HOME = """
import os, pathlib, pwd, tempfile
home = pathlib.Path(pwd.getpwuid(os.getuid()).pw_dir)
_try("write in the real home", lambda: open(home / {planted!r}, "x").close())
_try("make a folder in the real home", lambda: os.mkdir(home / ({planted!r} + ".d")))
_try("write in /tmp, beside the run folder", lambda: open("/tmp/" + {planted!r}, "x").close())
_try("read /etc/shadow", lambda: open("/etc/shadow").read())
_try("write in its own temp folder", lambda: tempfile.NamedTemporaryFile(dir=None).close())
_try("write in its own HOME", lambda: open(pathlib.Path.home() / "note", "w").close())
"""

SIGNALS = """
import os, signal
supervisor = os.getppid()
_try("SIGKILL the supervisor", lambda: os.kill(supervisor, signal.SIGKILL))
_try("SIGSTOP the supervisor", lambda: os.kill(supervisor, signal.SIGSTOP))
_try("SIGTERM the grader", lambda: os.kill({grader}, signal.SIGTERM))
_try("SIGTERM the grader's process group", lambda: os.killpg(os.getpgid({grader}), signal.SIGTERM))
_shell("SIGTERM the grader from a subprocess", "kill -TERM {grader}")
"""

# The honest neighbour that listens: an abstract UNIX socket and TCP on port 0, published in the
# window, held open until the attacker next door has tried them (or 25 seconds).
LISTENER = """
import os, socket, time
_abstract = socket.socket(socket.AF_UNIX)
_abstract.bind({abstract!r})
_abstract.listen()
_tcp = socket.create_server(("127.0.0.1", 0))
with open({port_file!r} + ".tmp", "w") as _out:
    _out.write(str(_tcp.getsockname()[1]))
os.rename({port_file!r} + ".tmp", {port_file!r})
_deadline = time.monotonic() + 25
while not os.path.exists({done!r}) and time.monotonic() < _deadline:
    time.sleep(0.05)
"""

CONNECT = """
import os, socket, time
def connect(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(address)
_deadline = time.monotonic() + 25  # the neighbour kata runs at the same time: wait for it
while not os.path.exists({port_file!r}) and time.monotonic() < _deadline:
    time.sleep(0.05)
neighbour = int(open({port_file!r}).read())
_try("connect to the abstract UNIX socket of another kata",
     lambda: connect(socket.AF_UNIX, {abstract!r}))
_try("connect to the abstract UNIX socket of the grader's machine",
     lambda: connect(socket.AF_UNIX, {outside!r}))
for port in (22, 80, 443, 5432, 6379):  # services on fixed ports (listening or not)
    _try("connect to TCP 127.0.0.1:%d" % port,
         lambda: connect(socket.AF_INET, ("127.0.0.1", port)))
_try("connect to TCP 127.0.0.1 in the ephemeral range",
     lambda: connect(socket.AF_INET, ("127.0.0.1", {ephemeral})))
_try("connect to the TCP listener of another kata",
     lambda: connect(socket.AF_INET, ("127.0.0.1", neighbour)))
_try("bind TCP 127.0.0.1 on a fixed port",
     lambda: socket.socket().bind(("127.0.0.1", {fixed_free})))
_try("bind TCP 127.0.0.1 on port 0", lambda: socket.socket().bind(("127.0.0.1", 0)))
"""


@pytest.fixture(scope="module")
def listeners():
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0kata-hostile-{TOKEN}")
    abstract.listen()
    ephemeral = socket.create_server(("127.0.0.1", 0))
    yield {"abstract": abstract, "ephemeral": ephemeral}
    for s in (abstract, ephemeral):
        s.close()


@pytest.fixture(scope="module")
def protected():
    """The folders an attack must leave as they were: their listing (and after, the cleanup)."""
    home = pwd.getpwuid(os.getuid()).pw_dir
    folders = [*site.getsitepackages(), GRADER_DIR, home, "/tmp"]
    before = planted(folders)
    yield folders, before
    for folder in folders:  # never leave a planted file behind, whatever happened
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith(PLANTED):
                path = os.path.join(folder, name)
                (os.rmdir if os.path.isdir(path) else os.remove)(path)


@pytest.fixture(scope="module")
def course(tmp_path_factory, listeners, protected):
    hostile = HostileCourse(tmp_path_factory.mktemp("sandbox"), timeout=30, spec_timeout=10)
    root = str(hostile.course.root)
    hostile.kata("honest", CORRECT)
    (hostile.course.root / "exercises/honest/test_honest.py").write_text(
        "from honest import add\n\n\ndef test_add_example():\n    assert add(1, 2) == 3\n"
    )
    # next to each other, so that they run at the same time (jobs=3)
    sockets = {
        "abstract": f"\0kata-neighbour-{TOKEN}",
        "port_file": str(hostile.window / "neighbour.port"),
        "done": str(hostile.window / "connect.json"),
    }
    hostile.kata("listener", at_import(LISTENER.format(**sockets)))
    connect = CONNECT.format(
        **sockets,
        outside=listeners["abstract"].getsockname(),
        ephemeral=listeners["ephemeral"].getsockname()[1],
        fixed_free=sandbox.ephemeral_ports().start - 1,  # refused: never bound
    )
    attack(hostile, "connect", connect)
    attack(hostile, "read_solution", READ_SOLUTION.format(course=root), ALL_WRONG)
    marker = str(hostile.window / "planted_code_ran")
    hostile.marker = Path(marker)
    plant = PLANT_CODE.format(marker=marker, grader=GRADER_DIR, planted=PLANTED)
    attack(hostile, "plant_code", plant)
    attack(hostile, "write_home", WRITE_HOME.format(planted=PLANTED))
    attack(hostile, "signals", SIGNALS.format(grader=os.getpid()))
    names = [*(p.name for p in (hostile.course.root / "exercises").iterdir()), "rewrite_course"]
    files = [f"exercises/{n}/.spec/test_{n}.py" for n in sorted(names)]
    files.append("exercises/honest/test_honest.py")  # a visible test
    rewrite = REWRITE_COURSE.format(course=root, files=files, fake=PASSING_SPEC)
    attack(hostile, "rewrite_course", rewrite)  # last: it knows every kata of the course
    return hostile


@pytest.fixture(scope="module")
def graded(course):
    before = tree_digest(course.course.root)
    results = course.grade(jobs=3)
    course.unchanged = tree_digest(course.course.root) == before
    return results


def kata(graded, slug):
    return graded[slug].result


def refused(record: dict[str, str], *names: str) -> None:
    for name in names or record:
        assert record[name].startswith("refused"), f"{name}: {record[name]}"


@pytest.fixture(autouse=True)
def _others_intact(graded):
    yield
    honest = kata(graded, "honest")
    assert (honest.status, honest.score) == ("passed", FULL), honest


def test_every_kata_ran_in_the_sandbox(graded):
    assert {g.run.sandbox for g in graded.values()} == {sandbox.probe()}


def test_rewriting_the_course_specs_and_visible_tests_is_refused(graded, course):
    record = tried(course, "rewrite_course")
    assert record.pop("enumerate the course") == "found 0 files"  # the course cannot be listed
    assert len([n for n in record if n.startswith("write ")]) >= 7  # specs + a visible test
    refused(record)
    assert course.unchanged, "the course checkout changed while it was graded"
    result = kata(graded, "rewrite_course")
    assert (result.status, result.score) == ("passed", FULL)


def test_the_reference_solution_cannot_be_read_nor_run(graded, course):
    refused(tried(course, "read_solution"))
    result = kata(graded, "read_solution")
    assert (result.status, result.score) == ("failed", 0)  # scored on its own code


def test_code_planted_for_later_gradings_is_refused_and_the_next_grading_is_clean(
    graded, course, protected, tmp_path
):
    record = tried(course, "plant_code")
    assert any(GRADER_DIR in name for name in record) and len(record) >= 4
    refused(record)
    folders, before = protected
    assert planted(folders) == before, "a file was planted"
    again = HostileCourse(tmp_path, timeout=30, spec_timeout=10)
    again.kata("honest", CORRECT)
    result = again.grade(jobs=1)["honest"].result
    assert (result.status, result.score) == ("passed", FULL)
    assert not course.marker.exists(), "planted code ran in a later grading"


def test_writing_outside_the_run_is_refused_and_inside_it_works(graded, course, protected):
    record = tried(course, "write_home")
    refused(
        record,
        "write in the real home",
        "make a folder in the real home",
        "write in /tmp, beside the run folder",
        "read /etc/shadow",
    )
    assert record["write in its own temp folder"] == "done"
    assert record["write in its own HOME"] == "done"
    folders, before = protected
    assert planted(folders) == before


def test_the_grader_and_the_supervisor_cannot_be_signalled(graded, course):
    record = tried(course, "signals")
    refused(record)
    assert all(v in ("refused: EPERM", "refused: exit 1") for v in record.values()), record
    result = kata(graded, "signals")
    assert (result.status, result.score) == ("passed", FULL)  # the supervisor ran it to the end


def test_another_katas_sockets_and_fixed_ports_are_refused_but_not_ephemeral_tcp(graded, course):
    record = tried(course, "connect")
    assert record["connect to the abstract UNIX socket of another kata"] == "refused: EPERM"
    assert record["connect to the abstract UNIX socket of the grader's machine"] == "refused: EPERM"
    for port in (22, 80, 443, 5432, 6379):  # EACCES, not ECONNREFUSED: no packet was sent
        assert record[f"connect to TCP 127.0.0.1:{port}"] == "refused: EACCES"
    assert record["bind TCP 127.0.0.1 on a fixed port"] == "refused: EACCES"
    assert record["bind TCP 127.0.0.1 on port 0"] == "done"
    # The documented limit: Landlock filters TCP by port, not by address or owner, so another
    # process's listener on an ephemeral port of 127.0.0.1 stays reachable.
    assert record["connect to TCP 127.0.0.1 in the ephemeral range"] == "done"
    assert record["connect to the TCP listener of another kata"] == "done"
    for slug in ("connect", "listener"):
        result = kata(graded, slug)
        assert (result.status, result.score) == ("passed", FULL)


# -- without the sandbox: the snapshot makes a rewritten course loud -----------------------


REWRITE_VICTIM = """
import pathlib
for path in pathlib.Path({course!r}).rglob("test_*.py"):
    path.write_text({fake!r})
"""


def test_without_the_sandbox_a_rewritten_course_stops_the_grading_by_name(tmp_path):
    hostile = HostileCourse(tmp_path, timeout=30, spec_timeout=10)
    hostile.kata("honest", WRONG_MUL)
    root = str(hostile.course.root)
    hostile.kata("rewriter", at_import(REWRITE_VICTIM.format(course=root, fake=PASSING_SPEC)))
    with pytest.raises(CourseChanged) as caught:
        hostile.grade(jobs=1, limits=Limits(sandbox=False))
    message = str(caught.value)
    assert f"rewriter of {hostile.submission}" in message
    assert "exercises/honest/.spec/test_honest.py" in message


def test_a_batch_marks_the_rewriting_learner_and_grades_the_others_from_the_snapshot(tmp_path):
    hostile = HostileCourse(tmp_path, timeout=30, spec_timeout=10)
    hostile.kata("victim", WRONG_MUL)
    root = str(hostile.course.root)
    learners = {
        "alice": at_import(REWRITE_VICTIM.format(course=root, fake=PASSING_SPEC), ALL_WRONG),
        "bob": WRONG_MUL,  # loses test_mul on the real specs; the rewritten ones pass anything
    }
    for name, text in learners.items():
        path = tmp_path / "class" / name / "exercises" / "victim" / "victim.py"
        path.parent.mkdir(parents=True)
        path.write_text(text)
    done = batch.main(
        root=hostile.course.root,
        submissions=tmp_path / "class",
        output_dir=tmp_path / "grades",
        jobs=1,
        sandbox=False,
    )
    rows = {row.id: row for row in done.rows}
    alice, bob = rows["alice"].report.katas[0], rows["bob"].report.katas[0]
    assert alice.status == "error" and "changed on disk" in alice.reason
    assert "victim of" in alice.reason and "alice" in alice.reason
    assert "alice" in dict(done.summary.attention)
    assert (bob.status, bob.score) == ("failed", FULL - 1), bob  # the real specs, from memory
    on_disk = hostile.course.root / "exercises/victim/.spec/test_victim.py"
    assert on_disk.read_text() != spec_for("victim"), "the attack did not rewrite the course"
