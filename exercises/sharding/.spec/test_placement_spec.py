"""Hidden specs for sharding: jump, ring and rendezvous routers, and rebalance plans.

Placements are compared key by key with the oracles of _helpers.py (written from the contract).
The statistical bounds run on a fixed key set (user:0 .. user:3999), so they are deterministic;
the lesson derives each bound and the room it leaves.
"""

from __future__ import annotations

import math

import pytest
from _helpers import (
    KEYS,
    OracleRing,
    describe,
    nodes,
    oracle_hash,
    oracle_jump,
    oracle_rendezvous,
    outcome,
    spread,
)
from hypothesis import example, given
from hypothesis import strategies as st
from sharding import HashRing, JumpRouter, Move, Rendezvous, plan_moves

from grader.spectools import called, short, step

ROUTERS = {
    "jump": lambda ns: JumpRouter(ns),
    "ring-100": lambda ns: HashRing(ns, vnodes=100),
    "rendezvous": lambda ns: Rendezvous(ns),
}


def mismatch(node_for, oracle, keys, what: str) -> str | None:
    """The first key placed differently from the oracle, worded; None if all agree."""
    for key in keys:
        with step(f"{what}.node_for({key!r})"):
            got = node_for(key)
        want = oracle(key)
        if got != want:
            return called(f"{what}.node_for({key!r})", got, want)
    return None


def check_errors(router, name: str, present: str) -> None:
    """Duplicate add: ValueError; unknown remove: KeyError; both leave the nodes unchanged."""
    before = router.nodes
    result = outcome(router.add, present)
    assert result[0] == "raised" and isinstance(result[1], ValueError), (
        f"Called {name}.add({present!r}) for a node already there; {describe(result)}; expected ValueError"
    )
    result = outcome(router.remove, "no-such-node")
    assert result[0] == "raised" and isinstance(result[1], KeyError), (
        f"Called {name}.remove('no-such-node'); {describe(result)}; expected KeyError"
    )
    assert router.nodes == before, called(
        f"{name}.nodes after the refused calls", router.nodes, before
    )


# -- plan_moves -----------------------------------------------------------------------------


class Table:
    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    def node_for(self, key: str) -> str:
        return self.table[key]


@pytest.mark.points(2)
def test_plan_moves_lists_the_keys_that_change_node_in_key_order():
    """plan_moves(before, after, keys) has one Move(key, source, target) per key whose node changes, in key order."""
    before = Table({"a": "n1", "b": "n1", "c": "n2", "d": "n3", "e": "n2"})
    after = Table({"a": "n1", "b": "n4", "c": "n2", "d": "n1", "e": "n4"})
    keys = ["e", "a", "d", "c", "b"]
    with step("plan_moves(before, after, iter(['e', 'a', 'd', 'c', 'b']))"):
        got = list(plan_moves(before, after, iter(keys)))  # any iterable, read once
    want = [Move("e", "n2", "n4"), Move("d", "n3", "n1"), Move("b", "n1", "n4")]
    assert got == want, called(
        "plan_moves(before, after, iter(['e', 'a', 'd', 'c', 'b']))", got, want
    )
    with step("plan_moves(before, before, keys)"):
        same = list(plan_moves(before, before, keys))
    assert same == [], called("plan_moves(before, before, keys)", same, [])


# -- jump router ----------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize("n", [1, 2, 7, 10], ids=lambda n: f"{n}-nodes")
def test_jump_router_places_keys_by_jump_hash_of_key_hash(n):
    """JumpRouter sends key K to nodes[jump_hash(key_hash(K), n)]."""
    ns = nodes(n)
    with step(f"JumpRouter({ns})"):
        router = JumpRouter(ns)
    bad = mismatch(router.node_for, lambda k: oracle_jump(k, ns), KEYS[:1000], "router")
    assert bad is None, bad


