"""Hub and Subscription: numbering, fan-out, the replay buffer at its edges, the bounded queue."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import bounded, called, short, step
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sse_stream import Event, Hub

from grader.spectools import CountingLoop


def make_hub(replay: int = 100, queue_size: int = 64) -> Hub:
    with step(f"Hub(replay={replay}, queue_size={queue_size})"):
        return Hub(replay=replay, queue_size=queue_size)


def publish_many(hub: Hub, count: int) -> list[Event]:
    with step(f"hub.publish(...) {count} times"):
        return [hub.publish(f"m{n}") for n in range(1, count + 1)]


async def take(sub, count: int, what: str) -> list[Event | None]:
    got = []
    for _ in range(count):
        with step(f"await sub.get() on {what}"):
            got.append(await bounded(sub.get(), 2.0, f"sub.get() on {what}"))
    return got


@pytest.mark.points(2)
def test_publish_numbers_events_from_one() -> None:
    """publish() returns the event with the next id, "1", "2", "3"...; last_id is "0" before
    the first event, then the newest id."""
    hub = make_hub()
    assert hub.last_id == "0", called("Hub().last_id", hub.last_id, "0")
    with step("hub.publish('a'); hub.publish('b', event='chat')"):
        first, second = hub.publish("a"), hub.publish("b", event="chat")
    want = [Event("a", id="1"), Event("b", event="chat", id="2")]
    assert [first, second] == want, called(
        "hub.publish('a'), hub.publish('b', event='chat')", [first, second], want
    )
    assert hub.last_id == "2", called("hub.last_id after two publishes", hub.last_id, "2")


@pytest.mark.points(3)
async def test_every_subscriber_gets_every_event_in_order() -> None:
    """Every subscription receives every event published after it subscribed, oldest first."""
    hub = make_hub()
    hub.publish("before")
    with step("hub.subscribe() three times"):
        subs = [hub.subscribe() for _ in range(3)]
    assert hub.subscribers == 3, called("hub.subscribers after 3 subscribe()", hub.subscribers, 3)
    publish_many(hub, 4)
    sent = [Event(f"m{n}", id=str(n + 1)) for n in range(1, 5)]  # "before" took id 1
    for index, sub in enumerate(subs):
        assert sub.backlog == [], called(f"subscribe() #{index + 1}: backlog", sub.backlog, [])
        got = await take(sub, 4, f"subscriber #{index + 1}")
        assert got == sent, called(f"4 x sub.get() on subscriber #{index + 1}", got, sent)


# replay=5 and 8 events published: the buffer holds ids 4..8.
REPLAY = [
    (None, [], "no_header"),
    ("", [], "empty"),
    ("8", [], "newest"),
    ("7", ["8"], "one_missed"),
    ("4", ["5", "6", "7", "8"], "oldest_kept"),
    ("3", ["4", "5", "6", "7", "8"], "just_before_oldest"),
    ("2", "reset", "one_too_old"),
    ("0", "reset", "zero"),
    ("9", "reset", "newer_than_newest"),
    ("123456789012345678901234567890", "reset", "far_future"),
    ("abc", "reset", "not_a_number"),
    ("-1", "reset", "negative"),
    ("+7", "reset", "plus_sign"),
    (" 7", "reset", "leading_space"),
    ("7.0", "reset", "decimal_point"),
    ("\u0667", "reset", "arabic_indic_seven"),
    ("7" * 5000, "reset", "five_thousand_digits"),
]


@pytest.mark.points(4)
@pytest.mark.parametrize(
    ("last_event_id", "want"), [(a, b) for a, b, _ in REPLAY], ids=[c for _, _, c in REPLAY]
)
def test_resume_from_the_replay_buffer(last_event_id: str | None, want) -> None:
    """subscribe(last_event_id) replays exactly the events after it while they are all still
    buffered (from the id just before the oldest kept one up to the newest); anything else
    gets exactly one reset event carrying the newest id."""
    hub = make_hub(replay=5)
    publish_many(hub, 8)
    call = f"subscribe({short(last_event_id, 40)}) with ids 4..8 buffered (replay=5)"
    with step(call):
        backlog = hub.subscribe(last_event_id).backlog
    if want == "reset":
        expected = [Event("", event="reset", id="8")]
    else:
        expected = [Event(f"m{n}", id=n) for n in want]
    assert backlog == expected, called(f"{call}.backlog", backlog, expected)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("replay", "published", "last_event_id", "want"),
    [
        (0, 3, "3", []),
        (0, 3, "2", "reset"),
        (5, 0, "0", []),
        (5, 0, "1", "reset"),
        (1, 2, "1", ["2"]),
        (1, 2, "0", "reset"),
    ],
    ids=[
        "no_replay_newest",
        "no_replay_one_behind",
        "empty_hub_zero",
        "empty_hub_one",
        "replay_one_in",
        "replay_one_out",
    ],
)
def test_replay_edges(replay: int, published: int, last_event_id: str, want) -> None:
    """With replay=0 only the newest id resumes; an empty hub resumes from "0" only; with
    replay=1 the id just before the one kept event resumes."""
    hub = make_hub(replay=replay)
    publish_many(hub, published)
    call = f"subscribe({last_event_id!r}) after {published} events with replay={replay}"
    with step(call):
        backlog = hub.subscribe(last_event_id).backlog
    if want == "reset":
        expected = [Event("", event="reset", id=str(published))]
    else:
        expected = [Event(f"m{n}", id=n) for n in want]
    assert backlog == expected, called(f"{call}.backlog", backlog, expected)


@pytest.mark.points(2)
async def test_backlog_then_live_events_without_repeats() -> None:
    """After its backlog, a resumed subscription gets the events published after it
    subscribed, and none of the backlog again."""
    hub = make_hub(replay=10)
    publish_many(hub, 3)
    with step("hub.subscribe('1')"):
        sub = hub.subscribe("1")
    backlog_ids = [event.id for event in sub.backlog]
    assert backlog_ids == ["2", "3"], called("subscribe('1').backlog ids", backlog_ids, ["2", "3"])
    hub.publish("live")
    got = await take(sub, 1, "a resumed subscription")
    want = [Event("live", id="4")]
    assert got == want, called("sub.get() after one more publish", got, want)
    assert sub.pending == 0, called("sub.pending after taking every event", sub.pending, 0)


@pytest.mark.points(4)
@pytest.mark.parametrize("queue_size", [1, 3, 8], ids=["size_1", "size_3", "size_8"])
async def test_a_full_queue_drops_only_its_subscriber(queue_size: int) -> None:
    """A subscription holding queue_size unread events is kept; the next publish drops it
    (dropped, closed, out of the hub, on_drop called once) while a reading subscriber gets
    every event."""
    hub = make_hub(queue_size=queue_size)
    drops: list[str] = []
    with step("hub.subscribe(on_drop=...) twice"):
        slow = hub.subscribe(on_drop=lambda: drops.append("slow"))
        fast = hub.subscribe(on_drop=lambda: drops.append("fast"))
    received: list[Event | None] = []
    for n in range(1, queue_size + 1):  # below the limit, then at it
        hub.publish(f"m{n}")
        received += await take(fast, 1, "the reading subscriber")
        state = (slow.dropped, slow.closed, slow.pending, hub.subscribers, drops)
        want = (False, False, n, 2, [])
        assert state == want, called(
            f"{n} publishes with queue_size={queue_size}, one subscriber not reading: "
            "(dropped, closed, pending, hub.subscribers, on_drop calls)",
            state,
            want,
        )
    hub.publish("one too many")  # above the limit
    received += await take(fast, 1, "the reading subscriber")
    state = (slow.dropped, slow.closed, hub.subscribers, drops)
    want = (True, True, 1, ["slow"])
    assert state == want, called(
        f"{queue_size + 1} publishes with queue_size={queue_size}, one subscriber not reading: "
        "(dropped, closed, hub.subscribers, on_drop calls)",
        state,
        want,
    )
    got = await bounded(slow.get(), 2.0, "get() on a dropped subscription")
    assert got is None, called("get() on a dropped subscription", got, None)
    ids = [event.id if event else None for event in received]
    want_ids = [str(n) for n in range(1, queue_size + 2)]
    assert ids == want_ids, called("the reading subscriber's get()s", ids, want_ids)
    assert not fast.dropped, called("fast.dropped", fast.dropped, False)


@pytest.mark.points(2)
async def test_a_subscriber_that_keeps_up_is_never_dropped() -> None:
    """With queue_size=1, a subscriber that takes each event before the next publish is
    never dropped."""
    hub = make_hub(queue_size=1)
    sub = hub.subscribe()
    for n in range(1, 21):
        hub.publish(f"m{n}")
        got = await take(sub, 1, "a subscriber that keeps up")
        assert not sub.dropped and got == [Event(f"m{n}", id=str(n))], called(
            f"publish #{n}, then get(), queue_size=1", (sub.dropped, got), (False, "that event")
        )


@pytest.mark.points(1)
def test_the_replayed_backlog_does_not_count_against_the_queue() -> None:
    """The backlog is not in the queue: a subscription resumed with 7 missed events and
    queue_size=2 takes 2 publishes and is dropped at the third."""
    hub = make_hub(replay=10, queue_size=2)
    publish_many(hub, 8)
    with step("hub.subscribe('1')"):
        sub = hub.subscribe("1")
    hub.publish("live 1")
    hub.publish("live 2")
    assert (sub.dropped, len(sub.backlog), sub.pending) == (False, 7, 2), called(
        "subscribe('1') after 8 events, 2 publishes, queue_size=2: (dropped, backlog, pending)",
        (sub.dropped, len(sub.backlog), sub.pending),
        (False, 7, 2),
    )
    hub.publish("live 3")
    assert sub.dropped, called("sub.dropped after the third publish", sub.dropped, True)


@pytest.mark.points(2)
async def test_close_leaves_the_hub_and_ends_a_waiting_get() -> None:
    """close() takes the subscription out of the hub, a get() waiting on it returns None,
    and a second close() is harmless."""
    hub = make_hub()
    sub, other = hub.subscribe(), hub.subscribe()
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)  # let get() start waiting
    with step("sub.close() twice"):
        sub.close()
        sub.close()
    got = await bounded(waiting, 2.0, "a waiting get() to return after close()")
    assert got is None, called("a waiting sub.get(), then sub.close()", got, None)
    assert (sub.closed, sub.dropped, hub.subscribers) == (True, False, 1), called(
        "sub.close(): (closed, dropped, hub.subscribers)",
        (sub.closed, sub.dropped, hub.subscribers),
        (True, False, 1),
    )
    hub.publish("after")
    assert sub.pending == 0, called("sub.pending after a publish to a closed one", sub.pending, 0)
    assert other.pending == 1, called("other.pending after one publish", other.pending, 1)


async def _parked_gets(loop: CountingLoop, count: int, window: float) -> tuple[int, int, list]:
    hub = make_hub()
    subs = [hub.subscribe() for _ in range(count)]
    before = loop.wakeups
    await asyncio.sleep(window)  # a measurement window, not a wait for a condition
    idle = loop.wakeups - before
    tasks = [asyncio.create_task(sub.get()) for sub in subs]
    await asyncio.sleep(0)
    before = loop.wakeups
    await asyncio.sleep(window)
    parked = loop.wakeups - before
    hub.publish("wake")
    got = await bounded(asyncio.gather(*tasks), 5.0, f"{count} waiting get()s to return")
    return idle, parked, got


@pytest.mark.points(2)
def test_a_waiting_get_costs_no_wakeups() -> None:
    """100 get()s waiting on an idle hub cost (almost) no event-loop wake-ups (no polling),
    and one publish wakes them all."""
    count, window = 100, 0.2
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner, step("100 x await sub.get()"):
        idle, parked, got = runner.run(_parked_gets(loop, count, window))
    limit = 2 * idle + 20
    assert parked <= limit, called(
        f"event-loop wake-ups over {window} s with {count} get()s waiting (with none: {idle})",
        parked,
        f"at most {limit}",
    )
    want = [Event("wake", id="1")] * count
    assert got == want, called(f"{count} waiting get()s, then one publish", got[:2], want[:2])


@pytest.mark.points(2)
async def test_a_dropped_subscriber_resumes_without_gaps() -> None:
    """A subscriber dropped for a full queue that subscribes again with the last id it took
    gets every event it missed, once, in order (while the replay buffer still holds them)."""
    hub = make_hub(replay=20, queue_size=3)
    sub = hub.subscribe()
    publish_many(hub, 2)
    taken = await take(sub, 2, "the subscriber before it stalls")
    publish_many(hub, 4)  # 3 fit in its queue, the 4th drops it
    assert sub.dropped, called("sub.dropped after 4 unread publishes, queue_size=3", False, True)
    last = taken[-1].id if taken[-1] else None
    with step(f"hub.subscribe({last!r}) after the drop"):
        again = hub.subscribe(last)
    hub.publish("live")
    live = await take(again, 1, "the resumed subscription")
    got = [event.id for event in [*taken, *again.backlog, *live] if event]
    want = [str(n) for n in range(1, 8)]
    assert got == want, called(
        "ids taken before the drop + backlog of subscribe(last id) + the next publish", got, want
    )


@pytest.mark.points(3)
@settings(max_examples=120)
@given(
    replay=st.integers(0, 6),
    published=st.integers(0, 12),
    last=st.integers(-2, 15),
)
@example(replay=3, published=10, last=6)  # the id just before the oldest kept
@example(replay=3, published=10, last=7)  # the oldest kept
@example(replay=3, published=10, last=5)  # one too old
@example(replay=3, published=10, last=10)  # the newest
@example(replay=3, published=10, last=11)  # one past the newest
@example(replay=0, published=0, last=0)
@example(replay=6, published=2, last=0)  # a buffer not yet full: everything from the start
def test_the_backlog_matches_the_replay_model(replay: int, published: int, last: int) -> None:
    """For any replay size, number of events and Last-Event-ID, the backlog is the events
    after it when all of them are still buffered, and a single reset otherwise."""
    hub = make_hub(replay=replay)
    publish_many(hub, published)
    oldest = max(published - replay, 0) + 1
    if oldest - 1 <= last <= published:
        want = [Event(f"m{n}", id=str(n)) for n in range(last + 1, published + 1)]
    else:
        want = [Event("", event="reset", id=str(published))]
    call = f"subscribe({str(last)!r}) after {published} events with replay={replay}"
    with step(call):
        backlog = hub.subscribe(str(last)).backlog
    assert backlog == want, called(f"{call}.backlog", backlog, want)
