"""An in-memory transactional key-value store with multi-version concurrency control.

Every write makes a new version of its key, stamped with the transaction that wrote it; a
transaction reads the newest version its snapshot can see. REPEATABLE READ is snapshot
isolation with first-committer-wins (checked at write time, without waiting); SERIALIZABLE
adds serializable snapshot isolation (Cahill, Röhm, Fekete 2008): it tracks
read-write antidependencies and aborts a transaction that is the pivot of a dangerous
structure T_in -rw-> pivot -rw-> T_out.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Any


class Isolation(enum.Enum):
    REPEATABLE_READ = "repeatable read"
    SERIALIZABLE = "serializable"


class SerializationFailure(Exception):
    """The transaction was aborted to keep the history correct; the client may retry it."""


class TransactionClosed(Exception):
    """An operation on a transaction that has already committed or aborted."""


ACTIVE, COMMITTED, ABORTED = "active", "committed", "aborted"

# The value of a version that records a delete.
TOMBSTONE = object()


class Version:
    """One version of one key: its value (or TOMBSTONE) and the transaction that wrote it."""

    __slots__ = ("value", "writer")

    def __init__(self, value: Any, writer: Transaction) -> None:
        self.value = value
        self.writer = writer


class Store:
    """The versions of every key, newest first, and the clock that orders commits."""

    def __init__(self, initial: dict[Hashable, Any] | None = None) -> None:
        self._chains: dict[Hashable, list[Version]] = {}
        self._clock = 0  # commit timestamp of the latest commit; a snapshot is a clock reading
        self._next_txid = 1
        self._active: dict[int, Transaction] = {}
        # SERIALIZABLE transactions whose reads can still conflict with a live writer.
        self._tracked: list[Transaction] = []
        if initial:
            loader = self.begin()
            for key, value in initial.items():
                loader.put(key, value)
            loader.commit()

    def begin(self, isolation: Isolation = Isolation.REPEATABLE_READ) -> Transaction:
        txn = Transaction(self, self._next_txid, isolation, self._clock)
        self._next_txid += 1
        self._active[txn.txid] = txn
        if isolation is Isolation.SERIALIZABLE:
            self._tracked.append(txn)
        return txn

    def version_count(self) -> int:
        return sum(len(chain) for chain in self._chains.values())

    def gc(self) -> int:
        """Reclaim every version no present or future snapshot can see; return how many."""
        horizon = min((t.snapshot for t in self._active.values()), default=self._clock)
        reclaimed = 0
        for key in list(self._chains):
            chain = self._chains[key]
            for i, version in enumerate(chain):
                if version.writer.status == COMMITTED and version.writer.commit_ts <= horizon:
                    # Every snapshot sees this version (or a newer one): older ones are dead,
                    # and so is this one if it only says "deleted".
                    keep = i if version.value is TOMBSTONE else i + 1
                    reclaimed += len(chain) - keep
                    del chain[keep:]
                    break
            if not chain:
                del self._chains[key]
        # A transaction that committed before every live snapshot began overlaps nobody anymore.
        self._tracked = [
            t
            for t in self._tracked
            if t.status == ACTIVE or (t.status == COMMITTED and t.commit_ts > horizon)
        ]
        return reclaimed

    # -- visibility -------------------------------------------------------------------------

    @staticmethod
    def _sees(txn: Transaction, version: Version) -> bool:
        writer = version.writer
        return writer is txn or (writer.status == COMMITTED and writer.commit_ts <= txn.snapshot)

    def _read(self, txn: Transaction, key: Hashable) -> Any:
        """The value txn sees for key (TOMBSTONE if none); newer versions it skips are rw-conflicts."""
        skipped: list[Transaction] = []
        seen = TOMBSTONE
        for version in self._chains.get(key, ()):
            if self._sees(txn, version):
                seen = version.value
                break
            skipped.append(version.writer)
        if txn.isolation is Isolation.SERIALIZABLE:
            for writer in skipped:
                # txn read a value that writer overwrote: txn must come before writer.
                if writer.isolation is Isolation.SERIALIZABLE:
                    self._conflict(txn, writer, current=txn)
        return seen

    # -- operations -------------------------------------------------------------------------

    def _get(self, txn: Transaction, key: Hashable) -> Any:
        self._check(txn)
        txn.read_keys.add(key)
        value = self._read(txn, key)
        return None if value is TOMBSTONE else value

    def _scan(self, txn: Transaction, lo: Any, hi: Any) -> list[tuple[Any, Any]]:
        self._check(txn)
        txn.read_ranges.append((lo, hi))  # a predicate read: later inserts in the range conflict
        rows = []
        for key in sorted(k for k in self._chains if _in_range(k, lo, hi)):
            value = self._read(txn, key)
            if value is not TOMBSTONE:
                rows.append((key, value))
        return rows

    def _write(self, txn: Transaction, key: Hashable, value: Any) -> None:
        self._check(txn)
        chain = self._chains.get(key, [])
        if chain and chain[0].writer is txn:
            chain[0].value = value  # our own earlier write: nobody else can see it, overwrite it
            return
        if chain:
            head = chain[0].writer
            # First committer wins: a version this snapshot cannot see means a concurrent writer
            # got there first. PostgreSQL would wait for an uncommitted one; we fail at once.
            if head.status != COMMITTED or head.commit_ts > txn.snapshot:
                self._fail(txn, f"could not serialize access due to concurrent update of {key!r}")
        if txn.isolation is Isolation.SERIALIZABLE:
            for reader in list(self._tracked):
                # A committed reader still counts while it overlaps this transaction.
                concurrent = reader.status == ACTIVE or (
                    reader.status == COMMITTED and reader.commit_ts > txn.snapshot
                )
                if reader is not txn and concurrent and reader.has_read(key):
                    self._conflict(reader, txn, current=txn)
        self._chains[key] = [Version(value, txn), *chain]
        txn.written.add(key)

    def _commit(self, txn: Transaction) -> None:
        self._check(txn)
        self._clock += 1
        txn.commit_ts = self._clock
        txn.status = COMMITTED
        del self._active[txn.txid]

    def _abort(self, txn: Transaction) -> None:
        if txn.status == ABORTED:
            return
        if txn.status == COMMITTED:
            raise TransactionClosed(f"transaction {txn.txid} has already committed")
        txn.status = ABORTED
        del self._active[txn.txid]
        for key in txn.written:
            chain = self._chains[key]
            del chain[0]  # an uncommitted version is always the newest of its key
            if not chain:
                del self._chains[key]

    # -- serializable snapshot isolation ----------------------------------------------------

    def _check(self, txn: Transaction) -> None:
        if txn.status != ACTIVE:
            raise TransactionClosed(f"transaction {txn.txid} is {txn.status}")
        if _is_pivot(txn):
            self._fail(
                txn, "could not serialize access due to read/write dependencies among transactions"
            )

    def _conflict(self, reader: Transaction, writer: Transaction, current: Transaction) -> None:
        """Record reader -rw-> writer; abort current if that completes a dangerous structure."""
        reader.out_conflicts.add(writer)
        writer.in_conflicts.add(reader)
        other = writer if current is reader else reader
        # The pivot dies if it still can; a pivot that already committed takes current with it.
        # An active pivot other than current fails at its next operation or commit (_check).
        if _is_pivot(current) or (other.status == COMMITTED and _is_pivot(other)):
            self._fail(
                current,
                "could not serialize access due to read/write dependencies among transactions",
            )

    def _fail(self, txn: Transaction, reason: str) -> None:
        self._abort(txn)
        raise SerializationFailure(reason)


def _in_range(key: Any, lo: Any, hi: Any) -> bool:
    return (lo is None or key >= lo) and (hi is None or key < hi)


def _is_pivot(txn: Transaction) -> bool:
    # Edges to aborted transactions no longer matter: that transaction's reads and writes are gone.
    live_in = any(t.status != ABORTED for t in txn.in_conflicts)
    live_out = any(t.status != ABORTED for t in txn.out_conflicts)
    return live_in and live_out


class Transaction:
    """A handle on one transaction; every operation goes through its store."""

    def __init__(self, store: Store, txid: int, isolation: Isolation, snapshot: int) -> None:
        self.txid = txid
        self.isolation = isolation
        self.snapshot = snapshot
        self.status = ACTIVE
        self.commit_ts: int | None = None
        self.read_keys: set[Hashable] = set()
        self.read_ranges: list[tuple[Any, Any]] = []
        self.written: set[Hashable] = set()
        self.in_conflicts: set[Transaction] = set()
        self.out_conflicts: set[Transaction] = set()
        self._store = store

    def has_read(self, key: Hashable) -> bool:
        return key in self.read_keys or any(_in_range(key, lo, hi) for lo, hi in self.read_ranges)

    def get(self, key: Hashable) -> Any:
        return self._store._get(self, key)

    def scan(self, lo: Any = None, hi: Any = None) -> list[tuple[Any, Any]]:
        return self._store._scan(self, lo, hi)

    def put(self, key: Hashable, value: Any) -> None:
        if value is None:
            raise ValueError("None means 'absent'; use delete()")
        self._store._write(self, key, value)

    def delete(self, key: Hashable) -> None:
        self._store._write(self, key, TOMBSTONE)

    def commit(self) -> None:
        self._store._commit(self)

    def abort(self) -> None:
        self._store._abort(self)
