"""Hidden specs for the leader-follower log: ordered appends, cumulative acknowledgements, and what
each acknowledgement mode loses when the leader dies."""

from __future__ import annotations

import random

import pytest
from _helpers import LogSim
from replication import Follower, Leader, LogMessage

from grader.spectools import FakeClock, called, short, step

FOLLOWERS = ["f1", "f2"]


def sent(node, what: str) -> list[tuple]:
    with step(f"{what}; then outbox()"):
        return [(m.dst, m.kind, m.index, m.entry) for m in node.outbox()]


def acks(leader: Leader, what: str) -> list[int]:
    with step(f"{what}; then leader.acknowledged()"):
        return list(leader.acknowledged())


def make_leader(sync: int, timeout: float = 1.0) -> tuple[Leader, FakeClock]:
    clock = FakeClock(1000.0)
    with step(f"Leader('L', {FOLLOWERS!r}, sync_followers={sync}, clock=..., timeout={timeout})"):
        return Leader(
            "L", list(FOLLOWERS), sync_followers=sync, clock=clock, timeout=timeout
        ), clock


def ack(leader: Leader, follower: str, index: int) -> None:
    message = LogMessage(follower, "L", "acked", index)
    with step(f"leader.receive({short(message)})"):
        leader.receive(message)


def append(follower: Follower, index: int, entry: str) -> None:
    message = LogMessage("L", follower.node_id, "append", index, entry)
    with step(f"{follower.node_id}.receive({short(message)})"):
        follower.receive(message)


# --- the follower ------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_a_follower_appends_in_order_and_acknowledges_its_length():
    """A follower appends entry i only when it holds exactly i - 1 entries, and always answers acked with its log's length."""
    with step("Follower('f1')"):
        follower = Follower("f1")
    append(follower, 1, "a")
    append(follower, 3, "c")  # a gap: entry 2 is missing
    append(follower, 2, "b")
    append(follower, 1, "a")  # a duplicate
    got = (list(follower.log), sent(follower, "appends 1, 3, 2, 1"))
    want = (
        ["a", "b"],
        [
            ("L", "acked", 1, ""),
            ("L", "acked", 1, ""),
            ("L", "acked", 2, ""),
            ("L", "acked", 2, ""),
        ],
    )
    assert got == want, called(
        "f1.receive(append 1 'a', 3 'c', 2 'b', 1 'a'); f1.log, f1.outbox()", got, want
    )


# --- the leader --------------------------------------------------------------------------------


SYNC = [(-1, False), (0, True), (2, True), (3, False)]


@pytest.mark.parametrize(("sync", "valid"), SYNC, ids=[f"sync_followers={s}" for s, _ in SYNC])
def test_sync_followers_lies_between_0_and_the_number_of_followers(sync, valid):
    """Leader accepts sync_followers from 0 to len(followers) and raises ValueError outside."""
    call = f"Leader('L', {FOLLOWERS!r}, sync_followers={sync}, clock=...)"
    try:
        Leader("L", list(FOLLOWERS), sync_followers=sync, clock=FakeClock(0.0))
    except ValueError:
        assert not valid, called(call, "ValueError", "a leader")
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {call}; raised {type(exc).__name__}: {exc}") from exc
    else:
        assert valid, called(call, "a leader", "ValueError")


def test_a_write_is_shipped_to_every_follower():
    """leader.write appends to the leader's log, returns the 1-based index and sends append to each follower."""
    leader, _ = make_leader(0)
    with step("leader.write('a'); leader.write('b')"):
        indexes = (leader.write("a"), leader.write("b"))
    got = (indexes, list(leader.log), sent(leader, "two writes"))
    want = (
        (1, 2),
        ["a", "b"],
        [
            ("f1", "append", 1, "a"),
            ("f2", "append", 1, "a"),
            ("f1", "append", 2, "b"),
            ("f2", "append", 2, "b"),
        ],
    )
    assert got == want, called(
        "leader.write('a'), leader.write('b'); indexes, log, outbox", got, want
    )


MODES = [(0, "async"), (1, "semi_sync"), (2, "sync")]


