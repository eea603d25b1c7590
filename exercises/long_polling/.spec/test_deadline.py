"""The request deadline: a request not received within request_timeout gets a 408 or the close.

A parked poll is not a request being received: it may wait up to poll_timeout, longer than
request_timeout. Every wait here is bounded; the only sleep paces a slowloris client.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from _helpers import (
    LOCALHOST,
    bounded,
    called,
    open_waiter,
    parse_reply,
    running,
    short,
)

DEADLINE = 0.3


async def _until_closed(reader: asyncio.StreamReader, what: str, timeout: float = 4.0) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    chunks: list[bytes] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)

    await bounded(read(), timeout, what)
    return b"".join(chunks)


async def _trickle(writer: asyncio.StreamWriter, line: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        for _ in range(400):  # outlasts the 4 s bound on the close
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(0.02)  # pacing the client, not waiting for anything


SLOW = {
    "idle": (b"", None),
    "slowloris": (b"GET /messages HTTP/1.1\r\nHost: spec\r\n", b"X-Slow: 1\r\n"),
    "lone-LF-lines": (b"GET /messages?timeout=0 HTTP/1.1\nHost: spec\n\n", None),
    "partial-body": (
        b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 10\r\n\r\nabc",
        None,
    ),
}


@pytest.mark.points(3)
@pytest.mark.parametrize("case", list(SLOW))
async def test_a_request_not_received_in_time_gets_408_or_the_close(case: str) -> None:
    """A request not received within request_timeout of the connection opening gets a 408 or the close (slowloris defence)."""
    start, line = SLOW[case]
    async with running(request_timeout=DEADLINE) as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        sender = None
        try:
            writer.write(start)
            await writer.drain()
            if line is not None:
                sender = asyncio.create_task(_trickle(writer, line))
            raw = await _until_closed(
                reader, f"the server to close a connection sending {short(start, 60)} ({case})"
            )
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()
        status = parse_reply(raw, f"the answer to {case}").status if raw else None
        assert status in (None, 408), called(
            f"{case}: what came before the close (request_timeout={DEADLINE})",
            short(raw[:60]),
            "nothing or a 408",
        )


@pytest.mark.points(2)
async def test_a_parked_poll_is_not_cut_by_the_request_deadline() -> None:
    """A parked poll waits up to its own timeout, past request_timeout: the deadline covers receiving the request only."""
    async with running(request_timeout=DEADLINE, poll_timeout=30.0) as srv:
        poll_reader, poll_writer = await open_waiter(srv.port, "after=0&timeout=8")
        try:
            await srv.gauge.reaches(1)
            # A clock made of events: an idle connection opened after the poll parked is
            # dropped once request_timeout has passed; the poll must still be waiting then.
            reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
            try:
                await _until_closed(reader, "the server to drop an idle connection")
            finally:
                writer.close()
            assert srv.server.waiting == 1, called(
                f"server.waiting once an idle connection was dropped (request_timeout={DEADLINE})",
                srv.server.waiting,
                1,
            )
            srv.server.publish("still parked")
            raw = await _until_closed(poll_reader, "the parked poll to answer the publish", 3.0)
        finally:
            poll_writer.close()
        reply = parse_reply(raw, "the parked poll after the publish")
        assert reply.status == 200, called(
            f"a poll parked longer than request_timeout={DEADLINE}, then publish",
            reply.status,
            200,
        )
