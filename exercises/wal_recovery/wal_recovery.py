"""A durable key-value store: a write-ahead log with CRC-framed records, group commit,
atomic checkpoints, and recovery that stops at the first torn or corrupt record.

Read README.md first. The contract, which the specs check byte for byte:

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
    """Frame ``payload`` as one log record: length, CRC-32 of the payload, payload.

    TODO: raise ValueError for an empty payload (length 0 marks a zero-filled tail).
    TODO: HEADER.pack(len(payload), zlib.crc32(payload)) + payload.
    """
    raise NotImplementedError


def decode_records(log: bytes) -> tuple[list[bytes], int]:
    """The payloads of the log's leading valid records, and the offset where they end.

    TODO: read headers from offset 0; stop at the first record that is torn (the header or
    the payload runs past the end of ``log``), has length 0, or whose CRC-32 does not match.
    Never skip a bad record to read on: nothing after it can be trusted.
    """
    raise NotImplementedError


def encode_changes(changes: Changes) -> bytes:
    """The payload of a commit: its changes as compact JSON, keys sorted, UTF-8.

    TODO: json.dumps(changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
    """
    raise NotImplementedError


class WalStore:
    """A durable map of str to str. Create it with ``WalStore.open(fs)``."""

    def __init__(self, fs: FileSystem, state: dict[str, str]) -> None:
        self._fs = fs
        self._state = state
        # TODO: a threading.Condition, and counters for group commit (records appended,
        # records an fsync has covered, whether a leader's fsync is running).

    @classmethod
    def open(cls, fs: FileSystem) -> WalStore:
        """Recover: the last checkpoint, then the log's valid records replayed over it.

        TODO: the data file DATA (a JSON object) if it exists, else {}.
        TODO: replay decode_records(log) over it; if the log has bytes after the last valid
        record, truncate it there and fsync it (or new records land after garbage).
        TODO: no log yet: create it empty, fsync it, and fsync the directory.
        """
        raise NotImplementedError

    def get(self, key: str) -> str | None:
        """The committed value of ``key``, or None."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, str]:
        """A copy of every committed key and value."""
        raise NotImplementedError

    def commit(self, changes: Changes) -> None:
        """Apply ``changes`` (key -> value, None deletes) atomically and durably.

        Returns only once the commit's record is durable; may be called from many threads.
        TODO: an empty dict is a no-op. Otherwise append encode_record(encode_changes(...))
        to LOG right away (one append per commit), then wait for an fsync of LOG that
        *started after* that append. One thread at a time runs the fsync, with the lock
        released, so other commits append meanwhile and share the next fsync.
        TODO: the changes become visible to get()/snapshot() only once durable, in log order.
        """
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Write the whole map to the data file atomically, then empty the log.

        TODO: write TEMP, fsync TEMP, rename TEMP over DATA, fsync the directory, and only
        then truncate LOG to 0 and fsync it. Every record appended must be durable first.
        """
        raise NotImplementedError