@pytest.mark.points(2)
@pytest.mark.parametrize(("sync", "mode"), MODES, ids=[m for _, m in MODES])
def test_a_write_is_acknowledged_once_sync_followers_hold_it(sync, mode):
    """A write is acknowledged to the client once sync_followers followers hold it (0: at once), in index order, once."""
    leader, _ = make_leader(sync)
    with step("leader.write('a'); leader.write('b')"):
        leader.write("a")
        leader.write("b")
    timeline = [acks(leader, "two writes")]
    ack(leader, "f1", 1)
    timeline.append(acks(leader, "f1 acked 1"))
    ack(leader, "f2", 2)
    timeline.append(acks(leader, "f2 acked 2"))
    ack(leader, "f1", 2)
    timeline.append(acks(leader, "f1 acked 2"))
    want = {0: [[1, 2], [], [], []], 1: [[], [1], [2], []], 2: [[], [], [1], [2]]}[sync]
    assert timeline == want, called(
        f"sync_followers={sync}: write a, b; f1 acks 1; f2 acks 2; f1 acks 2; acknowledged() after each",
        timeline,
        want,
    )


@pytest.mark.points(2)
def test_the_leader_resends_what_a_follower_has_not_acknowledged():
    """Entries a follower has not acknowledged are sent again, from its acknowledged length on, once per timeout."""
    leader, clock = make_leader(0, timeout=1.0)
    with step("leader.write('a'); leader.write('b'); leader.write('c')"):
        for entry in "abc":
            leader.write(entry)
    leader.outbox()
    ack(leader, "f1", 3)
    ack(leader, "f2", 1)
    clock.advance(0.999)
    with step("leader.tick() 0.999 s after the writes"):
        leader.tick()
    early = sent(leader, "tick before the timeout")
    clock.advance(0.001)
    with step("leader.tick() 1 s after the writes"):
        leader.tick()
    due = sent(leader, "tick at the timeout")
    ack(leader, "f2", 3)
    clock.advance(5.0)
    with step("leader.tick() after f2 caught up"):
        leader.tick()
    after = sent(leader, "tick after everyone caught up")
    got = (early, due, after)
    want = ([], [("f2", "append", 2, "b"), ("f2", "append", 3, "c")], [])
    assert got == want, called("leader.tick() at 0.999 s, at 1 s, after f2 acked 3", got, want)


def test_a_write_restarts_the_resend_timer():
    """The resend timeout counts from when entries were last sent to a follower, a new write included."""
    leader, clock = make_leader(0, timeout=1.0)
    with step("leader.write('a'); 0.6 s later leader.write('b')"):
        leader.write("a")
        clock.advance(0.6)
        leader.write("b")
    leader.outbox()
    clock.advance(0.4)
    with step("leader.tick() 1 s after 'a', 0.4 s after 'b'"):
        leader.tick()
    early = sent(leader, "tick 0.4 s after the last send")
    clock.advance(0.6)
    with step("leader.tick() 1 s after 'b'"):
        leader.tick()
    due = sent(leader, "tick 1 s after the last send")
    resend = [(f, "append", i, e) for f in FOLLOWERS for i, e in ((1, "a"), (2, "b"))]
    got = (early, due)
    assert got == ([], resend), called(
        "leader.tick() 0.4 s and 1 s after the last write (no acknowledgements)",
        got,
        ([], resend),
    )


def test_a_resend_restarts_the_resend_timer():
    """After resending to a follower, the leader waits another timeout before it resends again."""
    leader, clock = make_leader(0, timeout=1.0)
    with step("leader.write('a')"):
        leader.write("a")
    leader.outbox()
    ack(leader, "f1", 1)
    got = []
    for t in (1.0, 1.5, 1.75, 2.0):  # binary fractions: the sums stay exact
        clock.advance(t - (clock() - 1000.0))
        with step(f"leader.tick() {t} s after the write"):
            leader.tick()
        got.append((t, sent(leader, f"tick {t} s after the write")))
    want = [
        (1.0, [("f2", "append", 1, "a")]),
        (1.5, []),
        (1.75, []),
        (2.0, [("f2", "append", 1, "a")]),
    ]
    assert got == want, called(
        "leader.tick() at 1, 1.5, 1.75 and 2 s after a write f2 never acknowledges", got, want
    )


