"""The bulkhead: at most max_concurrent inside, max_queue waiting, the next one refused at once."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from resilience_sidecar import Bulkhead, BulkheadFull, Resilience, Response

from grader.spectools import bounded, called, step


class Gate:
    """Calls that enter the bulkhead and wait there until the spec opens their gate."""

    def __init__(self, bulkhead: Bulkhead) -> None:
        self.bulkhead = bulkhead
        self.inside: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.entered = asyncio.Event()

    async def run(self, n: int) -> str:
        self.gates[n] = asyncio.Event()
        try:
            async with self.bulkhead.slot():
                self.inside.append(n)
                self.entered.set()
                await self.gates[n].wait()
                self.inside.remove(n)
            return "done"
        except BulkheadFull:
            return "refused"


async def settle() -> None:
    """Let every ready task run until it blocks (a few loop iterations, no wall clock)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def start(gate: Gate, count: int) -> list[asyncio.Task[str]]:
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(gate.run(n)))
        await settle()
    return tasks


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("limit", "queue", "calls"),
    [(2, 3, 4), (2, 3, 5), (2, 3, 6), (1, 0, 1), (1, 0, 2), (3, 1, 5)],
    ids=["below-K+Q", "at-K+Q", "K+Q+1", "K1-Q0-one", "K1-Q0-two", "K3-Q1-one-over"],
)
async def test_k_run_q_wait_and_the_rest_are_refused_at_once(limit, queue, calls):
    """With K = max_concurrent and Q = max_queue, K calls run, the next Q wait, and any further
    call raises BulkheadFull at once."""
    bulkhead = Bulkhead(limit, queue)
    gate = Gate(bulkhead)
    with step(f"Bulkhead({limit}, {queue}) with {calls} calls entering"):
        tasks = await start(gate, calls)
    running = min(calls, limit)
    waiting = min(calls - running, queue)
    refused = calls - running - waiting
    done_refused = [t.result() for t in tasks if t.done()]
    got = (len(gate.inside), bulkhead.in_flight, bulkhead.queued, done_refused.count("refused"))
    want = (running, running, waiting, refused)
    try:
        assert got == want, called(
            f"{calls} calls into Bulkhead({limit}, {queue}): (running, in_flight, queued, refused)",
            got,
            want,
        )
    finally:
        for event in gate.gates.values():
            event.set()
        await bounded(asyncio.gather(*tasks), 5.0, "every call to finish")


@pytest.mark.points(2)
async def test_a_freed_slot_goes_to_the_first_waiter():
    """When a call leaves, the longest-waiting call enters (FIFO), and the counters follow."""
    bulkhead = Bulkhead(1, 2)
    gate = Gate(bulkhead)
    tasks = await start(gate, 3)
    try:
        order = []
        for n in range(3):
            order.append(list(gate.inside))
            gate.gates[n].set()
            await settle()
        assert order == [[0], [1], [2]], called(
            "Bulkhead(1, 2): three calls, each released in turn; who was inside",
            order,
            [[0], [1], [2]],
        )
        got = (bulkhead.in_flight, bulkhead.queued)
        assert got == (0, 0), called("(in_flight, queued) after every call finished", got, (0, 0))
    finally:
        for event in gate.gates.values():
            event.set()
        await bounded(asyncio.gather(*tasks), 5.0, "every call to finish")


@pytest.mark.points(1)
async def test_a_call_cancelled_inside_gives_its_slot_back():
    """A call cancelled while it holds a slot (its caller gave up) gives the slot back: the
    slot is returned however the call ends."""
    bulkhead = Bulkhead(1, 0)
    gate = Gate(bulkhead)
    tasks = await start(gate, 1)
    if tasks[0].done():  # it never got in: its error (or "refused") comes out here
        got = tasks[0].result()
        raise AssertionError(called("the first call into Bulkhead(1, 0)", got, "inside"))
    tasks[0].cancel()
    await settle()
    got = bulkhead.in_flight
    assert got == 0, called("bulkhead.in_flight after the call inside was cancelled", got, 0)
    late = asyncio.create_task(gate.run(9))
    await settle()
    entered = 9 in gate.inside
    gate.gates[9].set()
    outcome = await bounded(late, 5.0, "the new call to finish")
    assert entered, called(
        "a new call after the only call inside was cancelled (K=1, Q=0)", outcome, "let in"
    )


