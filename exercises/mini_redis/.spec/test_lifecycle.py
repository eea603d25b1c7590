"""One write per batch of pipelined commands, and a clean close()."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import LOCALHOST, bounded, called, command, held_connection, read_all, running, step

from grader.spectools import loop_reports


@pytest.mark.points(2)
async def test_pipelined_commands_are_answered_with_one_write() -> None:
    """The replies to commands that arrived in one read go out in one write, not one write (one send()) per command."""
    async with running() as srv:
        conn = await held_connection(srv.server)
        data = b"".join(command("INCR", "n") for _ in range(100))
        want = b"".join(b":%d\r\n" % i for i in range(1, 101))
        conn.reader.feed_data(data)
        await conn.transport.until(
            lambda: len(conn.transport.held) >= len(want) or conn.transport.closed,
            "the replies to 100 pipelined INCR",
        )
        writes = conn.transport.writes
        got = conn.transport.deliver()
    assert got == want, called("100 pipelined INCR n", got, want)
    assert writes <= 2, called(
        "100 pipelined INCR n in one read: transport.write() calls", writes, "1 (at most 2)"
    )


@pytest.mark.points(2)
async def test_close_ends_connections_stops_listening_and_leaves_no_task() -> None:
    """close() stops listening, closes every connection, stops the periodic expiry, and leaves no task of the server behind."""
    before = asyncio.all_tasks()
    async with running(expire_interval=0.01) as srv:
        conns = [await asyncio.open_connection(LOCALHOST, srv.port) for _ in range(3)]
        for reader, writer in conns:
            writer.write(command("PING"))
            got = await bounded(reader.readexactly(7), 5.0, "PING answered")
            assert got == b"+PONG\r\n", called("PING", got, b"+PONG\r\n")
        conns[0][1].write(command("SUBSCRIBE", "c"))
        with step("server.close()"):
            await bounded(srv.server.close(), 5.0, "server.close()")
        ends = [
            await bounded(read_all(reader), 5.0, "the connection to close after server.close()")
            for reader, _ in conns
        ]
        left = {
            t
            for t in asyncio.all_tasks() - before
            if not t.done() and t is not asyncio.current_task()
        }
        try:
            late = await asyncio.open_connection(LOCALHOST, srv.port)
            late[1].close()
            refused = False
        except OSError:
            refused = True
        for _, writer in conns:
            writer.close()
    assert all(end in (b"", b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n") for end in ends), called(
        "reading each client after server.close()", ends, "EOF"
    )
    assert not left, called(
        "asyncio.all_tasks() after server.close(), the server's own",
        sorted(map(repr, left))[:3],
        "none",
    )
    assert refused, called("connecting after server.close()", "accepted", "connection refused")


@pytest.mark.points(1)
async def test_close_leaves_the_event_loop_nothing_to_report() -> None:
    """close() with a client idle, one half-way through a command and one subscribed leaves no
    error for the event loop to report: every connection handler ends normally.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    async with running(expire_interval=0.01) as srv, loop_reports() as reports:
        conns = [await asyncio.open_connection(LOCALHOST, srv.port) for _ in range(3)]
        for reader, writer in conns:
            writer.write(command("PING"))
            got = await bounded(reader.readexactly(7), 5.0, "PING answered")
            assert got == b"+PONG\r\n", called("PING", got, b"+PONG\r\n")
        conns[1][1].write(command("SET", "k", "v")[:9])  # half a command: the handler reads on
        conns[2][1].write(command("SUBSCRIBE", "c"))
        await bounded(conns[2][0].readexactly(30), 5.0, "SUBSCRIBE c answered")
        with step("server.close()"):
            await bounded(srv.server.close(), 5.0, "server.close()")
        for reader, writer in conns:
            await bounded(read_all(reader), 5.0, "the connection to close after server.close()")
            writer.close()
    assert not reports, reports.message(
        "server.close() with a client idle, one half-way through SET and one subscribed",
        "a connection handler should end normally when close() ends its connection: if close() "
        "cancels handlers, catch CancelledError in the handler and return",
    )
