"""A log-structured merge tree on a "disk" of named files (read README.md first).

The on-disk formats are fixed (the specs read your files and corrupt your WAL); the
algorithms are yours. All integers are big-endian.

* entry:    kind (1 byte: 0 = put, 1 = delete) | key length (u32) | key | value length (u32)
            | value. A delete (a tombstone) has value length 0 and no value.
* ``wal``:  records back to back: crc32 of the payload (u32) | payload length (u32) | payload,
            where the payload is one entry. zlib.crc32 is the CRC.
* ``<n>.sst`` (an SSTable, n a zero-padded decimal sequence number, e.g. ``000007.sst``):
            data blocks | index block | Bloom block | footer.
  - a data block: entries in key order; a block is closed as soon as its size reaches
    ``block_size`` bytes (so every block but the last is >= block_size).
  - the index block: per data block, in order: key length (u32) | the block's LAST key |
    block offset (u64) | block size (u32).
  - the Bloom block: m (u32) | k (1 byte) | the m bits, ceil(m / 8) bytes, bit j is
    ``bits[j // 8] >> (j % 8) & 1``.
  - the footer, 40 bytes: index offset, index size, Bloom offset, Bloom size, magic
    0x4C534D5441424C45 (all u64).
* ``MANIFEST``: the live tables, one ASCII line each: ``<level> <name> <entries>\\n``; level-0
            tables newest first. Rewritten whole (``disk.write``) after every change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["Disk", "LSMTree", "MemoryDisk"]

MAGIC = 0x4C534D5441424C45  # b"LSMTABLE"


class Disk(Protocol):
    """Named files of bytes: the tree's only way to persistent storage.

    The specs pass their own Disk, which counts every read and every byte written.
    """

    def read(self, name: str, offset: int, size: int) -> bytes: ...
    def write(self, name: str, data: bytes) -> None: ...  # create or replace the whole file
    def append(self, name: str, data: bytes) -> None: ...  # creates the file if absent
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

    def size(self, name: str) -> int:
        if name not in self.files:
            raise FileNotFoundError(name)
        return len(self.files[name])

    def delete(self, name: str) -> None:
        del self.files[name]

    def names(self) -> list[str]:
        return sorted(self.files)


class LSMTree:
    """An ordered map from bytes to bytes, as a log-structured merge tree on ``disk``.

    Leveled compaction: level 0 holds up to ``l0_limit - 1`` overlapping tables between
    writes; every level i >= 1 holds at most one table (one sorted run) of at most
    ``memtable_limit * level_ratio ** i`` entries between writes.
    """

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
        """Open the tree stored on ``disk`` (empty disk: a new, empty tree).

        TODO: raise ValueError unless memtable_limit, block_size, l0_limit >= 1,
        level_ratio >= 2 and 0 < fpr < 1.
        TODO: read the MANIFEST; open each table: read its footer, index and Bloom filter
        ONCE and keep them in memory (never its data blocks).
        TODO: replay the WAL into the memtable, stopping at the first torn or corrupt record
        (short header, short payload, wrong CRC); rewrite the WAL without that tail.
        TODO: new table numbers continue after the largest ``<n>.sst`` on the disk.
        """
        raise NotImplementedError

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key``.

        TODO: append the WAL record first, then update the memtable; when the memtable holds
        ``memtable_limit`` distinct keys, flush().
        """
        raise NotImplementedError

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (absent or not): write a tombstone, exactly as put() writes a value."""
        raise NotImplementedError

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None if it is absent or deleted.

        TODO: newest first: memtable, level-0 tables newest to oldest, then levels 1, 2, ...
        The first source that knows the key answers, even if its answer is a tombstone.
        TODO: skip a table whose Bloom filter rules the key out; otherwise binary-search its
        index for the one block that may hold the key and read that block: one disk.read.
        """
        raise NotImplementedError

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` for ``lo <= key < hi`` in key order: the newest version of
        each key, tombstoned keys left out.

        TODO: a k-way merge (heapq.merge) of the memtable and every table; a table reads only
        the blocks from the first that may hold ``lo`` up to the first key >= ``hi``.
        """
        raise NotImplementedError

    def flush(self) -> None:
        """Write the memtable (if not empty) as a new level-0 table, then compact.

        TODO: write the table, rewrite the MANIFEST, empty the WAL, clear the memtable.
        TODO: the table's Bloom filter for n keys at rate fpr has
        m = ceil(-n ln(fpr) / (ln 2)^2) bits and k = max(1, round(m / n * ln 2)) probes.
        TODO: when level 0 holds l0_limit tables, merge them with level 1 into one new
        level-1 table; then, for i = 1, 2, ...: when level i holds more than
        memtable_limit * level_ratio ** i entries, merge it into level i + 1.
        TODO: a merge drops tombstones only when no level below its output holds a table.
        Delete input tables from the disk after the MANIFEST no longer names them.
        """
        raise NotImplementedError

    def compact(self) -> None:
        """Flush, then merge every table into one table at the deepest level (at least 1)."""
        raise NotImplementedError

    def write_amplification(self) -> float:
        """Bytes this tree object wrote to SSTables / bytes of user data it was given.

        User data: len(key) + len(value) per put, len(key) per delete. 0.0 before any write.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the tree. Everything written is already in the WAL or a table."""
        raise NotImplementedError
