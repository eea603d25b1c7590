"""Hostile submissions graded by a grader running as its own process, as `kata grade` runs.

An interrupted grading (Ctrl-C, SIGTERM) still writes a valid, partial report that names the
katas that did not finish, and leaves no process of theirs behind. Secrets in the grader's
environment never reach the report, even when learner code digs them out of /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grading import INTERRUPTED

from .kit import CORRECT, FULL, HostileCourse, kill_leftovers, pids_in, wait_dead, with_mul

REPO = Path(__file__).resolve().parents[2]

GRADER = """
import json, sys
from pathlib import Path
from grader.grading import grade
from grader.kata import discover
from grader.report import write_atomic
from grader import runner
from grader.workspace import checkout

root, submission, out, window = map(Path, sys.argv[1:5])
sandbox_paths = runner.sandbox_paths

def with_window(run_dir, workspace):  # the submission may leave its pids in the test's window
    write, read = sandbox_paths(run_dir, workspace)
    return write + [str(window)], read

runner.sandbox_paths = with_window

def progress(done, total, result):
    print(f"finished {result.slug}", file=sys.stderr, flush=True)

report = grade(discover(root), checkout(submission), jobs=2, progress=progress)
write_atomic(out, json.dumps(report.to_dict()))
print("report written", file=sys.stderr, flush=True)
"""

STUCK = """
import os, subprocess, time
child = subprocess.Popen(["sleep", "300"], start_new_session=True)
open({pids!r}, "w").write(f"{{os.getpid()}}\\n{{child.pid}}\\n")
while True:
    try:
        time.sleep(10)
    except BaseException:
        pass
"""

SNOOP = """
import pathlib
found = set()
for environ in pathlib.Path("/proc").glob("*/environ"):
    try:
        for entry in environ.read_bytes().split(b"\\0"):
            name, _, value = entry.decode(errors="replace").partition("=")
            if "TOKEN" in name or "SECRET" in name:
                found.add(value)
    except OSError:
        pass
raise AssertionError("found: " + " ".join(sorted(found)))
"""

SECRETS = {
    "GITHUB_TOKEN": "ghs_processSuiteToken00000000000000001",
    "ACTIONS_RUNTIME_TOKEN": "process-suite-actions-runtime-token-2",
    "COURSE_SECRET": "process-suite-course-secret-3",
}


def _start(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            GRADER,
            str(root / "course"),
            str(root / "submission"),
            str(root / "report.json"),
            str(root / "window"),
        ],
        cwd=root,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen, wanted: str, within: float = 30) -> list[str]:
    deadline, lines = time.monotonic() + within, []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.strip() == wanted:
            return lines
    raise AssertionError(f"never saw {wanted!r}; the grader said: {lines}")


def _wait_for_file(path: Path, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not (path.is_file() and len(pids_in(path)) == 2):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_grading_writes_a_partial_report(tmp_path, sig):
    course = HostileCourse(tmp_path, timeout=60, spec_timeout=30)
    pids = course.window / "stuck.pids"
    course.kata("quick", CORRECT)
    course.kata("stuck", with_mul(STUCK.format(pids=str(pids))))
    proc = _start(tmp_path)
    try:
        _wait_for_line(proc, "finished quick")
        _wait_for_file(pids)
        started = time.monotonic()
        proc.send_signal(sig)
        lines = _wait_for_line(proc, "report written", within=15)
        assert proc.wait(timeout=15) == 0, lines
        assert time.monotonic() - started < 20
    finally:
        proc.kill()
        proc.wait()
        kill_leftovers(wait_dead(pids_in(pids)))
    report = json.loads((tmp_path / "report.json").read_text())
    by_slug = {k["slug"]: k for k in report["katas"]}
    assert (by_slug["quick"]["status"], by_slug["quick"]["score"]) == ("passed", FULL)
    stuck = by_slug["stuck"]
    assert (stuck["status"], stuck["score"], stuck["reason"]) == ("error", 0, INTERRUPTED)
    assert stuck["max_score"] == FULL
    assert wait_dead(pids_in(pids)) == [], "a process of the interrupted kata outlived it"


def test_secrets_dug_out_of_proc_never_reach_the_report(tmp_path):
    course = HostileCourse(tmp_path, timeout=20, spec_timeout=10)
    course.kata("snoop", with_mul(SNOOP))
    proc = _start(tmp_path, env=SECRETS)
    try:
        _wait_for_line(proc, "report written", within=60)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()
    text = (tmp_path / "report.json").read_text()
    (snoop,) = json.loads(text)["katas"]
    assert snoop["score"] == FULL - 1
    for value in SECRETS.values():
        assert value not in text
