"""Visible examples for the replication kata. Run them with `nox -s try -- replication`.

They drive a leader and two followers by hand, and three leaderless nodes with a tiny
network written right here: a FIFO queue of messages, delivered one by one, with links you
can cut. The hidden specs use a bigger simulator (random delays, losses, partitions and
crashes from a seed) and check histories for linearizability.
"""

from __future__ import annotations

try:
    from replication import (
        Follower,
        Leader,
        Node,
        Version,
        concurrent,
        descends,
        merge,
        reconcile,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Follower, Leader, Node, Version, concurrent, "
        "descends, merge and reconcile from replication.py"
    ) from err

NAMES = ["a", "b", "c"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Network:
    """Three nodes; messages delivered in the order sent; a cut link loses what crosses it."""

    def __init__(self, r: int, w: int) -> None:
        self.clock = Clock()
        self.nodes = {n: Node(n, NAMES, r=r, w=w, clock=self.clock, timeout=1.0) for n in NAMES}
        self.cut: set[frozenset] = set()
        self.replies: dict[tuple[str, int], object] = {}

    def flush(self) -> None:
        """Deliver messages until none is left."""
        queue = []
        while True:
            for name, node in self.nodes.items():
                queue.extend(node.outbox())
                for reply in node.replies():
                    self.replies[(name, reply.request)] = reply
            if not queue:
                return
            message = queue.pop(0)
            if frozenset((message.src, message.dst)) not in self.cut:
                self.nodes[message.dst].receive(message)

    def wait(self, seconds: float) -> None:
        """Let time pass, one tick every 0.1 s."""
        for _ in range(round(seconds * 10)):
            self.clock.now += 0.1
            for node in self.nodes.values():
                node.tick()
            self.flush()

    def put(self, name: str, value: str, context=None, actor="w"):
        request = self.nodes[name].put("k", value, context or {}, actor)
        self.flush()
        return self.replies.get((name, request))

    def get(self, name: str):
        request = self.nodes[name].get("k")
        self.flush()
        return self.replies.get((name, request))


def test_version_vectors():
    assert descends({"a": 2, "b": 1}, {"a": 1}), (
        "Called descends({'a': 2, 'b': 1}, {'a': 1}); expected True"
    )
    assert not descends({"a": 2}, {"a": 1, "b": 1}), (
        "Called descends({'a': 2}, {'a': 1, 'b': 1}); expected False"
    )
    assert concurrent({"a": 1}, {"b": 1}), "Called concurrent({'a': 1}, {'b': 1}); expected True"
    got = merge({"a": 2}, {"a": 1, "b": 3})
    assert got == {"a": 2, "b": 3}, (
        f"Called merge({{'a': 2}}, {{'a': 1, 'b': 3}}); returned {got!r}"
    )


def test_reconcile_keeps_siblings_and_drops_obsolete_versions():
    x, y, z = Version("x", {"a": 1}), Version("y", {"b": 1}), Version("z", {"a": 1, "b": 1})
    assert reconcile([x, y]) == [x, y], f"Called reconcile([x, y]); returned {reconcile([x, y])!r}"
    assert reconcile([x, y, z]) == [z], (
        f"Called reconcile([x, y, z]); returned {reconcile([x, y, z])!r}"
    )


def test_a_quorum_write_is_read_back_anywhere():
    net = Network(r=2, w=2)
    written = net.put("a", "hello")
    assert written is not None and written.ok, f"Called a.put('k', 'hello'); replied {written!r}"
    for name in NAMES:
        read = net.get(name)
        values = [v.value for v in read.versions] if read else None
        assert read is not None and read.ok and values == ["hello"], (
            f"Called {name}.get('k'); returned {read!r}"
        )


def test_concurrent_writes_come_back_as_siblings():
    net = Network(r=2, w=2)
    net.put("a", "x", actor="alice")
    net.put("c", "y", actor="bob")
    read = net.get("b")
    values = sorted(v.value for v in read.versions) if read else None
    assert values == ["x", "y"], f"Called b.get('k') after two concurrent writes; returned {read!r}"


def test_with_w_1_a_partitioned_read_is_stale_then_converges():
    net = Network(r=1, w=1)
    net.cut = {frozenset(("a", "b")), frozenset(("a", "c"))}
    assert net.put("a", "v1").ok, "Called a.put('k', 'v1') with a cut off, W=1; expected ok"
    stale = net.get("b")
    assert stale.ok and stale.versions == (), (
        f"Called b.get('k') across the partition; returned {stale!r}"
    )
    net.cut = set()
    net.wait(2.0)  # a sends its unacknowledged store again (hinted handoff)
    for name in NAMES:
        held = [v.value for v in net.nodes[name].versions("k")]
        assert held == ["v1"], f"Called {name}.versions('k') 2 s after healing; returned {held!r}"


# --- the leader-follower log --------------------------------------------------------------------


def test_a_synchronous_leader_acknowledges_after_its_followers():
    clock = Clock()
    leader = Leader("L", ["f1", "f2"], sync_followers=2, clock=clock)
    followers = {name: Follower(name) for name in ("f1", "f2")}
    assert leader.write("x=1") == 1, "Called leader.write('x=1'); expected index 1"
    assert leader.acknowledged() == [], (
        "Called leader.acknowledged() before any follower answered; expected []"
    )
    for message in leader.outbox():
        followers[message.dst].receive(message)
    for follower in followers.values():
        for message in follower.outbox():
            leader.receive(message)
    got = leader.acknowledged()
    assert got == [1], f"Called leader.acknowledged() after both followers acked; returned {got!r}"


def test_an_asynchronous_leader_acknowledges_at_once_and_can_lose_the_write():
    clock = Clock()
    leader = Leader("L", ["f1", "f2"], sync_followers=0, clock=clock)
    followers = {name: Follower(name) for name in ("f1", "f2")}
    leader.write("x=1")
    got = leader.acknowledged()
    assert got == [1], f"Called leader.acknowledged() right after the write; returned {got!r}"
    leader.outbox()  # the leader dies: its appends are never delivered
    logs = {name: f.log for name, f in followers.items()}
    assert logs == {"f1": [], "f2": []}, (
        f"The followers' logs: {logs!r}; the acknowledged write is lost"
    )