@pytest.mark.points(2)
async def test_a_cancelled_waiter_gives_its_queue_place_back():
    """A queued call that is cancelled leaves the queue: the place is free for the next call."""
    bulkhead = Bulkhead(1, 1)
    gate = Gate(bulkhead)
    tasks = await start(gate, 2)
    try:
        tasks[1].cancel()
        await settle()
        got = (bulkhead.in_flight, bulkhead.queued)
        assert got == (1, 0), called(
            "(in_flight, queued) after the waiter was cancelled", got, (1, 0)
        )
        late = asyncio.create_task(gate.run(9))
        await settle()
        assert not late.done(), called(
            "a new call after the queued one was cancelled", "refused", "queued"
        )
        gate.gates[0].set()
        await settle()
        assert gate.inside == [9], called(
            "who is inside after the first call left", gate.inside, [9]
        )
        gate.gates[9].set()
        await bounded(late, 5.0, "the late call to finish")
        got = (bulkhead.in_flight, bulkhead.queued)
        assert got == (0, 0), called("(in_flight, queued) after every call finished", got, (0, 0))
    finally:
        for event in gate.gates.values():
            event.set()
        await bounded(asyncio.gather(*tasks, return_exceptions=True), 5.0, "every call to finish")


@pytest.mark.points(1)
async def test_a_failing_call_frees_its_slot():
    """A call that raises inside the bulkhead still gives its slot back."""
    bulkhead = Bulkhead(1, 0)
    for attempt in range(3):
        with step(f"a failing call #{attempt + 1} in Bulkhead(1, 0)"):
            try:
                async with bulkhead.slot():
                    raise RuntimeError("upstream bug")
            except RuntimeError:
                pass
    got = (bulkhead.in_flight, bulkhead.queued)
    assert got == (0, 0), called("(in_flight, queued) after 3 failing calls", got, (0, 0))


@pytest.mark.points(1)
async def test_resilience_call_holds_one_slot_for_the_whole_request():
    """Resilience.call takes one bulkhead slot for the logical request (retries included) and
    raises BulkheadFull when none is free."""
    bulkhead = Bulkhead(1, 0)
    release = asyncio.Event()
    seen = []

    async def slow(seconds: float) -> Response:
        seen.append(bulkhead.in_flight)
        await release.wait()
        return Response(503 if len(seen) == 1 else 200)

    policy = Resilience(
        max_attempts=2, per_try_timeout=30.0, timeout=60.0, bulkhead=bulkhead, backoff_cap=0.0
    )
    first = asyncio.create_task(policy.call("GET", slow))
    await settle()
    with step("a second policy.call() while the first holds the only slot"):
        try:
            await bounded(policy.call("GET", slow), 5.0, "the second call")
            second = "accepted"
        except BulkheadFull:
            second = "BulkheadFull"
    release.set()
    result = await bounded(first, 5.0, "the first call")
    assert second == "BulkheadFull" and result.status == 200 and seen == [1, 1], called(
        "policy.call() twice with Bulkhead(1, 0); the first retries once",
        f"second: {second}; first: {result.status}; in_flight during attempts {seen}",
        "second: BulkheadFull; first: 200; in_flight during attempts [1, 1]",
    )
    assert bulkhead.in_flight == 0, called(
        "bulkhead.in_flight after the call", bulkhead.in_flight, 0
    )


