"""Throughput and concurrency: long pipelines, many clients at once, and no work while idle."""

from __future__ import annotations

import asyncio
import resource

import pytest
import redis.asyncio as aredis
from _helpers import (
    LOCALHOST,
    async_client,
    bounded,
    called,
    command,
    in_thread,
    running,
    sync_client,
)

from grader.spectools import CountingLoop


@pytest.mark.points(3)
async def test_a_pipeline_of_10000_commands() -> None:
    """A pipeline of 10,000 commands sent in one go (sync client, no transaction) gets 10,000 replies in order."""

    def session() -> tuple[list[object], list[object]]:
        r = sync_client(srv.port)
        try:
            pipe = r.pipeline(transaction=False)
            for i in range(5000):
                pipe.set(f"key:{i}", i)
            for i in range(0, 5000, 2):
                pipe.incrby(f"key:{i}", 1)
            for i in range(0, 5000, 2):
                pipe.get(f"key:{i}")
            first = pipe.execute()
            return first, [r.dbsize()]
        finally:
            r.close()

    async with running() as srv:
        got, (size,) = await in_thread(
            session, "a pipeline of 5,000 SET, 2,500 INCRBY, 2,500 GET", timeout=30.0
        )
    want = (
        [True] * 5000
        + [i + 1 for i in range(0, 5000, 2)]
        + [str(i + 1).encode() for i in range(0, 5000, 2)]
    )
    assert len(got) == len(want), called(
        "pipeline.execute() of 10,000 commands", f"{len(got)} replies", "10,000 replies"
    )
    wrong = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    assert not wrong, called(
        "pipeline.execute() of 10,000 commands",
        f"{len(wrong)} wrong replies, the first at #{wrong[0] if wrong else 0}: {got[wrong[0]] if wrong else None!r}",
        f"{want[wrong[0]] if wrong else None!r} there",
    )
    assert size == 5000, called("DBSIZE after the pipeline", size, 5000)


@pytest.mark.points(3)
async def test_200_concurrent_clients() -> None:
    """200 asyncio clients connected at once each SET their own key and INCR a shared counter 3 times: nothing lost."""
    clients = 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4 * clients:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4 * clients, hard), hard))

    async with running() as srv:
        pool = aredis.ConnectionPool(
            host=LOCALHOST,
            port=srv.port,
            protocol=2,
            max_connections=clients,
            socket_timeout=20.0,
            socket_connect_timeout=20.0,
        )
        r = aredis.Redis(connection_pool=pool)
        all_connected = asyncio.Barrier(clients)
        # Connect in waves of 50: a burst of 200 SYNs would overflow a listen backlog of 100
        # (asyncio's default) and leave the rest to the kernel's SYN retries.
        connecting = asyncio.Semaphore(50)

        async def one(i: int) -> bytes | None:
            async with r.client() as conn:  # holds one connection of its own until the end
                async with connecting:
                    await conn.set(f"own:{i}", i)
                await all_connected.wait()  # so 200 connections are open at the same time
                for _ in range(3):
                    await conn.incr("counter")
                return await conn.get(f"own:{i}")

        try:
            own = await bounded(
                asyncio.gather(*(one(i) for i in range(clients))),
                40.0,
                f"{clients} clients to finish",
            )
            counter = await r.get("counter")
            size = await r.dbsize()
        finally:
            await r.aclose()
            await pool.disconnect()
    assert counter == b"%d" % (3 * clients), called(
        f"GET counter after {clients} clients x 3 INCR", counter, b"%d" % (3 * clients)
    )
    wrong = [i for i, value in enumerate(own) if value != b"%d" % i]
    assert not wrong, called(
        f"GET own:i by each client i (client {wrong[:1]})", "a wrong value", "its own value"
    )
    assert size == clients + 1, called("DBSIZE", size, clients + 1)


async def _wakeups_over(loop: CountingLoop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_and_connected(loop: CountingLoop, clients: int, window: float) -> tuple[int, int]:
    async with running() as srv:  # no periodic expiry: an idle server has nothing at all to do
        idle = await _wakeups_over(loop, window)
        conns = []
        try:
            for i in range(clients):
                reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
                conns.append((reader, writer))
                writer.write(command("SUBSCRIBE", f"c{i % 5}") if i % 2 else command("PING"))
            for i, (reader, _) in enumerate(conns):
                size = (
                    len(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nc0\r\n:1\r\n")
                    if i % 2
                    else len(b"+PONG\r\n")
                )
                await bounded(reader.readexactly(size), 5.0, "the answer to SUBSCRIBE or PING")
            connected = await _wakeups_over(loop, window)
        finally:
            for _, writer in conns:
                writer.close()
    return idle, connected


@pytest.mark.points(2)
def test_idle_connections_cost_no_wakeups() -> None:
    """100 idle connections (half of them subscribed) cost (almost) no event-loop wake-ups: nothing polls or spins."""
    clients, window = 100, 0.2
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, connected = runner.run(_idle_and_connected(loop, clients, window))
    limit = 2 * idle + 30
    assert connected <= limit, called(
        f"event-loop wake-ups over {window} s with {clients} idle connections (with none: {idle})",
        connected,
        f"at most {limit}",
    )


async def _periodic_idle(loop: CountingLoop, window: float) -> tuple[int, int]:
    baseline = await _wakeups_over(loop, window)  # no server: the spec's own sleep
    async with running(expire_interval=0.1) as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", "v", ex=100)  # one key with a TTL, so a sweep has something to visit
        finally:
            await r.aclose()
        idle = await _wakeups_over(loop, window)
    return baseline, idle


@pytest.mark.points(2)
def test_periodic_expiry_is_a_timer_not_a_busy_loop() -> None:
    """An idle server with expire_interval=0.1 wakes the event loop a few times per period, never in a busy loop."""
    window = 0.5
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        baseline, idle = runner.run(_periodic_idle(loop, window))
    limit = baseline + 10 * round(window / 0.1) + 20
    assert idle <= limit, called(
        f"event-loop wake-ups over {window} s of an idle server with expire_interval=0.1 (with no server: {baseline})",
        idle,
        f"at most {limit} (10 per period)",
    )
