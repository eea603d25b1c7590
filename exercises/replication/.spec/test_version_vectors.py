"""Hidden specs for the version vectors: descends, concurrent, merge, reconcile."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from replication import Version, concurrent, descends, merge, reconcile

from grader.spectools import called, step

ACTORS = st.sampled_from(["a", "b", "c"])
VECTORS = st.dictionaries(ACTORS, st.integers(min_value=1, max_value=4), max_size=3)

DESCENDS = [
    ({}, {}, True, "empty_vs_empty"),
    ({"a": 1}, {}, True, "anything_descends_empty"),
    ({}, {"a": 1}, False, "empty_does_not_descend"),
    ({"a": 2}, {"a": 1}, True, "bigger_counter"),
    ({"a": 1}, {"a": 2}, False, "smaller_counter"),
    ({"a": 1}, {"a": 1}, True, "equal"),
    ({"a": 2, "b": 1}, {"a": 1}, True, "more_actors"),
    ({"a": 2}, {"a": 1, "b": 1}, False, "missing_actor_counts_as_zero"),
    ({"a": 1, "b": 0}, {"a": 1}, True, "explicit_zero"),
    ({"a": 1}, {"a": 1, "b": 0}, True, "explicit_zero_on_the_right"),
    ({"a": 2, "b": 1}, {"a": 1, "b": 2}, False, "crossed"),
]


@pytest.mark.parametrize(
    ("a", "b", "want"), [c[:3] for c in DESCENDS], ids=[c[3] for c in DESCENDS]
)
def test_descends(a, b, want):
    """descends(a, b) is true exactly when a[k] >= b[k] for every actor k (a missing actor counts as 0)."""
    with step(f"descends({a!r}, {b!r})"):
        got = descends(a, b)
    assert got is want, called(f"descends({a!r}, {b!r})", got, want)


CONCURRENT = [
    ({"a": 2, "b": 1}, {"a": 1, "b": 2}, True, "crossed"),
    ({"a": 1}, {"b": 1}, True, "disjoint_actors"),
    ({"a": 1}, {"a": 1}, False, "equal"),
    ({"a": 2}, {"a": 1}, False, "one_descends"),
    ({}, {"a": 1}, False, "empty_and_one"),
]


@pytest.mark.parametrize(
    ("a", "b", "want"), [c[:3] for c in CONCURRENT], ids=[c[3] for c in CONCURRENT]
)
def test_concurrent(a, b, want):
    """concurrent(a, b) is true exactly when neither vector descends from the other."""
    with step(f"concurrent({a!r}, {b!r})"):
        got = concurrent(a, b)
    assert got is want, called(f"concurrent({a!r}, {b!r})", got, want)


@pytest.mark.points(2)
@given(VECTORS, VECTORS)
@example({}, {})
@example({"a": 2}, {"a": 1, "b": 3})
@example({"a": 1, "b": 1}, {"b": 4})
def test_merge_is_the_pointwise_maximum(a, b):
    """merge(a, b) is the pointwise maximum: it descends from both and from nothing more."""
    with step(f"merge({a!r}, {b!r})"):
        got = merge(a, b)
    want = {k: max(a.get(k, 0), b.get(k, 0)) for k in {*a, *b}}
    got_nonzero = {k: v for k, v in dict(got).items() if v}
    assert got_nonzero == want, called(f"merge({a!r}, {b!r})", dict(got), want)


def test_merge_leaves_its_arguments_alone():
    """merge returns a new vector and never changes its arguments."""
    a, b = {"a": 1}, {"a": 3, "b": 2}
    with step("merge({'a': 1}, {'a': 3, 'b': 2})"):
        merge(a, b)
    assert (a, b) == ({"a": 1}, {"a": 3, "b": 2}), called(
        "merge({'a': 1}, {'a': 3, 'b': 2}); then read its arguments",
        (a, b),
        ({"a": 1}, {"a": 3, "b": 2}),
    )


def v(value: str, **clock: int) -> Version:
    return Version(value, clock)


def show(versions) -> list:
    return [(x.value, dict(x.clock)) for x in versions]


RECONCILE = [
    ([], [], "nothing"),
    ([v("x", a=1)], [v("x", a=1)], "one"),
    ([v("old", a=1), v("new", a=2)], [v("new", a=2)], "newer_replaces_older"),
    ([v("new", a=2), v("old", a=1)], [v("new", a=2)], "older_after_newer_is_dropped"),
    ([v("x", a=1), v("y", b=1)], [v("x", a=1), v("y", b=1)], "concurrent_are_siblings"),
    ([v("x", a=1), v("x", a=1)], [v("x", a=1)], "same_clock_once"),
    (
        [v("x", a=1), v("y", b=1), v("x", a=1)],
        [v("x", a=1), v("y", b=1)],
        "same_clock_keeps_first_place",
    ),
    (
        [v("x", a=1), v("y", b=1), v("z", a=1, b=1, c=1)],
        [v("z", a=1, b=1, c=1)],
        "a_merge_write_resolves_siblings",
    ),
    (
        [v("x", a=2), v("y", b=1), v("z", a=1, b=1)],
        [v("x", a=2), v("z", a=1, b=1)],
        "resolves_only_what_it_saw",
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("given_", "want"), [c[:2] for c in RECONCILE], ids=[c[2] for c in RECONCILE]
)
def test_reconcile(given_, want):
    """reconcile keeps the versions no other one descends from, each clock once, in first-seen order."""
    with step(f"reconcile({show(given_)})"):
        got = reconcile(list(given_))
    assert show(got) == show(want), called(f"reconcile({show(given_)})", show(got), show(want))


@given(st.lists(st.builds(Version, st.sampled_from("xyz"), VECTORS), max_size=6))
@example([])
@example([Version("x", {"a": 1}), Version("y", {"b": 1}), Version("z", {"a": 1, "b": 1})])
def test_reconcile_keeps_exactly_the_maximal_versions(versions):
    """Every version reconcile drops is descended from one it keeps, and the kept ones are concurrent."""
    with step(f"reconcile({show(versions)})"):
        got = list(reconcile(list(versions)))
    call = f"reconcile({show(versions)})"
    for x, y in ((x, y) for i, x in enumerate(got) for y in got[i + 1 :]):
        assert concurrent_ok(x.clock, y.clock), called(
            call, show(got), "only mutually concurrent versions"
        )
    for x in versions:
        assert any(all(k.clock.get(a, 0) >= n for a, n in x.clock.items()) for k in got), called(
            call, show(got), f"a kept version that descends from {show([x])[0]}"
        )


def concurrent_ok(a, b) -> bool:
    ge = all(a.get(k, 0) >= n for k, n in b.items())
    le = all(b.get(k, 0) >= n for k, n in a.items())
    return not ge and not le
