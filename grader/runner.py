"""Run a kata's specs in a contained child process and collect its signed records.

Containment, in order of defence:
* a fresh process in its own session and process group (``start_new_session``), which first
  forks a *supervisor* (``grader.child``): a child subreaper that runs no learner code, so every
  process the specs start stays its descendant, whatever it does (``setsid``, double fork, an
  empty environment), and is killed by it when the run ends or is stopped; the supervisor also
  stops a run that holds more than ``Limits.processes`` processes at once (a fork bomb);
* resource limits set before ``exec``: address space, CPU seconds, file size, open files,
  no core dumps; the kernel's out-of-memory killer picks the spec process before the grader;
* a kernel sandbox (Landlock, ``grader.sandbox``) the spec process enters before any learner
  code: it writes only in the workspace and its private temp folder, reads only what running
  the specs needs, and cannot signal the grader, the supervisor or another kata's processes;
  ``Limits.sandbox`` off, or no Landlock here, and the run says ``none: <why>``;
* a scrubbed environment built from an allow-list (no tokens, no ``PYTEST_ADDOPTS``), with a
  run marker so that processes which escape the supervisor are still found and killed;
* a wall-clock limit for the whole kata; on expiry the supervisor is told to stop, then every
  process of the run (its group, anything with the marker) is killed, so nothing of a graded
  kata outlives its grading;
* output read through a pipe of our own and capped (head and tail kept), never parsed for
  results; a process left holding it open cannot hold the kata open.

What comes back is cleaned before anyone reads it: a message that quotes the spec's source,
or the value of a secret in the grader's environment, is withheld.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import portable, sandbox
from .channel import Reader, new_key
from .kata import Kata

if TYPE_CHECKING:
    from .zygote import ForkServer

__all__ = [
    "OUTPUT_KEEP",
    "Limits",
    "RunResult",
    "kill_run",
    "run_specs",
    "sandbox_paths",
    "sandbox_status",
    "visible",
    "withhold",
]

OUTPUT_KEEP = 32 * 1024  # bytes of child output kept from the head and from the tail
SUPERVISOR_GRACE = 3.0  # seconds the supervisor gets to stop a run before it is killed too
GRADER_DIR = str(Path(__file__).resolve().parent)
GRADER_PARENT = str(Path(GRADER_DIR).parent)
# What the standard library reads outside the Python installation: shared libraries and the
# dynamic loader, TLS roots, name resolution, time zones, locale data, CPU count, randomness.
# Not /etc as a whole (a grader running as root could read /etc/shadow), not $HOME, not /tmp.
SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/locale.alias",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
    "/sys/devices/system/cpu",
    "/proc/self",  # opened by the spec process itself: its own /proc/<pid>
)
NO_SANDBOX = "none: turned off (--no-sandbox)"
BOOTSTRAP = "import sys; sys.path.append({parent!r}); from grader.child import main; main(sys.argv)"
ENV_ALLOW = ("PATH", "SYSTEMROOT")
MARKER = "KATA_RUN_ID"
# Variables whose values are withheld from feedback, should learner code dig them out of
# /proc; KATA_SECRET_VARS names more (comma-separated). None of them reaches the child anyway.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_KEY|^ACTIONS_")
SECRET_VARS = "KATA_SECRET_VARS"
SPEC_LINE_MIN = 24  # a quoted spec line this long or longer withholds the message
WITHHELD_SOURCE = "[withheld: this message quoted the spec's source]"
WITHHELD_SECRET = "[secret withheld]"
# Characters a terminal, a log viewer or a spreadsheet acts on instead of showing: C0 and C1
# controls but newline and tab (ESC starts the sequences that clear a screen and rewrite its
# lines), and the bidirectional overrides that reorder what is shown. In feedback they are
# shown escaped (``\x1b``), never sent as they are.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Limits:
    address_space: int = 4 << 30  # bytes
    file_size: int = 256 << 20  # bytes, per file written
    open_files: int = 8192
    cpu_slack: float = 10.0  # CPU seconds beyond the kata's wall-clock limit
    processes: int = 128  # processes of one run alive at once (threads not counted)
    disk: int = 1 << 30  # bytes a run may hold in its workspace and temp folder, all files
    files: int = 100_000  # files and folders a run may hold there
    sandbox: bool = True  # confine the spec process with Landlock where the kernel has it


@dataclass
class RunResult:
    records: list[dict] = field(default_factory=list)
    rejected: int = 0  # lines on the channel that failed the signature or the sequence
    timed_out: bool = False
    stopped: str = ""  # why the supervisor stopped the run early, for the learner
    returncode: int | None = None  # of the spec process; negative: killed by that signal
    output: str = ""
    output_bytes: int = 0
    duration: float = 0.0
    coverage: dict | None = None
    sandbox: str = ""  # "landlock-abi-N" or "none: <why>": how the spec process was confined

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


def _environment(run_dir: Path, run_id: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.update(
        HOME=str(run_dir / "tmp" / "home"),
        TMPDIR=str(run_dir / "tmp"),
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        HYPOTHESIS_STORAGE_DIRECTORY=str(run_dir / "tmp" / ".hypothesis"),
        NO_COLOR="1",
    )
    env[MARKER] = run_id
    return env


def sandbox_status(limits: Limits) -> str:
    """How spec processes run with these limits will be confined: ``landlock-abi-N`` or
    ``none: <why>`` (the kernel has no Landlock, or the sandbox was turned off)."""
    return sandbox.probe() if limits.sandbox else NO_SANDBOX


def sandbox_paths(run_dir: Path, workspace: Path) -> tuple[list[str], list[str]]:
    """(write, read) paths of the spec process's sandbox: it writes in its workspace and temp
    folder only; it reads its run folder (workspace, temp folder, ini file), the Python
    installation, the grader package (not the course around it) and SYSTEM_READ."""
    import site

    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    python.update(site.getsitepackages())
    python.add(str(Path(sys.executable).resolve().parent.parent))
    write = [str(workspace), str(run_dir / "tmp"), os.devnull]
    read = [str(run_dir), *sorted(python), GRADER_DIR, *SYSTEM_READ]
    return write, read


def _preexec(limits: Limits, cpu_seconds: int):
    return portable.preexec(limits.address_space, limits.file_size, limits.open_files, cpu_seconds)


def _protect_grader() -> None:
    portable.protect_grader()


def _run_pids(run_id: str) -> list[int]:
    """Processes carrying this run's marker in their environment (Linux /proc)."""
    return portable.marked_pids(f"{MARKER}={run_id}".encode())


