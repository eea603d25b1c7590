"""Examples of working placements. Run them with `nox -s try -- sharding`."""

import pytest

try:
    from sharding import (
        HashRing,
        JumpRouter,
        Move,
        RangeRouter,
        Rendezvous,
        jump_hash,
        key_hash,
        plan_moves,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import key_hash, jump_hash, JumpRouter, HashRing, Rendezvous, "
        "RangeRouter, Move and plan_moves from sharding.py"
    ) from err

KEYS = [f"user:{i}" for i in range(1000)]


def test_key_hash_is_64_bits_of_sha256():
    # sha256(b"").hexdigest() starts e3b0c44298fc1c14...
    assert key_hash("") == 0xE3B0C44298FC1C14, f"Called key_hash(''); returned {key_hash('')}"
    assert key_hash("user:1") == key_hash(b"user:1"), (
        "Called key_hash('user:1') and key_hash(b'user:1')"
    )


def test_jump_hash_on_the_papers_algorithm():
    assert jump_hash(42, 57) == 43, (
        f"Called jump_hash(42, 57); returned {jump_hash(42, 57)}; expected 43"
    )
    assert jump_hash(256, 1024) == 520, (
        f"Called jump_hash(256, 1024); returned {jump_hash(256, 1024)}"
    )
    with pytest.raises(ValueError):
        jump_hash(1, 0)


def test_a_joining_node_only_takes_keys():
    for make in (JumpRouter, Rendezvous, lambda nodes: HashRing(nodes, vnodes=50)):
        before, after = make(["a", "b", "c"]), make(["a", "b", "c"])
        after.add("d")
        moves = plan_moves(before, after, KEYS)
        assert all(move.target == "d" for move in moves), (
            f"{type(before).__name__}: a key moved between old nodes"
        )
        assert 150 <= len(moves) <= 350, (
            f"{type(before).__name__}: {len(moves)} of 1000 keys moved; expected ~250"
        )


def test_ring_key_on_a_point_belongs_to_it():
    ring = HashRing(["a", "b", "c"], vnodes=4)
    assert ring.node_for("b#2") == "b", (
        f"Called ring.node_for('b#2'); returned {ring.node_for('b#2')!r}"
    )


def test_plan_moves():
    before, after = JumpRouter(["a", "b"]), JumpRouter(["a", "b", "c"])
    moves = plan_moves(before, after, KEYS)
    assert moves and all(isinstance(m, Move) and m.source == before.node_for(m.key) for m in moves)


def test_range_router_split_and_scan():
    router = RangeRouter("n0")
    router.split("m", "n1")
    assert router.node_for("lzz") == "n0" and router.node_for("m") == "n1", (
        "the key 'm' opens the range [m, ...)"
    )
    assert [r.start for r in router.ranges_for("a", "m")] == [""], (
        "a scan of [a, m) never visits [m, ...)"
    )
    assert router.split_hot({"p": 4, "q": 1, "r": 3}, 5) == "q", (
        "the split key that best balances 4 + 1 + 3 is q"
    )
    assert [r.start for r in router.ranges] == ["", "m", "q"]
