"""MUTANT: the range scan yields the keys of leaves only and forgets the separators in internal nodes

A copy of the reference solution with that one mistake.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["BTree", "Node", "PageStore", "Store"]


@dataclass
class Node:
    """One page of the tree: sorted keys, their values, and the page ids of the children."""

    keys: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    children: list[int] = field(default_factory=list)  # empty for a leaf


class Store(Protocol):
    """What the tree needs from a page store (the "disk")."""

    def allocate(self, node: Node) -> int: ...
    def read(self, page_id: int) -> Node: ...
    def free(self, page_id: int) -> None: ...


class PageStore:
    """An in-memory page store: page ids are handed out in order and never reused."""

    def __init__(self) -> None:
        self.pages: dict[int, Node] = {}
        self._next_id = 1

    def allocate(self, node: Node) -> int:
        """Store ``node`` in a new page and return the page id."""
        page_id = self._next_id
        self._next_id += 1
        self.pages[page_id] = node
        return page_id

    def read(self, page_id: int) -> Node:
        """Return the node in page ``page_id``; KeyError if there is no such page."""
        return self.pages[page_id]

    def free(self, page_id: int) -> None:
        """Give page ``page_id`` back; KeyError if there is no such page."""
        del self.pages[page_id]


class BTree:
    """An ordered map from comparable keys to values, as a B-tree of minimum degree ``t``."""

    def __init__(self, t: int, store: Store | None = None) -> None:
        if not isinstance(t, int) or t < 2:
            raise ValueError(f"the minimum degree t must be an integer >= 2, got {t!r}")
        self.t = t
        self.store: Store = store if store is not None else PageStore()
        self.root: int = self.store.allocate(Node())  # CLRS B-TREE-CREATE: an empty leaf
        self._size = 0

    @property
    def _max_keys(self) -> int:
        return 2 * self.t - 1

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size

    def search(self, key: Any) -> Any:
        """Return the value stored under ``key``; KeyError if it is absent."""
        node = self.store.read(self.root)
        while True:
            i = bisect_left(node.keys, key)
            if i < len(node.keys) and node.keys[i] == key:
                return node.values[i]
            if not node.children:
                raise KeyError(key)
            node = self.store.read(node.children[i])

    def __contains__(self, key: Any) -> bool:
        try:
            self.search(key)
        except KeyError:
            return False
        return True

    def min(self) -> Any:
        """The smallest key; ValueError if the tree is empty."""
        return self._edge_key(first=True)

    def max(self) -> Any:
        """The largest key; ValueError if the tree is empty."""
        return self._edge_key(first=False)

    def _edge_key(self, *, first: bool) -> Any:
        node = self.store.read(self.root)
        if not node.keys:
            raise ValueError("the tree is empty")
        pick = 0 if first else -1
        while node.children:
            node = self.store.read(node.children[pick])
        return node.keys[pick]

    def range(self, lo: Any, hi: Any) -> Iterator[tuple[Any, Any]]:
        """Yield the ``(key, value)`` pairs with ``lo <= key < hi``, in key order, lazily."""
        if lo < hi:
            yield from self._range(self.root, lo, hi)

    def _range(self, page_id: int, lo: Any, hi: Any) -> Iterator[tuple[Any, Any]]:
        node = self.store.read(page_id)
        # Children left of i hold keys below keys[i - 1] < lo: skip them without reading.
        i = bisect_left(node.keys, lo)
        while True:
            if node.children:
                yield from self._range(node.children[i], lo, hi)
            # The separator between child i and child i + 1 is a key of the scan too.
            if i == len(node.keys) or not node.keys[i] < hi:
                return
            if not node.children:
                yield node.keys[i], node.values[i]
            i += 1

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Yield every ``(key, value)`` pair in key order."""
        yield from self._items(self.root)

    def _items(self, page_id: int) -> Iterator[tuple[Any, Any]]:
        node = self.store.read(page_id)
        for i, key in enumerate(node.keys):
            if node.children:
                yield from self._items(node.children[i])
            yield key, node.values[i]
        if node.children:
            yield from self._items(node.children[-1])

    def __iter__(self) -> Iterator[Any]:
        for key, _ in self.items():
            yield key

    # -- insert: split full nodes on the way down ----------------------------------------

    def insert(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key``, replacing the value of a key already present."""
        root = self.store.read(self.root)
        if len(root.keys) == self._max_keys:
            # The only way a B-tree grows taller: a new root above the old one, then a split.
            new_root = Node(children=[self.root])
            self.root = self.store.allocate(new_root)
            self._split_child(new_root, 0, root)
            root = new_root
        node = root
        while True:
            i = bisect_left(node.keys, key)
            if i < len(node.keys) and node.keys[i] == key:
                node.values[i] = value  # already present, maybe in an internal node
                return
            if not node.children:
                node.keys.insert(i, key)
                node.values.insert(i, value)
                self._size += 1
                return
            child = self.store.read(node.children[i])
            if len(child.keys) == self._max_keys:
                right = self._split_child(node, i, child)
                # The child's median moved up to node.keys[i]: it may be the key itself,
                # and it decides which half to go down into.
                if node.keys[i] == key:
                    node.values[i] = value
                    return
                if node.keys[i] < key:
                    child = right
            node = child

    def _split_child(self, parent: Node, i: int, child: Node) -> Node:
        """Split the full ``child`` (parent.children[i]) around its median; return the new right half.

        The left t - 1 keys stay in ``child``, the median moves up into ``parent`` at index i,
        the right t - 1 keys (and t children) go to a new page, parent.children[i + 1].
        """
        t = self.t
        right = Node(keys=child.keys[t:], values=child.values[t:], children=child.children[t:])
        parent.keys.insert(i, child.keys[t - 1])
        parent.values.insert(i, child.values[t - 1])
        parent.children.insert(i + 1, self.store.allocate(right))
        del child.keys[t - 1 :], child.values[t - 1 :], child.children[t:]
        return right

    # -- delete: fill the child before descending into it --------------------------------

    def delete(self, key: Any) -> None:
        """Remove ``key`` and its value; KeyError if it is absent (the contents stay the same)."""
        root = self.store.read(self.root)
        try:
            self._delete(root, key)
        finally:
            # A merge of the root's last two children empties the root: the tree gets shorter.
            # This can happen even when the key turns out to be missing, hence the finally.
            if not root.keys and root.children:
                old_root, self.root = self.root, root.children[0]
                self.store.free(old_root)
        self._size -= 1

    def _delete(self, node: Node, key: Any) -> None:
        """Delete ``key`` from the subtree of ``node``, which holds >= t keys unless it is the root."""
        t = self.t
        while True:
            i = bisect_left(node.keys, key)
            found = i < len(node.keys) and node.keys[i] == key
            if not node.children:
                if not found:
                    raise KeyError(key)
                del node.keys[i], node.values[i]  # case 1: a leaf with room to spare
                return
            if found:
                left = self.store.read(node.children[i])
                if len(left.keys) >= t:
                    # Case 2a: replace the key by its predecessor, then delete that below.
                    key, value = self._last_item(left)
                    node.keys[i], node.values[i] = key, value
                    node = left
                    continue
                right = self.store.read(node.children[i + 1])
                if len(right.keys) >= t:
                    # Case 2b: the same with the successor.
                    key, value = self._first_item(right)
                    node.keys[i], node.values[i] = key, value
                    node = right
                    continue
                # Case 2c: both children are minimal; merge them around the key, go on below.
                self._merge(node, i, left, right)
                node = left
                continue
            node = self._fill_child(node, i)

    def _fill_child(self, node: Node, i: int) -> Node:
        """Return the node to descend into for child i, first bringing it up to >= t keys."""
        t = self.t
        child = self.store.read(node.children[i])
        if len(child.keys) >= t:
            return child
        left = self.store.read(node.children[i - 1]) if i > 0 else None
        if left is not None and len(left.keys) >= t:
            # Case 3a, from the left: the separator comes down, the left's last key goes up.
            child.keys.insert(0, node.keys[i - 1])
            child.values.insert(0, node.values[i - 1])
            node.keys[i - 1] = left.keys.pop()
            node.values[i - 1] = left.values.pop()
            if left.children:
                child.children.insert(0, left.children.pop())
            return child
        right = self.store.read(node.children[i + 1]) if i < len(node.keys) else None
        if right is not None and len(right.keys) >= t:
            # Case 3a, from the right: the mirror image.
            child.keys.append(node.keys[i])
            child.values.append(node.values[i])
            node.keys[i] = right.keys.pop(0)
            node.values[i] = right.values.pop(0)
            if right.children:
                child.children.append(right.children.pop(0))
            return child
        # Case 3b: both siblings are minimal too; merge with one of them.
        if right is not None:
            self._merge(node, i, child, right)
            return child
        assert left is not None  # a non-root node has at least one sibling
        self._merge(node, i - 1, left, child)
        return left

    def _merge(self, node: Node, i: int, left: Node, right: Node) -> None:
        """Fold separator node.keys[i] and ``right`` (child i + 1) into ``left`` (child i)."""
        left.keys.append(node.keys.pop(i))
        left.values.append(node.values.pop(i))
        left.keys.extend(right.keys)
        left.values.extend(right.values)
        left.children.extend(right.children)
        self.store.free(node.children.pop(i + 1))

    def _last_item(self, node: Node) -> tuple[Any, Any]:
        while node.children:
            node = self.store.read(node.children[-1])
        return node.keys[-1], node.values[-1]

    def _first_item(self, node: Node) -> tuple[Any, Any]:
        while node.children:
            node = self.store.read(node.children[0])
        return node.keys[0], node.values[0]
