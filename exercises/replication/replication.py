"""Replication two ways, as sans-IO nodes: a leader-follower log, and leaderless Dynamo-style quorums.

You write the nodes: it never touches a socket or a real clock. The network (in the tests, a
seeded simulator) hands it messages with ``receive``, moves time with the injected ``clock`` and
calls ``tick``; the node answers by queueing messages (collected with ``outbox``) and finished
client requests (collected with ``replies``). Every node is both a replica (it stores versions)
and a coordinator (it serves ``get`` and ``put`` by talking to the other replicas).

Read README.md first: it explains every rule below.
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
    """True when ``a`` has seen everything ``b`` has: a[k] >= b[k] for every actor k.

    An actor missing from a vector counts as 0. Every vector descends from itself and from {}.
    """
    # TODO: compare actor by actor; an actor only b knows must not be forgotten.
    raise NotImplementedError


def concurrent(a: VersionVector, b: VersionVector) -> bool:
    """True when neither vector descends from the other: the two writes raced."""
    raise NotImplementedError


def merge(a: VersionVector, b: VersionVector) -> dict[str, int]:
    """The least vector that descends from both: the pointwise maximum, as a new dict.

    Never changes ``a`` or ``b``.
    """
    raise NotImplementedError


@dataclass(frozen=True)
class Version:
    """One value of a key and the version vector that says which writes it has seen."""

    value: str
    clock: Mapping[str, int] = field(default_factory=dict)


def reconcile(versions: Iterable[Version]) -> list[Version]:
    """The versions no other one descends from, each clock once, in first-seen order.

    A version whose clock another one strictly dominates is obsolete: drop it. Equal clocks are
    the same write seen twice: keep the first. What is left is pairwise concurrent: siblings,
    all kept. Example: [x{a:1}, y{b:1}, z{a:1,b:1}] -> [z]; [x{a:2}, y{b:1}] -> [x, y].
    """
    # TODO: never choose between concurrent versions (no last-writer-wins): keep them all.
    raise NotImplementedError


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What one node sends another. ``kind`` is one of:

    * ``"store"``: keep ``versions`` of ``key`` (a replicated write, a read repair, a hint);
    * ``"stored"``: the answer to a store: the replica now holds them (no versions);
    * ``"fetch"``: send me what you hold for ``key`` (no versions);
    * ``"fetched"``: the answer to a fetch: ``versions`` are what the replica holds.

    ``request`` is the coordinator's request id; answers echo it, and its key.
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

    For a ``get``: the siblings read (empty when the key has no value; empty when not ok). For a
    ``put``: the one version written (also when the write failed: it may still land somewhere).
    """

    request: int
    ok: bool
    versions: tuple[Version, ...]


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
        """``replicas`` names every node, this one included; every key lives on all of them.

        Raises ValueError when ``node_id`` is not in ``replicas``, r or w is outside
        1..len(replicas), or ``timeout`` is not positive. ``clock()`` is the only source of
        time; ``timeout`` is how long a request may wait for its quorum, and how often an
        unacknowledged store is sent again.
        """
        # TODO: keep a store {key: [Version]}, the pending requests, the hints, two queues.
        raise NotImplementedError

    # -- client requests -----------------------------------------------------------------------

    def put(self, key: str, value: str, context: VersionVector, actor: str) -> int:
        """Start a write of ``value``; return its request id (ids are unique per node).

        The new version's clock is ``context`` with ``actor``'s counter plus one. The coordinator
        stores it at once (that is one acknowledgement) and sends a ``store`` to every other
        replica. The put answers ``Reply(request, True, (version,))`` as soon as w replicas hold
        it; if it has fewer when ``timeout`` has passed, it answers ok=False at that tick.
        """
        # TODO: a replica that has not answered `stored` gets the store again every `timeout`
        #       (hinted handoff), until it does; then forget it.
        raise NotImplementedError

    def get(self, key: str) -> int:
        """Start a read of ``key``; return its request id.

        The coordinator's own versions are one answer; it sends a ``fetch`` to every other
        replica. Once r replicas answered, the result is ``reconcile`` of everything they sent.
        Every answering replica that lacks part of the result gets a ``store`` of the result
        (read repair; the coordinator repairs its own copy directly). The get answers
        ``Reply(request, True, result)`` once w replicas are known to hold the result; if that
        has not happened when ``timeout`` has passed, it answers ok=False with no versions.
        """
        # TODO: a replica that answers after the result was decided is repaired too, if stale.
        raise NotImplementedError

    def versions(self, key: str) -> list[Version]:
        """What this replica holds for ``key``: its siblings (empty when it has none)."""
        raise NotImplementedError

    # -- the network -----------------------------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Handle one message from another node (see Message for the four kinds).

        ``store``: keep the versions (reconciled with what this replica holds) and answer
        ``stored``. ``fetch``: answer ``fetched`` with this replica's versions. Answers to
        requests this node no longer waits for are ignored. Any other kind: ValueError.
        """
        raise NotImplementedError

    def tick(self) -> None:
        """Fire the timers due at ``clock()``: requests that ran out of time, hints to send again."""
        raise NotImplementedError

    def outbox(self) -> list[Message]:
        """The messages queued since the last call, in the order they were queued; empties the queue."""
        raise NotImplementedError

    def replies(self) -> list[Reply]:
        """The client requests finished since the last call, in order; empties the queue."""
        raise NotImplementedError


# --- leader-follower log replication --------------------------------------------------------


@dataclass(frozen=True)
class LogMessage:
    """Leader to follower: ``append`` entry number ``index`` (1-based) with its ``entry``.
    Follower to leader: ``acked`` with ``index`` = the length of the follower's log (it holds
    every entry up to there) and an empty entry."""

    src: str
    dst: str
    kind: str
    index: int
    entry: str = ""


class Follower:
    """Applies the leader's log in order; acknowledges cumulatively."""

    def __init__(self, node_id: str) -> None:
        """``log`` (a list of entries) starts empty."""
        raise NotImplementedError

    def receive(self, message: LogMessage) -> None:
        """Append the entry if its index is len(log) + 1; always answer ``acked`` with len(log).

        A duplicate (index <= len(log)) or a gap (index > len(log) + 1) changes nothing. Any
        kind other than ``append``: ValueError.
        """
        raise NotImplementedError

    def outbox(self) -> list[LogMessage]:
        """The messages queued since the last call, in order; empties the queue."""
        raise NotImplementedError


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
        """Raises ValueError unless 0 <= sync_followers <= len(followers). ``log`` starts empty."""
        raise NotImplementedError

    def write(self, entry: str) -> int:
        """Append ``entry`` to the log, send ``append`` to every follower; return its 1-based index."""
        # TODO: with sync_followers=0 the write is acknowledged at once.
        raise NotImplementedError

    def receive(self, message: LogMessage) -> None:
        """An ``acked`` from a follower: it holds the log up to ``message.index``.

        Any other kind: ValueError.
        """
        # TODO: acknowledgements are cumulative and may arrive late or out of order.
        raise NotImplementedError

    def tick(self) -> None:
        """For each follower that has not acknowledged the whole log, once ``timeout`` has passed
        since entries were last sent to it: send it every entry after its acknowledged length."""
        raise NotImplementedError

    def outbox(self) -> list[LogMessage]:
        """The messages queued since the last call, in order; empties the queue."""
        raise NotImplementedError

    def acknowledged(self) -> list[int]:
        """The indexes acknowledged to clients since the last call, ascending, each once; empties.

        Index i is acknowledged once ``sync_followers`` followers hold entries 1..i.
        """
        raise NotImplementedError
