"""A log-structured merge tree: memtable + WAL, immutable SSTables, leveled compaction.

Reference solution. Every byte of every file goes through ``disk`` (see ``Disk``): the WAL is
appended to, an SSTable or the MANIFEST is written whole, and an SSTable's data blocks are
read one ``disk.read`` at a time, on demand.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Disk", "LSMTree", "MemoryDisk", "BloomFilter", "encode_entry", "decode_entries"]

PUT, DELETE = 0, 1
WAL = "wal"
MANIFEST = "MANIFEST"
MAGIC = 0x4C534D5441424C45  # b"LSMTABLE"
FOOTER = struct.Struct(">QQQQQ")  # index offset, index size, bloom offset, bloom size, magic
ENTRY_HEAD = struct.Struct(">BI")  # kind, key length
U32 = struct.Struct(">I")
WAL_HEAD = struct.Struct(">II")  # crc32 of the payload, payload length
INDEX_TAIL = struct.Struct(">QI")  # block offset, block size


class Disk(Protocol):
    """Named files of bytes. The tree's only way to persistent storage."""

    def read(self, name: str, offset: int, size: int) -> bytes: ...
    def write(self, name: str, data: bytes) -> None: ...
    def append(self, name: str, data: bytes) -> None: ...
    def size(self, name: str) -> int: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> list[str]: ...


