"""Run a kata's specs in a contained child process and collect its signed records.

Containment, in order of defence:
* a fresh process in its own session and process group (``start_new_session``);
* resource limits set before ``exec``: address space, CPU seconds, file size, open files,
  no core dumps;
* a scrubbed environment built from an allow-list (no tokens, no ``PYTEST_ADDOPTS``), with a
  run marker so that processes which leave the group (``setsid``) are still found and killed;
* a wall-clock limit for the whole kata; on expiry, or when the child ends, every process of
  the run is stopped and killed, so nothing of a graded kata outlives its grading;
* output read through a pipe and capped (head and tail kept), never parsed for results.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .channel import Reader, new_key
from .kata import Kata

__all__ = ["OUTPUT_KEEP", "Limits", "RunResult", "kill_run", "run_specs"]

OUTPUT_KEEP = 32 * 1024  # bytes of child output kept from the head and from the tail
GRADER_PARENT = str(Path(__file__).resolve().parent.parent)
BOOTSTRAP = (
    "import sys; sys.path.append({parent!r}); from grader.child import main; main(sys.argv)"
)
ENV_ALLOW = ("PATH", "SYSTEMROOT")
MARKER = "KATA_RUN_ID"


@dataclass(frozen=True)
class Limits:
    address_space: int = 4 << 30  # bytes
    file_size: int = 256 << 20  # bytes, per file written
    open_files: int = 8192
    cpu_slack: float = 10.0  # CPU seconds beyond the kata's wall-clock limit


@dataclass
class RunResult:
    records: list[dict] = field(default_factory=list)
    rejected: int = 0  # lines on the channel that failed the signature or the sequence
    timed_out: bool = False
    returncode: int | None = None  # negative: killed by that signal
    output: str = ""
    output_bytes: int = 0
    duration: float = 0.0
    coverage: dict | None = None

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


def _environment(run_dir: Path, run_id: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.update(
        HOME=str(run_dir / "home"),
        TMPDIR=str(run_dir / "tmp"),
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        HYPOTHESIS_STORAGE_DIRECTORY=str(run_dir / "tmp" / ".hypothesis"),
        NO_COLOR="1",
    )
    env[MARKER] = run_id
    return env


def _limit(which: int, soft: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (soft, hard))


def _preexec(limits: Limits, cpu_seconds: int):
    def apply() -> None:
        _limit(resource.RLIMIT_AS, limits.address_space)
        _limit(resource.RLIMIT_FSIZE, limits.file_size)
        _limit(resource.RLIMIT_NOFILE, limits.open_files)
        _limit(resource.RLIMIT_CPU, cpu_seconds)
        _limit(resource.RLIMIT_CORE, 0)

    return apply


def _run_pids(run_id: str) -> list[int]:
    """Processes carrying this run's marker in their environment (Linux /proc)."""
    needle = f"{MARKER}={run_id}".encode()
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_run(pgid: int, run_id: str) -> None:
    """Stop, then kill, the child's process group and every process that carries the marker."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for _ in range(20):  # a fork bomb may keep forking between sweeps: freeze, then kill
        pids = [p for p in _run_pids(run_id) if p != os.getpid()]
        if not pids:
            return
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)


class _Output:
    """Child output, capped: the first and the last OUTPUT_KEEP bytes, and how many in all."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_KEEP - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            del self.tail[: max(0, len(self.tail) - OUTPUT_KEEP)]

    def text(self) -> str:
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {skipped} bytes of output left out ...]\n" if skipped > 0 else ""
        return (bytes(self.head).decode(errors="replace") + middle
                + bytes(self.tail).decode(errors="replace"))


async def _drain(reader: asyncio.StreamReader, sink) -> None:
    while chunk := await reader.read(65536):
        sink(chunk)


async def run_specs(
    kata: Kata,
    workspace: Path,
    learner_files: list[Path],
    *,
    mode: str = "run",
    coverage: bool = False,
    limits: Limits = Limits(),
) -> RunResult:
    """Run the specs in ``workspace`` (mode ``run``) or list them (mode ``collect``)."""
    run_dir = workspace.parent
    for sub in ("home", "tmp"):
        (run_dir / sub).mkdir(exist_ok=True)
    run_id = secrets.token_hex(16)
    key = new_key()
    key_read, key_write = os.pipe()
    out_read, out_write = os.pipe()
    os.write(key_write, key)
    os.close(key_write)
    coverage_file = run_dir / "coverage.json"
    config = {
        "workspace": str(workspace),
        "ini": str(run_dir / "pytest.ini"),
        "mode": mode,
        "key_fd": key_read,
        "out_fd": out_write,
        "spec_timeout": kata.spec_timeout,
        "forbid_imports": list(kata.forbid_imports),
        "learner_files": [str(p) for p in learner_files],
        "phantoms": [Path(f).stem for f in kata.files] if mode == "collect" else [],
        "coverage": str(coverage_file) if coverage else "",
    }
    result = RunResult()
    reader = Reader(key)
    output = _Output()
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", BOOTSTRAP.format(parent=GRADER_PARENT), json.dumps(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(workspace),
            env=_environment(run_dir, run_id),
            pass_fds=(key_read, out_write),
            start_new_session=True,
            preexec_fn=_preexec(limits, int(kata.timeout + limits.cpu_slack)),
        )
    finally:
        os.close(key_read)
        os.close(out_write)
    channel = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(channel), os.fdopen(out_read, "rb", 0)
    )
    pumps = [
        asyncio.ensure_future(_drain(channel, reader.feed)),
        asyncio.ensure_future(_drain(proc.stdout, output.feed)),
    ]
    try:
        await asyncio.wait_for(proc.wait(), kata.timeout)
    except TimeoutError:
        result.timed_out = True
    finally:
        kill_run(proc.pid, run_id)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        _, pending = await asyncio.wait(pumps, timeout=5)
        for pump in pending:
            pump.cancel()
        transport.close()
    result.duration = time.monotonic() - started
    result.returncode = proc.returncode
    result.records, result.rejected = reader.records, reader.rejected
    result.output, result.output_bytes = output.text(), output.total
    if coverage and coverage_file.is_file():
        with contextlib.suppress(ValueError):
            result.coverage = json.loads(coverage_file.read_text())
    return result