def kill_run(pgid: int, run_id: str) -> None:
    """Stop, then kill, the child's process group and every process that carries the marker."""
    portable.kill_group(pgid)
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
            self.tail += data[-OUTPUT_KEEP:]
            del self.tail[: max(0, len(self.tail) - OUTPUT_KEEP)]

    def text(self) -> str:
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {skipped} bytes of output left out ...]\n" if skipped > 0 else ""
        return (
            bytes(self.head).decode(errors="replace")
            + middle
            + bytes(self.tail).decode(errors="replace")
        )


def _pipe() -> tuple[int, int]:
    """A pipe with a 1 MiB buffer where the system allows it: a flood of output then costs
    a few context switches per MiB, not sixteen."""
    read, write = os.pipe()
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl  # POSIX; F_SETPIPE_SZ is Linux's

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 1 << 20)
    return read, write


async def _drain(reader: asyncio.StreamReader, sink) -> None:
    while chunk := await reader.read(1 << 20):
        sink(chunk)


async def _read_pipe(fd: int, sink) -> tuple[asyncio.Future, object]:
    """Read the pipe ``fd`` into ``sink`` until every writer has closed it."""
    if not portable.host().process_groups:  # Windows' event loop reads no anonymous pipe
        return _read_pipe_in_thread(fd, sink), _NoTransport()
    stream = asyncio.StreamReader(limit=1 << 20)  # at most 2 MiB buffered: reads stay cheap
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb", 0)
    )
    return asyncio.ensure_future(_drain(stream, sink)), transport


class _NoTransport:
    """What a thread-read pipe has in place of a transport: nothing to close (the thread
    closes the pipe when every writer has)."""

    def close(self) -> None:
        pass


