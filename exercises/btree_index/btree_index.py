"""A B-tree index of minimum degree t (CLRS, chapter 18), stored in pages.

Read README.md first. The shape of the data is fixed (the specs inspect it); the algorithms
are yours to write.

* A node is a ``Node``: sorted ``keys``, their ``values`` (same length), and ``children``,
  the PAGE IDS (ints) of its children, empty for a leaf. Never put Node objects in
  ``children``.
* Nodes live in a page store (the "disk"): ``store.allocate(node) -> page_id`` puts a new
  node in a page, ``store.read(page_id) -> Node`` is the only way to reach a node from its
  parent (CLRS's DISK-READ), ``store.free(page_id)`` gives a page back. The store returns the
  live Node: change it in place, there is no write().
* ``tree.root`` is the page id of the root node; an empty tree has an empty leaf root.
* insert splits full nodes on the way DOWN (CLRS B-TREE-INSERT), delete fills a child
  before descending into it (CLRS B-TREE-DELETE, cases 1, 2a-c, 3a-b).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["BTree", "Node", "PageStore", "Store"]


@dataclass
class Node:
    """One page of the tree: sorted keys, their values, and the page ids of the children."""

    keys: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    children: list[int] = field(default_factory=list)  # page ids; empty for a leaf


class Store(Protocol):
    """What the tree needs from a page store. The specs pass their own, which counts reads."""

    def allocate(self, node: Node) -> int: ...
    def read(self, page_id: int) -> Node: ...
    def free(self, page_id: int) -> None: ...


class PageStore:
    """The default in-memory page store, used when BTree gets no store."""

    def __init__(self) -> None:
        # TODO: a dict from page id to Node, and the next page id to hand out.
        raise NotImplementedError

    def allocate(self, node: Node) -> int:
        """Store ``node`` in a new page and return its page id (distinct from every live page)."""
        raise NotImplementedError

    def read(self, page_id: int) -> Node:
        """Return the node in page ``page_id`` (the same object); KeyError if there is none."""
        raise NotImplementedError

    def free(self, page_id: int) -> None:
        """Forget page ``page_id``; reading it afterwards raises KeyError."""
        raise NotImplementedError


class BTree:
    """An ordered map from comparable keys to values, as a B-tree of minimum degree ``t``.

    Every node but the root holds t-1..2t-1 keys; the root holds 1..2t-1 unless the tree is
    empty; an internal node with k keys has k+1 children; all leaves sit at one depth.
    """

    t: int
    store: Store
    root: int  # page id of the root node

    def __init__(self, t: int, store: Store | None = None) -> None:
        """Create an empty tree: allocate an empty leaf as the root page.

        TODO: raise ValueError if t < 2.
        TODO: use ``store`` if given, else a new PageStore().
        """
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of keys (O(1): keep a count)."""
        raise NotImplementedError

    def search(self, key: Any) -> Any:
        """Return the value stored under ``key``; raise KeyError if it is absent.

        TODO: one store.read per level, from the root down; stop at the node holding the key.
        """
        raise NotImplementedError

    def __contains__(self, key: Any) -> bool:
        """True if ``key`` is in the tree (its value may be None)."""
        raise NotImplementedError

    def insert(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key``; a key already present gets its value replaced.

        TODO: a full node holds 2t-1 keys. If the root is full, put a new root above it
        and split the old one: that is how the tree grows taller.
        TODO: going down, split every full child before entering it: its median key moves
        up into the parent, the two halves keep t-1 keys each.
        TODO: the key may already sit in ANY node on the way down (even be the median that
        a split just moved up): replace its value there, never add it twice.
        """
        raise NotImplementedError

    def delete(self, key: Any) -> None:
        """Remove ``key`` and its value; raise KeyError if it is absent (contents unchanged).

        TODO: before descending into a child with only t-1 keys, give it a t-th key: borrow
        through the parent from a sibling with >= t keys (case 3a) or merge it with a sibling
        and the separator between them (case 3b).
        TODO: key in a leaf: remove it (case 1). Key in an internal node: replace it with its
        predecessor (2a) or successor (2b) if that child has >= t keys, else merge the two
        children around it (2c); then delete below.
        TODO: free() the page of every node a merge empties; when the root ends up with no
        keys but one child, that child becomes the root and the old root page is freed.
        """
        raise NotImplementedError

    def range(self, lo: Any, hi: Any) -> Iterator[tuple[Any, Any]]:
        """Yield the ``(key, value)`` pairs with ``lo <= key < hi`` (half-open), in key order.

        TODO: be lazy (a generator): read pages as the scan reaches them.
        TODO: skip subtrees that hold only keys < lo or >= hi without reading them; remember
        that the keys of internal nodes (the separators) belong to the scan too.
        """
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Yield every ``(key, value)`` pair in key order."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        """Yield every key in order."""
        raise NotImplementedError

    def min(self) -> Any:
        """The smallest key; raise ValueError if the tree is empty."""
        raise NotImplementedError

    def max(self) -> Any:
        """The largest key; raise ValueError if the tree is empty."""
        raise NotImplementedError
