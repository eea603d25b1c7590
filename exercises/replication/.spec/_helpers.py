"""The specs' side of the replication kata: a seeded network simulator and a linearizability checker.

The learner's nodes are sans-IO; this module owns everything else, the FoundationDB way: one
simulated clock, one seeded RNG, and a queue of messages in flight, each with its delivery time.
Partitions cut links (a message sent over, or arriving over, a cut link is lost), ``drop`` loses
messages at random, ``delay`` fixes a link's latency. Clients are scripts of operations, each
issued when the previous one finished; every operation lands in a history for the checker.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from replication import Message, Node, Reply

from grader.spectools import short, step

TICK = 0.05  # how often the simulator calls every node's tick()


@dataclass
class Op:
    """One client operation: invoked at ``invoke``, answered at ``response`` (None: never)."""

    client: str
    kind: str  # "put" | "get"
    node: str
    key: str
    value: str | None = None  # put: the value written
    invoke: float = 0.0
    response: float | None = None
    reply: Reply | None = None
    request: int | None = None

    @property
    def ok(self) -> bool:
        return self.reply is not None and self.reply.ok

    @property
    def read(self) -> list[str]:
        """The values a get returned (its siblings), sorted."""
        return sorted(v.value for v in self.reply.versions) if self.reply else []

    def __str__(self) -> str:
        what = f"put({self.value!r})" if self.kind == "put" else "get()"
        end = "never answered" if self.reply is None else f"answered at t={self.response:.3f}"
        got = ""
        if self.reply is not None:
            got = f" ok={self.reply.ok}" + (f" -> {self.read}" if self.kind == "get" else "")
        return f"{self.client}: {what} at {self.node}, t={self.invoke:.3f}, {end}{got}"


@dataclass
class Client:
    name: str
    script: list[tuple]  # ("put", node, value) | ("get", node)
    actor: str | None = None
    context: dict = field(default_factory=dict)
    think: float = 0.0


class Sim:
    """A deterministic cluster: nodes ``names``, quorums r and w, messages delayed and dropped by ``seed``."""

    def __init__(
        self,
        names: list[str],
        *,
        r: int,
        w: int,
        seed: int = 0,
        delay: tuple[float, float] = (0.005, 0.05),
        drop: float = 0.0,
        timeout: float = 1.0,
        key: str = "k",
    ) -> None:
        self.now = 0.0
        self.rng = random.Random(seed)
        self.delay = delay
        self.drop = drop
        self.key = key
        self.link_delay: dict[tuple[str, str], float] = {}
        self.drop_if: Callable[[Message], bool] = lambda message: False
        self.cut: set[frozenset[str]] = set()
        self.sent = 0  # messages the nodes sent, lost or not
        self.delivered = 0
        self.history: list[Op] = []
        self._queue: list[tuple[float, int, str, object]] = []
        self._seq = itertools.count()
        self._waiting: dict[tuple[str, int], tuple[Op, Client | None]] = {}
        with step(f"Node(..., replicas={names!r}, r={r}, w={w}, clock=..., timeout={timeout})"):
            self.nodes = {
                name: Node(name, list(names), r=r, w=w, clock=self.clock, timeout=timeout)
                for name in names
            }
        self._next_tick = TICK
        self._schedule(TICK, "tick", None)

    def clock(self) -> float:
        return self.now

    # -- faults ----------------------------------------------------------------------------------

    def partition(self, *groups: list[str]) -> None:
        """Cut every link between nodes of different groups (nodes left out form one more group)."""
        rest = [n for n in self.nodes if not any(n in g for g in groups)]
        groups = [*groups, rest] if rest else list(groups)
        self.cut = set()
        for g1, g2 in itertools.combinations(groups, 2):
            self.cut |= {frozenset((a, b)) for a in g1 for b in g2}

    def heal(self) -> None:
        self.cut = set()

    def _blocked(self, message: Message) -> bool:
        return frozenset((message.src, message.dst)) in self.cut

    # -- clients ---------------------------------------------------------------------------------

    def put(
        self, node: str, value: str, *, context=None, actor: str = "w", client: str | None = None
    ) -> Op:
        op = Op(client or actor, "put", node, self.key, value, self.now)
        self.history.append(op)
        with step(
            f"{node}.put({self.key!r}, {value!r}, context={context or {}!r}, actor={actor!r})"
        ):
            request = self.nodes[node].put(self.key, value, dict(context or {}), actor)
        op.request = request
        self._waiting[(node, request)] = (op, None)
        self._flush(node)
        return op

    def get(self, node: str, *, client: str = "reader") -> Op:
        op = Op(client, "get", node, self.key, None, self.now)
        self.history.append(op)
        with step(f"{node}.get({self.key!r})"):
            request = self.nodes[node].get(self.key)
        op.request = request
        self._waiting[(node, request)] = (op, None)
        self._flush(node)
        return op

    def add_client(self, client: Client, start: float) -> None:
        self._schedule(start, "client", client)

    def _invoke(self, client: Client) -> None:
        if not client.script:
            return
        kind, node, *rest = client.script.pop(0)
        if kind == "put":
            op = self.put(
                node, rest[0], context=client.context, actor=client.actor, client=client.name
            )
        else:
            op = self.get(node, client=client.name)
        if op.reply is None:
            self._waiting[(op.node, op.request)] = (op, client)
        else:
            self._next_of(client, op)

    def _next_of(self, client: Client, op: Op) -> None:
        """The client's next operation, its context now covering what it wrote or read."""
        if op.reply is not None and (op.kind == "put" or op.ok):
            for version in op.reply.versions:
                for actor, count in version.clock.items():
                    client.context[actor] = max(client.context.get(actor, 0), count)
        self._schedule(self.now + client.think, "client", client)

    # -- the event loop --------------------------------------------------------------------------

    def _schedule(self, at: float, kind: str, payload: object) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, payload))

    def _flush(self, name: str) -> None:
        node = self.nodes[name]
        with step(f"{name}.outbox()"):
            messages = node.outbox()
        for message in messages:
            self.sent += 1
            if self._blocked(message) or self.drop_if(message) or self.rng.random() < self.drop:
                continue
            latency = self.link_delay.get((message.src, message.dst))
            if latency is None:
                latency = self.rng.uniform(*self.delay)
            self._schedule(self.now + latency, "deliver", message)
        with step(f"{name}.replies()"):
            replies = node.replies()
        for reply in replies:
            op, client = self._waiting.pop((name, reply.request), (None, None))
            assert op is not None, (
                f"{name}.replies() returned {short(reply)}: no request of that id is waiting"
            )
            op.reply, op.response = reply, self.now
            if client is not None:
                self._next_of(client, op)

    def step(self) -> bool:
        """Process the next event; False when none is left."""
        if not self._queue:
            return False
        at, _, kind, payload = heapq.heappop(self._queue)
        self.now = max(self.now, at)
        if kind == "deliver":
            message = payload
            if not self._blocked(message):
                self.delivered += 1
                with step(f"{message.dst}.receive({short(message, 200)})"):
                    self.nodes[message.dst].receive(message)
                self._flush(message.dst)
        elif kind == "tick":
            for name, node in self.nodes.items():
                with step(f"{name}.tick() at t={self.now:.3f}"):
                    node.tick()
                self._flush(name)
            self._schedule(self.now + TICK, "tick", None)
        else:
            self._invoke(payload)
        return True

    def run_until(self, t: float) -> None:
        while self._queue and self._queue[0][0] <= t:
            self.step()
        self.now = max(self.now, t)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def wait(self, op: Op, limit: float = 10.0) -> Op:
        """Run until ``op`` is answered, or ``limit`` simulated seconds passed."""
        end = self.now + limit
        while op.reply is None and self._queue and self._queue[0][0] <= end:
            self.step()
        return op

    def held(self, name: str) -> list[str]:
        with step(f"{name}.versions({self.key!r})"):
            return sorted(v.value for v in self.nodes[name].versions(self.key))

    def describe(self, ops: list[Op] | None = None) -> str:
        return "; ".join(str(op) for op in (self.history if ops is None else ops))


