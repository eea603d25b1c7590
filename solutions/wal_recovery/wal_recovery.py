"""A durable key-value store: a write-ahead log with CRC-framed records, group commit,
atomic checkpoints, and recovery that stops at the first torn or corrupt record.

Theory of operation:

* Every commit is one log record, ``length (4 bytes, big-endian) | CRC-32 of the payload
  (4 bytes, big-endian) | payload``, the payload being the JSON of the changes. The record
  is appended to ``wal`` and the log is fsynced before ``commit`` returns: that fsync is
  the moment the commit becomes durable.
* Group commit: a commit appends its record at once, then waits for an fsync that *started
  after* its append. One committer at a time (the leader) runs the fsync with the lock
  released, so others append meanwhile; when it ends, the next leader's single fsync covers
  every record appended during the previous one.
* A checkpoint writes the whole map to ``data.tmp``, fsyncs it, renames it over ``data``,
  fsyncs the directory (the rename is durable only then), and only then empties the log.
* Recovery reads ``data`` and replays the log's records over it, stopping at the first
  record that is torn (runs past the end) or corrupt (its CRC does not match), then cuts
  the log back to the end of the last good record so that new records follow good ones.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from typing import Protocol

LOG = "wal"
DATA = "data"
TEMP = "data.tmp"

HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload

Changes = dict[str, str | None]


class FileSystem(Protocol):
    """The file operations the store uses, on one flat directory of names.

    The store is given one (``DiskFS`` on a real directory; the specs inject a simulated
    one that can crash). What survives a crash, as the ALICE study models it:

    * ``write``, ``append`` and ``truncate`` change a file's bytes in memory only; after a
      crash the file holds what its last ``fsync`` made durable plus any prefix of the
      changes since, the last of them possibly torn at any byte or left as zeros;
    * creating a file (``write`` or ``append`` to a new name) and ``rename`` change the
      directory, which is durable only after ``fsync_dir``: a file's fsync does not make
      its name durable.
    """

    def exists(self, name: str) -> bool:
        """Whether the file ``name`` exists now."""

    def read(self, name: str) -> bytes:
        """The file's whole current content; FileNotFoundError if it does not exist."""

    def write(self, name: str, data: bytes) -> None:
        """Create the file, or replace its content, with ``data``."""

    def append(self, name: str, data: bytes) -> None:
        """Add ``data`` at the end of the file (created if missing)."""

    def truncate(self, name: str, size: int) -> None:
        """Cut the file to its first ``size`` bytes."""

    def fsync(self, name: str) -> None:
        """Return once the file's content, as it was when fsync was called, is durable."""

    def rename(self, src: str, dst: str) -> None:
        """Atomically replace ``dst`` with ``src`` (the old or the new file, never a mix)."""

    def fsync_dir(self) -> None:
        """Return once the directory's names (creations, renames) are durable."""


