"""Hidden specs for sharding: range sharding with split points, scans, and hot-range splits."""

from __future__ import annotations

import pytest
from _helpers import CountingKey, OracleRanges, as_tuples, describe, outcome
from hypothesis import example, given
from hypothesis import strategies as st
from sharding import Range, RangeRouter

from grader.spectools import called, short, step


def router_with(splits: list[tuple[str, str | None]], first: str = "n0") -> RangeRouter:
    """A RangeRouter on ``first``, split at each (point, node) in order."""
    with step(f"RangeRouter({first!r})"):
        router = RangeRouter(first)
    for at, node in splits:
        with step(f"router.split({at!r}, {node!r})"):
            router.split(at, node)
    return router


SPLITS = [("m", "n1"), ("f", "n2"), ("t", None), ("m5", "n3")]
RANGES = [
    ("", "f", "n0"),
    ("f", "m", "n2"),
    ("m", "m5", "n1"),
    ("m5", "t", "n3"),
    ("t", None, "n1"),
]


@pytest.mark.points(1)
def test_a_new_router_has_one_range_covering_every_key():
    """RangeRouter(node) starts with one range, Range("", None, node), holding every key."""
    router = router_with([])
    got = as_tuples(router.ranges)
    assert got == [("", None, "n0")], called("RangeRouter('n0').ranges", got, [("", None, "n0")])
    for key in ("", "a", "zzz", "\U0010ffff"):
        with step(f"router.node_for({key!r})"):
            node = router.node_for(key)
        assert node == "n0", called(f"RangeRouter('n0').node_for({key!r})", node, "n0")


@pytest.mark.points(2)
def test_splits_cut_ranges_in_key_order():
    """split(at, node) cuts the range holding at into [start, at) and [at, end), the upper half on node."""
    router = router_with(SPLITS)
    want = RANGES
    got = as_tuples(router.ranges)
    assert got == want, called(f"router.ranges after splits {SPLITS}", got, want)
    assert all(isinstance(r, Range) for r in router.ranges), called(
        "router.ranges", [type(r).__name__ for r in router.ranges], "Range objects"
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("l", "n2"),
        ("lzzz", "n2"),
        ("m", "n1"),
        ("m\x00", "n1"),
        ("m4", "n1"),
        ("m5", "n3"),
        ("", "n0"),
        ("zz", "n1"),
    ],
    ids=[
        "l",
        "lzzz-below-m",
        "m-the-split-point",
        "m-plus-NUL",
        "m4",
        "m5-the-split-point",
        "empty",
        "zz",
    ],
)
def test_a_key_equal_to_a_split_point_opens_the_upper_range(key, want):
    """A key equal to a split point belongs to the range it starts; a key just below belongs to the range before."""
    router = router_with(SPLITS)
    with step(f"router.node_for({key!r})"):
        got = router.node_for(key)
    assert got == want, called(
        f"router.node_for({key!r}) with ranges split at f, m, m5, t", got, want
    )
    with step(f"router.range_for({key!r})"):
        holding = router.range_for(key)
    want_range = next(r for r in RANGES if r[0] <= key and (r[1] is None or key < r[1]))
    got_range = (holding.start, holding.end, holding.node)
    assert got_range == want_range, called(f"router.range_for({key!r})", got_range, want_range)
    assert key in holding, called(f"{key!r} in router.range_for({key!r})", False, True)


