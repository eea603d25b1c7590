"""Replication two ways, as sans-IO nodes: a leader-follower log, and leaderless Dynamo-style quorums.

Theory of operation. A :class:`Node` never touches a socket or a real clock. The network (in
the specs, a seeded simulator) hands it messages with :meth:`Node.receive`, moves time with the
injected ``clock`` and calls :meth:`Node.tick`; the node answers by queueing messages, which the
network collects with :meth:`Node.outbox`, and finished client requests, collected with
:meth:`Node.replies`. Every node is both a *replica* (it stores versions) and a *coordinator*
(it serves ``get`` and ``put`` by talking to the other replicas).

Versions carry version vectors ({actor: counter}); a replica keeps every version that no other
version it holds descends from, so concurrent writes survive side by side as siblings.

The leader-follower log at the end of the module is driven the same way: a :class:`Leader`
ships its log to :class:`Follower` nodes and acknowledges a write to the client once
``sync_followers`` of them hold it (0: asynchronous, at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Follower",
    "Leader",
    "LogMessage",
    "Message",
    "Node",
    "Reply",
    "Version",
    "concurrent",
    "descends",
    "merge",
    "reconcile",
]

VersionVector = Mapping[str, int]


# --- version vectors ------------------------------------------------------------------------


def descends(a: VersionVector, b: VersionVector) -> bool:
    """True when ``a`` has seen everything ``b`` has: a[k] >= b[k] for every actor k."""
    return all(a.get(actor, 0) >= count for actor, count in b.items())


def concurrent(a: VersionVector, b: VersionVector) -> bool:
    """True when neither vector descends from the other: the writes raced."""
    return not descends(a, b) and not descends(b, a)


def merge(a: VersionVector, b: VersionVector) -> dict[str, int]:
    """The least vector that descends from both: the pointwise maximum."""
    merged = dict(a)
    for actor, count in b.items():
        merged[actor] = max(merged.get(actor, 0), count)
    return merged


@dataclass(frozen=True)
class Version:
    """One value of a key and the version vector that says which writes it has seen."""

    value: str
    clock: Mapping[str, int] = field(default_factory=dict)


def reconcile(versions: Iterable[Version]) -> list[Version]:
    """The versions no other one descends from, each clock once, in first-seen order.

    A version whose clock another strictly dominates is obsolete (its writer's successor has
    seen it); equal clocks are the same write seen twice; what is left is concurrent: siblings.
    """
    kept: list[Version] = []
    for version in versions:
        if any(descends(other.clock, version.clock) for other in kept):
            continue  # obsolete, or a copy of one we already keep
        kept = [other for other in kept if not descends(version.clock, other.clock)]
        kept.append(version)
    return kept


def _covers(held: list[Version], wanted: list[Version]) -> bool:
    """True when storing ``wanted`` on a replica holding ``held`` would change nothing."""
    return all(any(descends(h.clock, w.clock) for h in held) for w in wanted)


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What one node sends another. ``kind`` is one of:

    * ``"store"``: keep ``versions`` of ``key`` (a replicated write, a read repair, a hint);
    * ``"stored"``: the answer to a store: the replica now holds them;
    * ``"fetch"``: send me what you hold for ``key``;
    * ``"fetched"``: the answer to a fetch: ``versions`` are what the replica holds.

    ``request`` is the coordinator's request id; answers echo it.
    """

    src: str
    dst: str
    kind: str
    request: int
    key: str
    versions: tuple[Version, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A finished client request. ``ok`` is False when the quorum was not reached in time.

    For a ``get``: the siblings read (empty when the key has no value). For a ``put``: the one
    version written (also when the write failed: it may still land on some replicas).
    """

    request: int
    ok: bool
    versions: tuple[Version, ...]


@dataclass
class _Write:
    key: str
    version: Version
    deadline: float
    acked: set[str]
    done: bool = False


@dataclass
class _Read:
    key: str
    deadline: float
    responses: dict[str, list[Version]]
    result: list[Version] | None = None  # decided once R replicas answered
    holders: set[str] = field(default_factory=set)  # replicas known to hold the result
    done: bool = False


@dataclass
class _Hint:
    version: Version
    request: int
    due: float  # when to send it again


# --- the node -------------------------------------------------------------------------------


class Node:
    """One replica and coordinator of a leaderless store: N = len(replicas), quorums r and w."""

    def __init__(
        self,
        node_id: str,
        replicas: list[str],
        *,
        r: int,
        w: int,
        clock: Callable[[], float],
        timeout: float = 1.0,
    ) -> None:
        if node_id not in replicas:
            raise ValueError(f"{node_id!r} is not one of the replicas {replicas!r}")
        if not 1 <= r <= len(replicas) or not 1 <= w <= len(replicas):
            raise ValueError(f"r={r} and w={w} must be between 1 and N={len(replicas)}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.node_id = node_id
        self.replicas = list(replicas)
        self.r = r
        self.w = w
        self.clock = clock
        self.timeout = timeout
        self._store: dict[str, list[Version]] = {}
        self._writes: dict[int, _Write] = {}
        self._reads: dict[int, _Read] = {}
        # Hinted handoff, Cassandra-style: the coordinator keeps every replicated write a
        # replica has not acknowledged and sends it again until it is acknowledged.
        self._hints: dict[tuple[str, str], dict[int, _Hint]] = {}  # (replica, key) -> by request
        self._next_request = 0
        self._outbox: list[Message] = []
        self._replies: list[Reply] = []

    # -- client requests -----------------------------------------------------------------------

    def put(self, key: str, value: str, context: VersionVector, actor: str) -> int:
        """Write ``value``; its clock is ``context`` with ``actor``'s counter plus one."""
        clock = dict(context)
        clock[actor] = clock.get(actor, 0) + 1
        version = Version(value, clock)
        request = self._new_request()
        now = self.clock()
        self._keep(key, [version])  # the coordinator is a replica: its own copy is one ack
        write = _Write(key, version, now + self.timeout, {self.node_id})
        self._writes[request] = write
        for replica in self._others():
            self._send(replica, "store", request, key, (version,))
            self._hints.setdefault((replica, key), {})[request] = _Hint(
                version, request, now + self.timeout
            )
        self._finish_write(request, write)
        return request

    def get(self, key: str) -> int:
        """Read ``key`` from R replicas; repair stale ones; answer once W replicas hold it."""
        request = self._new_request()
        read = _Read(key, self.clock() + self.timeout, {self.node_id: self.versions(key)})
        self._reads[request] = read
        for replica in self._others():
            self._send(replica, "fetch", request, key)
        self._progress_read(request, read)
        return request

    def versions(self, key: str) -> list[Version]:
        """What this replica holds for ``key``: its siblings (empty when it has none)."""
        return list(self._store.get(key, []))

    # -- the network -----------------------------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Handle one message from another node."""
        if message.kind == "store":
            self._keep(message.key, message.versions)
            self._send(message.src, "stored", message.request, message.key)
        elif message.kind == "fetch":
            self._send(
                message.src,
                "fetched",
                message.request,
                message.key,
                tuple(self.versions(message.key)),
            )
        elif message.kind == "stored":
            self._on_stored(message)
        elif message.kind == "fetched":
            self._on_fetched(message)
        else:
            raise ValueError(f"unknown message kind {message.kind!r}")

    def tick(self) -> None:
        """Fire the timers due at ``clock()``: failed quorums, and hints to send again."""
        now = self.clock()
        for request, write in list(self._writes.items()):
            if not write.done and now >= write.deadline:
                write.done = True
                self._replies.append(Reply(request, False, (write.version,)))
            if write.done:
                del self._writes[request]
        for request, read in list(self._reads.items()):
            if not read.done and now >= read.deadline:
                read.done = True
                self._replies.append(Reply(request, False, ()))
            if now >= read.deadline:
                del self._reads[request]  # late answers to a finished read are dropped
        for (replica, key), hints in self._hints.items():
            for hint in hints.values():
                if now >= hint.due:
                    hint.due = now + self.timeout
                    self._send(replica, "store", hint.request, key, (hint.version,))

    def outbox(self) -> list[Message]:
        """The messages queued since the last call, in order; the queue is emptied."""
        messages, self._outbox = self._outbox, []
        return messages

    def replies(self) -> list[Reply]:
        """The client requests finished since the last call, in order; the queue is emptied."""
        replies, self._replies = self._replies, []
        return replies

    # -- internals -------------------------------------------------------------------------------

    def _new_request(self) -> int:
        self._next_request += 1
        return self._next_request

    def _others(self) -> list[str]:
        return [replica for replica in self.replicas if replica != self.node_id]

    def _send(self, dst: str, kind: str, request: int, key: str, versions=()) -> None:
        self._outbox.append(Message(self.node_id, dst, kind, request, key, tuple(versions)))

    def _keep(self, key: str, versions: Iterable[Version]) -> None:
        self._store[key] = reconcile([*self._store.get(key, []), *versions])

    def _on_stored(self, message: Message) -> None:
        hints = self._hints.get((message.src, message.key), {})
        hints.pop(message.request, None)
        if not hints:
            self._hints.pop((message.src, message.key), None)
        write = self._writes.get(message.request)
        if write is not None:
            write.acked.add(message.src)
            self._finish_write(message.request, write)
        read = self._reads.get(message.request)
        if read is not None and read.result is not None:
            read.holders.add(message.src)  # a read repair landed
            self._progress_read(message.request, read)

    def _on_fetched(self, message: Message) -> None:
        read = self._reads.get(message.request)
        if read is None:
            return
        held = list(message.versions)
        read.responses[message.src] = held
        if read.result is None:
            self._progress_read(message.request, read)
        elif _covers(held, read.result):
            read.holders.add(message.src)
            self._progress_read(message.request, read)
        else:  # a late answer from a stale replica: repair it too
            self._send(message.src, "store", message.request, read.key, read.result)

    def _finish_write(self, request: int, write: _Write) -> None:
        if not write.done and len(write.acked) >= self.w:
            write.done = True
            self._replies.append(Reply(request, True, (write.version,)))

    def _progress_read(self, request: int, read: _Read) -> None:
        if read.result is None:
            if len(read.responses) < self.r:
                return
            seen = [version for held in read.responses.values() for version in held]
            read.result = reconcile(seen)
            for replica, held in read.responses.items():
                if _covers(held, read.result):
                    read.holders.add(replica)
                elif replica == self.node_id:
                    self._keep(read.key, read.result)
                    read.holders.add(replica)
                else:
                    self._send(replica, "store", request, read.key, read.result)
        # Answer only once W replicas hold what we return: a later read quorum then overlaps
        # one of them, so no later read can go back to an older value (ABD's write-back).
        if not read.done and len(read.holders) >= self.w:
            read.done = True
            self._replies.append(Reply(request, True, tuple(read.result)))


# --- leader-follower log replication --------------------------------------------------------


@dataclass(frozen=True)
class LogMessage:
    """Leader to follower: ``append`` entry number ``index`` (1-based). Follower to leader:
    ``acked`` with ``index`` = the length of its log (everything up to there is held)."""

    src: str
    dst: str
    kind: str
    index: int
    entry: str = ""


class Follower:
    """Applies the leader's log in order; acknowledges cumulatively."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.log: list[str] = []
        self._outbox: list[LogMessage] = []

    def receive(self, message: LogMessage) -> None:
        """Append the entry if it is the next one; always answer with the log's length."""
        if message.kind != "append":
            raise ValueError(f"unknown message kind {message.kind!r}")
        if message.index == len(self.log) + 1:
            self.log.append(message.entry)
        # A duplicate (index <= len) or a gap (index > len + 1) changes nothing: the answer
        # tells the leader where this log ends, and the leader resends from there.
        self._outbox.append(LogMessage(self.node_id, message.src, "acked", len(self.log)))

    def outbox(self) -> list[LogMessage]:
        """The messages queued since the last call, in order; the queue is emptied."""
        messages, self._outbox = self._outbox, []
        return messages


class Leader:
    """Appends client writes to its log and ships them to the followers.

    A write is acknowledged to the client once ``sync_followers`` followers hold it: 0 is
    asynchronous replication, 1 semi-synchronous, len(followers) fully synchronous.
    """

    def __init__(
        self,
        node_id: str,
        followers: list[str],
        *,
        sync_followers: int,
        clock: Callable[[], float],
        timeout: float = 1.0,
    ) -> None:
        if not 0 <= sync_followers <= len(followers):
            raise ValueError(
                f"sync_followers={sync_followers} must be between 0 and {len(followers)}"
            )
        self.node_id = node_id
        self.followers = list(followers)
        self.sync_followers = sync_followers
        self.clock = clock
        self.timeout = timeout
        self.log: list[str] = []
        self._matched = {follower: 0 for follower in followers}  # entries each one holds
        self._sent_at = {follower: clock() for follower in followers}
        self._acknowledged = 0  # entries acknowledged to clients so far
        self._outbox: list[LogMessage] = []
        self._replies: list[int] = []

    def write(self, entry: str) -> int:
        """Append ``entry``; return its index (1-based)."""
        self.log.append(entry)
        index = len(self.log)
        for follower in self.followers:
            self._outbox.append(LogMessage(self.node_id, follower, "append", index, entry))
            self._sent_at[follower] = self.clock()
        self._advance()
        return index

    def receive(self, message: LogMessage) -> None:
        """Record how much of the log a follower holds."""
        if message.kind != "acked":
            raise ValueError(f"unknown message kind {message.kind!r}")
        self._matched[message.src] = max(self._matched[message.src], message.index)
        self._advance()

    def tick(self) -> None:
        """Send again what a follower has not acknowledged for ``timeout``."""
        now = self.clock()
        for follower, matched in self._matched.items():
            if matched < len(self.log) and now >= self._sent_at[follower] + self.timeout:
                self._sent_at[follower] = now
                for index in range(matched + 1, len(self.log) + 1):
                    entry = self.log[index - 1]
                    self._outbox.append(LogMessage(self.node_id, follower, "append", index, entry))

    def outbox(self) -> list[LogMessage]:
        """The messages queued since the last call, in order; the queue is emptied."""
        messages, self._outbox = self._outbox, []
        return messages

    def acknowledged(self) -> list[int]:
        """The indexes acknowledged to clients since the last call, in order; emptied."""
        replies, self._replies = self._replies, []
        return replies

    def _advance(self) -> None:
        # The k-th largest match is the longest prefix that k followers hold.
        held = sorted(self._matched.values(), reverse=True)
        durable = len(self.log) if self.sync_followers == 0 else held[self.sync_followers - 1]
        while self._acknowledged < durable:
            self._acknowledged += 1
            self._replies.append(self._acknowledged)
