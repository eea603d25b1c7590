"""An in-memory transactional key-value store with multi-version concurrency control.

Read README.md first. You build:

* ``Store``: the version chains of every key and the commit clock; ``begin()`` starts a
  transaction, ``gc()`` reclaims versions no snapshot can see, ``version_count()`` counts them.
* ``Transaction``: ``get``, ``scan``, ``put``, ``delete``, ``commit``, ``abort``.
* ``Isolation.REPEATABLE_READ``: snapshot isolation with first-committer-wins.
* ``Isolation.SERIALIZABLE``: serializable snapshot isolation (Cahill et al. 2008).

Standard library only.
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


class Store:
    """Versions of every key, stamped with the transaction that wrote them."""

    def __init__(self, initial: dict[Hashable, Any] | None = None) -> None:
        """An empty store, or one holding ``initial`` as if one transaction had put it and committed."""
        # TODO: per key, a version chain (newest first); each version records its value (or a
        #       delete marker) and the transaction that wrote it.
        # TODO: a logical clock: a commit takes the next tick; a snapshot is a clock reading.
        raise NotImplementedError

    def begin(self, isolation: Isolation = Isolation.REPEATABLE_READ) -> Transaction:
        """Start a transaction whose snapshot holds everything committed so far, and nothing later."""
        raise NotImplementedError

    def version_count(self) -> int:
        """How many versions (delete markers included) the store holds right now, over all keys."""
        raise NotImplementedError

    def gc(self) -> int:
        """Reclaim every version that no running or future transaction can read; return how many.

        TODO: the horizon is the oldest snapshot of a running transaction (or the clock when
              none runs). In each chain, the newest version committed at or before the horizon
              is what every snapshot sees at least: everything older is dead, and so is that
              version itself if it is a delete marker.
        TODO: never reclaim an uncommitted version.
        """
        raise NotImplementedError


class Transaction:
    """One transaction's handle. Operations after commit() or abort() raise TransactionClosed."""

    def get(self, key: Hashable) -> Any:
        """The value of key in this transaction's snapshot (its own writes included), or None.

        TODO: walk the chain newest first; a version is visible if this transaction wrote it or
              its writer committed at or before this snapshot.
        TODO (SERIALIZABLE): remember the read; each newer version you skipped is a concurrent
              write this read missed: a rw-antidependency this -> that writer.
        """
        raise NotImplementedError

    def scan(self, lo: Any = None, hi: Any = None) -> list[tuple[Any, Any]]:
        """The visible (key, value) pairs with lo <= key < hi (None: unbounded), sorted by key.

        TODO (SERIALIZABLE): a scan reads a predicate (the range): a later write of any key in
              it by a concurrent transaction, an insert included, is a rw-antidependency.
        """
        raise NotImplementedError

    def put(self, key: Hashable, value: Any) -> None:
        """Write key = value (a new version). value None raises ValueError: use delete().

        TODO: first committer wins, checked now: if the newest version of key is uncommitted
              (another writer's) or committed after this snapshot, abort this transaction and
              raise SerializationFailure. Never wait.
        TODO (SERIALIZABLE): every concurrent SERIALIZABLE transaction that read key (or a range
              holding it) gets a rw-antidependency reader -> this; a committed reader counts
              while it overlaps this transaction.
        TODO (SERIALIZABLE): if an edge makes this transaction a pivot (a live in-edge and a
              live out-edge), abort it and raise SerializationFailure; likewise if it makes an
              already committed transaction a pivot.
        """
        raise NotImplementedError

    def delete(self, key: Hashable) -> None:
        """Delete key: a new version that says "deleted", under the same rules as put()."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make every write visible to transactions that begin afterwards.

        TODO (SERIALIZABLE): a transaction that another's operation made a pivot fails here
              (or at its next operation) with SerializationFailure.
        """
        raise NotImplementedError

    def abort(self) -> None:
        """Undo every write. A no-op on an aborted transaction; TransactionClosed after commit()."""
        raise NotImplementedError
