"""Hidden specs for one Node, driven by hand: the messages it sends, the replies it gives, its timers."""

from __future__ import annotations

import pytest
from replication import Message, Node, Version

from grader.spectools import FakeClock, called, short, step

NAMES = ["a", "b", "c"]
T0 = 1000.0


def make(r: int = 2, w: int = 2, timeout: float = 1.0, name: str = "a") -> tuple[Node, FakeClock]:
    clock = FakeClock(T0)
    with step(f"Node({name!r}, {NAMES!r}, r={r}, w={w}, clock=..., timeout={timeout})"):
        node = Node(name, list(NAMES), r=r, w=w, clock=clock, timeout=timeout)
    return node, clock


def out(node: Node, what: str) -> list[tuple]:
    """The outbox as (dst, kind, request, key, [(value, clock)]) tuples."""
    with step(f"{what}; then node.outbox()"):
        messages = node.outbox()
    return [
        (m.dst, m.kind, m.request, m.key, [(x.value, dict(x.clock)) for x in m.versions])
        for m in messages
    ]


def replies(node: Node, what: str) -> list[tuple]:
    with step(f"{what}; then node.replies()"):
        got = node.replies()
    return [(x.request, x.ok, [(v.value, dict(v.clock)) for v in x.versions]) for x in got]


def held(node: Node, key: str = "k") -> list[tuple]:
    with step(f"node.versions({key!r})"):
        return [(x.value, dict(x.clock)) for x in node.versions(key)]


def deliver(node: Node, src: str, kind: str, request: int, versions=(), key: str = "k") -> None:
    message = Message(src, node.node_id, kind, request, key, tuple(versions))
    with step(f"node.receive({short(message, 200)})"):
        node.receive(message)


# --- construction -----------------------------------------------------------------------------


QUORUMS = [(1, 1, True), (3, 3, True), (0, 2, False), (2, 0, False), (4, 2, False), (2, 4, False)]


@pytest.mark.parametrize(("r", "w", "valid"), QUORUMS, ids=[f"r={r}-w={w}" for r, w, _ in QUORUMS])
def test_quorums_must_lie_between_1_and_n(r, w, valid):
    """Node accepts r and w from 1 to N = len(replicas) and raises ValueError outside."""
    call = f"Node('a', {NAMES!r}, r={r}, w={w}, clock=...)"
    try:
        Node("a", list(NAMES), r=r, w=w, clock=FakeClock(T0))
    except ValueError:
        assert not valid, called(call, "ValueError", "a node")
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called {call}; raised {type(exc).__name__}: {exc}; expected "
            + ("a node" if valid else "ValueError")
        ) from exc
    else:
        assert valid, called(call, "a node", "ValueError")


def test_a_node_must_be_one_of_the_replicas():
    """Node raises ValueError when its own id is not in the replica list."""
    try:
        Node("z", list(NAMES), r=1, w=1, clock=FakeClock(T0))
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called Node('z', {NAMES!r}, ...); raised {type(exc).__name__}: {exc}; expected ValueError"
        ) from exc
    raise AssertionError(called(f"Node('z', {NAMES!r}, ...)", "a node", "ValueError"))


# --- writes -----------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_put_sends_the_new_version_to_every_other_replica():
    """put stores the version locally and sends one store to each other replica; its clock is the context with actor + 1."""
    node, _ = make()
    with step("node.put('k', 'x', {'w': 2, 'z': 1}, 'w')"):
        request = node.put("k", "x", {"w": 2, "z": 1}, "w")
    version = [("x", {"w": 3, "z": 1})]
    got = out(node, "node.put('k', 'x', {'w': 2, 'z': 1}, 'w')")
    want = [("b", "store", request, "k", version), ("c", "store", request, "k", version)]
    assert got == want, called(
        "node.put('k', 'x', {'w': 2, 'z': 1}, 'w'); node.outbox()", got, want
    )
    assert held(node) == version, called("node.versions('k') after the put", held(node), version)


