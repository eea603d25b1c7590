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

import bisect
import re
import struct
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

HEADER = struct.Struct(">QII")  # offset, body size, CRC-32C of the body
INDEX_ENTRY = struct.Struct(">II")  # relative offset, position in the .log
OFFSETS_FILE = "consumer_offsets"
_GROUP = re.compile(r"[A-Za-z0-9._-]+")


# -- CRC-32C (Castagnoli) ----------------------------------------------------------------------
#
# The reflected form of the polynomial 0x1EDC6F41: bits go in least significant first, so the
# register shifts right and the table is indexed by its low byte. Initial value and final XOR
# are both 0xFFFFFFFF, as in RFC 3720 B.4 (and zlib's CRC-32, with another polynomial).


def _crc_table(poly: int = 0x82F63B78) -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """The CRC-32C of ``data``; pass a previous result as ``crc`` to continue it."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -- Kafka's default partitioner ---------------------------------------------------------------

_M32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: MurmurHash2 with seed 0x9747b28c, as a signed 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & _M32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")  # Java reads the 4 bytes little-end first
        k = (k * m) & _M32
        k ^= k >> r
        k = (k * m) & _M32
        h = (h * m) & _M32
        h ^= k
    tail = data[whole:]
    if tail:  # Java's switch falls through: 3 bytes, then 2, then 1, then one multiply
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h  # Java's int is signed


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's producer picks for a key: toPositive(murmur2(key)) % partitions."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    # toPositive masks the sign bit; abs() would differ for every negative hash.
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# -- storage -----------------------------------------------------------------------------------


class Disk(Protocol):
    """Named files of bytes: the log's only way to persistent storage."""

    def read(self, name: str, offset: int, size: int) -> bytes: ...
    def write(self, name: str, data: bytes) -> None: ...
    def append(self, name: str, data: bytes) -> None: ...
    def truncate(self, name: str, size: int) -> None: ...
    def size(self, name: str) -> int: ...
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
    offset: int
    timestamp: int  # milliseconds
    key: bytes | None
    value: bytes


def encode_record(offset: int, timestamp: int, key: bytes | None, value: bytes) -> bytes:
    key_length = -1 if key is None else len(key)
    body = b"".join(
        [
            struct.pack(">qi", timestamp, key_length),
            key or b"",
            struct.pack(">I", len(value)),
            value,
        ]
    )
    return HEADER.pack(offset, len(body), crc32c(body)) + body


def decode_body(offset: int, body: bytes) -> Record:
    timestamp, key_length = struct.unpack_from(">qi", body)
    pos = 12
    key = None
    if key_length >= 0:
        key = body[pos : pos + key_length]
        pos += key_length
    (value_length,) = struct.unpack_from(">I", body, pos)
    return Record(offset, timestamp, key, body[pos + 4 : pos + 4 + value_length])


@dataclass
class Segment:
    """What the log keeps in memory about one segment (never its records)."""

    base: int
    log: str
    index: str
    size: int  # bytes in the .log
    next_offset: int  # one past its last record
    entries: int  # entries in the .index
    since_index: int = 0  # bytes appended since the last index entry (the active segment's)
    largest_timestamp: int | None = None  # None: not known until the segment is scanned


def _later(largest: int | None, timestamp: int) -> int:
    return timestamp if largest is None else max(largest, timestamp)


