"""What the grader asks of the operating system, behind one small interface, with a portable
fallback for each piece.

Theory of operation: containment of a run is built from pieces only some systems have.

| piece            | Linux                      | macOS, BSD (POSIX)    | Windows (portable)  |
|------------------|----------------------------|-----------------------|---------------------|
| supervisor       | fork + child subreaper     | fork (no subreaper)   | none                |
| death signal     | prctl(PR_SET_PDEATHSIG)    | -                     | -                   |
| grader undumpable| prctl(PR_SET_DUMPABLE, 0)  | -                     | -                   |
| OOM victim       | /proc/self/oom_score_adj   | -                     | -                   |
| process census   | /proc/<pid>/stat           | ``ps -A -o pid,ppid`` | -                   |
| stray processes  | /proc/<pid>/environ marker | -                     | -                   |
| resource limits  | setrlimit                  | setrlimit             | -                   |
| process group    | setsid, killpg, SIGSTOP    | the same              | new process group   |
| pipes to a child | pass_fds                   | pass_fds              | inherited handles   |

:func:`host` says which pieces this system has; every caller asks it rather than the
platform, so ``KATA_HOST=posix`` or ``KATA_HOST=portable`` (or :func:`force`) makes a Linux
machine take the fallbacks, which is how the tests prove them. :func:`protections_off` names
the pieces that are missing, for the report: a grade on a learner's Mac says what it did
without, rather than crashing or pretending.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, fields

__all__ = [
    "Host",
    "child_fd",
    "force",
    "die_with_parent",
    "host",
    "kill_group",
    "marked_pids",
    "preexec",
    "process_table",
    "protect_grader",
    "protections_off",
    "spawn_options",
]

FORCE_VAR = "KATA_HOST"  # "linux", "posix" or "portable": take that level's pieces only
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the process that started it dies (Linux; a
    no-op elsewhere). For helpers of the grader that must not outlive it even when it is
    killed outright: verify's fork server, the CPU burners of ``verify --load``."""
    with contextlib.suppress(OSError, AttributeError):
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class Host:
    """The containment pieces this system has (see the table above)."""

    name: str
    supervisor: bool  # fork a supervisor that runs no learner code
    subreaper: bool  # orphans of the run stay the supervisor's descendants
    death_signal: bool  # the run dies with the grader
    undumpable: bool  # the grader's /proc files are closed to its children
    oom_victim: bool  # out of memory, the run is killed before the grader
    census: bool  # the run's processes can be counted (fork bombs stopped)
    marker_scan: bool  # processes that escaped every group are found by their marker
    rlimits: bool  # address space, CPU, file size, open files
    process_groups: bool  # the run has its own session; the group is stopped and killed whole


LEVELS = {
    "linux": Host("linux", *([True] * 9)),
    "posix": Host("posix", True, False, False, False, False, True, False, True, True),
    "portable": Host("portable", *([False] * 9)),
}
# What a learner reads when a piece is missing: what it would have protected against.
OFF = {
    "supervisor": "supervisor (processes the specs leave behind may outlive the run)",
    "subreaper": "subreaper (a double-forked process escapes the run's supervisor)",
    "death_signal": "death signal (the run outlives a killed grader)",
    "undumpable": "undumpable grader (learner code may read the grader's memory)",
    "oom_victim": "out-of-memory order (the grader may be killed instead of the run)",
    "census": "process count (a fork bomb is stopped only by the time limit)",
    "marker_scan": "stray-process sweep (a process that left the group survives the run)",
    "rlimits": "resource limits (memory, CPU, file size, open files)",
    "process_groups": "process group (the run is killed by its first process only)",
}
_forced: str | None = None


def _detect() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    return "portable" if os.name == "nt" else "posix"


def force(level: str | None) -> None:
    """Take ``level``'s pieces only (``None``: what the system has); for tests."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown host level {level!r}; one of {', '.join(LEVELS)}")
    global _forced
    _forced = level


def host() -> Host:
    """This system's pieces, or fewer when forced (never more than it has)."""
    level = _forced or os.environ.get(FORCE_VAR) or _detect()
    order = list(LEVELS)
    weakest = max(order.index(level if level in LEVELS else "portable"), order.index(_detect()))
    return LEVELS[order[weakest]]