def _read_pipe_in_thread(fd: int, sink) -> asyncio.Future:
    """The portable way: a daemon thread does blocking reads and hands chunks to the loop."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def pump() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 1 << 20):
                loop.call_soon_threadsafe(sink, chunk)
        with contextlib.suppress(OSError):
            os.close(fd)
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    threading.Thread(target=pump, name=f"kata-pipe-{fd}", daemon=True).start()
    return done


def _read_status(fd: int) -> dict:
    """The supervisor's last word: the spec process's exit status, and why it stopped the run.

    The pipe is read without blocking (a process of the run may still hold it) and only its
    last complete line counts: the supervisor writes it after every other process is gone.
    """
    os.set_blocking(fd, False)
    data = b""
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(fd, 65536):
            data += chunk
            if len(data) > 1 << 20:
                break
    os.close(fd)
    for line in reversed(data.split(b"\n")[:-1]):
        with contextlib.suppress(ValueError):
            status = json.loads(line)
            if isinstance(status, dict) and status.get("supervisor") == 1:
                return status
    return {}


def _signal(pid: int, *signals: signal.Signals) -> None:
    for sig in signals:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def _stop(proc: asyncio.subprocess.Process, run_id: str) -> None:
    """Ask the supervisor to stop the run (it kills its descendants), then make sure."""
    if proc.returncode is None and portable.host().supervisor:
        _signal(proc.pid, signal.SIGCONT, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), SUPERVISOR_GRACE)
    kill_run(proc.pid, run_id)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


# -- what comes back -------------------------------------------------------------------------


def _spec_lines(workspace: Path, learner_files: list[Path]) -> frozenset[str]:
    """The long lines of the trusted spec files, read before learner code runs."""
    learner = {p.resolve() for p in learner_files}
    lines = set()
    for path in workspace.rglob("*.py"):
        if path.resolve() not in learner:
            text = path.read_text(encoding="utf-8", errors="replace")
            lines.update(s for s in map(str.strip, text.splitlines()) if len(s) >= SPEC_LINE_MIN)
    return frozenset(lines)


def _secret_values() -> list[str]:
    named = {n.strip() for n in os.environ.get(SECRET_VARS, "").split(",") if n.strip()}
    values = {
        value
        for name, value in os.environ.items()
        if (name in named or SECRET_NAME.search(name.upper())) and len(value) >= 6
    }
    return sorted(values, key=len, reverse=True)


def withhold(text: str, spec_lines: frozenset[str], secret_values: list[str]) -> str:
    """``text`` with secret values masked; all of it withheld if it quotes the spec's source."""
    for value in secret_values:
        text = text.replace(value, WITHHELD_SECRET)
    if any(line in text for line in spec_lines):
        return WITHHELD_SOURCE
    return text


def visible(text: str) -> str:
    """``text`` with every CONTROL character written out as an escape (``\\x1b``, ``\\u202e``)."""
    return CONTROL.sub(lambda m: ascii(m[0])[1:-1], text)


def _clean(records: list[dict], spec_lines: frozenset[str], secret_values: list[str]) -> None:
    for record in records:
        for name, value in record.items():
            if name in ("message", "where") and isinstance(value, str):
                record[name] = visible(withhold(value, spec_lines, secret_values))


# -- the run -------------------------------------------------------------------------------