@pytest.mark.points(1)
async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_goes_to_the_next():
    """If a waiter is cancelled just after a leaving call handed it the slot, the slot passes on
    to the next waiter (or back to the pool): none is lost."""
    bulkhead = Bulkhead(1, 2)
    gate = Gate(bulkhead)
    with step("the spec holds the only slot of Bulkhead(1, 2) while two calls queue"):
        holder = bulkhead.slot()
        await holder.__aenter__()
    tasks = [asyncio.create_task(gate.run(n)) for n in (1, 2)]
    await settle()
    try:
        with step("the spec leaves the bulkhead, then cancels the first waiter at once"):
            await holder.__aexit__(None, None, None)
            tasks[0].cancel()
        await settle()
        got = (list(gate.inside), bulkhead.in_flight, bulkhead.queued)
        assert got == ([2], 1, 0), called(
            "(inside, in_flight, queued) after the slot went to a waiter cancelled at that moment",
            got,
            ([2], 1, 0),
        )
        gate.gates[2].set()
        await settle()
        got = (bulkhead.in_flight, bulkhead.queued)
        assert got == (0, 0), called("(in_flight, queued) after every call finished", got, (0, 0))
    finally:
        for event in gate.gates.values():
            event.set()
        await bounded(asyncio.gather(*tasks, return_exceptions=True), 5.0, "every call to finish")


OP = st.one_of(
    st.just(("enter", 0)),
    st.tuples(st.just("leave"), st.integers(0, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 3)),
)


@pytest.mark.points(2)
@given(
    limits=st.tuples(st.integers(1, 3), st.integers(0, 2)),
    ops=st.lists(OP, max_size=25),
)
@example(limits=(1, 1), ops=[("enter", 0)] * 3 + [("cancel", 0), ("enter", 0), ("leave", 0)])
@example(limits=(2, 1), ops=[("enter", 0)] * 4 + [("leave", 1), ("enter", 0), ("enter", 0)])
@settings(max_examples=40, deadline=None)
def test_any_sequence_of_arrivals_departures_and_cancellations_matches_a_fifo_model(limits, ops):
    """For any sequence of calls arriving, leaving and being cancelled while queued, the calls
    inside, the queue length and the refusals match a FIFO model with K slots and Q places."""
    limit, queue = limits

    async def scenario() -> None:
        bulkhead = Bulkhead(limit, queue)
        gate = Gate(bulkhead)
        tasks: dict[int, asyncio.Task[str]] = {}
        inside: list[int] = []  # the model
        waiting: list[int] = []
        refused = 0
        history = [f"Bulkhead({limit}, {queue})"]
        try:
            for op, k in ops:
                if op == "enter":
                    n = len(tasks)
                    tasks[n] = asyncio.create_task(gate.run(n))
                    if len(inside) < limit and not waiting:
                        inside.append(n)
                    elif len(waiting) < queue:
                        waiting.append(n)
                    else:
                        refused += 1
                    history.append(f"call {n} arrives")
                elif op == "leave" and inside:
                    n = inside.pop(k % len(inside))
                    gate.gates[n].set()
                    if waiting:
                        inside.append(waiting.pop(0))
                    history.append(f"call {n} leaves")
                elif op == "cancel" and waiting:
                    n = waiting.pop(k % len(waiting))
                    tasks[n].cancel()
                    history.append(f"queued call {n} cancelled")
                await settle()
                done_refused = sum(
                    1
                    for t in tasks.values()
                    if t.done() and not t.cancelled() and t.result() == "refused"
                )
                got = (sorted(gate.inside), bulkhead.in_flight, bulkhead.queued, done_refused)
                want = (sorted(inside), len(inside), len(waiting), refused)
                assert got == want, called(
                    "; ".join(history[-10:]) + " -> (inside, in_flight, queued, refused)", got, want
                )
        finally:
            for event in gate.gates.values():
                event.set()
            await bounded(
                asyncio.gather(*tasks.values(), return_exceptions=True), 5.0, "every call to finish"
            )

    asyncio.run(scenario())
