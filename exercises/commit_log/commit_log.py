"""A Kafka-style commit log on a "disk" of named files (read README.md first).

The on-disk formats are fixed (the specs parse your files and tear your segments); the code
is yours. All integers are big-endian.

* record:  offset (u64) | size (u32) | crc (u32) | body, where ``size = len(body)`` and
           ``crc = crc32c(body)``. body = timestamp in ms (i64) | key length (i32, -1 for no
           key) | key | value length (u32) | value.
* ``<path>/<base offset, 20 digits>.log``: the records of one segment, back to back.
* ``<path>/<base offset, 20 digits>.index``: the segment's sparse offset index, 8-byte entries
           relative offset (u32, record offset - base offset) | position (u32, byte offset of
           the record in the .log).
* ``<path>/consumer_offsets``: the committed offsets, one ASCII line per group,
           ``<group> <offset>\\n``, sorted by group; rewritten whole at every commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CommitLog",
    "Consumer",
    "Disk",
    "MemoryDisk",
    "OffsetOutOfRange",
    "Record",
    "Topic",
    "crc32c",
    "murmur2",
    "partition_for",
]


def crc32c(data: bytes, crc: int = 0) -> int:
    """The CRC-32C (Castagnoli) of ``data``; pass a previous result as ``crc`` to continue it.

    ``crc32c(b, crc32c(a)) == crc32c(a + b)``, as with ``zlib.crc32``.

    TODO: the reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
    TODO: table-driven: a 256-entry table built once, one lookup per byte.
    TODO: RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA, 32 bytes of 0xFF -> 0x62A8AB43.
    """
    raise NotImplementedError


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data``: a signed 32-bit int, exactly as Java returns it.

    TODO: seed 0x9747b28c, m = 0x5bd1e995, r = 24; 4-byte blocks read little-endian; the tail
    of 1 to 3 bytes; the final mix. Keep every step to 32 bits (Python ints never overflow).
    TODO: murmur2(b"foo") == 597841616.
    """
    raise NotImplementedError


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``.

    TODO: toPositive(murmur2(key)) % partitions, where toPositive(n) = n & 0x7fffffff.
    TODO: ValueError if partitions < 1.
    """
    raise NotImplementedError


class Disk(Protocol):
    """Named files of bytes: the log's only way to persistent storage.

    The specs pass their own Disk, which counts every read and can tear your files.
    """

    def read(self, name: str, offset: int, size: int) -> bytes: ...
    def write(self, name: str, data: bytes) -> None: ...  # create or replace the whole file
    def append(self, name: str, data: bytes) -> None: ...  # creates the file if absent
    def truncate(self, name: str, size: int) -> None: ...  # keep the first `size` bytes
    def size(self, name: str) -> int: ...  # FileNotFoundError if absent
    def delete(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class MemoryDisk:
    """An in-memory Disk. Given: it is not the exercise."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, name: str, offset: int, size: int) -> bytes:
        return self.files[name][offset : offset + size]

    def write(self, name: str, data: bytes) -> None:
        self.files[name] = bytes(data)

    def append(self, name: str, data: bytes) -> None:
        self.files[name] = self.files.get(name, b"") + bytes(data)

    def truncate(self, name: str, size: int) -> None:
        self.files[name] = self.files[name][:size]

    def size(self, name: str) -> int:
        if name not in self.files:
            raise FileNotFoundError(name)
        return len(self.files[name])

    def delete(self, name: str) -> None:
        del self.files[name]

    def names(self) -> list[str]:
        return sorted(self.files)


class OffsetOutOfRange(LookupError):
    """A read asked for an offset the log does not hold."""


@dataclass(frozen=True)
class Record:
    """One record as a read returns it."""

    offset: int
    timestamp: int  # milliseconds: int(clock() * 1000) when it was appended
    key: bytes | None
    value: bytes


