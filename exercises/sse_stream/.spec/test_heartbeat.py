"""Heartbeats: comment lines on an injected sleep, counted per stream, never inside an event."""

from __future__ import annotations

import pytest
from _helpers import Dispatched, called, open_stream, receive_until, running, stalled_client


@pytest.mark.points(2)
async def test_the_heartbeat_task_sleeps_the_configured_interval() -> None:
    """The server sleeps through the injected sleep(), heartbeat seconds at a time."""
    async with running(heartbeat=7.5) as srv:
        await srv.ticker.asleep()
        await srv.ticker.tick()
        delays = srv.ticker.delays
    assert delays[:2] == [7.5, 7.5], called("sleep() calls with heartbeat=7.5", delays, [7.5, 7.5])


@pytest.mark.points(4)
async def test_each_interval_sends_one_comment_to_every_stream() -> None:
    """Each time the heartbeat interval passes every open stream gets exactly one comment
    line, which no client dispatches as an event (WHATWG HTML §9.2.7); none before."""
    async with running() as srv:
        streams = [await open_stream(srv.port) for _ in range(3)]
        try:
            await srv.gauge.reaches(3)
            await srv.ticker.asleep()
            counts = []
            for ticks in (0, 1, 2):
                for _ in range(ticks):
                    await srv.ticker.tick()
                srv.hub.publish(f"after {ticks} more")
                for index, stream in enumerate(streams):
                    await stream.events(len(counts) // 3 + 1, f"stream #{index + 1}")
                    counts.append(len(stream.parser.comments))
        finally:
            for stream in streams:
                stream.close()
    want = [0, 0, 0, 1, 1, 1, 3, 3, 3]
    assert counts == want, called(
        "comments seen per stream (3 streams) after 0, then 1, then 2 more intervals",
        counts,
        want,
    )
    got = [stream.parser.events for stream in streams]
    sent = [Dispatched("message", f"after {n} more", str(i + 1)) for i, n in enumerate((0, 1, 2))]
    assert got == [sent] * 3, called("the events each stream dispatched", got[0], sent)


@pytest.mark.points(2)
async def test_heartbeats_go_on_after_a_client_leaves() -> None:
    """A stream that ended gets no heartbeat, and the heartbeats of the others go on."""
    async with running() as srv:
        leaving, staying = await open_stream(srv.port), await open_stream(srv.port)
        try:
            await srv.gauge.reaches(2)
            leaving.close()
            await srv.gauge.reaches(1)
            await srv.ticker.tick()
            await srv.ticker.tick()
            srv.hub.publish("x")
            await staying.events(1, "the stream that stayed")
        finally:
            staying.close()
    comments = len(staying.parser.comments)
    assert comments == 2, called(
        "2 intervals after the other client left: comments on the stream that stayed",
        comments,
        2,
    )


@pytest.mark.points(2)
async def test_no_heartbeat_on_a_stream_with_unsent_bytes() -> None:
    """A stream whose client is not reading, with bytes still waiting to go out, gets no
    heartbeat: it is not idle, and a heartbeat would only grow its buffer."""
    async with running() as srv:
        stalled = await stalled_client(srv.port)
        try:
            await srv.gauge.reaches(1)
            srv.hub.publish("x" * (16 << 20))  # far more than the kernel buffers hold
            received = await receive_until(stalled, b"data: x", "the client that stops reading")
            for _ in range(3):
                await srv.ticker.tick()
            srv.hub.publish("after")
            received += await receive_until(
                stalled, b"data: after\n\n", "the client reading again", timeout=30.0
            )
        finally:
            stalled.close()
    comments = sum(1 for line in received.split(b"\n") if line.startswith(b":"))
    assert comments == 0, called(
        "3 heartbeat intervals while 16 MiB waited to go out: comment lines on that stream",
        comments,
        0,
    )
