"""Placing keys on nodes: jump hash, a hash ring with virtual nodes, rendezvous hashing, ranges.

Read README.md first. The hash of a key and the labels hashed for ring points and rendezvous
scores are fixed by the contract below, so every correct implementation places every key on
the same node: the specs compare your placements with their own, key by key.

* ``key_hash(key)``: the first 8 bytes of SHA-256 of the key (UTF-8 for a str), big-endian.
* ring points of node N: ``key_hash(f"{N}#{i}")`` for i in range(vnodes).
* rendezvous score of node N for key K: ``key_hash(f"{N}/{K}")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "HashRing",
    "JumpRouter",
    "Move",
    "Range",
    "RangeRouter",
    "Rendezvous",
    "Router",
    "jump_hash",
    "key_hash",
    "plan_moves",
]


def key_hash(key: str | bytes) -> int:
    """The 64-bit hash of a key: the first 8 bytes of SHA-256, read as a big-endian unsigned int.

    A ``str`` is hashed as its UTF-8 bytes; ``bytes`` as they are.
    TODO: hashlib.sha256, then int.from_bytes(..., "big") of the first 8 bytes of the digest.
    """
    raise NotImplementedError


def jump_hash(key: int, num_buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: the bucket in [0, num_buckets) of a 64-bit key.

    TODO: raise ValueError if key is outside [0, 2**64) or num_buckets < 1.
    TODO: the paper's loop: b = -1, j = 0; while j < num_buckets: b = j;
    key = key * 2862933555777941757 + 1 (mod 2**64: Python ints never wrap);
    j = (b + 1) * (2**31 / ((key >> 33) + 1)) in floating point, truncated to an int.
    Return b.
    """
    raise NotImplementedError


class Router(Protocol):
    """Anything that places a key on a node."""

    def node_for(self, key: str) -> str: ...


@dataclass(frozen=True)
class Move:
    """One key of a rebalance plan: it lives on ``source`` and must be copied to ``target``."""

    key: str
    source: str
    target: str


def plan_moves(before: Router, after: Router, keys: Iterable[str]) -> list[Move]:
    """The rebalance plan: a Move for each key whose node differs between ``before`` and ``after``.

    Moves come in the order of ``keys``; a key that stays where it is has no Move.
    """
    raise NotImplementedError


class JumpRouter:
    """Nodes numbered 0..n-1 in the order they joined; key K goes to
    ``nodes[jump_hash(key_hash(K), n)]``."""

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        """A router over ``nodes``, added in that order (as by ``add``)."""
        raise NotImplementedError

    @property
    def nodes(self) -> list[str]:
        """The nodes in bucket order (a copy)."""
        raise NotImplementedError

    def add(self, node: str) -> None:
        """Add ``node`` as the new last bucket; ValueError if it is already there."""
        raise NotImplementedError

    def remove(self, node: str) -> None:
        """Remove ``node``; KeyError if it is absent.

        TODO: jump hash numbers its buckets: only the LAST node can leave (ValueError for any
        other, and the router stays unchanged).
        """
        raise NotImplementedError

    def node_for(self, key: str) -> str:
        """The node of ``key``; LookupError when there are no nodes."""
        raise NotImplementedError


class HashRing:
    """Consistent hashing (Karger et al.): each node owns ``vnodes`` points on a 64-bit circle.

    TODO: the points of node N are key_hash(f"{N}#{i}") for i in range(vnodes).
    TODO: key K belongs to the node of the first point at or after key_hash(K), clockwise,
    wrapping past 2**64 - 1 to the smallest point. A key whose hash equals a point's
    position belongs to that point.
    """

    vnodes: int

    def __init__(self, nodes: Iterable[str] = (), vnodes: int = 1) -> None:
        """A ring with ``vnodes`` points per node; ValueError if vnodes < 1."""
        raise NotImplementedError

    @property
    def nodes(self) -> list[str]:
        """The nodes on the ring, sorted."""
        raise NotImplementedError

    def add(self, node: str) -> None:
        """Put ``node``'s points on the ring; ValueError if it is already there."""
        raise NotImplementedError

    def remove(self, node: str) -> None:
        """Take ``node``'s points off the ring; KeyError if it is absent."""
        raise NotImplementedError

    def node_for(self, key: str) -> str:
        """The node of ``key`` (binary search over the sorted points); LookupError if empty."""
        raise NotImplementedError


class Rendezvous:
    """Highest random weight hashing (Thaler & Ravishankar): each key picks its best node.

    TODO: the score of node N for key K is key_hash(f"{N}/{K}"); the highest score wins,
    and equal scores go to the greater node name.
    """

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        """A router over ``nodes``."""
        raise NotImplementedError

    @property
    def nodes(self) -> list[str]:
        """The nodes, sorted."""
        raise NotImplementedError

    def add(self, node: str) -> None:
        """Add ``node``; ValueError if it is already there."""
        raise NotImplementedError

    def remove(self, node: str) -> None:
        """Remove ``node``; KeyError if it is absent."""
        raise NotImplementedError

    def node_for(self, key: str) -> str:
        """The node with the highest score for ``key``; LookupError when there are no nodes."""
        raise NotImplementedError


@dataclass(frozen=True)
class Range:
    """The keys ``start <= key < end`` (``end`` None: no upper bound), stored on ``node``."""

    start: str
    end: str | None
    node: str

    def __contains__(self, key: str) -> bool:
        return self.start <= key and (self.end is None or key < self.end)


class RangeRouter:
    """Range sharding: the key space (str keys, in Python's string order) cut at split points.

    A new router holds one range, ["", no end), on ``node``. The ranges always cover every
    key exactly once, in order: each range's ``end`` is the next range's ``start``.
    """

    def __init__(self, node: str) -> None:
        """One range, Range("", None, node)."""
        raise NotImplementedError

    @property
    def ranges(self) -> list[Range]:
        """The ranges in key order."""
        raise NotImplementedError

    def range_for(self, key: str) -> Range:
        """The range holding ``key``: a key equal to a split point belongs to the range it starts.

        TODO: binary search over the sorted starts (bisect), not a scan of every range.
        """
        raise NotImplementedError

    def node_for(self, key: str) -> str:
        """The node of the range holding ``key``."""
        raise NotImplementedError

    def split(self, at: str, node: str | None = None) -> None:
        """Cut the range holding ``at`` into [start, at) and [at, end).

        The lower half stays on its node; the upper half goes to ``node``, or stays on the same
        node when ``node`` is None. ValueError if ``at`` already starts a range (that includes
        "", the start of the first range).
        """
        raise NotImplementedError

    def ranges_for(self, lo: str, hi: str) -> list[Range]:
        """The ranges a scan of the keys lo <= key < hi must visit, in key order.

        TODO: exactly the ranges holding at least one such key; [] when lo >= hi.
        """
        raise NotImplementedError

    def split_hot(self, load: Mapping[str, int], threshold: int) -> str | None:
        """Split the hottest range at the key that best balances its load; return that key.

        ``load`` maps keys to request counts. The load of a range is the sum of the counts of
        its keys; the hottest range is the one with the greatest load (the first in key order
        on a tie).
        TODO: return None, changing nothing, if that load is <= threshold.
        TODO: the candidates are the keys of the range with a count > 0, except the smallest
        (both halves must carry load). Split at the candidate k that minimises
        |load of its keys < k - load of its keys >= k|, the smallest such k on a tie; the
        upper half stays on the same node. No candidate (one hot key): return None.
        """
        raise NotImplementedError
