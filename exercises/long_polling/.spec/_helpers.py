"""Helpers for the long_polling specs: a running server, its waiter gauge, raw HTTP exchanges."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h11
import httpx
import pytest
from long_polling import LongPollServer

from grader.spectools import LOCALHOST, Gauge, bounded, called, short, step

__all__ = [
    "LOCALHOST",
    "Reply",
    "bounded",
    "called",
    "check_not_blocking",
    "client",
    "exchange",
    "open_waiter",
    "parse_reply",
    "raise_open_files",
    "read_reply",
    "running",
    "Server",
    "short",
]


@dataclass
class Server:
    server: LongPollServer
    gauge: Gauge
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"


@contextlib.asynccontextmanager
async def running(**options: object) -> AsyncIterator[Server]:
    """A LongPollServer on 127.0.0.1, port 0, reporting to a Gauge; closed on exit."""
    gauge = Gauge("parked poll(s) through on_waiting", timeout=2.0)
    settings = ", ".join(f"{k}={v}" for k, v in options.items())
    with step(f"LongPollServer(on_waiting=gauge{', ' if settings else ''}{settings})"):
        server = LongPollServer(on_waiting=gauge, **options)
    with step("server.start('127.0.0.1', 0)"):
        port = await bounded(server.start(LOCALHOST, 0), 2.0, "server.start()")
    try:
        yield Server(server, gauge, port)
    finally:
        with contextlib.suppress(AssertionError):
            await bounded(server.close(), 3.0, "server.close()")


def client() -> httpx.AsyncClient:
    """An httpx client for plain http://: no proxies from the environment, no TLS set-up.

    It asks for ``Connection: close`` itself, as the server answers one request per connection.
    """
    return httpx.AsyncClient(
        trust_env=False,
        verify=False,
        timeout=httpx.Timeout(8.0),
        headers={"Connection": "close"},
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def parse_reply(raw: bytes, what: str) -> Reply:
    """Parse a whole response with h11 (the oracle); fail readably if it is not valid HTTP/1.1."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=b"GET", target="/messages", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    status, headers, body = None, {}, b""
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED:
                break
            elif event is h11.NEED_DATA:
                raise AssertionError(f"{what}: the response ended early; got {short(raw)}")
    except h11.RemoteProtocolError as error:
        raise AssertionError(
            f"{what}: not a valid HTTP/1.1 response ({error}); got {short(raw)}"
        ) from None
    assert status is not None, f"{what}: no response at all; got {short(raw)}"
    return Reply(status, headers, body)


async def exchange(port: int, data: bytes, what: str, timeout: float = 3.0) -> Reply:
    """Send raw bytes on a new connection, read until the server closes, parse the response."""
    with step(f"connecting and sending {what}"):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        with step(f"sending {what}, then reading the answer"):
            writer.write(data)
            await writer.drain()
            raw = await bounded(
                _read_all(reader), timeout, f"the server to answer {what} and close the connection"
            )
    finally:
        writer.close()
    return parse_reply(raw, what)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def open_waiter(
    port: int, query: str = "after=0"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw client that sends one long poll and leaves it waiting."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    writer.write(f"GET /messages?{query} HTTP/1.1\r\nHost: spec\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def read_reply(reader: asyncio.StreamReader, what: str) -> Reply:
    return parse_reply(await _read_all(reader), what)


async def check_not_blocking(srv: Server) -> None:
    """Precondition of the scale specs: while a poll is parked, other requests are served.

    Checked with one poll before parking hundreds: a server that blocks its event loop while
    a poll waits would stall them one after another, far past any spec's time limit. Leaves
    one message (id 1) in the log.
    """
    reader, writer = await open_waiter(srv.port, "after=0&timeout=2")
    try:
        parked = asyncio.create_task(read_reply(reader, "a parked poll"))
        await srv.gauge.reaches(1)
        probe = await exchange(
            srv.port, b"GET /messages?after=9&timeout=0 HTTP/1.1\r\nHost: spec\r\n\r\n", "a probe"
        )
        assert not parked.done(), (
            "a parked poll answered before a second request was served; "
            "is the event loop blocked while a poll waits?"
        )
        assert probe.status in (200, 204), called(
            "GET /messages?after=9&timeout=0 while a poll is parked", probe.status, "200 or 204"
        )
        srv.server.publish("warm-up")
        reply = await bounded(parked, 2.0, "a parked poll to answer a publish")
        assert reply.status == 200, called(
            "a parked GET /messages?after=0, then publish", reply.status, 200
        )
    finally:
        writer.close()


def raise_open_files(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (the hard limit permitting)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