@pytest.mark.points(2)
def test_jump_router_removes_only_its_last_node():
    """JumpRouter.remove accepts only the last node (ValueError for another, router unchanged)."""
    ns = nodes(4)
    with step(f"JumpRouter({ns})"):
        router = JumpRouter(ns)
    for node in ns[:-1]:
        result = outcome(router.remove, node)
        assert result[0] == "raised" and isinstance(result[1], ValueError), (
            f"Called JumpRouter({ns}).remove({node!r}); {describe(result)}; expected ValueError"
        )
        assert router.nodes == ns, called(
            f"router.nodes after remove({node!r}) was refused", router.nodes, ns
        )
    with step("router.remove('node-3')"):
        router.remove("node-3")
    assert router.nodes == ns[:3], called(
        "router.nodes after remove('node-3')", router.nodes, ns[:3]
    )
    bad = mismatch(router.node_for, lambda k: oracle_jump(k, ns[:3]), KEYS[:300], "router")
    assert bad is None, bad
    check_errors(router, "router", "node-0")
    copy = router.nodes
    copy.append("intruder")
    assert router.nodes == ns[:3], called(
        "router.nodes after appending to the list it returned", router.nodes, ns[:3]
    )
    with step("router.add('node-3') after remove('node-3')"):
        router.add("node-3")
    bad = mismatch(
        router.node_for, lambda k: oracle_jump(k, ns), KEYS[:300], "router (node-3 back)"
    )
    assert bad is None, bad


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ["jump", "ring", "rendezvous"])
def test_a_router_without_nodes_raises_lookup_error(kind):
    """node_for on a router with no nodes raises LookupError."""
    make = {"jump": JumpRouter, "ring": HashRing, "rendezvous": Rendezvous}[kind]
    with step(f"{make.__name__}()"):
        router = make()
    result = outcome(router.node_for, "user:1")
    assert result[0] == "raised" and isinstance(result[1], LookupError), (
        f"Called {make.__name__}().node_for('user:1'); {describe(result)}; expected LookupError"
    )


# -- hash ring ------------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize("vnodes", [1, 3, 100], ids=lambda v: f"vnodes={v}")
def test_ring_places_keys_on_the_next_point_clockwise(vnodes):
    """A key goes to the first ring point at or after key_hash(key), points at key_hash(f"{node}#{i}")."""
    ns = nodes(5)
    with step(f"HashRing({ns}, vnodes={vnodes})"):
        ring = HashRing(ns, vnodes=vnodes)
    bad = mismatch(ring.node_for, OracleRing(ns, vnodes).node_for, KEYS[:1500], "ring")
    assert bad is None, bad


@pytest.mark.points(2)
def test_ring_a_key_on_a_point_belongs_to_that_point():
    """A key whose hash equals a point's position belongs to that point's node (not the next one)."""
    ns = ["alpha", "beta", "gamma", "delta"]
    with step(f"HashRing({ns}, vnodes=3)"):
        ring = HashRing(ns, vnodes=3)
    for node in ns:
        for i in range(3):
            label = f"{node}#{i}"  # key_hash(label) IS the position of node's point i
            with step(f"ring.node_for({label!r})"):
                got = ring.node_for(label)
            assert got == node, called(
                f"ring.node_for({label!r}), the key at {node}'s point {i}", got, node
            )


@pytest.mark.points(2)
def test_ring_wraps_past_the_last_point():
    """A key after the last point wraps around to the first point; a key before the first point goes there too."""
    ns = ["alpha", "beta", "gamma"]
    oracle = OracleRing(ns, 1)
    first, last = oracle.points[0], oracle.points[-1]
    after_last = next(k for k in KEYS if oracle_hash(k) > last[0])
    before_first = next(k for k in KEYS if oracle_hash(k) < first[0])
    with step(f"HashRing({ns}, vnodes=1)"):
        ring = HashRing(ns, vnodes=1)
    for key, where in (
        (after_last, "after the last point"),
        (before_first, "before the first point"),
    ):
        with step(f"ring.node_for({key!r})"):
            got = ring.node_for(key)
        assert got == first[1], called(f"ring.node_for({key!r}), a key {where}", got, first[1])


NAMES = st.text(alphabet="ab#/é0", min_size=1, max_size=4)


@pytest.mark.points(2)
@given(
    names=st.lists(NAMES, min_size=1, max_size=5, unique=True),
    keys=st.lists(st.text(alphabet="ab#/é0", max_size=5), min_size=1, max_size=10),
    vnodes=st.integers(1, 4),
)
@example(names=["a"], keys=["a#0", "", "b"], vnodes=1)
@example(names=["a", "b"], keys=["b#1", "a#1", "a#0"], vnodes=2)
@example(names=["a#", "a"], keys=["a##0", "a#0"], vnodes=1)
@example(names=["é", "e"], keys=["é#0", "é"], vnodes=3)
def test_ring_agrees_with_the_contract_for_any_names_and_keys(names, keys, vnodes):
    """For any node names and keys (UTF-8 included), the ring places keys as the contract says."""
    with step(f"HashRing({names}, vnodes={vnodes})"):
        ring = HashRing(names, vnodes=vnodes)
    bad = mismatch(
        ring.node_for,
        OracleRing(names, vnodes).node_for,
        keys,
        f"HashRing({names}, vnodes={vnodes})",
    )
    assert bad is None, bad