class DiskFS:
    """The FileSystem on a real directory (POSIX): for your own experiments."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def read(self, name: str) -> bytes:
        with open(self._path(name), "rb") as f:
            return f.read()

    def write(self, name: str, data: bytes) -> None:
        with open(self._path(name), "wb") as f:
            f.write(data)

    def append(self, name: str, data: bytes) -> None:
        with open(self._path(name), "ab") as f:
            f.write(data)

    def truncate(self, name: str, size: int) -> None:
        os.truncate(self._path(name), size)

    def fsync(self, name: str) -> None:
        fd = os.open(self._path(name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        os.replace(self._path(src), self._path(dst))

    def fsync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def encode_record(payload: bytes) -> bytes:
    """Frame ``payload`` as one log record: length, CRC-32 of the payload, payload."""
    if not payload:
        raise ValueError("a record's payload is never empty")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(log: bytes) -> tuple[list[bytes], int]:
    """The payloads of the log's leading valid records, and the offset where they end.

    Reading stops at the first record that is torn (its header or payload runs past the
    end), has length 0 (a zero-filled tail), or whose CRC does not match: nothing after it
    can be trusted, even if it looks valid.
    """
    payloads: list[bytes] = []
    end = 0
    while end + HEADER.size <= len(log):
        length, crc = HEADER.unpack_from(log, end)
        start = end + HEADER.size
        if length == 0 or start + length > len(log):
            break
        payload = log[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        payloads.append(payload)
        end = start + length
    return payloads, end


def encode_changes(changes: Changes) -> bytes:
    """The payload of a commit: its changes as compact JSON, keys sorted, UTF-8."""
    return json.dumps(changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _apply(state: dict[str, str], changes: Changes) -> None:
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


class WalStore:
    """A durable map of str to str. Create it with ``WalStore.open(fs)``."""

    def __init__(self, fs: FileSystem, state: dict[str, str]) -> None:
        self._fs = fs
        self._state = state
        self._cond = threading.Condition()
        self._appended = 0  # sequence number of the last record appended to the log
        self._durable = 0  # sequence number of the last record an fsync has covered
        self._flushing = False  # a leader is running the log's fsync right now
        self._waiting: list[tuple[int, Changes]] = []  # appended, not yet durable

    @classmethod
    def open(cls, fs: FileSystem) -> WalStore:
        """Recover: the last checkpoint, then the log's valid records replayed over it."""
        state: dict[str, str] = json.loads(fs.read(DATA)) if fs.exists(DATA) else {}
        if fs.exists(LOG):
            log = fs.read(LOG)
            payloads, end = decode_records(log)
            for payload in payloads:
                _apply(state, json.loads(payload))
            if end < len(log):
                # Cut the torn tail: a record appended after it would never be read back.
                fs.truncate(LOG, end)
                fs.fsync(LOG)
        else:
            # A new file's name is durable only once its directory is fsynced.
            fs.write(LOG, b"")
            fs.fsync(LOG)
            fs.fsync_dir()
        return cls(fs, state)

    def get(self, key: str) -> str | None:
        """The committed value of ``key``, or None."""
        with self._cond:
            return self._state.get(key)

    def snapshot(self) -> dict[str, str]:
        """A copy of every committed key and value."""
        with self._cond:
            return dict(self._state)

    def commit(self, changes: Changes) -> None:
        """Apply ``changes`` (key -> value, None deletes) atomically and durably."""
        if not changes:
            return
        record = encode_record(encode_changes(changes))
        with self._cond:
            self._fs.append(LOG, record)
            self._appended += 1
            mine = self._appended
            self._waiting.append((mine, dict(changes)))
            while self._durable < mine:
                if self._flushing:
                    self._cond.wait()
                    continue
                self._flush()

    def _flush(self) -> None:
        """As leader, fsync the log with the lock released; called and returns holding it."""
        self._flushing = True
        target = self._appended  # every record appended so far is in the file now
        self._cond.release()
        try:
            self._fs.fsync(LOG)
        finally:
            self._cond.acquire()
            self._flushing = False
            self._cond.notify_all()
        self._mark_durable(target)

    def _mark_durable(self, upto: int) -> None:
        """Records up to ``upto`` are durable: make their changes visible, in log order."""
        self._durable = upto
        while self._waiting and self._waiting[0][0] <= upto:
            _apply(self._state, self._waiting.pop(0)[1])
        self._cond.notify_all()

    def checkpoint(self) -> None:
        """Write the whole map to the data file atomically, then empty the log."""
        with self._cond:
            while self._flushing:
                self._cond.wait()
            if self._durable < self._appended:
                self._fs.fsync(LOG)
                self._mark_durable(self._appended)
            data = json.dumps(self._state, sort_keys=True, ensure_ascii=False).encode()
            self._fs.write(TEMP, data)
            self._fs.fsync(TEMP)
            self._fs.rename(TEMP, DATA)
            self._fs.fsync_dir()
            # Only now may the log go: the data file holds everything it said.
            self._fs.truncate(LOG, 0)
            self._fs.fsync(LOG)
