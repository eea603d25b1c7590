"""Spec helpers for btree_index: a counting page store and a checker of the CLRS invariants.

The checker walks the tree through the store's own page table, never through ``store.read``,
so checking a tree costs the learner no page reads and trusts none of the learner's methods.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from btree_index import BTree

from grader.spectools import short


class CountingStore:
    """The "disk": a page table that logs every page read, and refuses unknown pages loudly.

    A bad page id raises AssertionError, not KeyError, so a learner's ``except KeyError``
    (for a missing key) cannot swallow it and hide a dangling pointer.
    """

    def __init__(self) -> None:
        self.pages: dict[int, Any] = {}
        self.reads: list[int] = []
        self.freed: set[int] = set()
        self._next_id = 1

    def allocate(self, node: Any) -> int:
        page_id = self._next_id
        self._next_id += 1
        self.pages[page_id] = node
        return page_id

    def read(self, page_id: int) -> Any:
        if page_id not in self.pages:
            state = "was freed" if page_id in self.freed else "was never allocated"
            raise AssertionError(f"store.read({short(page_id)}): that page {state}")
        self.reads.append(page_id)
        return self.pages[page_id]

    def free(self, page_id: int) -> None:
        if page_id not in self.pages:
            state = "was already freed" if page_id in self.freed else "was never allocated"
            raise AssertionError(f"store.free({short(page_id)}): that page {state}")
        del self.pages[page_id]
        self.freed.add(page_id)


class Traced:
    """The learner's tree, with every call described when it raises something unexpected.

    A spec calls ``tree.delete(7)`` and then ``len(tree)``; if ``len`` raises, the learner
    reads "Called tree.delete(7) on a tree of 40 keys; then len(tree) raised ValueError: ..."
    instead of a bare exception. The key count comes from the keys the spec put in and took
    out (calls that returned), never from the learner's code. The exceptions a call may raise
    by contract (``KeyError`` from search and delete, ``ValueError`` from min and max) pass
    through unchanged; so does ``NotImplementedError`` (an untouched stub). Attributes
    (``root``, ``store``, ``t``) are the learner tree's own.
    """

    def __init__(self, tree: BTree, keys: Iterable[Any] = ()) -> None:
        self.__dict__["_tree"] = tree
        self.__dict__["_keys"] = set(keys)
        self.__dict__["_last"] = ""  # the last insert or delete, described

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tree, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tree, name, value)

    @contextlib.contextmanager
    def _calling(
        self, text: str, allowed: tuple[type[BaseException], ...] = (), *, changes: bool = False
    ) -> Iterator[str]:
        """Run a call of the learner's tree; word anything unexpected it raises.

        A call that changes the tree is described on its own ("Called tree.delete(7) on a tree
        of 40 keys; raised ..."); a call that reads it after the last change names that change
        too ("Called tree.delete(7) on a tree of 40 keys; then len(tree) raised ...").
        """
        here = f"{text} on a tree of {plural(len(self._keys), 'key')}"
        if changes or not self._last:
            what, verb = f"Called {here}", "; raised"
        else:
            what, verb = f"Called {self._last}; then {text}", " raised"
        try:
            yield here
        except (NotImplementedError, *allowed):
            raise
        except AssertionError as exc:  # the counting store refused a page id
            raise AssertionError(f"{what}; {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - shown to the learner, worded
            raise AssertionError(f"{what}{verb} {type(exc).__name__}: {exc}") from exc

    def _changed(self, here: str) -> None:
        self.__dict__["_last"] = here

    def insert(self, key: Any, value: Any) -> None:
        text = f"tree.insert({short(key, 40)}, {short(value, 40)})"
        with self._calling(text, changes=True) as here:
            self._tree.insert(key, value)
        self._keys.add(key)
        self._changed(here)

    def delete(self, key: Any) -> None:
        with self._calling(f"tree.delete({short(key, 40)})", (KeyError,), changes=True) as here:
            try:
                self._tree.delete(key)
            finally:
                self._changed(here)
        self._keys.discard(key)

    def search(self, key: Any) -> Any:
        with self._calling(f"tree.search({short(key, 40)})", (KeyError,)):
            return self._tree.search(key)

    def min(self) -> Any:
        with self._calling("tree.min()", (ValueError,)):
            return self._tree.min()

    def max(self) -> Any:
        with self._calling("tree.max()", (ValueError,)):
            return self._tree.max()

    def __len__(self) -> int:
        with self._calling("len(tree)"):
            return len(self._tree)

    def __contains__(self, key: Any) -> bool:
        with self._calling(f"{short(key, 40)} in tree"):
            return key in self._tree

    def _lazily(self, text: str, make: Callable[[], Any]) -> Iterator[Any]:
        with self._calling(text):
            items = iter(make())
        while True:
            with self._calling(f"next() on {text}"):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    def range(self, lo: Any, hi: Any) -> Iterator[tuple[Any, Any]]:
        return self._lazily(
            f"tree.range({short(lo, 40)}, {short(hi, 40)})", lambda: self._tree.range(lo, hi)
        )

    def items(self) -> Iterator[tuple[Any, Any]]:
        return self._lazily("tree.items()", self._tree.items)

    def __iter__(self) -> Iterator[Any]:
        return self._lazily("iter(tree)", lambda: iter(self._tree))


def new_tree(t: int) -> tuple[Traced, CountingStore]:
    store = CountingStore()
    return Traced(BTree(t, store=store)), store


def build(t: int, keys: Iterable[Any], value=lambda k: f"v{k}") -> tuple[Traced, CountingStore]:
    """A tree of minimum degree t holding ``keys`` (inserted in the given order)."""
    tree, store = new_tree(t)
    for key in keys:
        tree.insert(key, value(key))
    return tree, store


def shuffled(n: int, seed: int) -> list[int]:
    keys = list(range(n))
    random.Random(seed).shuffle(keys)
    return keys


def node_at(store: CountingStore, page_id: Any, where: str) -> Any:
    if not isinstance(page_id, int) or isinstance(page_id, bool):
        raise AssertionError(
            f"{where}: expected a page id (an int from store.allocate), got {short(page_id)}"
        )
    if page_id not in store.pages:
        raise AssertionError(f"{where}: page {page_id} is not in the store (freed or never made)")
    return store.pages[page_id]


def root_node(tree: BTree, store: CountingStore) -> Any:
    return node_at(store, tree.root, "tree.root")


def height(tree: BTree, store: CountingStore) -> int:
    """Edges from the root down to a leaf (0 for a lone root)."""
    node, h = root_node(tree, store), 0
    while node.children:
        node, h = store.pages[node.children[0]], h + 1
    return h


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def scan_mismatch(call: str, got: list, want: list, *, pairs: bool = True) -> str:
    """A readable message for a scan that returned the wrong items: what differs, not everything."""
    unit = "pair" if pairs else "key"
    message = f"Called {call}; returned {plural(len(got), unit)}; expected {len(want)}"
    got_keys = [item[0] if pairs and isinstance(item, tuple) and item else item for item in got]
    want_keys = [item[0] for item in want] if pairs else list(want)
    missing = [k for k in want_keys if k not in got_keys]
    extra = [k for k in got_keys if k not in want_keys]
    if missing:
        message += f"; missing keys {short(missing, 60)}"
    if extra:
        message += f"; unexpected keys {short(extra, 60)}"
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            message += (
                f"; first difference at position {i}: got {short(g, 40)}, expected {short(w, 40)}"
            )
            break
    return message


def describe(path: list[int]) -> str:
    return "the root" if not path else "node at child path " + "/".join(map(str, path))


def check(tree: BTree, store: CountingStore, t: int, model: dict | None = None, after: str = ""):
    """Fail with a readable message unless the tree satisfies every CLRS invariant.

    With ``model`` (a dict), also compare the contents and ``len(tree)`` against it.
    """
    prefix = f"after {after}: " if after else ""
    leaf_depths: set[int] = set()
    seen: set[int] = set()
    items: list[tuple[Any, Any]] = []

    def fail(message: str) -> None:
        raise AssertionError(prefix + message)

    def visit(page_id: int, path: list[int], lo: Any, hi: Any, has_lo: bool, has_hi: bool):
        where = describe(path)
        node = node_at(store, page_id, prefix + where)
        if page_id in seen:
            fail(f"page {page_id} is reachable twice (at {where}): a tree has no shared nodes")
        seen.add(page_id)
        keys, values, children = list(node.keys), list(node.values), list(node.children)
        if len(values) != len(keys):
            fail(f"{where} has {len(keys)} keys but {len(values)} values")
        is_root = not path
        if not is_root and not t - 1 <= len(keys) <= 2 * t - 1:
            fail(
                f"{where} holds {plural(len(keys), 'key')} {short(keys, 80)}; every node but the root "
                f"must hold t-1..2t-1 = {t - 1}..{2 * t - 1} keys"
            )
        if is_root and len(keys) > 2 * t - 1:
            fail(f"the root holds {len(keys)} keys; at most 2t-1 = {2 * t - 1} are allowed")
        if is_root and not keys and children:
            fail("the root holds no keys but has children: an emptied root must be replaced")
        for a, b in zip(keys, keys[1:], strict=False):
            if not a < b:
                fail(f"keys of {where} are not strictly increasing: {short(keys, 80)}")
        for key in keys:
            if (has_lo and not lo < key) or (has_hi and not key < hi):
                bound = f"({short(lo, 30) if has_lo else '-inf'}, {short(hi, 30) if has_hi else '+inf'})"
                fail(
                    f"key {short(key, 30)} in {where} lies outside the range {bound} "
                    "set by the separators above it"
                )
        if children and len(children) != len(keys) + 1:
            fail(f"{where} is internal with {len(keys)} keys but {len(children)} children")
        if not children:
            leaf_depths.add(len(path))
            items.extend(zip(keys, values, strict=True))
            return
        for i, child in enumerate(children):
            node_at(store, child, f"{prefix}{where}, children[{i}]")
            child_lo, child_has_lo = (keys[i - 1], True) if i > 0 else (lo, has_lo)
            child_hi, child_has_hi = (keys[i], True) if i < len(keys) else (hi, has_hi)
            visit(child, [*path, i], child_lo, child_hi, child_has_lo, child_has_hi)
            if i < len(keys):
                items.append((keys[i], values[i]))

    visit(tree.root, [], None, None, False, False)
    if len(leaf_depths) > 1:
        fail(f"leaves sit at different depths {sorted(leaf_depths)}; all must be at one depth")
    n = len(items)
    h = height(tree, store)
    if n >= 1 and h > math.log((n + 1) / 2, t) + 1e-9:
        fail(f"height {h} with {n} keys exceeds log_t((n+1)/2) = {math.log((n + 1) / 2, t):.2f}")
    if model is not None:
        want = sorted(model.items())
        if items != want:
            got_keys, want_keys = [k for k, _ in items], [k for k, _ in want]
            if got_keys != want_keys:
                missing = sorted(set(want_keys) - set(got_keys))
                extra = sorted(set(got_keys) - set(want_keys))
                fail(
                    f"the tree holds the wrong keys: missing {short(missing, 60)}, "
                    f"unexpected {short(extra, 60)}, {len(got_keys)} keys in all "
                    f"(expected {len(want_keys)})"
                )
            wrong = [(k, v, model[k]) for k, v in items if model[k] != v][:3]
            fail(f"wrong values stored (key, stored, expected): {short(wrong, 100)}")
        size = len(tree)
        if size != len(model):
            fail(f"len(tree) returned {size}; the tree holds {len(model)} keys")


def search_path(tree: BTree, store: CountingStore, key: Any) -> list[int]:
    """Page ids a search for ``key`` must visit: root down to the node holding it, or a leaf."""
    page_id = tree.root
    path = [page_id]
    while True:
        node = store.pages[page_id]
        if key in node.keys or not node.children:
            return path
        i = sum(1 for k in node.keys if k < key)
        page_id = node.children[i]
        path.append(page_id)


def reachable(tree: BTree, store: CountingStore) -> set[int]:
    pages, todo = set(), [tree.root]
    while todo:
        page_id = todo.pop()
        pages.add(page_id)
        todo.extend(store.pages[page_id].children)
    return pages


def pages_holding(tree: BTree, store: CountingStore, lo: Any, hi: Any) -> int:
    """How many pages hold at least one key in [lo, hi)."""
    return sum(
        1
        for page_id in reachable(tree, store)
        if any(lo <= k < hi for k in store.pages[page_id].keys)
    )


def internal_keys(tree: BTree, store: CountingStore) -> list[Any]:
    return [
        key
        for page_id in sorted(reachable(tree, store))
        if store.pages[page_id].children
        for key in store.pages[page_id].keys
    ]
