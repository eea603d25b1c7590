"""Spec helpers for lsm_tree: a counting disk, and readers of the formats the lesson fixes.

The readers here parse the learner's files on their own (struct and zlib only), so a spec
checks the bytes on the disk, never the learner's idea of them.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

from lsm_tree import LSMTree

from grader import spectools
from grader.spectools import short, step

MAGIC = 0x4C534D5441424C45
FOOTER = struct.Struct(">QQQQQ")


class CountingDisk(spectools.CountingDisk):
    """The "disk": the shared counting disk (grader.spectools), with .sst files immutable."""

    def __init__(self) -> None:
        super().__init__(immutable=".sst")

    def table_reads(self, since: int) -> list[tuple[str, int, int]]:
        return self.reads_since(since, ".sst")

    def table_bytes_written(self) -> int:
        return self.bytes_written(".sst")

    def tables(self) -> list[str]:
        return [n for n in sorted(self.files) if n.endswith(".sst")]


def open_tree(disk: CountingDisk, **options) -> LSMTree:
    with step(f"LSMTree(disk, {', '.join(f'{k}={v}' for k, v in options.items())})"):
        return LSMTree(disk, **options)


def key(i: int) -> bytes:
    return b"k%05d" % i


def value(i: int, tag: str = "v") -> bytes:
    return b"%s%d" % (tag.encode(), i)


# -- the formats ------------------------------------------------------------------------------


def decode_entries(data: bytes, where: str) -> list[tuple[bytes, bytes | None]]:
    """Entries back to back: kind (1) | key length (u32) | key | value length (u32) | value."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise AssertionError(f"{where}: an entry header is cut at byte {pos}")
        kind, klen = struct.unpack_from(">BI", data, pos)
        pos += 5
        k = data[pos : pos + klen]
        pos += klen
        if kind not in (0, 1) or pos + 4 > len(data):
            raise AssertionError(f"{where}: bad entry (kind {kind}) before byte {pos}")
        (vlen,) = struct.unpack_from(">I", data, pos)
        pos += 4
        v = data[pos : pos + vlen]
        pos += vlen
        if kind == 1 and vlen:
            raise AssertionError(f"{where}: a tombstone with a {vlen}-byte value")
        out.append((k, None if kind == 1 else v))
    return out


def wal_records(disk: CountingDisk) -> list[tuple[int, int, bytes]]:
    """(offset, record size, payload) of each complete, valid WAL record; fails on anything else."""
    data = disk.files.get("wal", b"")
    out, pos = [], 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise AssertionError(f"wal: {len(data) - pos} stray bytes at offset {pos}")
        crc, length = struct.unpack_from(">II", data, pos)
        payload = data[pos + 8 : pos + 8 + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise AssertionError(f"wal: the record at offset {pos} is torn or its CRC is wrong")
        out.append((pos, 8 + length, payload))
        pos += 8 + length
    return out


@dataclass
class Table:
    name: str
    blocks: list[tuple[int, int, bytes]] = field(default_factory=list)  # offset, size, last key
    entries: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    block_entries: list[list[tuple[bytes, bytes | None]]] = field(default_factory=list)
    m: int = 0
    k: int = 0
    size: int = 0


def parse_table(disk: CountingDisk, name: str) -> Table:
    """Parse an SSTable by the lesson's format, checking its footer, index and blocks."""
    data = disk.files[name]
    table = Table(name, size=len(data))
    if len(data) < FOOTER.size:
        raise AssertionError(f"{name}: {len(data)} bytes, shorter than the 40-byte footer")
    index_off, index_size, bloom_off, bloom_size, magic = FOOTER.unpack(data[-FOOTER.size :])
    if magic != MAGIC:
        raise AssertionError(f"{name}: the footer's magic is {magic:#x}, expected {MAGIC:#x}")
    index = data[index_off : index_off + index_size]
    pos = 0
    while pos < len(index):
        (klen,) = struct.unpack_from(">I", index, pos)
        last = index[pos + 4 : pos + 4 + klen]
        offset, size = struct.unpack_from(">QI", index, pos + 4 + klen)
        pos += 4 + klen + 12
        table.blocks.append((offset, size, last))
        block = decode_entries(data[offset : offset + size], f"{name}, block at {offset}")
        if not block or block[-1][0] != last:
            raise AssertionError(
                f"{name}: the index names {short(last)} as the last key of the block at "
                f"{offset}; the block ends with {short(block[-1][0] if block else None)}"
            )
        table.block_entries.append(block)
        table.entries += block
    bloom = data[bloom_off : bloom_off + bloom_size]
    (table.m,) = struct.unpack_from(">I", bloom, 0)
    table.k = bloom[4]
    if len(bloom) != 5 + (table.m + 7) // 8:
        raise AssertionError(
            f"{name}: a Bloom block of {len(bloom)} bytes for m = {table.m} bits; "
            f"expected 5 + ceil(m / 8) = {5 + (table.m + 7) // 8}"
        )
    return table


def manifest(disk: CountingDisk) -> list[tuple[int, str, int]]:
    """(level, table name, entries) per MANIFEST line."""
    text = disk.files.get("MANIFEST", b"").decode()
    out = []
    for line in text.splitlines():
        level, name, count = line.split()
        out.append((int(level), name, int(count)))
    return out


def bloom_size(n: int, fpr: float) -> tuple[int, int]:
    """The lesson's m and k for n keys at false-positive rate fpr."""
    m = math.ceil(-n * math.log(fpr) / math.log(2) ** 2)
    return m, max(1, round(m / n * math.log(2)))
