"""Placing keys on nodes: jump hash, a hash ring with virtual nodes, rendezvous hashing, ranges.

Every placement here is a pure function of the key and the set of nodes, so two routers built
from the same nodes agree on every key, and a rebalance plan is the difference between the
router before a change and the router after it (``plan_moves``).

The hash of a key is fixed by the contract (``key_hash``: the first 8 bytes of SHA-256,
big-endian), and so are the labels the ring and rendezvous hashing feed it, so every correct
implementation places every key on the same node.
"""

from __future__ import annotations

import bisect
import hashlib
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

MASK64 = (1 << 64) - 1
LCG_MULTIPLIER = 2862933555777941757  # Lamping & Veach's 64-bit linear congruential generator


def key_hash(key: str | bytes) -> int:
    """The 64-bit hash of a key: the first 8 bytes of SHA-256, read as a big-endian unsigned int.

    A ``str`` is hashed as its UTF-8 bytes.
    """
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def jump_hash(key: int, num_buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: the bucket in [0, num_buckets) of a 64-bit key.

    ValueError if ``key`` is outside [0, 2**64) or ``num_buckets`` is below 1.
    """
    if not 0 <= key <= MASK64:
        raise ValueError(f"key must be an unsigned 64-bit integer, got {key}")
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be at least 1, got {num_buckets}")
    b, j = -1, 0
    while j < num_buckets:
        b = j
        # The C++ original relies on uint64 wrap-around; Python ints never wrap, so mask.
        key = (key * LCG_MULTIPLIER + 1) & MASK64
        # (key >> 33) + 1 is uniform in [1, 2**31]: the next jump lands at (b + 1) / r
        # for r uniform in (0, 1]. Floating-point division, as in the paper.
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


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
    """The keys whose node changes from ``before`` to ``after``, in the order of ``keys``."""
    moves = []
    for key in keys:
        source, target = before.node_for(key), after.node_for(key)
        if source != target:
            moves.append(Move(key, source, target))
    return moves


class JumpRouter:
    """Nodes numbered 0..n-1 by the order they joined; a key goes to nodes[jump_hash(...)]."""

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        self._nodes: list[str] = []
        for node in nodes:
            self.add(node)

    @property
    def nodes(self) -> list[str]:
        """The nodes in bucket order (a copy)."""
        return list(self._nodes)

    def add(self, node: str) -> None:
        """Add ``node`` as the new last bucket; ValueError if it is already there."""
        if node in self._nodes:
            raise ValueError(f"node {node!r} is already placed")
        self._nodes.append(node)

    def remove(self, node: str) -> None:
        """Remove the last node; KeyError if absent, ValueError for any other node."""
        if node not in self._nodes:
            raise KeyError(node)
        # Jump hash only knows bucket numbers: dropping bucket i < n-1 would renumber every
        # later bucket and move their keys. Only the last bucket can leave.
        if node != self._nodes[-1]:
            raise ValueError(f"jump hash can only remove the last node ({self._nodes[-1]!r})")
        self._nodes.pop()

    def node_for(self, key: str) -> str:
        """The node of ``key``; LookupError when there are no nodes."""
        if not self._nodes:
            raise LookupError("no nodes")
        return self._nodes[jump_hash(key_hash(key), len(self._nodes))]


class HashRing:
    """Karger's consistent hashing: each node owns ``vnodes`` points on a 64-bit circle.

    The points of node N are ``key_hash(f"{N}#{i}")`` for i in range(vnodes). A key belongs
    to the first point at or after ``key_hash(key)``, going clockwise and wrapping past 2**64-1
    to the smallest point.
    """

    def __init__(self, nodes: Iterable[str] = (), vnodes: int = 1) -> None:
        if vnodes < 1:
            raise ValueError(f"vnodes must be at least 1, got {vnodes}")
        self.vnodes = vnodes
        self._nodes: set[str] = set()
        self._points: list[tuple[int, str]] = []  # (position, node), sorted
        for node in nodes:
            self.add(node)

    @property
    def nodes(self) -> list[str]:
        """The nodes on the ring, sorted."""
        return sorted(self._nodes)

    def add(self, node: str) -> None:
        """Put ``node``'s points on the ring; ValueError if it is already there."""
        if node in self._nodes:
            raise ValueError(f"node {node!r} is already on the ring")
        self._nodes.add(node)
        for i in range(self.vnodes):
            bisect.insort(self._points, (key_hash(f"{node}#{i}"), node))

    def remove(self, node: str) -> None:
        """Take ``node``'s points off the ring; KeyError if it is absent."""
        if node not in self._nodes:
            raise KeyError(node)
        self._nodes.remove(node)
        self._points = [point for point in self._points if point[1] != node]

    def node_for(self, key: str) -> str:
        """The node of the first point at or after ``key_hash(key)``; LookupError if empty."""
        if not self._points:
            raise LookupError("the ring is empty")
        # (h, "") sorts before every (h, node): a key whose hash equals a point's position
        # belongs to that point.
        i = bisect.bisect_left(self._points, (key_hash(key), ""))
        return self._points[i % len(self._points)][1]


class Rendezvous:
    """Highest random weight (Thaler & Ravishankar): each key goes to its best-scoring node.

    The score of node N for key K is ``key_hash(f"{N}/{K}")``; the highest score wins, and
    equal scores go to the greater node name.
    """

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        self._nodes: set[str] = set()
        for node in nodes:
            self.add(node)

    @property
    def nodes(self) -> list[str]:
        """The nodes, sorted."""
        return sorted(self._nodes)

    def add(self, node: str) -> None:
        """Add ``node``; ValueError if it is already there."""
        if node in self._nodes:
            raise ValueError(f"node {node!r} is already placed")
        self._nodes.add(node)

    def remove(self, node: str) -> None:
        """Remove ``node``; KeyError if it is absent."""
        if node not in self._nodes:
            raise KeyError(node)
        self._nodes.remove(node)

    def node_for(self, key: str) -> str:
        """The node with the highest score for ``key``; LookupError when there are no nodes."""
        # n hashes per lookup: the price of needing no shared state but the list of nodes.
        if not self._nodes:
            raise LookupError("no nodes")
        return max(self._nodes, key=lambda node: (key_hash(f"{node}/{key}"), node))


@dataclass(frozen=True)
class Range:
    """The keys ``start <= key < end`` (``end`` None: no upper bound), stored on ``node``."""

    start: str
    end: str | None
    node: str

    def __contains__(self, key: str) -> bool:
        return self.start <= key and (self.end is None or key < self.end)


class RangeRouter:
    """Range sharding: the key space cut at sorted split points, one range per piece.

    It starts as one range ["", no end) on ``node``; ``split`` cuts a range in two.
    """

    def __init__(self, node: str) -> None:
        """One range, ["", no end), on ``node``."""
        self._starts: list[str] = [""]  # sorted; range i is [starts[i], starts[i+1])
        self._nodes: list[str] = [node]

    @property
    def ranges(self) -> list[Range]:
        """The ranges in key order."""
        ends: list[str | None] = [*self._starts[1:], None]
        return [Range(s, e, n) for s, e, n in zip(self._starts, ends, self._nodes, strict=True)]

    def _index(self, key: str) -> int:
        # The last range whose start is <= key: a key equal to a split point opens its range.
        return bisect.bisect_right(self._starts, key) - 1

    def range_for(self, key: str) -> Range:
        """The range holding ``key``."""
        i = self._index(key)
        end = self._starts[i + 1] if i + 1 < len(self._starts) else None
        return Range(self._starts[i], end, self._nodes[i])

    def node_for(self, key: str) -> str:
        """The node of the range holding ``key``."""
        return self._nodes[self._index(key)]

    def split(self, at: str, node: str | None = None) -> None:
        """Cut the range holding ``at`` into [start, at) and [at, end); the upper half on ``node``.

        ValueError if ``at`` already starts a range.
        """
        i = self._index(at)
        if self._starts[i] == at:
            raise ValueError(f"{at!r} already starts a range")
        self._starts.insert(i + 1, at)
        self._nodes.insert(i + 1, self._nodes[i] if node is None else node)

    def ranges_for(self, lo: str, hi: str) -> list[Range]:
        """The ranges holding a key in [lo, hi), in key order: what a scan must visit."""
        if lo >= hi:
            return []
        first = self._index(lo)
        last = bisect.bisect_left(self._starts, hi)  # a range starting at hi holds no key < hi
        return self.ranges[first:last]

    def split_hot(self, load: Mapping[str, int], threshold: int) -> str | None:
        """Split the hottest range, if its load exceeds ``threshold``, where it balances best.

        Returns the split key, or None when nothing was split (not hot enough, or all its load
        on one key, which no split can divide).
        """
        totals = [0] * len(self._starts)
        for key, count in load.items():
            totals[self._index(key)] += count
        hottest = max(range(len(totals)), key=lambda i: (totals[i], -i))
        if totals[hottest] <= threshold:
            return None
        keys = sorted(
            key for key, count in load.items() if count > 0 and self._index(key) == hottest
        )
        best: tuple[int, str] | None = None
        left = 0
        for k, key in enumerate(keys):
            if k > 0:  # both halves must carry load
                imbalance = abs(totals[hottest] - 2 * left)
                if best is None or imbalance < best[0]:
                    best = (imbalance, key)
            left += load[key]
        if best is None:
            return None  # one hot key: no split point can divide its load
        self.split(best[1])
        return best[1]