def protections_off(h: Host | None = None) -> list[str]:
    """The missing pieces of ``h`` (default: this host), in words, for the report."""
    h = h or host()
    return [OFF[f.name] for f in fields(Host) if f.name != "name" and not getattr(h, f.name)]


# -- the grader's side ---------------------------------------------------------------------


@functools.cache
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> bool:
    return _libc().prctl(option, value, 0, 0, 0) == 0


def protect_grader() -> None:
    """Make the grader non-dumpable: its /proc files (environ, mem) become unreadable, and
    the grader untraceable, to processes of the same user that are not root."""
    if host().undumpable:
        _prctl(_PR_SET_DUMPABLE, 0)


def _limit(resource, which: int, soft: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):  # macOS refuses some (RLIMIT_AS)
        resource.setrlimit(which, (soft, hard))


def preexec(address_space: int, file_size: int, open_files: int, cpu_seconds: int):
    """What the spec process does between fork and exec (``None`` where nothing can be
    done there): resource limits, no core dumps, die with the grader, die first."""
    h = host()
    if not (h.rlimits or h.death_signal or h.oom_victim):
        return None

    def apply() -> None:
        if h.rlimits:
            import resource

            _limit(resource, resource.RLIMIT_AS, address_space)
            _limit(resource, resource.RLIMIT_FSIZE, file_size)
            _limit(resource, resource.RLIMIT_NOFILE, open_files)
            _limit(resource, resource.RLIMIT_CPU, cpu_seconds)
            _limit(resource, resource.RLIMIT_CORE, 0)
        if h.death_signal:  # the supervisor cleans up and exits if the grader dies
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if h.oom_victim:
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")  # out of memory: kill this run, not the grader

    return apply


def spawn_options(fds: list[int], limits_preexec) -> tuple[dict, list[int]]:
    """Keyword arguments for ``create_subprocess_exec`` that hand ``fds`` to the child in a
    process group of its own, and what the child is told to find them by (:func:`child_fd`)."""
    if os.name == "nt":  # pragma: no cover - Windows: inheritable handles, a new group
        import msvcrt

        handles = [msvcrt.get_osfhandle(fd) for fd in fds]
        for handle in handles:
            os.set_handle_inheritable(handle, True)
        info = subprocess.STARTUPINFO()
        info.lpAttributeList = {"handle_list": handles}
        flags = subprocess.CREATE_NEW_PROCESS_GROUP
        return {"startupinfo": info, "creationflags": flags, "close_fds": True}, handles
    options: dict = {"pass_fds": tuple(fds), "start_new_session": host().process_groups}
    if limits_preexec is not None:
        options["preexec_fn"] = limits_preexec
    return options, list(fds)


def child_fd(token: int) -> int:
    """In the child: the file descriptor of a pipe the grader handed over as ``token``."""
    if os.name == "nt":  # pragma: no cover
        import msvcrt

        return msvcrt.open_osfhandle(token, 0)
    return token


def kill_group(pid: int) -> None:
    """Kill the run's first process and, where the run has its own group, the whole group."""
    if host().process_groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return
    if os.name == "nt":  # pragma: no cover - the process tree, as far as Windows knows it
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


# -- looking at processes ------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process: /proc on Linux, ``ps`` elsewhere on
    POSIX, nothing where neither is available (the census is then off)."""
    h = host()
    if not h.census:
        return {}
    if h.name == "linux" and os.path.isdir("/proc"):
        return _proc_table()
    return _ps_table()


def _proc_table() -> dict[int, tuple[int, str]]:
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields_ = stat.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry.name)] = (int(fields_[1]), fields_[0].decode())
    return table


def _ps_table() -> dict[int, tuple[int, str]]:
    try:
        with subprocess.Popen(
            ["ps", "-A", "-o", "pid=,ppid=,stat="], stdout=subprocess.PIPE, text=True
        ) as ps:
            out, _ = ps.communicate(timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            table[int(parts[0])] = (int(parts[1]), parts[2][:1])
    table.pop(ps.pid, None)  # ps itself: a child of the caller, gone by now
    return table


def marked_pids(needle: bytes) -> list[int]:
    """Processes whose environment holds ``needle`` (``NAME=value``); Linux only."""
    if not host().marker_scan or not os.path.isdir("/proc"):
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                if needle in environ.read().split(b"\0"):
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids
