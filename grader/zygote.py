"""``kata verify``'s fork server: one warm process per kata that forks a spec process per run.

A mutant run needs one failing spec, a fraction of a second of work; starting Python,
importing pytest, its plugins, hypothesis and the specs' oracle libraries costs more than
that, every time. The fork server pays it once per kata: it imports those (trusted modules
only: never a spec module, never a learner file) and then, for each run, forks a child that
becomes exactly the spec process ``grader.runner`` would have started (its own session,
resource limits, death signal, the run's environment, working folder and pipes) and runs
``grader.child.main``, which confines itself in the sandbox before the first spec is
imported, as always.

Only ``kata verify`` uses it, and only for the course's own code: the spec listing, the
solution's runs after the first, the stub's run, the mutant runs and the visible tests. A
grade of record, and verify's first solution run (the one measured with coverage), start a
fresh interpreter each, so the spawned path is proved on every kata. One difference is
accepted for that reason: a forked child carries the server's environment block in
``/proc/<pid>/environ``, so the run marker finds only the processes it exec()s; its
session, the supervisor's census and the kill of its group find the rest (these runs are
the course's own code, not a learner's).

Linux (POSIX with ``fork`` and ``SCM_RIGHTS``) only; elsewhere verify spawns as before.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from .portable import die_with_parent

__all__ = ["ForkServer", "available", "preload_modules"]

# What every spec process imports before its first spec: pytest, its plugins and the grader's.
BASE = (
    "pytest",
    "pytest_timeout",
    "pytest_asyncio.plugin",
    "_hypothesis_pytestplugin",
    "hypothesis",
    "grader.channel",
    "grader.child",
    "grader.imports",
    "grader.plugin",
    "grader.sandbox",
    "asyncio",
    "unittest.mock",
)
# SQLite takes its temporary folder (SQLITE_TMPDIR, else TMPDIR) from the environment once,
# when the module is imported (sqlite3_initialize), so a forked spec process would put its
# sort and index files in the server's TMPDIR, outside its sandbox: "unable to open database
# file". A forked child points SQLite at its own run's folder instead (_sqlite_follows_tmpdir);
# a server whose SQLite refuses to be pointed does not fork.
MAX_MESSAGE = 1 << 20
BOOTSTRAP = (
    f"import sys; sys.path.append({str(Path(__file__).resolve().parent.parent)!r}); "
    "from grader.zygote import serve; serve(int(sys.argv[1]), sys.argv[2])"
)
FD_KEYS = ("key_fd", "out_fd", "status_fd", "network_fd", "log_fd")


def available() -> bool:
    """True where a fork server can stand in for spawning (Linux, with a supervisor)."""
    from grader import portable

    return (
        sys.platform.startswith("linux")
        and hasattr(socket, "send_fds")
        and hasattr(os, "fork")
        and portable.host().supervisor
    )


def preload_modules(spec_files: list[Path], local: set[str]) -> list[str]:
    """The top-level modules the spec files import, but neither a learner module nor a
    module of the spec folder (``local``): the oracle libraries worth importing once."""
    found: dict[str, None] = {}
    for path in spec_files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in local:
                    found[name] = None
    return list(found)


# -- the server (its own process) ----------------------------------------------------------


def _preload(names: list[str], local: list[str]) -> None:
    """Import ``names``; a module that fails to is simply left to the spec process. A module
    that starts a thread ends the server (forking a process with threads is unsafe): verify
    then spawns. A module imported on the way that has the name of a learner or spec module
    (the ``hpack`` library under ``h2``, beside a learner's hpack.py) leaves ``sys.modules``
    again, so that name still finds the workspace's file in the spec process."""
    for name in (*BASE, *names):
        before = threading.active_count()
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - an oracle that won't import here is the spec's business
            continue
        if threading.active_count() != before:
            raise SystemExit(f"fork server: importing {name} started a thread; not forking")
    for name in [n for n in sys.modules if n.split(".")[0] in local]:
        del sys.modules[name]
    if "sqlite3" in sys.modules and not _sqlite_follows_tmpdir(os.environ):
        raise SystemExit("fork server: SQLite's temporary folder can't be set; not forking")
    _warm_hypothesis()


def _sqlite_follows_tmpdir(env: dict[str, str]) -> bool:
    """Point a preloaded SQLite's temporary files at the folder a process started with
    ``env`` would use (SQLITE_TMPDIR, else TMPDIR, else the system's), with the one setting
    that outranks what SQLite read at import (``PRAGMA temp_store_directory``, process-wide);
    False when this SQLite ignores it (a build without deprecated pragmas)."""
    import sqlite3
    import tempfile

    folder = env.get("SQLITE_TMPDIR") or env.get("TMPDIR") or tempfile.gettempdir()
    quoted = folder.replace("'", "''")
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            conn.execute(f"PRAGMA temp_store_directory = '{quoted}'")
            (now,) = conn.execute("PRAGMA temp_store_directory").fetchone() or ("",)
    except sqlite3.Error:
        return False
    return now == folder


def _warm_hypothesis() -> None:
    """Hypothesis reads constants out of every "local" module in ``sys.modules`` (all but the
    standard library and site-packages) before its first example, and remembers which
    modules it has read. Reading the preloaded ones here, once, spares each forked child
    that scan; the child reads only the modules it imports itself (specs, learner files), so
    the constants it draws from are the same as without the warm-up."""
    try:
        from hypothesis.internal.conjecture.providers import _get_local_constants
    except ImportError:  # another hypothesis: the child scans, as it would anyway
        return
    import warnings

    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "slow code in plugin": this is not a plugin's start
        _get_local_constants()


def _freeze_heap() -> None:
    """Move what the server has imported out of the collector's sight (``gc.freeze``): a
    forked child's collections then walk only the objects it makes itself, not the whole
    preloaded heap of pytest, hypothesis and the oracles. pytest alone collects several times
    per run (its unraisable-exception check at exit). Garbage is collected first, so nothing
    frozen is garbage; the frozen objects are the live modules a spawned process would also
    hold for its whole life. Collecting them less often also spares their pages the copy that
    a collection's reference-count writes would cause in each child."""
    import gc

    gc.collect()
    gc.freeze()


def _forget_server_folders() -> None:
    """In a forked child: what a preloaded module took from the server's folder, the
    child's own now (hypothesis keeps ``.hypothesis`` under the folder it was imported in)."""
    configuration = sys.modules.get("hypothesis.configuration")
    if configuration is not None:
        default = "__hypothesis_home_directory_default"
        if hasattr(configuration, default):
            setattr(configuration, default, Path.cwd() / ".hypothesis")
        with contextlib.suppress(Exception):
            configuration.set_hypothesis_home_dir(None)


def _become_spec_process(request: dict, fds: list[int], closing: list[int]) -> None:
    """In the forked child: turn into the spec process ``request`` describes; never returns."""
    try:
        for fd in closing:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        named = dict(zip(request["fds"], fds, strict=True))
        os.setsid()
        from grader import portable

        limits = request["limits"]
        apply = portable.preexec(*limits)
        if apply is not None:
            apply()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(named["log_fd"], 1)
        os.dup2(named["log_fd"], 2)
        os.close(named["log_fd"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # TMPDIR is the run's now
        if "sqlite3" in sys.modules and not _sqlite_follows_tmpdir(os.environ):
            raise RuntimeError("SQLite's temporary folder can't be set to the run's")
        _forget_server_folders()
        if request.get("pytest_args") is not None:  # a plain pytest run: verify's visible tests
            import pytest

            code = int(pytest.main(request["pytest_args"]))
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        config = request["config"]
        config["key_fd"], config["out_fd"] = named["key_fd"], named["out_fd"]
        config["status_fd"] = named.get("status_fd")
        if config.get("sandbox") is not None:
            config["sandbox"]["network_fd"] = named.get("network_fd")
        from grader.child import main

        main(["grader.child", json.dumps(config)])
    except BaseException:  # noqa: BLE001 - report on the run's own output, then go
        import traceback

        traceback.print_exc()
    finally:
        os._exit(70)


def serve(fd: int, plan: str) -> None:
    """The server loop: a request (JSON and its file descriptors) in, a child forked, its
    pid out; each child's exit status out when it is reaped. Ends when the grader closes."""
    sock = socket.socket(fileno=fd)
    plan = json.loads(plan)
    _preload(plan["preload"], plan["local"])
    _freeze_heap()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.sendall(json.dumps({"ready": True}).encode())
    import select

    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            sock.sendall(json.dumps({"exit": pid, "returncode": code}).encode())
        if sock in ready:
            message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, len(FD_KEYS))
            if not message:
                break
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                _become_spec_process(request, fds, [sock.fileno(), wake_read, wake_write])
            for received in fds:
                os.close(received)
            children.add(pid)
            sock.sendall(json.dumps({"pid": pid}).encode())
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# -- the grader's side ---------------------------------------------------------------------


class Forked:
    """A spec process the fork server started: what ``grader.runner`` needs of a process."""

    def __init__(self, pid: int, exited: asyncio.Future) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = exited
        exited.add_done_callback(self._set)

    def _set(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.returncode = future.result()

    async def wait(self) -> int | None:
        await asyncio.shield(self._exited)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """The grader's handle on one fork server: ``start``, ``spawn`` many times, ``close``."""

    def __init__(self, preload: list[str], local: set[str], env: dict[str, str], cwd: Path) -> None:
        self.preload = preload
        self.local = sorted(local)
        self.env = env
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.sock: socket.socket | None = None
        self._pending: list[asyncio.Future] = []
        self._exits: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self.broken = ""

    async def start(self) -> bool:
        """Start the server and wait until it has imported its modules; False if it could not."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                BOOTSTRAP,
                str(theirs.fileno()),
                json.dumps({"preload": self.preload, "local": self.local}),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                cwd=str(self.cwd),
                env=self.env,
                pass_fds=(theirs.fileno(),),
                preexec_fn=die_with_parent,  # its children die with it: their own signal
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        loop = asyncio.get_running_loop()
        try:
            hello = await asyncio.wait_for(loop.sock_recv(ours, MAX_MESSAGE), 120)
        except (TimeoutError, OSError):
            hello = b""
        if not hello:
            self.broken = "the fork server did not start"
            await self.close()
            return False
        self._reader = asyncio.ensure_future(self._read())
        return True

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while message := await loop.sock_recv(self.sock, MAX_MESSAGE):
                reply = json.loads(message)
                if "pid" in reply:
                    # the waiter gets the exit future itself: a child that exits at once has
                    # its exit read (and popped) before the spawner runs again
                    pid = reply["pid"]
                    self._exits[pid] = exited = loop.create_future()
                    self._pending.pop(0).set_result((pid, exited))
                elif "exit" in reply:
                    future = self._exits.pop(reply["exit"], None)
                    if future is not None and not future.done():
                        future.set_result(reply["returncode"])
        except (OSError, ValueError) as err:
            self.broken = f"the fork server failed: {err}"
        finally:
            self.broken = self.broken or "the fork server stopped"
            for future in [*self._pending, *self._exits.values()]:
                if not future.done():
                    future.set_exception(ConnectionError(self.broken))

    async def spawn(
        self,
        config: dict | None,
        fds: dict[str, int],
        env: dict[str, str],
        cwd: str,
        limits: tuple,
        *,
        pytest_args: list[str] | None = None,
    ) -> Forked:
        """Fork a spec process for ``config``; ``fds`` (by FD_KEYS name) are handed over.
        With ``pytest_args`` instead, the child is a plain ``pytest`` run with those arguments
        (its output to ``log_fd``, its exit status pytest's), outside the grader's plugin and
        sandbox: verify's visible tests, which run trusted files only."""
        if self.broken or self.sock is None:
            raise ConnectionError(self.broken or "the fork server is not running")
        names = [k for k in FD_KEYS if fds.get(k) is not None]
        request = {
            "config": config,
            "fds": names,
            "env": env,
            "cwd": cwd,
            "limits": list(limits),
            "pytest_args": pytest_args,
        }
        loop = asyncio.get_running_loop()
        async with self._lock:  # a request and its reply pair up in order
            waiter = loop.create_future()
            self._pending.append(waiter)
            socket.send_fds(self.sock, [json.dumps(request).encode()], [fds[k] for k in names])
            pid, exited = await waiter
        return Forked(pid, exited)

    async def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
