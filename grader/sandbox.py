"""Kernel confinement of the spec process: Landlock, called through ctypes.

Theory of operation: Landlock (Linux >= 5.13) lets an unprivileged process give up rights,
for itself and every process it starts, for good: no root, no container, no user namespace.
The spec process calls :func:`confine` after the supervisor has forked and before the first
learner byte is imported; from then on the kernel, not Python, refuses:

* file access outside an allow-list: writes only in the kata's workspace and private temp
  folder (and ``/dev/null``); reads and executes only the Python installation, the grader
  package, the workspace and what the standard library needs (ABI 1-3, 5);
* TCP ``bind`` to any port but 0 (an ephemeral port), and TCP ``connect`` outside the
  ephemeral port range, which keeps services on fixed ports (databases, SSH, HTTP proxies,
  anything on ports 80 and 443 out there) out of reach (ABI >= 4). Landlock filters by port,
  not address nor owner: another process's listener on an ephemeral port of 127.0.0.1 stays
  reachable, and UDP is not filtered at all;
* signals and abstract UNIX sockets outside the sandbox: learner code can signal neither
  the grader, nor the supervisor, nor another kata's processes (ABI >= 6).

Rights an older ABI does not know are simply not restricted (best effort): :func:`probe`
names the ABI, and the report says which one graded. Where Landlock is missing (macOS,
Windows, an old kernel, a container that disabled it), :func:`probe` says why, and the
grader runs without it, visibly.

Why ctypes and not the ``landlock`` package from PyPI: at 1.0.0.dev5 it is an alpha that
handles file-system rules only (no network rules, no scopes), and the whole kernel interface
is three system calls and three small structs, all of it readable below.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SandboxError", "abi", "confine", "enter", "ephemeral_ports", "network_ruleset", "probe"]

# System call numbers: the generic table, shared by x86_64, arm64, riscv64 and others.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38
_ARCHES = ("x86_64", "aarch64", "riscv64", "s390x", "ppc64le", "loongarch64")

# File-system rights, by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_RIGHTS = {1: (1 << 13) - 1, 2: REFER, 3: TRUNCATE, 5: IOCTL_DEV}  # ABI -> rights it adds
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # a rule on a file


class SandboxError(OSError):
    """Landlock is missing, or refused the sandbox."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


# the size of struct landlock_ruleset_attr each ABI knows (scoped came with ABI 6)
_ATTR_SIZE = {1: 8, 4: 16, 6: 24}


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _syscall(number: int, *args: object) -> int:
    result = _libc().syscall(ctypes.c_long(number), *args)
    if result < 0:
        code = ctypes.get_errno()
        raise SandboxError(code, os.strerror(code))
    return result


def abi() -> int:
    """The Landlock ABI version of this kernel; SandboxError says why there is none."""
    if not sys.platform.startswith("linux"):
        raise SandboxError(errno.ENOSYS, f"Landlock is a Linux feature (this is {sys.platform})")
    if platform.machine() not in _ARCHES:
        raise SandboxError(
            errno.ENOSYS, f"no Landlock system call numbers for {platform.machine()}"
        )
    try:
        return _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    except SandboxError as err:
        why = {
            errno.ENOSYS: "the kernel has no Landlock (Linux < 5.13, or a seccomp filter)",
            errno.EOPNOTSUPP: "Landlock is disabled at boot (lsm= does not list it)",
        }.get(err.errno, f"the Landlock probe failed: {err.strerror}")
        raise SandboxError(err.errno, why) from None


def probe() -> str:
    """``landlock-abi-N`` where the spec process can be confined, else ``none: <why>``."""
    try:
        return f"landlock-abi-{abi()}"
    except SandboxError as err:
        return f"none: {err.strerror}"


def ephemeral_ports() -> range:
    """The kernel's ephemeral port range: where ``bind(port 0)`` puts a socket."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            low, high = map(int, ports.read().split())
        return range(low, high + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


@dataclass(frozen=True)
class _Ruleset:
    fd: int
    fs: int  # the file-system rights this ruleset handles

    def allow_path(self, path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a path that does not exist here needs no rule
        try:
            if not os.path.isdir(path):
                rights &= FILE_RIGHTS
            attr = _PathBeneathAttr(rights & self.fs, fd)
            _syscall(_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(attr), 0)
        finally:
            os.close(fd)

    def allow_ports(self, ports: Iterable[int], rights: int) -> None:
        attr = _NetPortAttr(rights, 0)
        pointer, add_rule = ctypes.byref(attr), _libc().syscall
        for port in ports:  # one rule per port: ~28,000 for the ephemeral range, ~20 ms
            attr.port = port
            if add_rule(_ADD_RULE, self.fd, _RULE_NET_PORT, pointer, 0) < 0:
                code = ctypes.get_errno()
                raise SandboxError(code, f"port {port}: {os.strerror(code)}")


def _new_ruleset(version: int, fs: int, net: int, scoped: int) -> _Ruleset:
    attr = _RulesetAttr(fs, net, scoped)
    size = _ATTR_SIZE[max(v for v in _ATTR_SIZE if v <= version)]
    return _Ruleset(_syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0), fs)


@functools.cache
def network_ruleset() -> int | None:
    """A ruleset of the TCP rules alone, made once per process (None before ABI 4): ``bind``
    only to port 0, ``connect`` only to the ephemeral range.

    One rule per port costs ~50 ms of CPU, so the grader makes it once and every spec
    process enters it (:func:`enter`) before ``exec``; its own file-system layer
    (:func:`confine`) stacks on top. Landlock layers intersect, and an enforced ruleset is a
    copy: nothing added to the ruleset later changes a sandbox.
    """
    version = abi()
    if version < 4:
        return None
    ruleset = _new_ruleset(version, 0, BIND_TCP | CONNECT_TCP, 0)
    try:
        ruleset.allow_ports((0,), BIND_TCP)  # bind(port 0): an ephemeral port
        ruleset.allow_ports(ephemeral_ports(), CONNECT_TCP)
    except BaseException:
        os.close(ruleset.fd)
        raise
    return ruleset.fd


def enter(ruleset_fd: int) -> None:
    """Enforce a ruleset on this process and all it will start, for good."""
    if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise SandboxError(code, f"PR_SET_NO_NEW_PRIVS: {os.strerror(code)}")
    _syscall(_RESTRICT_SELF, ruleset_fd, 0)


def confine(write_paths: Iterable[str], read_paths: Iterable[str], *, network: bool = True) -> str:
    """Confine this process and all it will start, for good; return what was applied.

    ``write_paths`` may be read, written, created in and deleted from; ``read_paths`` read
    and executed. Signals and abstract UNIX sockets stay inside the sandbox (ABI >= 6). With
    ``network``, the TCP layer of :func:`network_ruleset` too (ABI >= 4); without, the caller
    has entered it already. Raises SandboxError if the kernel refuses any of it.
    """
    version = abi()
    fs = 0
    for since, rights in FS_RIGHTS.items():
        fs |= rights if version >= since else 0
    scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if version >= 6 else 0
    layer = network_ruleset() if network else None
    if layer is not None:
        enter(layer)
    ruleset = _new_ruleset(version, fs, 0, scoped)
    try:
        for path in read_paths:
            ruleset.allow_path(path, READ)
        for path in write_paths:
            ruleset.allow_path(path, fs)
        enter(ruleset.fd)
    finally:
        os.close(ruleset.fd)
    return f"landlock-abi-{version}"
