"""Hidden specs for a cluster of nodes on the simulated network: quorums, staleness, convergence, siblings.

Every run is deterministic: the simulator's clock, delays, losses and partitions come from a seed.
The linearizability checker (Wing & Gong's search) lives in _helpers.py.
"""

from __future__ import annotations

import random

import pytest
from _helpers import Client, Sim, check_register

from grader.spectools import called

NAMES = ["a", "b", "c"]
TIMEOUT = 1.0


def told(call: str, history: str, expected: str) -> str:
    """Like called(), with the whole history: the learner needs every operation to see what went wrong."""
    return f"Called {call}; the history: {history}; expected {expected}"


def latest_acknowledged_before(history, t: float) -> int:
    """The index (1-based) of the last put acknowledged by time t; 0 for none."""
    index = 0
    for op in history:
        if op.kind == "put" and op.ok and op.response <= t:
            index = max(index, int(op.value[1:]))
    return index


def random_run(seed: int, r: int, w: int) -> Sim:
    """One writer and two readers at random nodes, with random delays, losses and partitions."""
    rng = random.Random(seed)
    sim = Sim(NAMES, r=r, w=w, seed=seed, delay=(0.005, 0.2), drop=0.05, timeout=TIMEOUT)
    writes = [("put", rng.choice(NAMES), f"v{i}") for i in range(1, 5)]
    sim.add_client(Client("writer", writes, actor="w", think=0.05), start=0.0)
    for name in ("r1", "r2"):
        reads = [("get", rng.choice(NAMES)) for _ in range(3)]
        sim.add_client(
            Client(name, reads, think=rng.uniform(0.0, 0.2)), start=rng.uniform(0.0, 0.3)
        )
    t = 0.0
    for _ in range(4):  # isolate one node for a while, then heal
        t += rng.uniform(0.1, 0.6)
        sim.run_until(t)
        sim.partition([rng.choice(NAMES)])
        t += rng.uniform(0.1, 0.8)
        sim.run_until(t)
        sim.heal()
    sim.run_until(t + 20 * TIMEOUT)
    return sim


SEEDS = list(range(12))


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
def test_with_r_plus_w_over_n_every_read_sees_the_latest_acknowledged_write(seed):
    """With N=3, R=2, W=2, every read returns the latest write acknowledged before it began, or a newer one."""
    sim = random_run(seed, r=2, w=2)
    reads = [op for op in sim.history if op.kind == "get" and op.ok]
    assert reads, f"seed {seed}: no read succeeded; history: {sim.describe()}"
    for op in reads:
        want = latest_acknowledged_before(sim.history, op.invoke)
        got = op.read
        seen = int(got[0][1:]) if len(got) == 1 else (0 if not got else -1)
        assert seen >= want, called(
            f"{op.node}.get('k') at t={op.invoke:.3f} (seed {seed})",
            got,
            f"v{want} or newer (v{want} was acknowledged before the read began); history: {sim.describe()}",
        )


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
def test_with_r_plus_w_over_n_the_history_is_linearizable(seed):
    """With N=3, R=2, W=2 and reads that write back, the history of one writer and two readers is linearizable."""
    sim = random_run(seed, r=2, w=2)
    assert check_register(sim.history), (
        f"seed {seed}: no linearization of the history exists: {sim.describe()}"
    )


def test_the_weak_configuration_is_not_linearizable():
    """With N=3, R=1, W=1, the checker finds a non-linearizable history in the seeded runs."""
    broken = [seed for seed in SEEDS if not check_register(random_run(seed, r=1, w=1).history)]
    assert broken, called(
        f"check_register on {len(SEEDS)} seeded runs with R=1, W=1",
        "all linearizable",
        "at least one stale read",
    )


@pytest.mark.points(2)
def test_with_w_1_a_write_is_acknowledged_inside_a_partition():
    """With R=1, W=1 a node cut off from the others still acknowledges writes and serves reads (availability)."""
    sim = Sim(NAMES, r=1, w=1, seed=1, timeout=TIMEOUT)
    sim.partition(["a"])
    write = sim.wait(sim.put("a", "v1"))
    read = sim.wait(sim.get("a"))
    assert write.ok and read.ok and read.read == ["v1"], told(
        "a.put('k', 'v1') then a.get('k') with a cut off",
        sim.describe(),
        "both ok, the get returning ['v1']",
    )


