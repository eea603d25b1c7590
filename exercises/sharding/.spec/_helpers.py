"""Spec helpers for sharding: independent oracles of every placement, and load statistics.

The oracles are written from the contract (and the paper's loop for jump hash is the
`jump-consistent-hash` package's), never from the learner's code: the specs compare the
learner's placements with these, key by key.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable

import jump

KEYS = [f"user:{i}" for i in range(4000)]  # the fixed key set of the statistical specs


def oracle_hash(key: str | bytes) -> int:
    data = key.encode("utf-8") if isinstance(key, str) else key
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def oracle_jump(key: str, nodes: list[str]) -> str:
    return nodes[jump.hash(oracle_hash(key), len(nodes))]


class OracleRing:
    """The ring of the contract, as a sorted list of (position, node) points."""

    def __init__(self, nodes: Iterable[str], vnodes: int) -> None:
        self.points = sorted((oracle_hash(f"{n}#{i}"), n) for n in nodes for i in range(vnodes))
        self.positions = [p for p, _ in self.points]

    def node_for(self, key: str) -> str:
        i = bisect.bisect_left(self.positions, oracle_hash(key))
        return self.points[i % len(self.points)][1]


def oracle_rendezvous(key: str, nodes: Iterable[str]) -> str:
    return max(nodes, key=lambda n: (oracle_hash(f"{n}/{key}"), n))


def nodes(n: int) -> list[str]:
    return [f"node-{i}" for i in range(n)]


def spread(node_for: Callable[[str], str], n_nodes: int, keys: list[str] = KEYS) -> float:
    """max load / mean load of the nodes over ``keys`` (a node with no key counts as 0)."""
    counts = Counter(node_for(k) for k in keys)
    return max(counts.values()) / (len(keys) / n_nodes)


class CountingKey(str):
    """A str key that counts every comparison made with it (binary search vs scan)."""

    comparisons = 0

    def _count(self) -> None:
        CountingKey.comparisons += 1

    def __lt__(self, other: object) -> bool:
        self._count()
        return str.__lt__(self, other)

    def __le__(self, other: object) -> bool:
        self._count()
        return str.__le__(self, other)

    def __gt__(self, other: object) -> bool:
        self._count()
        return str.__gt__(self, other)

    def __ge__(self, other: object) -> bool:
        self._count()
        return str.__ge__(self, other)

    def __eq__(self, other: object) -> bool:
        self._count()
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._count()
        return str.__ne__(self, other)

    __hash__ = str.__hash__


class OracleRanges:
    """The range router of the contract, written the slow and obvious way."""

    def __init__(self, node: str) -> None:
        self.starts = [""]
        self.nodes = [node]

    def index(self, key: str) -> int:
        return max(i for i, s in enumerate(self.starts) if s <= key)

    def ranges(self) -> list[tuple[str, str | None, str]]:
        ends = [*self.starts[1:], None]
        return list(zip(self.starts, ends, self.nodes, strict=True))

    def split(self, at: str, node: str | None = None) -> None:
        i = self.index(at)
        assert self.starts[i] != at
        self.starts.insert(i + 1, at)
        self.nodes.insert(i + 1, self.nodes[i] if node is None else node)

    def ranges_for(self, lo: str, hi: str) -> list[tuple[str, str | None, str]]:
        return [
            (s, e, n) for s, e, n in self.ranges() if lo < hi and s < hi and (e is None or lo < e)
        ]

    def split_hot(self, load: dict[str, int], threshold: int) -> str | None:
        totals = [0] * len(self.starts)
        for key, count in load.items():
            totals[self.index(key)] += count
        best_total = max(totals)
        hottest = totals.index(best_total)
        if best_total <= threshold:
            return None
        keys = sorted(k for k, c in load.items() if c > 0 and self.index(k) == hottest)
        candidates = []
        for k in keys[1:]:
            left = sum(load[x] for x in keys if x < k)
            candidates.append((abs(best_total - 2 * left), k))
        if not candidates:
            return None
        at = min(candidates)[1]
        self.split(at)
        return at


def as_tuples(ranges: Iterable[object]) -> list[tuple[object, object, object]]:
    return [(r.start, r.end, r.node) for r in ranges]  # type: ignore[attr-defined]


def outcome(fn: Callable[..., object], *args: object) -> tuple[str, object]:
    """Call fn(*args): ("returned", value) or ("raised", exception). NotImplementedError passes."""
    try:
        return "returned", fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the learner
        return "raised", exc


def describe(result: tuple[str, object]) -> str:
    kind, value = result
    if kind == "raised":
        return f"raised {type(value).__name__}: {value}"
    return f"returned {value!r}"
