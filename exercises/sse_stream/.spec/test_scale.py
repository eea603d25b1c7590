"""Scale: 500 streams at once, idle streams cost nothing, a client that stops reading is
dropped while the others keep receiving."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import (
    Dispatched,
    Stream,
    bounded,
    called,
    open_stream,
    raise_open_files,
    running,
    stalled_client,
)

from grader.spectools import CountingLoop


async def _open_many(port: int, count: int) -> list[Stream]:
    streams: list[Stream] = []
    for start in range(0, count, 100):  # in waves, so no listen backlog overflows
        wave = min(100, count - start)
        streams += await asyncio.gather(*(open_stream(port) for _ in range(wave)))
    return streams


@pytest.mark.points(4)
async def test_five_hundred_streams_all_receive_an_event() -> None:
    """500 streams are held at once, and one publish reaches every one of them."""
    count = 500
    raise_open_files(2 * count + 512)
    async with running() as srv:
        streams = await _open_many(srv.port, count)
        try:
            await srv.gauge.reaches(count, timeout=30.0)
            srv.hub.publish("fan-out")
            got = await bounded(
                asyncio.gather(*(s.events(1, "one of 500 streams", 30.0) for s in streams)),
                40.0,
                f"one event on each of {count} streams",
            )
        finally:
            for stream in streams:
                stream.close()
        want = [Dispatched("message", "fan-out", "1")]
        wrong = sum(1 for events in got if events != want)
        assert wrong == 0, called(
            f"{count} streams, one publish (streams that did not dispatch exactly it)", wrong, 0
        )
        await srv.gauge.reaches(0, timeout=30.0)


async def _wakeups_over(loop: CountingLoop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_and_streaming(loop: CountingLoop, count: int, window: float) -> tuple[int, int]:
    async with running() as srv:
        await srv.ticker.asleep()
        idle = await _wakeups_over(loop, window)
        streams = await _open_many(srv.port, count)
        try:
            await srv.gauge.reaches(count, timeout=30.0)
            streaming = await _wakeups_over(loop, window)
        finally:
            for stream in streams:
                stream.close()
    return idle, streaming


@pytest.mark.points(3)
def test_idle_streams_cost_no_wakeups() -> None:
    """200 open streams with nothing to send cost (almost) no event-loop wake-ups between
    heartbeats: no polling, no timer per stream."""
    count, window = 200, 0.2
    raise_open_files(2 * count + 512)
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, streaming = runner.run(_idle_and_streaming(loop, count, window))
    limit = 2 * idle + 30
    assert streaming <= limit, called(
        f"event-loop wake-ups over {window} s with {count} idle streams (with none: {idle})",
        streaming,
        f"at most {limit}",
    )


@pytest.mark.points(4)
async def test_a_client_that_stops_reading_is_dropped_and_others_keep_receiving() -> None:
    """A client that stops reading is disconnected once its queue overflows, while a reading
    client receives every event in order; publishing never waits for the slow one."""
    big = "x" * (128 * 1024)
    limit = 120  # 15 MiB: far more than the kernel buffers and asyncio's can hold
    async with running(queue_size=4) as srv:
        slow = await stalled_client(srv.port)  # reads nothing at all, not even into a buffer
        fast = await open_stream(srv.port)
        try:
            await srv.gauge.reaches(2)
            published = 0
            while srv.hub.subscribers == 2 and published < limit:
                srv.hub.publish(big)
                published += 1
                await fast.events(published, "the reading client", 10.0)
            dropped_after = published
            srv.hub.publish("after the drop")
            got = await fast.events(published + 1, "the reading client", 10.0)
            # The server ends the dropped client's stream: its handler was blocked writing to
            # it, so only aborting the connection can end it (a graceful close would wait to
            # flush to a client that reads nothing).
            await srv.gauge.reaches(1, timeout=10.0)
        finally:
            slow.close()
            fast.close()
    assert dropped_after < limit, called(
        f"{limit} publishes of 128 KiB with queue_size=4 and one client not reading "
        "(hub.subscribers)",
        2,
        1,
    )
    ids = [event.last_event_id for event in got]
    want = [str(n) for n in range(1, published + 2)]
    assert ids == want, called("the ids the reading client received", ids, want)