class CommitLog:
    """One partition: an append-only sequence of records, numbered from 0, in segments.

    Files live under ``path`` on ``disk`` (``<path>/00000000000000000000.log`` ...).
    """

    def __init__(
        self,
        disk: Disk,
        path: str = "log-0",
        *,
        segment_bytes: int = 1 << 20,
        index_interval_bytes: int = 4096,
        retention_bytes: int | None = None,
        retention_ms: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open the log stored under ``path`` (nothing there: a new log, one empty segment at 0).

        TODO: ValueError unless segment_bytes >= 1, index_interval_bytes >= 0, and
        retention_bytes, retention_ms are None or >= 0.
        TODO: find the segments (``<path>/<20-digit base>.log``); the last one is active.
        Older segments were complete when the log rolled past them: trust them, read none of
        their records here (their sizes and index lengths come from disk.size).
        TODO: recover the active segment: keep its records up to the first one that is torn
        (short header, short body), corrupt (CRC-32C mismatch) or out of sequence (offset !=
        the previous + 1, the first == base); truncate the .log there; rebuild its .index.
        TODO: load the committed offsets.
        """
        raise NotImplementedError

    @property
    def log_start_offset(self) -> int:
        """The first offset the log still holds: the oldest segment's base offset."""
        raise NotImplementedError

    @property
    def next_offset(self) -> int:
        """The offset the next append gets (Kafka's log end offset)."""
        raise NotImplementedError

    def append(self, key: bytes | None, value: bytes) -> int:
        """Append one record, stamped ``int(clock() * 1000)``; return its offset.

        TODO: roll first (a new segment whose base is this record's offset) if the active
        segment is not empty and this record would take it past segment_bytes.
        TODO: write an index entry for this record (its relative offset, its position) when
        MORE than index_interval_bytes were appended to the segment since the last entry
        (or since the segment began); then count this record's bytes.
        """
        raise NotImplementedError

    def read(self, offset: int, max_bytes: int) -> list[Record]:
        """Records from ``offset`` on, in order, from ONE segment (the one holding ``offset``).

        TODO: ValueError if max_bytes < 1; OffsetOutOfRange unless
        log_start_offset <= offset <= next_offset; [] at next_offset.
        TODO: stop before the record that would take the total on-disk size past max_bytes,
        but always return the first record, however large (a consumer must make progress).
        TODO: find the segment by base offset (bisect), the position with a binary search of
        its .index, then walk the .log from there: never from the segment's start.
        """
        raise NotImplementedError

    def size(self) -> int:
        """Bytes in all the log's .log files."""
        raise NotImplementedError

    def enforce_retention(self) -> list[int]:
        """Delete whole old segments past the retention limits; return their base offsets.

        TODO: never the active segment; oldest first; stop at the first segment that stays.
        TODO: retention_bytes: delete the oldest while the log would still hold at least
        retention_bytes without it (Kafka: size - retention_bytes - segment size >= 0).
        TODO: retention_ms: then delete the oldest while now_ms - its largest record
        timestamp > retention_ms (now_ms = int(clock() * 1000)).
        """
        raise NotImplementedError

    def commit(self, group: str, offset: int) -> None:
        """Record ``offset`` as the next offset ``group`` will consume, durably.

        TODO: ValueError unless group matches [A-Za-z0-9._-]+ and 0 <= offset <= next_offset.
        TODO: rewrite ``<path>/consumer_offsets`` whole: ``<group> <offset>\\n`` sorted by group.
        """
        raise NotImplementedError

    def committed(self, group: str) -> int | None:
        """The offset ``group`` committed last (also after a reopen), or None."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the log. Every append is already on the disk."""
        raise NotImplementedError


class Consumer:
    """A member of consumer group ``group`` reading ``log``.

    ``position`` is the next offset it will read: the group's committed offset, or the log
    start if the group never committed.
    """

    def __init__(self, log: CommitLog, group: str) -> None:
        raise NotImplementedError

    def poll(self, max_bytes: int = 1 << 20) -> list[Record]:
        """``log.read(position, max_bytes)``; advance ``position`` past what it returns.

        TODO: a position below log_start_offset (retention deleted it) moves up to it first.
        """
        raise NotImplementedError

    def commit(self) -> None:
        """Commit ``position`` for the group."""
        raise NotImplementedError

    def process(
        self,
        handler: Callable[[Record], None],
        *,
        max_bytes: int = 1 << 20,
        at_most_once: bool = False,
    ) -> int:
        """Poll one batch, hand each record to ``handler``, commit; return how many were polled.

        TODO: at least once (the default): handle every record, THEN commit.
        TODO: at most once: commit, THEN handle. (If ``handler`` raises, let it propagate.)
        """
        raise NotImplementedError


class Topic:
    """``partitions`` logs on one disk, at paths ``<name>-0`` .. ``<name>-<partitions - 1>``.

    ``options`` go to every ``CommitLog``. ``topic.partitions[p]`` is partition p's log.
    """

    partitions: list[CommitLog]

    def __init__(self, disk: Disk, name: str, partitions: int, **options: object) -> None:
        """TODO: ValueError if partitions < 1."""
        raise NotImplementedError

    def produce(self, key: bytes | None, value: bytes) -> tuple[int, int]:
        """Append to the partition the key picks (``partition_for``); return (partition, offset).

        TODO: a record without a key goes to the partitions in turn: 0, 1, ..., 0, 1, ...
        """
        raise NotImplementedError