class CommitLog:
    """One partition: an append-only sequence of records, numbered from 0, in segments."""

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
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be >= 1, got {segment_bytes}")
        if index_interval_bytes < 0:
            raise ValueError(f"index_interval_bytes must be >= 0, got {index_interval_bytes}")
        if retention_bytes is not None and retention_bytes < 0:
            raise ValueError(f"retention_bytes must be >= 0 or None, got {retention_bytes}")
        if retention_ms is not None and retention_ms < 0:
            raise ValueError(f"retention_ms must be >= 0 or None, got {retention_ms}")
        self.disk = disk
        self.path = path
        self.segment_bytes = segment_bytes
        self.index_interval_bytes = index_interval_bytes
        self.retention_bytes = retention_bytes
        self.retention_ms = retention_ms
        self.clock = clock
        self._segments: list[Segment] = []
        self._bases: list[int] = []  # the segments' base offsets, for bisect
        self._open()
        self._offsets = self._load_offsets()

    # -- opening and recovery --

    def _name(self, base: int, suffix: str) -> str:
        return f"{self.path}/{base:020d}{suffix}"

    def _open(self) -> None:
        prefix = f"{self.path}/"
        bases = sorted(
            int(name[len(prefix) : -len(".log")])
            for name in self.disk.names()
            if name.startswith(prefix) and name.endswith(".log")
        )
        if not bases:
            self._roll(0)
            return
        for base, following in zip(bases, bases[1:], strict=False):
            # Segments before the active one were complete when the log rolled past them.
            log, index = self._name(base, ".log"), self._name(base, ".index")
            entries = self.disk.size(index) // INDEX_ENTRY.size
            segment = Segment(base, log, index, self.disk.size(log), following, entries)
            self._add(segment)
        self._add(self._recover(bases[-1]))

    def _recover(self, base: int) -> Segment:
        """Scan the active segment, cut it after its last valid record, rebuild its index.

        A crash may have torn the last append (a short header, a short body) or left garbage
        (a CRC that does not match, an offset out of sequence). Everything from the first bad
        byte on is cut: a record after a bad one cannot be trusted to be where it seems.
        """
        log, index = self._name(base, ".log"), self._name(base, ".index")
        data = self.disk.read(log, 0, self.disk.size(log))
        segment = Segment(base, log, index, 0, base, 0)
        entries = []
        pos = 0
        while pos + HEADER.size <= len(data):
            offset, size, crc = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + size
            body = data[pos + HEADER.size : end]
            if offset != segment.next_offset or end > len(data) or crc32c(body) != crc:
                break
            if segment.since_index > self.index_interval_bytes:
                entries.append(INDEX_ENTRY.pack(offset - base, pos))
                segment.since_index = 0
            segment.since_index += end - pos
            timestamp = decode_body(offset, body).timestamp
            segment.largest_timestamp = _later(segment.largest_timestamp, timestamp)
            segment.next_offset += 1
            pos = end
        if pos < len(data):
            self.disk.truncate(log, pos)  # never serve, or write after, a partial record
        self.disk.write(index, b"".join(entries))
        segment.size = pos
        segment.entries = len(entries)
        return segment

    def _add(self, segment: Segment) -> None:
        self._segments.append(segment)
        self._bases.append(segment.base)

    def _roll(self, base: int) -> None:
        segment = Segment(base, self._name(base, ".log"), self._name(base, ".index"), 0, base, 0)
        self.disk.write(segment.log, b"")
        self.disk.write(segment.index, b"")
        self._add(segment)

    # -- the log --

    @property
    def log_start_offset(self) -> int:
        """The first offset the log still holds (retention moves it forward)."""
        return self._segments[0].base

    @property
    def next_offset(self) -> int:
        """The offset the next append gets (the log end offset)."""
        return self._segments[-1].next_offset

    def append(self, key: bytes | None, value: bytes) -> int:
        """Append one record stamped with the clock; return its offset."""
        active = self._segments[-1]
        offset = active.next_offset
        timestamp = int(self.clock() * 1000)
        record = encode_record(offset, timestamp, key, value)
        if active.size > 0 and active.size + len(record) > self.segment_bytes:
            self._roll(offset)
            active = self._segments[-1]
        self.disk.append(active.log, record)
        if active.since_index > self.index_interval_bytes:
            # Kafka's rule (LogSegment.append): an entry once MORE than index.interval.bytes
            # were appended since the last one, for the record about to be appended.
            self.disk.append(active.index, INDEX_ENTRY.pack(offset - active.base, active.size))
            active.entries += 1
            active.since_index = 0
        active.since_index += len(record)
        active.size += len(record)
        active.next_offset += 1
        active.largest_timestamp = _later(active.largest_timestamp, timestamp)
        return offset

    def read(self, offset: int, max_bytes: int) -> list[Record]:
        """Records from ``offset`` on, from one segment, about ``max_bytes`` on disk at most."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        if not self.log_start_offset <= offset <= self.next_offset:
            raise OffsetOutOfRange(
                f"offset {offset} is outside [{self.log_start_offset}, {self.next_offset}]"
            )
        segment = self._segments[bisect.bisect_right(self._bases, offset) - 1]
        pos = self._lookup(segment, offset)
        records: list[Record] = []
        used = 0
        while pos < segment.size:
            record_offset, size, _ = HEADER.unpack(self.disk.read(segment.log, pos, HEADER.size))
            total = HEADER.size + size
            if record_offset >= offset:
                if records and used + total > max_bytes:
                    break  # the first record always goes out, however large: progress
                body = self.disk.read(segment.log, pos + HEADER.size, size)
                records.append(decode_body(record_offset, body))
                used += total
            pos += total
        return records

    def _lookup(self, segment: Segment, offset: int) -> int:
        """The position of the last index entry at or before ``offset`` (0 if none).

        A binary search over the .index file: about log2(entries) 8-byte reads.
        """
        target = offset - segment.base
        lo, hi, position = 0, segment.entries, 0
        while lo < hi:
            mid = (lo + hi) // 2
            entry = self.disk.read(segment.index, mid * INDEX_ENTRY.size, INDEX_ENTRY.size)
            relative, pos = INDEX_ENTRY.unpack(entry)
            if relative <= target:
                position, lo = pos, mid + 1
            else:
                hi = mid
        return position

    # -- retention --

    def size(self) -> int:
        """Bytes in every .log file of the log."""
        return sum(segment.size for segment in self._segments)

    def enforce_retention(self) -> list[int]:
        """Delete whole old segments past retention_bytes or retention_ms; return their bases.

        The active segment is never deleted. Oldest first, stopping at the first segment that
        may stay (UnifiedLog.deleteOldSegments).
        """
        deleted = []
        if self.retention_bytes is not None:
            excess = self.size() - self.retention_bytes
            while len(self._segments) > 1 and excess - self._segments[0].size >= 0:
                excess -= self._segments[0].size
                deleted.append(self._delete_oldest())
        if self.retention_ms is not None:
            now = int(self.clock() * 1000)
            while len(self._segments) > 1:
                if now - self._largest_timestamp(self._segments[0]) <= self.retention_ms:
                    break
                deleted.append(self._delete_oldest())
        return deleted

    def _largest_timestamp(self, segment: Segment) -> int:
        if segment.largest_timestamp is None:  # a segment from before the log was opened
            data = self.disk.read(segment.log, 0, segment.size)
            largest, pos = -1, 0
            while pos < len(data):
                offset, size, _ = HEADER.unpack_from(data, pos)
                body = data[pos + HEADER.size : pos + HEADER.size + size]
                largest = max(largest, decode_body(offset, body).timestamp)
                pos += HEADER.size + size
            segment.largest_timestamp = largest
        return segment.largest_timestamp

    def _delete_oldest(self) -> int:
        segment = self._segments.pop(0)
        self._bases.pop(0)
        # Forget it first, then delete the files: no read can find a segment half gone.
        self.disk.delete(segment.log)
        self.disk.delete(segment.index)
        return segment.base

    # -- consumer offsets --

    def _load_offsets(self) -> dict[str, int]:
        name = f"{self.path}/{OFFSETS_FILE}"
        if name not in self.disk.names():
            return {}
        text = self.disk.read(name, 0, self.disk.size(name)).decode()
        return {
            group: int(offset) for group, offset in (line.split() for line in text.splitlines())
        }

    def commit(self, group: str, offset: int) -> None:
        """Record ``offset`` as the next offset ``group`` will consume, durably."""
        if not _GROUP.fullmatch(group):
            raise ValueError(f"a group name is [A-Za-z0-9._-]+, got {group!r}")
        if not 0 <= offset <= self.next_offset:
            raise ValueError(f"offset {offset} is outside [0, {self.next_offset}]")
        self._offsets[group] = offset
        text = "".join(f"{g} {o}\n" for g, o in sorted(self._offsets.items()))
        self.disk.write(f"{self.path}/{OFFSETS_FILE}", text.encode())

    def committed(self, group: str) -> int | None:
        """The offset ``group`` committed last, or None if it never committed."""
        return self._offsets.get(group)

    def close(self) -> None:
        """Release the log. Every append is already on the disk."""
        self._segments = []
        self._bases = []


class Consumer:
    """A member of a consumer group reading one log from the group's committed offset."""

    def __init__(self, log: CommitLog, group: str) -> None:
        self.log = log
        self.group = group
        committed = log.committed(group)
        self.position = log.log_start_offset if committed is None else committed

    def poll(self, max_bytes: int = 1 << 20) -> list[Record]:
        """The next records after ``position``; advances ``position`` past them."""
        # The records before log_start_offset are gone (retention): start at the oldest kept,
        # as Kafka's consumer does with auto.offset.reset=earliest.
        self.position = max(self.position, self.log.log_start_offset)
        records = self.log.read(self.position, max_bytes)
        if records:
            self.position = records[-1].offset + 1
        return records

    def commit(self) -> None:
        """Commit ``position``: the group will resume there."""
        self.log.commit(self.group, self.position)

    def process(
        self,
        handler: Callable[[Record], None],
        *,
        max_bytes: int = 1 << 20,
        at_most_once: bool = False,
    ) -> int:
        """Poll one batch and hand each record to ``handler``; return how many were polled.

        At least once (the default): handle, then commit. A crash in between redelivers the
        batch. At most once: commit, then handle. A crash in between loses the rest of it.
        """
        records = self.poll(max_bytes)
        if at_most_once:
            self.commit()
        for record in records:
            handler(record)
        if not at_most_once:
            self.commit()
        return len(records)


class Topic:
    """``partitions`` logs, ``<name>-0`` .. ``<name>-<partitions - 1>``; keys choose the log."""

    def __init__(self, disk: Disk, name: str, partitions: int, **options: object) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.partitions = [
            CommitLog(disk, f"{name}-{p}", **options)  # type: ignore[arg-type]
            for p in range(partitions)
        ]
        self._round_robin = 0

    def produce(self, key: bytes | None, value: bytes) -> tuple[int, int]:
        """Append to the key's partition; return (partition, offset).

        A record without a key goes to the partitions in turn, starting at 0.
        """
        if key is None:
            partition = self._round_robin % len(self.partitions)
            self._round_robin += 1
        else:
            partition = partition_for(key, len(self.partitions))
        return partition, self.partitions[partition].append(key, value)