@pytest.mark.points(2)
def test_with_a_majority_quorum_a_cut_off_node_refuses():
    """With R=2, W=2 a node cut off from the others fails its writes and reads at the timeout (consistency over availability)."""
    sim = Sim(NAMES, r=2, w=2, seed=1, timeout=TIMEOUT)
    sim.partition(["a"])
    write = sim.wait(sim.put("a", "v1"))
    read = sim.wait(sim.get("a"))
    assert write.reply is not None and read.reply is not None, told(
        "a.put and a.get with a cut off",
        sim.describe(),
        "both answered (ok=False) after the timeout",
    )
    assert not write.ok and not read.ok, told(
        "a.put and a.get with a cut off", sim.describe(), "both ok=False"
    )
    took = write.response - write.invoke
    assert TIMEOUT <= took <= TIMEOUT + 0.1, called(
        "a.put with a cut off", f"failed after {took:.3f} s", f"about {TIMEOUT} s"
    )


@pytest.mark.points(3)
def test_with_w_1_stale_reads_happen_then_converge_after_healing():
    """With R=1, W=1 a read on the other side of a partition is stale; after healing every replica has the write within 2 timeouts."""
    sim = Sim(NAMES, r=1, w=1, seed=2, timeout=TIMEOUT)
    sim.partition(["a"], ["b", "c"])
    write = sim.wait(sim.put("a", "v1"))
    stale = sim.wait(sim.get("b"))
    assert write.ok and stale.ok and stale.read == [], told(
        "a.put('k', 'v1'); then b.get('k') across the partition",
        sim.describe(),
        "the write ok, the read [] (stale)",
    )
    sim.run_for(3 * TIMEOUT)
    sim.heal()
    healed = sim.now
    converged = None
    while sim.now < healed + 10 * TIMEOUT:
        if all(sim.held(n) == ["v1"] for n in NAMES):
            converged = sim.now
            break
        if not sim.step():
            break
    held = {n: sim.held(n) for n in NAMES}
    assert converged is not None, called(
        "node.versions('k') on every node, 10 timeouts after healing",
        held,
        "['v1'] everywhere (hinted handoff)",
    )
    took = converged - healed
    assert took <= 2 * TIMEOUT, called(
        "the cluster after healing", f"converged after {took:.3f} s", f"at most {2 * TIMEOUT} s"
    )
    reads = [sim.wait(sim.get(n)) for n in NAMES]
    assert all(op.read == ["v1"] for op in reads), told(
        "get on every node after convergence", sim.describe(reads), "['v1'] everywhere"
    )


@pytest.mark.points(2)
def test_a_converged_cluster_goes_quiet():
    """Once every replica acknowledged every write, the nodes send nothing more (hints are dropped when acknowledged)."""
    sim = Sim(NAMES, r=1, w=1, seed=3, timeout=TIMEOUT)
    sim.partition(["c"])
    sim.wait(sim.put("a", "v1"))
    sim.run_for(2.5 * TIMEOUT)
    sim.heal()
    sim.run_for(3 * TIMEOUT)
    before = sim.sent
    sim.run_for(20 * TIMEOUT)
    assert sim.sent == before, called(
        "every node's tick() for 20 timeouts after convergence",
        f"{sim.sent - before} messages sent",
        "none",
    )


@pytest.mark.points(3)
def test_concurrent_writes_become_siblings_never_a_silent_loss():
    """Two writes with the same context at different nodes are both kept: a later read returns both as siblings."""
    sim = Sim(NAMES, r=2, w=2, seed=4, timeout=TIMEOUT)
    first = sim.wait(sim.put("a", "v0", actor="alice"))
    context = dict(first.reply.versions[0].clock)
    x = sim.put("a", "x", context=context, actor="alice")
    y = sim.put("c", "y", context=context, actor="bob")
    sim.wait(x)
    sim.wait(y)
    read = sim.wait(sim.get("b"))
    assert x.ok and y.ok and read.ok and read.read == ["x", "y"], told(
        "alice: a.put('x'), bob: c.put('y') with the same context; then b.get('k')",
        sim.describe(),
        "both puts ok and the get returning siblings ['x', 'y']",
    )


@pytest.mark.points(2)
def test_a_write_with_the_merged_context_resolves_the_siblings():
    """A write whose context merges the siblings' clocks replaces them all."""
    sim = Sim(NAMES, r=2, w=2, seed=5, timeout=TIMEOUT)
    sim.wait(sim.put("a", "x", actor="alice"))
    sim.wait(sim.put("c", "y", actor="bob"))
    read = sim.wait(sim.get("b"))
    context: dict = {}
    for version in read.reply.versions:
        for actor, count in version.clock.items():
            context[actor] = max(context.get(actor, 0), count)
    sim.wait(sim.put("b", "xy", context=context, actor="carol"))
    after = [sim.wait(sim.get(n)) for n in NAMES]
    assert all(op.read == ["xy"] for op in after), told(
        f"b.put('k', 'xy', context={context!r}); then get on every node",
        sim.describe(after),
        "['xy'] everywhere",
    )


