"""Spec helpers for commit_log: a counting disk, independent readers of the formats the lesson
fixes, and independent oracles (a bitwise CRC-32C, Kafka's murmur2 transcribed from Java).

Nothing here imports the learner's code except to open a log: a spec checks the bytes on the
disk and the numbers against these, never against the learner's idea of them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from commit_log import CommitLog

from grader import spectools
from grader.spectools import step

HEADER = struct.Struct(">QII")
INDEX_ENTRY = struct.Struct(">II")


class CountingDisk(spectools.CountingDisk):
    """Named files in memory (the shared counting disk of grader.spectools), with segments."""

    def segments(self, path: str = "log-0") -> list[int]:
        """The base offsets of the .log files under ``path``."""
        prefix = f"{path}/"
        return sorted(
            int(n[len(prefix) : -4])
            for n in self.files
            if n.startswith(prefix) and n.endswith(".log")
        )


def open_log(disk: CountingDisk, path: str = "log-0", **options) -> CommitLog:
    shown = "".join(f", {k}={v!r}" for k, v in options.items() if k != "clock")
    with step(f"CommitLog(disk, {path!r}{shown})"):
        return CommitLog(disk, path, **options)


def seg_name(base: int, suffix: str, path: str = "log-0") -> str:
    return f"{path}/{base:020d}{suffix}"


# -- oracles -----------------------------------------------------------------------------------


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C one bit at a time (no table): the definition, slow and independent."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _int(x: int) -> int:
    """Java int arithmetic: wrap to a signed 32-bit value."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _ushr(x: int, n: int) -> int:
    """Java's >>> on an int."""
    return _int((x & 0xFFFFFFFF) >> n)


def murmur2_java(data: bytes) -> int:
    """A line-by-line transcription of Kafka's ``Utils.murmur2`` (apache/kafka,
    clients/src/main/java/org/apache/kafka/common/utils/Utils.java), Java ints emulated."""
    length = len(data)
    seed = _int(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = _int(seed ^ length)
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = _int(
            (data[i4 + 0] & 0xFF)
            + ((data[i4 + 1] & 0xFF) << 8)
            + ((data[i4 + 2] & 0xFF) << 16)
            + ((data[i4 + 3] & 0xFF) << 24)
        )
        k = _int(k * m)
        k = _int(k ^ _ushr(k, r))
        k = _int(k * m)
        h = _int(h * m)
        h = _int(h ^ k)
    rest = length % 4
    if rest == 3:
        h = _int(h ^ ((data[(length & ~3) + 2] & 0xFF) << 16))
    if rest >= 2:
        h = _int(h ^ ((data[(length & ~3) + 1] & 0xFF) << 8))
    if rest >= 1:
        h = _int(h ^ (data[length & ~3] & 0xFF))
        h = _int(h * m)
    h = _int(h ^ _ushr(h, 13))
    h = _int(h * m)
    h = _int(h ^ _ushr(h, 15))
    return h


def partition_java(key: bytes, partitions: int) -> int:
    """BuiltInPartitioner.partitionForKey: Utils.toPositive(Utils.murmur2(key)) % partitions."""
    return (murmur2_java(key) & 0x7FFFFFFF) % partitions


# -- the formats -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    offset: int
    position: int
    size: int  # on disk, header included
    timestamp: int
    key: bytes | None
    value: bytes


def record_size(key: bytes | None, value: bytes) -> int:
    """Bytes of a record on disk: 16 of header, 16 of body fields, the key and the value."""
    return 32 + len(key or b"") + len(value)


def parse_segment(data: bytes, where: str) -> list[Rec]:
    """Every record of a .log file by the lesson's format; fails on anything else."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 16 > len(data):
            raise AssertionError(f"{where}: a record header is cut at byte {pos}")
        offset, size, crc = HEADER.unpack_from(data, pos)
        body = data[pos + 16 : pos + 16 + size]
        if len(body) != size:
            raise AssertionError(f"{where}: the record at byte {pos} is cut")
        if crc32c_bitwise(body) != crc:
            raise AssertionError(
                f"{where}: the record at byte {pos} has crc {crc:#010x}; "
                f"the CRC-32C of its body is {crc32c_bitwise(body):#010x}"
            )
        if size < 16:
            raise AssertionError(f"{where}: the record at byte {pos} has a {size}-byte body")
        timestamp, key_length = struct.unpack_from(">qi", body)
        key = None if key_length == -1 else body[12 : 12 + key_length]
        at = 12 + max(key_length, 0)
        (value_length,) = struct.unpack_from(">I", body, at)
        value = body[at + 4 : at + 4 + value_length]
        if at + 4 + value_length != size:
            raise AssertionError(
                f"{where}: the record at byte {pos}: key and value do not fill its body"
            )
        out.append(Rec(offset, pos, 16 + size, timestamp, key, value))
        pos += 16 + size
    return out


def parse_index(data: bytes, where: str) -> list[tuple[int, int]]:
    if len(data) % 8:
        raise AssertionError(f"{where}: {len(data)} bytes, not a whole number of 8-byte entries")
    return [INDEX_ENTRY.unpack_from(data, i) for i in range(0, len(data), 8)]


def expected_index(sizes: list[int], interval: int) -> list[tuple[int, int]]:
    """Kafka's rule (LogSegment.append): an entry for a record once more than ``interval``
    bytes were appended since the last entry (or the segment's start)."""
    entries, since, pos = [], 0, 0
    for i, size in enumerate(sizes):
        if since > interval:
            entries.append((i, pos))
            since = 0
        since += size
        pos += size
    return entries


def expected_segments(sizes: list[int], segment_bytes: int, first: int = 0) -> list[list[int]]:
    """The offsets of each segment: roll before a record that would take a non-empty active
    segment past ``segment_bytes``."""
    segments: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if used > 0 and used + size > segment_bytes:
            segments.append([])
            used = 0
        segments[-1].append(first + i)
        used += size
    return segments
