"""Spec helpers for wal_recovery: a simulated file system that records every operation and
can crash the way the ALICE study models one, and an independent oracle of the log format.

The crash model (Pillai et al., OSDI 2014, section 3.2, simplified to what the store uses):

* every file has durable bytes and the operations done on it since its last fsync; after a
  crash it holds its durable bytes plus any prefix of those operations, the last of which
  may be torn at any byte or, for an append, have its new bytes left as zeros (the size
  reached the disk, the data did not);
* the directory has durable names and the name operations (create, rename) done since the
  last ``fsync_dir``; after a crash it holds its durable names plus any prefix of those
  operations, in order;
* a file's fsync does not make its name durable, and a rename is durable only after
  ``fsync_dir``.
"""

from __future__ import annotations

import itertools
import json
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Iterator

LOG, DATA, TEMP = "wal", "data", "data.tmp"


class Crashed(BaseException):  # noqa: N818 - a power cut, not an error a store may catch
    """The simulated machine lost power: every operation from now on fails."""


def oracle_record(payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def oracle_payload(changes: dict) -> bytes:
    return json.dumps(changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def oracle_records(log: bytes) -> list[bytes]:
    """The payloads of the leading valid records of ``log`` (written from the contract)."""
    out, pos = [], 0
    while pos + 8 <= len(log):
        length, crc = struct.unpack_from(">II", log, pos)
        payload = log[pos + 8 : pos + 8 + length]
        if length == 0 or len(payload) < length or zlib.crc32(payload) != crc:
            break
        out.append(payload)
        pos += 8 + length
    return out


def model(commits: list[dict]) -> dict:
    state: dict = {}
    for changes in commits:
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


class _Inode:
    def __init__(self, data: bytes = b"") -> None:
        self.durable = bytes(data)
        self.current = bytearray(data)
        self.pending: list[tuple[str, object]] = []  # ("append", bytes) | ("truncate", int)

    def contents(self, every_byte: bool) -> list[bytes]:
        """Every content this file may hold after a crash."""
        out = [self.durable]
        cur = bytearray(self.durable)
        for kind, arg in self.pending:
            if kind == "append":
                data = bytes(arg)
                cuts = (
                    range(1, len(data))
                    if every_byte
                    else sorted(
                        {
                            c
                            for c in (1, 4, 7, 8, 9, len(data) // 2, len(data) - 1)
                            if 0 < c < len(data)
                        }
                    )
                )
                for cut in cuts:
                    out.append(bytes(cur) + data[:cut])  # torn
                if data:
                    out.append(bytes(cur) + bytes(len(data)))  # size persisted, data not
                cur += data
            else:
                del cur[int(arg) :]
            out.append(bytes(cur))
        return list(dict.fromkeys(out))


class SimFS:
    """An in-memory FileSystem that records its operations and can enumerate crash states.

    ``crash_at=n`` lets n state-changing operations (write, append, truncate, fsync, rename,
    fsync_dir) happen and raises :class:`Crashed` on the next one and on everything after.
    ``block_fsync()`` makes the next fsync of the log wait until ``release_fsync()``.
    """

    def __init__(self, files: dict[str, bytes] | None = None, *, crash_at: int | None = None):
        self._lock = threading.Lock()
        self._inodes: list[_Inode] = []
        self.names: dict[str, int] = {}
        self.durable_names: dict[str, int] = {}
        self.dir_ops: list[tuple] = []
        for name, data in (files or {}).items():
            self._inodes.append(_Inode(data))
            self.names[name] = self.durable_names[name] = len(self._inodes) - 1
        self.crash_at = crash_at
        self.count = 0
        self.crashed = False
        self.trace: list[tuple[str, ...]] = []
        self.fsyncs: Counter[str] = Counter()
        self.appends: Counter[str] = Counter()
        self._changed = threading.Condition(self._lock)
        self._gate: threading.Event | None = None
        self.fsync_entered = threading.Event()

    # -- the crash point ----------------------------------------------------------------
    def _tick(self, *op: str) -> None:
        if self.crashed:
            raise Crashed("the machine is down")
        if self.crash_at is not None and self.count >= self.crash_at:
            self.crashed = True
            raise Crashed(f"power lost before {op}")
        self.count += 1
        self.trace.append(op)

    def _inode(self, name: str) -> _Inode:
        if name not in self.names:
            raise FileNotFoundError(name)
        return self._inodes[self.names[name]]

    def _create(self, name: str) -> _Inode:
        if name not in self.names:
            self._inodes.append(_Inode())
            self.names[name] = len(self._inodes) - 1
            self.dir_ops.append(("link", name, self.names[name]))
        return self._inodes[self.names[name]]

    # -- the FileSystem protocol -----------------------------------------------------------
    def exists(self, name: str) -> bool:
        with self._lock:
            if self.crashed:
                raise Crashed("the machine is down")
            return name in self.names

    def read(self, name: str) -> bytes:
        with self._lock:
            if self.crashed:
                raise Crashed("the machine is down")
            return bytes(self._inode(name).current)

    def write(self, name: str, data: bytes) -> None:
        with self._lock:
            self._tick("write", name)
            inode = self._create(name)
            inode.pending += [("truncate", 0), ("append", bytes(data))]
            inode.current[:] = data

    def append(self, name: str, data: bytes) -> None:
        with self._lock:
            self._tick("append", name)
            inode = self._create(name)
            inode.pending.append(("append", bytes(data)))
            inode.current += data
            self.appends[name] += 1
            self._changed.notify_all()

    def truncate(self, name: str, size: int) -> None:
        with self._lock:
            self._tick("truncate", name)
            inode = self._inode(name)
            inode.pending.append(("truncate", size))
            del inode.current[size:]

    def fsync(self, name: str) -> None:
        with self._lock:
            self._tick("fsync", name)
            inode = self._inode(name)
            snapshot, done = bytes(inode.current), len(inode.pending)
            gate = self._gate if name == LOG else None
            self.fsyncs[name] += 1
        if gate is not None:
            self.fsync_entered.set()
            gate.wait(10)  # the spec releases it; the bound only keeps a broken run finite
            with self._lock:
                self._gate = None
        with self._lock:
            if self.crashed:
                raise Crashed("the machine is down")
            inode.durable = snapshot
            del inode.pending[:done]

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            self._tick("rename", src, dst)
            if src not in self.names:
                raise FileNotFoundError(src)
            self.names[dst] = self.names.pop(src)
            self.dir_ops.append(("rename", src, dst))

    def fsync_dir(self) -> None:
        with self._lock:
            self._tick("fsync_dir")
            self.durable_names = dict(self.names)
            self.dir_ops.clear()

    # -- what the spec controls --------------------------------------------------------------
    def block_fsync(self) -> None:
        self._gate = threading.Event()

    def release_fsync(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def wait_appends(self, name: str, count: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.appends[name] >= count, timeout)

    def crash_states(self, every_byte: bool = True) -> Iterator[dict[str, bytes]]:
        """Every disk state the crash model allows right now (file name -> bytes)."""
        with self._lock:
            seen = set()
            for k in range(len(self.dir_ops) + 1):
                names = dict(self.durable_names)
                for op in self.dir_ops[:k]:
                    if op[0] == "link":
                        names[op[1]] = op[2]
                    elif op[1] in names:
                        names[op[2]] = names.pop(op[1])
                listed = sorted(names.items())
                options = [self._inodes[ino].contents(every_byte) for _, ino in listed]
                for combo in itertools.product(*options):
                    state = tuple(zip([n for n, _ in listed], combo, strict=True))
                    if state not in seen:
                        seen.add(state)
                        yield dict(state)

    def durable_view(self) -> dict[str, bytes]:
        """The state that survives a crash for sure: durable names, durable bytes."""
        return {n: self._inodes[i].durable for n, i in self.durable_names.items()}