# --- what a crash of the leader loses ------------------------------------------------------------


def run_and_crash(seed: int, sync: int) -> LogSim:
    rng = random.Random(seed)
    sim = LogSim(FOLLOWERS, sync_followers=sync, seed=seed, delay=(0.01, 0.3), drop=0.1)
    t = 0.0
    for i in range(12):
        t += rng.uniform(0.0, 0.1)
        sim.run_until(t)
        sim.write(f"e{i + 1}")
    sim.run_until(t + rng.uniform(0.0, 0.4))
    sim.crash()
    sim.run_until(sim.now + 10.0)
    return sim


SEEDS = list(range(10))


@pytest.mark.points(3)
@pytest.mark.parametrize("sync", [1, 2], ids=["semi_sync", "sync"])
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
def test_no_acknowledged_write_is_lost_when_the_leader_dies_in_sync_modes(seed, sync):
    """With sync_followers >= 1, the most complete follower holds every write acknowledged before the leader died."""
    sim = run_and_crash(seed, sync)
    logs = sim.logs()
    best = max(logs.values(), key=len)
    acknowledged = max(sim.acknowledged, default=0)
    entries = [f"e{i}" for i in range(1, 13)]
    assert best[:acknowledged] == entries[:acknowledged] and len(best) >= acknowledged, called(
        f"sync_followers={sync}, seed {seed}: leader crashed after acknowledging 1..{acknowledged}; the followers' logs",
        logs,
        f"one follower holding e1..e{acknowledged}",
    )
    assert all(log == entries[: len(log)] for log in logs.values()), called(
        "the followers' logs", logs, "prefixes of the leader's log"
    )


@pytest.mark.points(2)
def test_asynchronous_replication_loses_acknowledged_writes_when_the_leader_dies():
    """With sync_followers=0 writes are acknowledged at once, so a leader that dies before shipping them loses them."""
    sim = LogSim(FOLLOWERS, sync_followers=0, seed=1)
    sim.write("e1")
    sim.run_until(1.0)
    sim.cut = {frozenset(("L", f)) for f in FOLLOWERS}
    sim.write("e2")
    sim.write("e3")
    sim.run_until(1.5)
    sim.crash()
    sim.cut = set()
    sim.run_until(10.0)
    got = (sim.acknowledged, sim.logs())
    want = ([1, 2, 3], {"f1": ["e1"], "f2": ["e1"]})
    assert got == want, called(
        "async leader: write e1; cut off; write e2, e3; crash; acknowledged, followers' logs",
        got,
        want,
    )


def test_a_late_smaller_acknowledgement_changes_nothing():
    """Acknowledgements are cumulative: a late acked 1 after acked 2 neither re-acknowledges nor triggers resends."""
    leader, clock = make_leader(2, timeout=1.0)
    with step("leader.write('a'); leader.write('b')"):
        leader.write("a")
        leader.write("b")
    leader.outbox()
    for follower in FOLLOWERS:
        ack(leader, follower, 2)
    first = acks(leader, "both followers acked 2")
    ack(leader, "f1", 1)  # delayed on the network, overtaken by acked 2
    clock.advance(2.0)
    with step("leader.tick() two timeouts later"):
        leader.tick()
    got = (
        first,
        acks(leader, "a late acked 1 from f1"),
        sent(leader, "a late acked 1; two timeouts"),
    )
    want = ([1, 2], [], [])
    assert got == want, called(
        "acked 2 from both, then a late acked 1 from f1; acknowledged(), tick(), outbox()",
        got,
        want,
    )


@pytest.mark.parametrize("side", ["leader", "follower"])
def test_a_message_of_the_wrong_kind_is_refused(side):
    """A leader refuses anything but acked, a follower anything but append, with ValueError."""
    if side == "leader":
        node, _ = make_leader(1)
        message = LogMessage("f1", "L", "append", 1, "x")
    else:
        with step("Follower('f1')"):
            node = Follower("f1")
        message = LogMessage("L", "f1", "acked", 1)
    try:
        node.receive(message)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called {side}.receive({short(message)}); raised {type(exc).__name__}: {exc}; expected ValueError"
        ) from exc
    raise AssertionError(called(f"{side}.receive({short(message)})", "None", "ValueError"))