# --- linearizability (Wing & Gong 1993, with Lowe's memoisation) ----------------------------


def check_register(history: list[Op], initial: str | None = None) -> bool:
    """True when the history of one register is linearizable.

    Every put is a write of a distinct value; every answered get a read of one value (a read of
    siblings is never a register read: the history is then not linearizable). A put never
    answered, or answered not ok, may have taken effect or not: its response time is infinity
    and it may be left out. Unanswered or failed gets are left out.
    """
    ops: list[tuple[str, str | None, float, float]] = []
    for op in history:
        if op.kind == "put":
            ops.append(("w", op.value, op.invoke, op.response if op.ok else math.inf))
        elif op.ok:
            values = op.read
            if len(values) > 1:
                return False
            ops.append(("r", values[0] if values else None, op.invoke, op.response))
    everything = frozenset(range(len(ops)))

    @cache
    def search(remaining: frozenset[int], state: str | None) -> bool:
        if all(ops[i][3] == math.inf for i in remaining):
            return True  # what is left are writes that may never have happened
        horizon = min(ops[i][3] for i in remaining)
        for i in sorted(remaining):
            kind, value, invoke, _ = ops[i]
            if invoke > horizon:
                continue  # some remaining operation finished before this one began
            if kind == "r" and value != state:
                continue
            if search(remaining - {i}, value if kind == "w" else state):
                return True
        return False

    return search(everything, initial)