@pytest.mark.points(2)
def test_ring_add_and_remove_keep_the_contract_placement():
    """After any adds and removes, the ring places keys exactly as a ring built from its current nodes."""
    with step("HashRing(['n1', 'n2'], vnodes=8)"):
        ring = HashRing(["n1", "n2"], vnodes=8)
    current = ["n1", "n2"]
    for action, node in [
        ("add", "n3"),
        ("add", "n4"),
        ("remove", "n1"),
        ("add", "n1"),
        ("remove", "n4"),
    ]:
        with step(f"ring.{action}({node!r}) on a ring of {current}"):
            getattr(ring, action)(node)
        current = sorted({*current, node} if action == "add" else set(current) - {node})
        assert ring.nodes == current, called(
            f"ring.nodes after ring.{action}({node!r})", ring.nodes, current
        )
        bad = mismatch(
            ring.node_for,
            OracleRing(current, 8).node_for,
            KEYS[:300],
            f"ring (after {action} {node})",
        )
        assert bad is None, bad


@pytest.mark.points(1)
@pytest.mark.parametrize("vnodes", [0, 1, 2, -1], ids=lambda v: f"vnodes={v}")
def test_ring_needs_at_least_one_virtual_node(vnodes):
    """HashRing(vnodes=v) raises ValueError for v < 1 and accepts v >= 1."""
    result = outcome(lambda: HashRing(["a", "b"], vnodes=vnodes))
    if vnodes < 1:
        assert result[0] == "raised" and isinstance(result[1], ValueError), (
            f"Called HashRing(['a', 'b'], vnodes={vnodes}); {describe(result)}; expected ValueError"
        )
    else:
        assert result[0] == "returned", (
            f"Called HashRing(['a', 'b'], vnodes={vnodes}); {describe(result)}"
        )
        ring = result[1]
        bad = mismatch(ring.node_for, OracleRing(["a", "b"], vnodes).node_for, KEYS[:200], "ring")
        assert bad is None, bad


@pytest.mark.points(1)
def test_ring_add_and_remove_refuse_bad_calls():
    """HashRing.add of a present node raises ValueError, remove of an absent one KeyError; nodes stay sorted."""
    with step("HashRing(['c', 'a', 'b'])"):
        ring = HashRing(["c", "a", "b"])
    assert ring.nodes == ["a", "b", "c"], called(
        "HashRing(['c', 'a', 'b']).nodes", ring.nodes, ["a", "b", "c"]
    )
    check_errors(ring, "ring", "a")


@pytest.mark.points(2)
def test_ring_removing_a_node_moves_only_its_keys():
    """Removing a node from the ring moves only the keys it held, each to its next point clockwise."""
    ns = nodes(6)
    with step(f"HashRing({ns}, vnodes=20)"):
        ring = HashRing(ns, vnodes=20)
        before = {k: ring.node_for(k) for k in KEYS[:2000]}
        ring.remove("node-2")
    rest = [n for n in ns if n != "node-2"]
    assert ring.nodes == rest, called("ring.nodes after remove('node-2')", ring.nodes, rest)
    oracle = OracleRing(rest, 20)
    for key, old in before.items():
        with step(f"ring.node_for({key!r}) after remove('node-2')"):
            new = ring.node_for(key)
        if old != "node-2":
            assert new == old, (
                f"{key!r} moved from {old} to {new} when node-2 left; only node-2's keys move"
            )
        else:
            assert new == oracle.node_for(key), called(
                f"ring.node_for({key!r}) after node-2 left", new, oracle.node_for(key)
            )


@pytest.mark.points(2)
@pytest.mark.parametrize("vnodes", [1, 10, 100, 1000], ids=lambda v: f"vnodes={v}")
def test_ring_load_spread_tightens_with_virtual_nodes(vnodes):
    """With 10 nodes and v virtual nodes each, the busiest node holds at most (1.15 + 3/sqrt(v)) x the mean."""
    ns = nodes(10)
    with step(f"HashRing({ns}, vnodes={vnodes})"):
        ring = HashRing(ns, vnodes=vnodes)
        got = spread(ring.node_for, 10)
    bound = 1.15 + 3 / math.sqrt(vnodes)
    assert got <= bound, (
        f"HashRing(10 nodes, vnodes={vnodes}) over {len(KEYS)} keys: the busiest node holds "
        f"{got:.3f} x the mean; expected at most {bound:.3f}"
    )


# -- rendezvous -----------------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize("n", [1, 2, 7], ids=lambda n: f"{n}-nodes")
def test_rendezvous_picks_the_highest_scoring_node(n):
    """Rendezvous sends key K to the node N with the highest key_hash(f"{N}/{K}")."""
    ns = nodes(n)
    with step(f"Rendezvous({ns})"):
        router = Rendezvous(ns)
    bad = mismatch(router.node_for, lambda k: oracle_rendezvous(k, ns), KEYS[:1000], "rendezvous")
    assert bad is None, bad


