"""Scale: many parked polls cost no thread each, wake together, and cost nothing while idle."""

from __future__ import annotations

import asyncio
import threading

import pytest
from _helpers import (
    bounded,
    called,
    check_not_blocking,
    open_waiter,
    raise_open_files,
    read_reply,
    running,
)

from grader.spectools import CountingLoop


async def _park_many(port: int, count: int, query: str) -> list:
    conns = []
    for start in range(0, count, 100):  # in waves, so no listen backlog overflows
        wave = min(100, count - start)
        conns += await asyncio.gather(*(open_waiter(port, query) for _ in range(wave)))
    return conns


@pytest.mark.points(4)
async def test_a_thousand_parked_polls_need_no_threads_and_all_wake() -> None:
    """1,000 parked polls are held without a thread each, and one publish answers all of them."""
    waiters = 1000
    raise_open_files(2 * waiters + 512)
    async with running(poll_timeout=30.0) as srv:
        await check_not_blocking(srv)  # publishes message 1
        threads_before = threading.active_count()
        # Parking 1,000 connections under coverage on a busy machine can take seconds: the poll
        # timeout (25 s) outlasts the wait for them all to park (20 s).
        conns = await _park_many(srv.port, waiters, "after=1&timeout=25")
        try:
            await srv.gauge.reaches(waiters, timeout=20.0)
            threads = threading.active_count()
            srv.server.publish("fan-out")
            replies = await bounded(
                asyncio.gather(*(read_reply(reader, "a parked poll") for reader, _ in conns)),
                20.0,
                f"all {waiters} parked polls to answer one publish",
            )
        finally:
            for _, writer in conns:
                writer.close()
        assert threads <= threads_before + 2, called(
            f"threading.active_count() with {waiters} polls parked (before: {threads_before})",
            threads,
            f"at most {threads_before + 2}",
        )
        want = {"messages": [{"id": 2, "body": "fan-out"}], "cursor": 2}
        wrong = [r.status for r in replies if r.status != 200 or r.json() != want]
        assert not wrong, called(
            f"{waiters} parked polls, then one publish (polls answered without the message)",
            f"{len(wrong)} polls, statuses {sorted(set(wrong))}",
            "0 polls",
        )
        await srv.gauge.reaches(0)


async def _wakeups_over(loop: CountingLoop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_and_parked(loop: CountingLoop, waiters: int, window: float) -> tuple[int, int]:
    async with running(poll_timeout=30.0) as srv:
        await check_not_blocking(srv)  # publishes message 1
        idle = await _wakeups_over(loop, window)
        conns = await _park_many(srv.port, waiters, "after=1&timeout=25")
        try:
            await srv.gauge.reaches(waiters, timeout=20.0)
            parked = await _wakeups_over(loop, window)
            srv.server.publish("done")
        finally:
            for _, writer in conns:
                writer.close()
    return idle, parked


@pytest.mark.points(4)
def test_parked_polls_cost_no_wakeups_while_idle() -> None:
    """200 parked polls with nothing to do cost (almost) no event-loop wake-ups: no spinning."""
    waiters, window = 200, 0.2
    raise_open_files(2 * waiters + 512)
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, parked = runner.run(_idle_and_parked(loop, waiters, window))
    limit = 2 * idle + 30
    assert parked <= limit, called(
        f"event-loop wake-ups over {window} s with {waiters} idle parked polls "
        f"(with none parked: {idle})",
        parked,
        f"at most {limit}",
    )