# --- the leader-follower log on the same kind of network ------------------------------------


class LogSim:
    """A leader and its followers on a seeded network; ``crash()`` stops the leader for good."""

    def __init__(
        self,
        followers: list[str],
        *,
        sync_followers: int,
        seed: int = 0,
        delay: tuple[float, float] = (0.005, 0.05),
        drop: float = 0.0,
        timeout: float = 1.0,
    ) -> None:
        from replication import Follower, Leader

        self.now = 0.0
        self.rng = random.Random(seed)
        self.delay, self.drop = delay, drop
        self.cut: set[frozenset[str]] = set()
        self.crashed = False
        self.acknowledged: list[int] = []  # indexes the leader acknowledged to clients
        self._queue: list[tuple[float, int, str, object]] = []
        self._seq = itertools.count()
        with step(
            f"Leader('L', {followers!r}, sync_followers={sync_followers}, clock=..., timeout={timeout})"
        ):
            self.leader = Leader(
                "L",
                list(followers),
                sync_followers=sync_followers,
                clock=self.clock,
                timeout=timeout,
            )
        with step("Follower(name) for each follower"):
            self.followers = {name: Follower(name) for name in followers}
        self._schedule(TICK, "tick", None)

    def clock(self) -> float:
        return self.now

    def _schedule(self, at: float, kind: str, payload: object) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, payload))

    def _flush(self, name: str) -> None:
        node = self.leader if name == "L" else self.followers[name]
        with step(f"{name}.outbox()"):
            messages = node.outbox()
        for message in messages:
            if frozenset((message.src, message.dst)) in self.cut or self.rng.random() < self.drop:
                continue
            self._schedule(self.now + self.rng.uniform(*self.delay), "deliver", message)
        if name == "L":
            with step("leader.acknowledged()"):
                self.acknowledged.extend(self.leader.acknowledged())

    def write(self, entry: str) -> int:
        with step(f"leader.write({entry!r})"):
            index = self.leader.write(entry)
        self._flush("L")
        return index

    def crash(self) -> None:
        """The leader dies: it sends, receives and acknowledges nothing more, and what it sent is lost."""
        self.crashed = True
        self._queue = [e for e in self._queue if e[2] != "deliver" or e[3].src != "L"]
        heapq.heapify(self._queue)

    def step(self) -> bool:
        if not self._queue:
            return False
        at, _, kind, payload = heapq.heappop(self._queue)
        self.now = max(self.now, at)
        if kind == "deliver":
            message = payload
            if frozenset((message.src, message.dst)) in self.cut:
                return True
            if message.dst == "L":
                if not self.crashed:
                    with step(f"leader.receive({short(message)})"):
                        self.leader.receive(message)
                    self._flush("L")
            else:
                with step(f"{message.dst}.receive({short(message)})"):
                    self.followers[message.dst].receive(message)
                self._flush(message.dst)
        else:
            if not self.crashed:
                with step(f"leader.tick() at t={self.now:.3f}"):
                    self.leader.tick()
                self._flush("L")
            self._schedule(self.now + TICK, "tick", None)
        return True

    def run_until(self, t: float) -> None:
        while self._queue and self._queue[0][0] <= t:
            self.step()
        self.now = max(self.now, t)

    def logs(self) -> dict[str, list[str]]:
        return {name: list(f.log) for name, f in self.followers.items()}
