"""Examples of a working B-tree index. Run them with `nox -s try -- btree_index`."""

import pytest

try:
    from btree_index import BTree, PageStore
except ImportError as err:
    raise ImportError(
        "MISSING CLASS --> could not import BTree and PageStore from btree_index.py"
    ) from err


class CountingStore(PageStore):
    """A PageStore that counts reads, the way the hidden specs count node visits."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, page_id):
        self.reads += 1
        return super().read(page_id)


def test_insert_then_search():
    tree = BTree(2)
    for key in [10, 20, 5, 6, 12, 30, 7, 17]:
        tree.insert(key, str(key))
    assert tree.search(12) == "12", "Called tree.search(12); expected '12'"
    assert 7 in tree and 8 not in tree, "Called 7 in tree / 8 in tree; expected True / False"
    assert len(tree) == 8, f"Called len(tree); returned {len(tree)}; expected 8"
    with pytest.raises(KeyError):
        tree.search(8)


def test_insert_replaces_existing_value():
    tree = BTree(2)
    for key in range(10):
        tree.insert(key, "old")
    tree.insert(3, "new")
    assert tree.search(3) == "new", f"Called tree.search(3); returned {tree.search(3)!r}"
    assert len(tree) == 10, f"Called len(tree) after a replace; returned {len(tree)}; expected 10"


def test_iteration_and_half_open_range():
    tree = BTree(3)
    for key in [50, 10, 40, 20, 30, 0, 60]:
        tree.insert(key, key * 2)
    assert list(tree) == [0, 10, 20, 30, 40, 50, 60], f"Called list(tree); returned {list(tree)}"
    got = list(tree.range(10, 40))
    assert got == [(10, 20), (20, 40), (30, 60)], f"Called list(tree.range(10, 40)); returned {got}"
    assert (tree.min(), tree.max()) == (0, 60), "Called tree.min(), tree.max(); expected (0, 60)"


def test_delete():
    tree = BTree(2)
    for key in range(20):
        tree.insert(key, key)
    for key in range(0, 20, 2):
        tree.delete(key)
    assert list(tree) == list(range(1, 20, 2)), f"Called list(tree); returned {list(tree)}"
    with pytest.raises(KeyError):
        tree.delete(4)


def test_root_page_and_children_are_page_ids():
    store = PageStore()
    tree = BTree(2, store=store)
    for key in range(4):  # the fourth key splits the root: 2t - 1 = 3 keys fill a node
        tree.insert(key, key)
    root = store.read(tree.root)
    assert root.keys == [1], f"root keys are {root.keys}; expected [1] (the median moved up)"
    left, right = (store.read(page_id) for page_id in root.children)
    assert (left.keys, right.keys) == ([0], [2, 3]), f"children hold {left.keys}, {right.keys}"


def test_search_reads_one_page_per_level():
    store = CountingStore()
    tree = BTree(3, store=store)
    for key in range(1000):
        tree.insert(key, key)
    store.reads = 0
    tree.search(777)
    # 1000 keys with t = 3 fit in a tree of height <= log_3(500.5) ~ 5.7: at most 6 pages.
    assert store.reads <= 6, f"tree.search(777) read {store.reads} pages; expected at most 6"


def test_minimum_degree_is_at_least_two():
    with pytest.raises(ValueError):
        BTree(1)