@pytest.mark.points(3)
def test_reads_wait_for_their_repair_so_no_later_read_goes_back_in_time():
    """With R=2, W=2 a read that saw an unacknowledged write repairs before answering, so a later read cannot return the older value."""
    sim = Sim(NAMES, r=2, w=2, seed=6, delay=(0.01, 0.01), timeout=5.0)
    sim.wait(sim.put("a", "v1"))
    sim.run_for(0.5)
    # v2 stays on a: the put's stores are lost, and a resends nothing before the reads are done
    # (timeout 5 s). b is slow to reach from a, so a's read quorum is a and c.
    losing = [True]
    sim.drop_if = lambda m: losing[0] and m.kind == "store" and m.src == "a"
    write = sim.put("a", "v2", context=dict(sim.history[0].reply.versions[0].clock))
    losing[0] = False
    sim.link_delay[("a", "b")] = 0.3
    before = {n: sim.held(n) for n in NAMES}
    assert before == {"a": ["v2"], "b": ["v1"], "c": ["v1"]}, called(
        "node.versions('k') after a.put('v2') whose stores were lost", before, "v2 on a only"
    )
    first = sim.wait(sim.get("a"), limit=4.0)
    sim.partition(["a"], ["b", "c"])
    second = sim.wait(sim.get("c"), limit=4.0)
    history = [write, first, second]
    assert first.ok and first.read == ["v2"], told(
        "a.get('k') after a stored v2", sim.describe(history), "ok ['v2']"
    )
    assert second.ok and second.read == ["v2"], told(
        "c.get('k') after a.get('k') returned v2",
        sim.describe(history),
        "ok ['v2'] (the first read's repair)",
    )
    assert check_register(sim.history, None), f"no linearization exists: {sim.describe()}"


@pytest.mark.points(2)
def test_writes_on_both_sides_of_a_partition_become_siblings_everywhere():
    """With R=1, W=1, writes accepted on both sides of a partition both survive: after healing every replica holds both siblings."""
    sim = Sim(NAMES, r=1, w=1, seed=7, timeout=TIMEOUT)
    sim.partition(["a"], ["b", "c"])
    x = sim.wait(sim.put("a", "x", actor="alice"))
    y = sim.wait(sim.put("b", "y", actor="bob"))
    sim.run_for(TIMEOUT)
    sim.heal()
    sim.run_for(3 * TIMEOUT)
    held = {n: sim.held(n) for n in NAMES}
    assert x.ok and y.ok and all(v == ["x", "y"] for v in held.values()), called(
        "alice: a.put('x') and bob: b.put('y') across a partition; heal; node.versions('k') on every node",
        held,
        "['x', 'y'] on every node",
    )


def random_writers(seed: int) -> Sim:
    """Three writers at random nodes, each sometimes reading first, over random partitions."""
    rng = random.Random(seed)
    sim = Sim(NAMES, r=1, w=1, seed=seed, delay=(0.005, 0.2), drop=0.1, timeout=TIMEOUT)
    for name in ("alice", "bob", "carol"):
        script = []
        for i in range(3):
            if rng.random() < 0.5:
                script.append(("get", rng.choice(NAMES)))
            script.append(("put", rng.choice(NAMES), f"{name}{i}"))
        sim.add_client(
            Client(name, script, actor=name, think=rng.uniform(0.0, 0.3)),
            start=rng.uniform(0.0, 0.5),
        )
    t = 0.0
    for _ in range(3):
        t += rng.uniform(0.1, 0.5)
        sim.run_until(t)
        sim.partition([rng.choice(NAMES)])
        t += rng.uniform(0.2, 1.0)
        sim.run_until(t)
        sim.heal()
    sim.run_until(t + 10 * TIMEOUT)
    return sim


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", SEEDS[:8], ids=[f"seed={s}" for s in SEEDS[:8]])
def test_no_acknowledged_write_is_silently_lost(seed):
    """With R=1, W=1, concurrent writers and partitions, after healing every replica holds, for each acknowledged write, it or a version that descends from it."""
    sim = random_writers(seed)
    for name in NAMES:
        with_clocks = sim.nodes[name].versions(sim.key)
        for op in sim.history:
            if op.kind != "put" or not op.ok:
                continue
            clock = op.reply.versions[0].clock
            kept = any(all(v.clock.get(a, 0) >= n for a, n in clock.items()) for v in with_clocks)
            assert kept, called(
                f"{name}.versions('k') after healing (seed {seed})",
                sorted(v.value for v in with_clocks),
                f"{op.value!r} {dict(clock)} or a version descending from it; history: {sim.describe()}",
            )