def test_put_with_an_empty_context_starts_the_actor_at_one():
    """A first write (empty context) gets the clock {actor: 1}."""
    node, _ = make(w=1)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    got = replies(node, "node.put('k', 'x', {}, 'w')")
    want = [(request, True, [("x", {"w": 1})])]
    assert got == want, called("node.put('k', 'x', {}, 'w') with w=1; node.replies()", got, want)


@pytest.mark.points(2)
def test_put_answers_once_w_replicas_acknowledged():
    """With w=2 a put answers ok after exactly one other replica acknowledged (the coordinator counts as one)."""
    node, _ = make(w=2)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    node.outbox()
    got = replies(node, "node.put(...) with w=2, no acknowledgement yet")
    assert got == [], called("node.replies() before any acknowledgement", got, [])
    deliver(node, "b", "stored", request)
    got = replies(node, "b acknowledged")
    want = [(request, True, [("x", {"w": 1})])]
    assert got == want, called("node.replies() after b acknowledged", got, want)
    deliver(node, "c", "stored", request)
    got = replies(node, "c acknowledged as well")
    assert got == [], called(
        "node.replies() after a third acknowledgement", got, "[] (answered once)"
    )


def test_duplicate_acknowledgements_count_once():
    """Two acknowledgements from the same replica count as one."""
    node, _ = make(w=3)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    deliver(node, "b", "stored", request)
    deliver(node, "b", "stored", request)
    got = replies(node, "b acknowledged twice with w=3")
    assert got == [], called("node.replies() after b acknowledged twice (w=3)", got, [])


DEADLINES = [(0.999, False), (1.0, True), (1.001, True)]


@pytest.mark.parametrize(
    ("after", "failed"), DEADLINES, ids=["below_timeout", "at_timeout", "above_timeout"]
)
def test_a_put_without_quorum_fails_at_its_timeout(after, failed):
    """A put short of w acknowledgements answers ok=False at the first tick at or after start + timeout."""
    node, clock = make(w=3, timeout=1.0)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    deliver(node, "b", "stored", request)
    clock.advance(after)
    with step(f"node.tick() {after} s after the put"):
        node.tick()
    got = replies(node, f"node.tick() {after} s after the put (timeout 1.0)")
    want = [(request, False, [("x", {"w": 1})])] if failed else []
    assert got == want, called(
        f"node.tick() {after} s after a put short of quorum; node.replies()", got, want
    )


def test_a_failed_write_is_not_rolled_back():
    """A put that failed its quorum stays on the replicas that stored it (Dynamo has no rollback)."""
    node, clock = make(w=3)
    with step("node.put('k', 'x', {}, 'w')"):
        node.put("k", "x", {}, "w")
    clock.advance(1.0)
    with step("node.tick() at the timeout"):
        node.tick()
    assert held(node) == [("x", {"w": 1})], called(
        "node.versions('k') after the put failed", held(node), [("x", {"w": 1})]
    )


# --- the replica side -------------------------------------------------------------------------


@pytest.mark.points(2)
def test_a_replica_stores_and_acknowledges():
    """On store a replica keeps the versions (reconciled with what it holds) and answers stored with the same request and key."""
    node, _ = make(name="b")
    deliver(node, "a", "store", 7, [Version("x", {"p": 1})])
    deliver(node, "c", "store", 3, [Version("y", {"q": 1})])
    deliver(node, "a", "store", 8, [Version("z", {"p": 2})])
    got = out(node, "three stores")
    want = [("a", "stored", 7, "k", []), ("c", "stored", 3, "k", []), ("a", "stored", 8, "k", [])]
    assert got == want, called("node.receive(store) x3; node.outbox()", got, want)
    want_held = [("y", {"q": 1}), ("z", {"p": 2})]
    assert held(node) == want_held, called(
        "node.versions('k') after x{p:1}, y{q:1}, z{p:2}", held(node), want_held
    )


def test_a_replica_answers_fetch_with_what_it_holds():
    """On fetch a replica answers fetched with its versions of the key (none when it has none)."""
    node, _ = make(name="b")
    deliver(node, "a", "fetch", 4, key="nothing")
    deliver(node, "a", "store", 5, [Version("x", {"p": 1})])
    node.outbox()
    deliver(node, "c", "fetch", 9)
    got = out(node, "fetches")
    want = [("c", "fetched", 9, "k", [("x", {"p": 1})])]
    assert got == want, called("node.receive(fetch 'k') from c; node.outbox()", got, want)