@pytest.mark.points(1)
@pytest.mark.parametrize("at", ["", "f", "m", "t"], ids=lambda a: f"at={a!r}")
def test_splitting_at_an_existing_boundary_raises_value_error(at):
    """split(at) raises ValueError when at already starts a range ("" included), and changes nothing."""
    router = router_with(SPLITS)
    before = as_tuples(router.ranges)
    result = outcome(router.split, at, "nX")
    assert result[0] == "raised" and isinstance(result[1], ValueError), (
        f"Called router.split({at!r}, 'nX') where {at!r} already starts a range; {describe(result)}; expected ValueError"
    )
    after = as_tuples(router.ranges)
    assert after == before, called(f"router.ranges after the refused split({at!r})", after, before)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("lo", "hi", "want_starts"),
    [
        ("a", "z", ["", "f", "m", "m5", "t"]),
        ("g", "h", ["f"]),
        ("f", "m", ["f"]),
        ("e", "m", ["", "f"]),
        ("f", "m\x00", ["f", "m"]),
        ("m5", "m5\x00", ["m5"]),
        ("m", "m", []),
        ("t", "a", []),
        ("u", "\U0010ffff", ["t"]),
    ],
    ids=[
        "a..z",
        "g..h",
        "f..m-exact",
        "e..m",
        "f..m-plus-NUL",
        "one-key",
        "empty",
        "reversed",
        "tail",
    ],
)
def test_a_scan_visits_only_the_ranges_it_overlaps(lo, hi, want_starts):
    """ranges_for(lo, hi) is the ranges holding a key lo <= key < hi, in order; a range starting at hi is not one."""
    router = router_with(SPLITS)
    with step(f"router.ranges_for({lo!r}, {hi!r})"):
        got = [r.start for r in router.ranges_for(lo, hi)]
    assert got == want_starts, called(
        f"router.ranges_for({lo!r}, {hi!r}) (the starts)", got, want_starts
    )


KEY = st.text(alphabet="abcmz\x00", max_size=4)


@pytest.mark.points(3)
@given(
    splits=st.lists(KEY, max_size=12), probes=st.lists(st.tuples(KEY, KEY), min_size=1, max_size=8)
)
@example(splits=["m"], probes=[("m", "m"), ("", "m"), ("m", "m\x00")])
@example(splits=["a", "b"], probes=[("a", "b"), ("", "a"), ("b", "z")])
@example(splits=[], probes=[("", "")])
def test_ranges_agree_with_a_model_after_any_splits(splits, probes):
    """After any sequence of splits, ranges, node_for and ranges_for agree with a plain model."""
    router, model = router_with([]), OracleRanges("n0")
    for i, at in enumerate(splits):
        if at in model.starts:
            continue
        model.split(at, f"n{i + 1}")
        with step(f"router.split({at!r}, 'n{i + 1}') after splits {splits[:i]}"):
            router.split(at, f"n{i + 1}")
    got = as_tuples(router.ranges)
    assert got == model.ranges(), called(
        f"router.ranges after splits {splits}", got, model.ranges()
    )
    for lo, hi in probes:
        with step(f"router.node_for({lo!r}), router.ranges_for({lo!r}, {hi!r})"):
            node, scan = router.node_for(lo), as_tuples(router.ranges_for(lo, hi))
        want = model.nodes[model.index(lo)]
        assert node == want, called(f"router.node_for({lo!r}) after splits {splits}", node, want)
        assert scan == model.ranges_for(lo, hi), called(
            f"router.ranges_for({lo!r}, {hi!r}) after splits {splits}",
            scan,
            model.ranges_for(lo, hi),
        )


@pytest.mark.points(2)
def test_finding_a_range_is_a_binary_search():
    """node_for over 1024 ranges makes at most 4 x log2(1024) = 40 key comparisons (a binary search, not a scan)."""
    router = router_with([])
    for i in range(1, 1024):
        with step(f"router.split({f'k{i:05d}'!r})"):
            router.split(f"k{i:05d}")
    for probe in ("k00000", "k00511x", "k01023", "zzz"):
        key = CountingKey(probe)
        CountingKey.comparisons = 0
        with step(f"router.node_for({probe!r})"):
            router.node_for(key)
        count = CountingKey.comparisons
        assert count <= 40, (
            f"router.node_for({probe!r}) over 1024 ranges compared the key {count} times; expected at most 40"
        )


# -- hot-range splits -----------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("threshold", "splits"), [(20, False), (19, True), (21, False)], ids=["at", "below", "above"]
)
def test_a_range_splits_only_when_its_load_exceeds_the_threshold(threshold, splits):
    """split_hot(load, threshold) splits the hottest range only when its load is greater than threshold."""
    router = router_with([])
    load = {"a": 5, "b": 5, "c": 10}  # total 20
    with step(f"router.split_hot({load}, {threshold})"):
        got = router.split_hot(load, threshold)
    after = as_tuples(router.ranges)
    if splits:
        want = [("", "c", "n0"), ("c", None, "n0")]
        assert (got, after) == ("c", want), called(
            f"router.split_hot({load}, {threshold})", (got, after), ("c", want)
        )
    else:
        want = [("", None, "n0")]
        assert (got, after) == (None, want), called(
            f"router.split_hot({load}, {threshold}) with load 20", (got, after), (None, want)
        )