class MemoryDisk:
    """An in-memory Disk (given; the specs use their own, which counts reads and writes)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, name: str, offset: int, size: int) -> bytes:
        return self.files[name][offset : offset + size]

    def write(self, name: str, data: bytes) -> None:
        self.files[name] = bytes(data)

    def append(self, name: str, data: bytes) -> None:
        self.files[name] = self.files.get(name, b"") + bytes(data)

    def size(self, name: str) -> int:
        if name not in self.files:
            raise FileNotFoundError(name)
        return len(self.files[name])

    def delete(self, name: str) -> None:
        del self.files[name]

    def names(self) -> list[str]:
        return sorted(self.files)


# -- entries: the unit of the WAL and of a data block -----------------------------------------


def encode_entry(key: bytes, value: bytes | None) -> bytes:
    """kind (1 byte) | key length (u32) | key | value length (u32) | value; None = tombstone."""
    if value is None:
        return ENTRY_HEAD.pack(DELETE, len(key)) + key + U32.pack(0)
    return ENTRY_HEAD.pack(PUT, len(key)) + key + U32.pack(len(value)) + value


def decode_entries(data: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """Yield the (key, value or None) entries packed back to back in ``data``."""
    pos = 0
    while pos < len(data):
        kind, klen = ENTRY_HEAD.unpack_from(data, pos)
        pos += ENTRY_HEAD.size
        key = data[pos : pos + klen]
        pos += klen
        (vlen,) = U32.unpack_from(data, pos)
        pos += U32.size
        value = data[pos : pos + vlen]
        pos += vlen
        yield key, (None if kind == DELETE else value)


# -- the Bloom filter -------------------------------------------------------------------------


class BloomFilter:
    """m bits, k probes by double hashing of SHA-256 (Kirsch and Mitzenmacher)."""

    def __init__(self, m: int, k: int, bits: bytearray | None = None) -> None:
        self.m, self.k = m, k
        self.bits = bits if bits is not None else bytearray((m + 7) // 8)

    @classmethod
    def for_keys(cls, n: int, fpr: float) -> BloomFilter:
        """Sized for n keys at false-positive rate fpr: m = -n ln p / (ln 2)^2, k = (m/n) ln 2."""
        m = math.ceil(-n * math.log(fpr) / math.log(2) ** 2)
        k = max(1, round(m / n * math.log(2)))
        return cls(m, k)

    def _probes(self, key: bytes) -> Iterator[int]:
        digest = hashlib.sha256(key).digest()
        h1 = int.from_bytes(digest[:8], "big")
        h2 = int.from_bytes(digest[8:16], "big") | 1
        for i in range(self.k):
            yield (h1 + i * h2) % self.m

    def add(self, key: bytes) -> None:
        for bit in self._probes(key):
            self.bits[bit // 8] |= 1 << (bit % 8)

    def may_contain(self, key: bytes) -> bool:
        return all(self.bits[bit // 8] >> (bit % 8) & 1 for bit in self._probes(key))

    def encode(self) -> bytes:
        return U32.pack(self.m) + bytes([self.k]) + bytes(self.bits)

    @classmethod
    def decode(cls, data: bytes) -> BloomFilter:
        (m,) = U32.unpack_from(data, 0)
        return cls(m, data[4], bytearray(data[5:]))


# -- SSTables ---------------------------------------------------------------------------------


@dataclass
class BlockHandle:
    last_key: bytes  # the largest key in the block
    offset: int
    size: int


class SSTable:
    """An open, immutable table: its index and Bloom filter in memory, its blocks on disk."""

    def __init__(self, disk: Disk, name: str) -> None:
        self.disk, self.name = disk, name
        size = disk.size(name)
        index_off, index_size, bloom_off, bloom_size, magic = FOOTER.unpack(
            disk.read(name, size - FOOTER.size, FOOTER.size)
        )
        assert magic == MAGIC, f"{name}: not an SSTable"
        self.index = _decode_index(disk.read(name, index_off, index_size))
        self.bloom = BloomFilter.decode(disk.read(name, bloom_off, bloom_size))
        self.size = size

    def _block(self, handle: BlockHandle) -> list[tuple[bytes, bytes | None]]:
        return list(decode_entries(self.disk.read(self.name, handle.offset, handle.size)))

    def get(self, key: bytes) -> tuple[bool, bytes | None]:
        """(found, value): found is True for a value or a tombstone in this table."""
        if not self.bloom.may_contain(key):
            return False, None
        i = _first_block_at_or_after(self.index, key)
        if i == len(self.index):
            return False, None
        for k, v in self._block(self.index[i]):
            if k == key:
                return True, v
        return False, None

    def scan(self, lo: bytes | None = None, hi: bytes | None = None):
        """Yield (key, value or None) with lo <= key < hi, reading only the blocks needed."""
        start = 0 if lo is None else _first_block_at_or_after(self.index, lo)
        for handle in self.index[start:]:
            for k, v in self._block(handle):
                if hi is not None and k >= hi:
                    return
                if lo is None or k >= lo:
                    yield k, v


def _first_block_at_or_after(index: list[BlockHandle], key: bytes) -> int:
    """The first block whose last key is >= key (binary search over the sparse index)."""
    lo, hi = 0, len(index)
    while lo < hi:
        mid = (lo + hi) // 2
        if index[mid].last_key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _decode_index(data: bytes) -> list[BlockHandle]:
    index, pos = [], 0
    while pos < len(data):
        (klen,) = U32.unpack_from(data, pos)
        pos += U32.size
        key = data[pos : pos + klen]
        pos += klen
        offset, size = INDEX_TAIL.unpack_from(data, pos)
        pos += INDEX_TAIL.size
        index.append(BlockHandle(key, offset, size))
    return index


def build_sstable(entries: list[tuple[bytes, bytes | None]], block_size: int, fpr: float) -> bytes:
    """The bytes of an SSTable holding ``entries`` (sorted by key, one per key)."""
    out = bytearray()
    index = bytearray()
    bloom = BloomFilter.for_keys(len(entries), fpr)
    block = bytearray()
    last = b""
    for key, value in entries:
        block += encode_entry(key, value)
        bloom.add(key)
        last = key
        if len(block) >= block_size:  # cut the block once it reaches block_size
            index += U32.pack(len(last)) + last + INDEX_TAIL.pack(len(out), len(block))
            out += block
            block = bytearray()
    if block:
        index += U32.pack(len(last)) + last + INDEX_TAIL.pack(len(out), len(block))
        out += block
    index_off = len(out)
    out += index
    bloom_off = len(out)
    out += bloom.encode()
    out += FOOTER.pack(index_off, len(index), bloom_off, len(out) - bloom_off, MAGIC)
    return bytes(out)


# -- the tree ---------------------------------------------------------------------------------


class LSMTree:
    """An ordered map from bytes to bytes, as a log-structured merge tree on ``disk``."""

    def __init__(
        self,
        disk: Disk,
        *,
        memtable_limit: int = 64,
        block_size: int = 256,
        fpr: float = 0.01,
        l0_limit: int = 4,
        level_ratio: int = 10,
    ) -> None:
        if memtable_limit < 1 or block_size < 1 or l0_limit < 1 or level_ratio < 2:
            raise ValueError("memtable_limit, block_size, l0_limit >= 1 and level_ratio >= 2")
        if not 0 < fpr < 1:
            raise ValueError("fpr must lie strictly between 0 and 1")
        self.disk = disk
        self.memtable_limit, self.block_size, self.fpr = memtable_limit, block_size, fpr
        self.l0_limit, self.level_ratio = l0_limit, level_ratio
        self.memtable: dict[bytes, bytes | None] = {}
        # levels[0]: overlapping tables, newest first; levels[i >= 1]: at most one table.
        self.levels: list[list[SSTable]] = [[]]
        self.counts: dict[str, int] = {}  # entries per table name
        self.user_bytes = self.table_bytes = 0  # for write_amplification()
        names = set(disk.names())
        self._next = 1 + max((int(n[:-4]) for n in names if n.endswith(".sst")), default=0)
        if MANIFEST in names:
            self._load_manifest()
        self._recover_wal(names)

    # -- recovery --

    def _load_manifest(self) -> None:
        text = self.disk.read(MANIFEST, 0, self.disk.size(MANIFEST)).decode()
        for line in text.splitlines():
            level, name, count = line.split()
            while len(self.levels) <= int(level):
                self.levels.append([])
            self.levels[int(level)].append(SSTable(self.disk, name))
            self.counts[name] = int(count)

    def _recover_wal(self, names: set[str]) -> None:
        if WAL not in names:
            return
        data = self.disk.read(WAL, 0, self.disk.size(WAL))
        pos = 0
        while pos + WAL_HEAD.size <= len(data):
            crc, length = WAL_HEAD.unpack_from(data, pos)
            payload = data[pos + WAL_HEAD.size : pos + WAL_HEAD.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break  # a torn or corrupt tail: the write never completed
            for key, value in decode_entries(payload):
                self.memtable[key] = value
            pos += WAL_HEAD.size + length
        if pos != len(data):
            self.disk.write(WAL, data[:pos])  # cut the tail so new records follow good ones

    # -- writes --

    def put(self, key: bytes, value: bytes) -> None:
        self._write(key, value)

    def delete(self, key: bytes) -> None:
        self._write(key, None)

    def _write(self, key: bytes, value: bytes | None) -> None:
        payload = encode_entry(key, value)
        self.user_bytes += len(key) + (0 if value is None else len(value))
        self.disk.append(WAL, WAL_HEAD.pack(zlib.crc32(payload), len(payload)) + payload)
        self.memtable[key] = value  # only after the WAL holds it
        if len(self.memtable) >= self.memtable_limit:
            self.flush()

    def flush(self) -> None:
        """Write the memtable as a new level-0 table, then compact as the levels require."""
        if not self.memtable:
            return
        entries = sorted(self.memtable.items())
        self.levels[0].insert(0, self._write_table(entries))
        self._save_manifest()
        self.disk.write(WAL, b"")  # the table now holds what the WAL held
        self.memtable = {}
        self._maybe_compact()

    def _write_table(self, entries: list[tuple[bytes, bytes | None]]) -> SSTable:
        name = f"{self._next:06d}.sst"
        self._next += 1
        data = build_sstable(entries, self.block_size, self.fpr)
        self.disk.write(name, data)
        self.table_bytes += len(data)
        self.counts[name] = len(entries)
        return SSTable(self.disk, name)

    def _save_manifest(self) -> None:
        lines = [
            f"{level} {t.name} {self.counts[t.name]}\n"
            for level, tables in enumerate(self.levels)
            for t in tables
        ]
        self.disk.write(MANIFEST, "".join(lines).encode())

    # -- compaction (leveled: one sorted run per level >= 1, each level_ratio times larger) --

    def capacity(self, level: int) -> int:
        return self.memtable_limit * self.level_ratio**level

    def _maybe_compact(self) -> None:
        if len(self.levels[0]) >= self.l0_limit:
            self._merge_into(0, 1)
        level = 1
        while level < len(self.levels):
            tables = self.levels[level]
            if tables and self.counts[tables[0].name] > self.capacity(level):
                self._merge_into(level, level + 1)
            level += 1

    def _merge_into(self, src: int, dst: int) -> None:
        """Merge every level from src to dst (inclusive) into one table at level dst."""
        while len(self.levels) <= dst:
            self.levels.append([])
        inputs = [t for level in range(src, dst + 1) for t in self.levels[level]]  # newest first
        # A tombstone may go only when no older version can sit below the output.
        bottom = all(not tables for tables in self.levels[dst + 1 :])
        merged = [
            (k, v) for k, v in _merge([t.scan() for t in inputs]) if v is not None or not bottom
        ]
        for level in range(src, dst + 1):
            self.levels[level] = []
        if merged:
            self.levels[dst] = [self._write_table(merged)]
        self._save_manifest()
        for table in inputs:  # obsolete only once the manifest no longer names them
            self.disk.delete(table.name)
            del self.counts[table.name]

    def compact(self) -> None:
        """Flush, then merge every table into one table at the deepest level."""
        self.flush()
        if any(self.levels):
            self._merge_into(0, max(1, len(self.levels) - 1))

    # -- reads --

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None if it is absent or deleted: newest source first."""
        if key in self.memtable:
            return self.memtable[key]
        for tables in self.levels:
            for table in tables:
                found, value = table.get(key)
                if found:
                    return value
        return None

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) for lo <= key < hi in key order, newest version, no tombstones."""
        mem = sorted((k, v) for k, v in self.memtable.items() if lo <= k < hi)
        sources = [iter(mem)] + [t.scan(lo, hi) for tables in self.levels for t in tables]
        for key, value in _merge(sources):
            if value is not None:
                yield key, value

    def write_amplification(self) -> float:
        """Bytes written to SSTables / bytes of user data, since this object was opened."""
        return self.table_bytes / self.user_bytes if self.user_bytes else 0.0

    def close(self) -> None:
        """Nothing is buffered: every write already sits in the WAL or a table."""


def _merge(sources: list[Iterator[tuple[bytes, bytes | None]]]):
    """K-way merge of sorted sources, newest first: yield each key once, its newest version."""
    heads = heapq.merge(*(_aged(source, age) for age, source in enumerate(sources)))
    previous = None
    for key, _age, value in heads:
        if key != previous:
            previous = key
            yield key, value


def _aged(source, age: int):
    """(key, age, value): among equal keys the newest source (lowest age) sorts first."""
    for key, value in source:
        yield key, age, value