def test_keys_are_independent():
    """Versions of one key never show up under another."""
    node, _ = make(w=1)
    with step("node.put('k', 'x', {}, 'w'); node.put('other', 'y', {}, 'w')"):
        node.put("k", "x", {}, "w")
        node.put("other", "y", {}, "w")
    assert held(node, "k") == [("x", {"w": 1})], called(
        "node.versions('k')", held(node, "k"), [("x", {"w": 1})]
    )
    assert held(node, "none") == [], called("node.versions('none')", held(node, "none"), [])


# --- reads ------------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_get_waits_for_r_answers_and_returns_the_siblings():
    """A get with r=2 answers after one other replica, with the reconciled versions of both (siblings kept)."""
    node, _ = make(r=2, w=1)
    deliver(node, "c", "store", 1, [Version("x", {"p": 1})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    sent = out(node, "node.get('k')")
    want = [("b", "fetch", request, "k", []), ("c", "fetch", request, "k", [])]
    assert sent == want, called("node.get('k'); node.outbox()", sent, want)
    assert replies(node, "node.get('k')") == [], called(
        "node.replies() before any answer (r=2)", "a reply", []
    )
    deliver(node, "b", "fetched", request, [Version("y", {"q": 1})])
    got = replies(node, "b answered the fetch")
    want = [(request, True, [("x", {"p": 1}), ("y", {"q": 1})])]
    assert got == want, called("node.replies() after b answered y{q:1} (a holds x{p:1})", got, want)


def test_a_get_of_a_missing_key_returns_nothing():
    """A get of a key no replica holds answers ok with no versions."""
    node, _ = make(r=1, w=1)
    with step("node.get('k')"):
        request = node.get("k")
    got = replies(node, "node.get('k') with r=1")
    assert got == [(request, True, [])], called(
        "node.get('k') on an empty store; node.replies()", got, [(request, True, [])]
    )


@pytest.mark.points(2)
def test_read_repair_updates_a_stale_replica():
    """When a replica answers a fetch with an older version, the coordinator sends it a store of the result."""
    node, _ = make(r=2, w=1)
    deliver(node, "c", "store", 1, [Version("new", {"p": 2})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    node.outbox()
    deliver(node, "b", "fetched", request, [Version("old", {"p": 1})])
    got = out(node, "b answered old{p:1}; a holds new{p:2}")
    want = [("b", "store", request, "k", [("new", {"p": 2})])]
    assert got == want, called("node.outbox() after stale b answered", got, want)


def test_the_coordinator_repairs_itself():
    """When the coordinator's own copy is older than what a replica answered, it keeps the newer version."""
    node, _ = make(r=2, w=1)
    deliver(node, "c", "store", 1, [Version("old", {"p": 1})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    deliver(node, "b", "fetched", request, [Version("new", {"p": 2})])
    assert held(node) == [("new", {"p": 2})], called(
        "node.versions('k') after a read saw new{p:2}", held(node), [("new", {"p": 2})]
    )


@pytest.mark.points(3)
def test_a_read_answers_only_once_w_replicas_hold_its_result():
    """With r=2, w=2 a read that saw a newer version on one replica answers only after the repair is acknowledged."""
    node, _ = make(r=2, w=2)
    deliver(node, "c", "store", 1, [Version("new", {"p": 2})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    deliver(node, "b", "fetched", request, [Version("old", {"p": 1})])
    got = replies(node, "b answered old; a holds new; the repair is not acknowledged")
    assert got == [], called(
        "node.replies() before the repair was acknowledged", got, "[] (only 1 of w=2 holds 'new')"
    )
    deliver(node, "b", "stored", request)
    got = replies(node, "b acknowledged the repair")
    want = [(request, True, [("new", {"p": 2})])]
    assert got == want, called("node.replies() after b acknowledged the repair", got, want)


def test_a_read_whose_quorum_agrees_answers_at_once():
    """A read whose r answers already hold the result needs no repair and answers at once."""
    node, _ = make(r=2, w=2)
    deliver(node, "c", "store", 1, [Version("x", {"p": 1})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    node.outbox()
    deliver(node, "b", "fetched", request, [Version("x", {"p": 1})])
    got = replies(node, "b answered the same version")
    assert got == [(request, True, [("x", {"p": 1})])], called(
        "node.replies()", got, [(request, True, [("x", {"p": 1})])]
    )
    assert out(node, "b answered the same version") == [], called(
        "node.outbox() (nothing to repair)", "messages", []
    )


def test_a_late_stale_answer_is_repaired_too():
    """A replica that answers a finished read with an older version still gets repaired."""
    node, _ = make(r=2, w=1)
    deliver(node, "c", "store", 1, [Version("new", {"p": 2})])
    node.outbox()
    with step("node.get('k')"):
        request = node.get("k")
    deliver(node, "c", "fetched", request, [Version("new", {"p": 2})])
    node.replies()
    node.outbox()
    deliver(node, "b", "fetched", request, [])
    got = out(node, "b answered late with nothing")
    want = [("b", "store", request, "k", [("new", {"p": 2})])]
    assert got == want, called("node.outbox() after b answered the finished read late", got, want)


@pytest.mark.parametrize(
    ("after", "failed"), DEADLINES, ids=["below_timeout", "at_timeout", "above_timeout"]
)
def test_a_get_without_quorum_fails_at_its_timeout(after, failed):
    """A get short of r answers answers ok=False at the first tick at or after start + timeout."""
    node, clock = make(r=2, w=1, timeout=1.0)
    with step("node.get('k')"):
        request = node.get("k")
    clock.advance(after)
    with step(f"node.tick() {after} s after the get"):
        node.tick()
    got = replies(node, f"node.tick() {after} s after the get")
    want = [(request, False, [])] if failed else []
    assert got == want, called(
        f"node.tick() {after} s after a get short of quorum; node.replies()", got, want
    )


def test_a_get_whose_repair_is_never_acknowledged_fails_empty():
    """A get that had r answers but never w holders answers ok=False with no versions at its timeout."""
    node, clock = make(r=2, w=2, timeout=1.0)
    deliver(node, "b", "store", 7, [Version("x", {"p": 1})])
    out(node, "a store from b")
    with step("node.get('k')"):
        request = node.get("k")
    fetches = [m for m in out(node, "node.get('k')") if m[1] == "fetch"]
    deliver(node, "b", "fetched", request, [])  # b is stale: the repair to b is never acked
    clock.advance(1.0)
    with step("node.tick() 1 s after the get"):
        node.tick()
    got = replies(node, "a get whose repair to b was never acknowledged, at its timeout")
    want = [(request, False, [])]
    assert got == want, called(
        f"node.get('k') (sent {len(fetches)} fetches), b answered [], its repair never "
        "acknowledged; node.tick() at the timeout; node.replies()",
        got,
        want,
    )


def test_put_counts_only_its_actor():
    """put's clock is the context with the actor's own counter plus one; other counters stay as they are."""
    node, _ = make(w=1)
    got = []
    for context, actor in (({"a": 5, "z": 1}, "z"), ({"a": 3}, "n")):
        with step(f"node.put('k', 'x', {context!r}, {actor!r})"):
            request = node.put("k", "x", context, actor)
        reply = [r for r in replies(node, "the put") if r[0] == request]
        got.append(reply[0][2][0][1] if reply and reply[0][2] else reply)
    want = [{"a": 5, "z": 2}, {"a": 3, "n": 1}]
    assert got == want, called(
        "the clocks of node.put('k', 'x', {'a': 5, 'z': 1}, 'z') and "
        "node.put('k', 'x', {'a': 3}, 'n')",
        got,
        want,
    )


def test_answers_to_unknown_requests_are_ignored():
    """stored and fetched answers for requests the node does not know change nothing and raise nothing."""
    node, _ = make()
    deliver(node, "b", "stored", 99)
    deliver(node, "b", "fetched", 98, [Version("x", {"p": 1})])
    got = (out(node, "unknown answers"), replies(node, "unknown answers"), held(node))
    assert got == ([], [], []), called(
        "node.receive(answers to unknown requests)", got, ([], [], [])
    )


# --- hinted handoff ---------------------------------------------------------------------------


@pytest.mark.points(2)
def test_an_unacknowledged_store_is_sent_again_every_timeout():
    """A replicated write a replica has not acknowledged is sent to it again each timeout, and no more once it acknowledged."""
    node, clock = make(w=1, timeout=1.0)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    node.outbox()
    deliver(node, "b", "stored", request)
    clock.advance(0.999)
    with step("node.tick() 0.999 s after the put"):
        node.tick()
    assert out(node, "tick before the timeout") == [], called(
        "node.outbox() 0.999 s after the put", "resends", []
    )
    clock.advance(0.001)
    with step("node.tick() 1 s after the put"):
        node.tick()
    got = out(node, "tick at the timeout")
    want = [("c", "store", request, "k", [("x", {"w": 1})])]
    assert got == want, called(
        "node.outbox() at the timeout (b acknowledged, c did not)", got, want
    )
    clock.advance(0.5)
    with step("node.tick() 1.5 s after the put"):
        node.tick()
    assert out(node, "tick half a timeout later") == [], called(
        "node.outbox() 0.5 s after the resend", "resends", []
    )
    clock.advance(0.5)
    with step("node.tick() 2 s after the put"):
        node.tick()
    assert out(node, "tick a timeout later") == want, called(
        "node.outbox() one timeout after the resend", "nothing", want
    )
    deliver(node, "c", "stored", request)
    for _ in range(5):
        clock.advance(1.0)
        with step("node.tick()"):
            node.tick()
    got = out(node, "c acknowledged; five timeouts passed")
    assert got == [], called("node.outbox() after c acknowledged, five timeouts later", got, [])


TIMEOUTS = [(-0.001, False), (0.0, False), (0.001, True)]


@pytest.mark.parametrize(("timeout", "valid"), TIMEOUTS, ids=["negative", "zero", "just_positive"])
def test_the_timeout_must_be_positive(timeout, valid):
    """Node raises ValueError for a timeout that is not positive."""
    call = f"Node('a', {NAMES!r}, r=2, w=2, clock=..., timeout={timeout})"
    try:
        Node("a", list(NAMES), r=2, w=2, clock=FakeClock(T0), timeout=timeout)
    except ValueError:
        assert not valid, called(call, "ValueError", "a node")
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {call}; raised {type(exc).__name__}: {exc}") from exc
    else:
        assert valid, called(call, "a node", "ValueError")


def test_an_unknown_message_kind_is_refused():
    """receive raises ValueError for a message kind that is not store, stored, fetch or fetched."""
    node, _ = make()
    message = Message("b", "a", "gossip", 1, "k")
    try:
        node.receive(message)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called node.receive({short(message)}); raised {type(exc).__name__}: {exc}; expected ValueError"
        ) from exc
    raise AssertionError(called(f"node.receive({short(message)})", "None", "ValueError"))


def test_a_replica_keeps_its_sibling_when_sent_a_concurrent_version():
    """A store of a version concurrent with the replica's own keeps both: a replica never overwrites a sibling."""
    node, _ = make(name="b")
    deliver(node, "a", "store", 1, [Version("x", {"p": 1})])
    deliver(node, "c", "store", 2, [Version("y", {"q": 1})])
    want = [("x", {"p": 1}), ("y", {"q": 1})]
    assert held(node) == want, called(
        "node.versions('k') after stores of x{p:1} then y{q:1}", held(node), want
    )


def test_the_coordinators_own_copy_counts_towards_w():
    """With w=2, one acknowledgement from another replica is enough: the coordinator's copy is the other."""
    node, _ = make(w=2)
    with step("node.put('k', 'x', {}, 'w')"):
        request = node.put("k", "x", {}, "w")
    deliver(node, "c", "stored", request)
    got = replies(node, "c acknowledged")
    want = [(request, True, [("x", {"w": 1})])]
    assert got == want, called("node.put with w=2; c acknowledged; node.replies()", got, want)