@pytest.mark.points(2)
def test_a_hot_split_balances_the_load_of_the_hottest_range():
    """split_hot picks the hottest range and splits it at the key that best balances its load."""
    router = router_with([("m", "n1")])
    load = {"b": 1, "c": 1, "n": 1, "p": 7, "q": 1, "r": 1, "s": 2, "x": 3}  # [m, -) carries 15
    with step(f"router.split_hot({load}, 10)"):
        got = router.split_hot(load, 10)
    # left of "q" is n + p = 8, right is 7: imbalance 1; at "s" 10 vs 5; at "p" 1 vs 14.
    want = [("", "m", "n0"), ("m", "q", "n1"), ("q", None, "n1")]
    after = as_tuples(router.ranges)
    assert (got, after) == ("q", want), called(
        f"router.split_hot({load}, 10)", (got, after), ("q", want)
    )


@pytest.mark.points(1)
def test_a_hot_split_breaks_ties_toward_the_smaller_key():
    """When two split keys balance the load equally, split_hot takes the smaller one."""
    router = router_with([])
    load = {"a": 2, "b": 2, "c": 2}  # at b: 2 vs 4; at c: 4 vs 2
    with step(f"router.split_hot({load}, 0)"):
        got = router.split_hot(load, 0)
    assert got == "b", called(f"router.split_hot({load}, 0)", got, "b")


@pytest.mark.points(1)
def test_the_first_of_two_equally_hot_ranges_is_split():
    """When two ranges carry the same greatest load, split_hot splits the first in key order."""
    router = router_with([("m", "n1")])
    load = {"a": 3, "b": 3, "n": 3, "o": 3}  # both ranges carry 6
    with step(f"router.split_hot({load}, 5)"):
        got = router.split_hot(load, 5)
    want = [("", "b", "n0"), ("b", "m", "n0"), ("m", None, "n1")]
    after = as_tuples(router.ranges)
    assert (got, after) == ("b", want), called(
        f"router.split_hot({load}, 5)", (got, after), ("b", want)
    )


@pytest.mark.points(2)
def test_one_hot_key_cannot_be_split():
    """A hot range whose load is all on one key is not split: split_hot returns None and changes nothing."""
    router = router_with([("m", "n1")])
    load = {"p": 100, "q": 0, "a": 3}
    before = as_tuples(router.ranges)
    with step(f"router.split_hot({load}, 10)"):
        got = router.split_hot(load, 10)
    after = as_tuples(router.ranges)
    assert (got, after) == (None, before), called(
        f"router.split_hot({load}, 10)", (got, after), (None, before)
    )


@pytest.mark.points(2)
@given(
    splits=st.lists(KEY, max_size=5),
    load=st.dictionaries(KEY, st.integers(0, 9), max_size=10),
    threshold=st.integers(0, 30),
)
@example(
    splits=["m"], load={"a": 3, "b": 3, "m": 3, "n": 3}, threshold=2
)  # equal: the first is hottest
@example(splits=[], load={"": 4, "\x00": 4}, threshold=7)
@example(splits=[], load={}, threshold=0)
def test_hot_splits_agree_with_a_model(splits, load, threshold):
    """split_hot agrees with a plain model on any ranges and loads (hottest range, threshold, split key)."""
    router, model = router_with([]), OracleRanges("n0")
    for at in splits:
        if at not in model.starts:
            model.split(at)
            with step(f"router.split({at!r})"):
                router.split(at)
    want = model.split_hot(dict(load), threshold)
    with step(f"router.split_hot({load}, {threshold}) after splits {splits}"):
        got = router.split_hot(dict(load), threshold)
    after = as_tuples(router.ranges)
    assert (got, after) == (want, model.ranges()), called(
        f"router.split_hot({short(load)}, {threshold}) after splits {splits}",
        (got, after),
        (want, model.ranges()),
    )