async def run_specs(
    kata: Kata,
    workspace: Path,
    learner_files: list[Path],
    *,
    mode: str = "run",
    coverage: bool = False,
    limits: Limits = Limits(),
    select: list[str] | None = None,
    exitfirst: bool = False,
    explore_seed: int | None = None,
    fork_server: ForkServer | None = None,
    on_start: Callable[[int], None] | None = None,
) -> RunResult:
    """Run the specs in ``workspace`` (mode ``run``) or list them (mode ``collect``).

    ``select`` runs only those spec ids (``file.py::test[id]``); ``exitfirst`` stops at the
    first failing spec (verify's mutant runs, where one failure is all that is asked).
    With ``coverage``, each spec's lines are recorded under its own context (its id).
    ``explore_seed`` runs hypothesis with that seed and ten times the examples (verify).
    ``fork_server`` forks the spec process from a warm one instead of starting Python
    (verify's mutant runs; see grader/zygote.py). ``on_start`` is told the spec process's
    pid once it runs (verify watches whether it computes or waits).
    """
    _protect_grader()
    run_dir = workspace.parent
    (run_dir / "tmp" / "home").mkdir(parents=True, exist_ok=True)
    confinement = sandbox_status(limits)
    # The sandbox's TCP layer, one rule per ephemeral port: made once by this grader, handed
    # to every spec process, which enters it (sandbox.network_ruleset).
    network = None
    if confinement.startswith("landlock"):
        with contextlib.suppress(OSError):
            network = sandbox.network_ruleset()
    spec_lines = _spec_lines(workspace, learner_files) if mode == "run" else frozenset()
    run_id = secrets.token_hex(16)
    key = new_key()
    key_read, key_write = os.pipe()
    out_read, out_write = _pipe()
    log_read, log_write = _pipe()
    supervised = portable.host().supervisor
    status_read, status_write = os.pipe()
    os.write(key_write, key)
    os.close(key_write)
    coverage_file = run_dir / "tmp" / "coverage.json"
    write_paths, read_paths = sandbox_paths(run_dir, workspace)
    config = {
        "workspace": str(workspace),
        "ini": str(run_dir / "pytest.ini"),
        "mode": mode,
        "key_fd": key_read,
        "out_fd": out_write,
        "status_fd": status_write if supervised else None,
        "host": portable.host().name,  # the child takes the same pieces (forced in tests)
        "max_processes": limits.processes,
        "max_disk": limits.disk,
        "max_files": limits.files,
        "spec_timeout": kata.spec_timeout,
        "forbid_imports": list(kata.forbid_imports),
        "learner_files": [str(p) for p in learner_files],
        "phantoms": [Path(f).stem for _, f in kata.inputs] if mode == "collect" else [],
        "coverage": str(coverage_file) if coverage else "",
        "sandbox": (
            {"write": write_paths, "read": read_paths, "network_fd": None}
            if confinement.startswith("landlock")
            else None
        ),
        "select": list(select or []),
        "exitfirst": exitfirst,
        "explore_seed": explore_seed,
    }
    result = RunResult(sandbox=confinement)
    reader = Reader(key)
    output = _Output()
    preexec = _preexec(limits, int(kata.timeout + limits.cpu_slack))
    started = time.monotonic()
    handed = [key_read, out_write, *([status_write] if supervised else [])]
    if network is not None:
        handed.append(network)
    spawn, tokens = portable.spawn_options(handed, preexec)
    config.update(key_fd=tokens[0], out_fd=tokens[1])
    if network is not None:
        config["sandbox"]["network_fd"] = tokens[-1]
    env = _environment(run_dir, run_id)
    try:
        proc = None
        if fork_server is not None and not fork_server.broken:
            fds = {"key_fd": key_read, "out_fd": out_write, "log_fd": log_write}
            fds["status_fd"] = status_write if supervised else None
            fds["network_fd"] = network
            limited = (limits.address_space, limits.file_size, limits.open_files)
            cpu = int(kata.timeout + limits.cpu_slack)
            with contextlib.suppress(ConnectionError):  # the server is gone: spawn instead
                proc = await fork_server.spawn(config, fds, env, str(workspace), (*limited, cpu))
        if proc is None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                BOOTSTRAP.format(parent=GRADER_PARENT),
                json.dumps(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_write,
                stderr=log_write,
                cwd=str(workspace),
                env=env,
                **spawn,
            )
    except BaseException:
        for fd in (out_read, log_read, status_read):
            os.close(fd)
        raise
    finally:
        for fd in (key_read, out_write, log_write, status_write):
            os.close(fd)
    if on_start is not None:
        on_start(proc.pid)
    pumps, transports = [], []
    for fd, sink in ((out_read, reader.feed), (log_read, output.feed)):
        pump, transport = await _read_pipe(fd, sink)
        pumps.append(pump)
        transports.append(transport)
    try:
        await asyncio.wait_for(proc.wait(), kata.timeout)
    except TimeoutError:
        result.timed_out = True
    finally:
        await _stop(proc, run_id)
        _, pending = await asyncio.wait(pumps, timeout=2)
        for pump in pending:
            pump.cancel()
        for transport in transports:
            transport.close()
        status = _read_status(status_read) if supervised else {}
        if not supervised:
            os.close(status_read)
    result.duration = time.monotonic() - started
    result.returncode = status.get("returncode", proc.returncode)
    result.stopped = str(status.get("stopped", ""))
    result.records, result.rejected = reader.records, reader.rejected
    secret_values = _secret_values()
    _clean(result.records, spec_lines, secret_values)
    result.output = withhold(output.text(), frozenset(), secret_values)
    result.output_bytes = output.total
    if coverage and coverage_file.is_file():
        with contextlib.suppress(ValueError):
            result.coverage = json.loads(coverage_file.read_text())
    return result