@pytest.mark.points(2)
@given(
    names=st.lists(NAMES, min_size=1, max_size=5, unique=True),
    keys=st.lists(st.text(alphabet="ab#/é0", max_size=5), min_size=1, max_size=10),
)
@example(names=["a"], keys=["", "a"])
@example(names=["a/", "a"], keys=["/b", "b"])  # "a/" for "b" and "a" for "/b" both hash "a//b"
@example(names=["é", "e"], keys=["é", "e"])
def test_rendezvous_agrees_with_the_contract_for_any_names_and_keys(names, keys):
    """For any node names and keys (UTF-8 included), rendezvous picks the node the contract says."""
    with step(f"Rendezvous({names})"):
        router = Rendezvous(names)
    bad = mismatch(
        router.node_for, lambda k: oracle_rendezvous(k, names), keys, f"Rendezvous({names})"
    )
    assert bad is None, bad


@pytest.mark.points(2)
@pytest.mark.parametrize("leaving", ["node-0", "node-3", "node-5"])
def test_rendezvous_removal_moves_only_the_removed_nodes_keys(leaving):
    """Removing a node moves only its keys, each to its next-highest-scoring node."""
    ns = nodes(6)
    with step(f"Rendezvous({ns})"):
        router = Rendezvous(ns)
        before = {k: router.node_for(k) for k in KEYS[:1500]}
        router.remove(leaving)
    rest = [n for n in ns if n != leaving]
    assert router.nodes == rest, called(
        f"router.nodes after remove({leaving!r})", router.nodes, rest
    )
    for key, old in before.items():
        with step(f"rendezvous.node_for({key!r}) after remove({leaving!r})"):
            new = router.node_for(key)
        if old != leaving:
            assert new == old, (
                f"{key!r} moved from {old} to {new} when {leaving} left; only {leaving}'s keys move"
            )
        else:
            want = oracle_rendezvous(key, rest)
            assert new == want, called(
                f"rendezvous.node_for({key!r}) after {leaving} left", new, want
            )


@pytest.mark.points(1)
def test_rendezvous_add_and_remove_refuse_bad_calls():
    """Rendezvous.add of a present node raises ValueError, remove of an absent one KeyError; nodes stay sorted."""
    with step("Rendezvous(['c', 'a', 'b'])"):
        router = Rendezvous(["c", "a", "b"])
    assert router.nodes == ["a", "b", "c"], called(
        "Rendezvous(['c', 'a', 'b']).nodes", router.nodes, ["a", "b", "c"]
    )
    check_errors(router, "rendezvous", "b")


# -- every router: joining, and the spread -------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize("n", [1, 2, 9], ids=lambda n: f"{n}-to-{n + 1}")
@pytest.mark.parametrize("kind", list(ROUTERS))
def test_a_joining_node_takes_about_its_share_and_nothing_moves_between_old_nodes(kind, n):
    """Going from n to n+1 nodes moves between 1/2 and 3/2 of 1/(n+1) of the keys, all to the new node."""
    ns = nodes(n)
    make = ROUTERS[kind]
    with step(f"{kind} router over {n} nodes, then with 'newcomer' added"):
        before, after = make(ns), make(ns)
        after.add("newcomer")
        moves = list(plan_moves(before, after, KEYS))
    strays = [m for m in moves if m.target != "newcomer"]
    assert not strays, (
        f"plan_moves({kind}: {n} nodes -> {n + 1}) moved {len(strays)} keys between old nodes, e.g. {short(strays[0])}; "
        "a joining node only takes keys"
    )
    share = len(KEYS) / (n + 1)
    assert 0.5 * share <= len(moves) <= 1.5 * share, (
        f"plan_moves({kind}: {n} nodes -> {n + 1}) over {len(KEYS)} keys moved {len(moves)}; "
        f"expected about {share:.0f} (1/{n + 1} of the keys), between {0.5 * share:.0f} and {1.5 * share:.0f}"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ["jump", "rendezvous"])
def test_jump_and_rendezvous_spread_load_evenly(kind):
    """Over 10 nodes, jump and rendezvous put at most 1.15 x the mean load on any node."""
    with step(f"{kind} router over 10 nodes"):
        router = ROUTERS[kind](nodes(10))
        got = spread(router.node_for, 10)
    assert got <= 1.15, (
        f"{kind} over 10 nodes and {len(KEYS)} keys: the busiest node holds {got:.3f} x the mean; expected at most 1.15"
    )
