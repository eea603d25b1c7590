"""Expect: 100-continue (RFC 9110 §10.1.1): the client waits before it sends its body."""

from __future__ import annotations

import asyncio

import h11
import pytest
from _helpers import (
    LOCALHOST,
    bounded,
    called,
    parse_reply,
    read_reply,
    running,
    short,
)


def _head(target: str, version: str = "HTTP/1.1", expect: str = "100-continue") -> bytes:
    return (
        f"POST {target} {version}\r\nHost: spec\r\nExpect: {expect}\r\nContent-Length: 5\r\n\r\n"
    ).encode()


async def _first_answer(reader: asyncio.StreamReader, what: str) -> tuple[int | None, bytes]:
    """The status of the first response head the server sends (interim or final), and its bytes."""
    raw = await bounded(
        reader.readuntil(b"\r\n\r\n"), 3.0, f"an immediate answer to {what} (body not sent)"
    )
    conn = h11.Connection(h11.CLIENT)
    conn.send(
        h11.Request(
            method="POST",
            target="/messages",
            headers=[("Host", "x"), ("Expect", "100-continue"), ("Content-Length", "5")],
        )
    )
    conn.receive_data(raw)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None, raw
    return getattr(event, "status_code", None), raw


async def _send_head(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, what: str
) -> tuple[int | None, bytes]:
    """Send a request head (no body); the first answer's status and bytes (None: no answer)."""
    writer.write(head)
    await writer.drain()
    try:
        return await _first_answer(reader, what)
    except asyncio.IncompleteReadError as error:
        return None, error.partial


@pytest.mark.points(3)
async def test_expect_100_continue_gets_100_before_the_body() -> None:
    """A POST with Expect: 100-continue gets "100 Continue" at once, then 201 once its body arrives (RFC 9110 §10.1.1: a server MUST)."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            status, raw = await _send_head(
                reader, writer, _head("/messages"), "POST /messages with Expect: 100-continue"
            )
            assert status == 100, called(
                "POST /messages with Expect: 100-continue, body not sent: the first answer",
                short(raw),
                "HTTP/1.1 100 Continue",
            )
            writer.write(b"hello")
            await writer.drain()
            reply = await read_reply(reader, "POST /messages after the 100")
        finally:
            writer.close()
        assert reply.status == 201, called("POST /messages after the 100", reply.status, 201)


@pytest.mark.points(1)
async def test_the_expect_value_is_case_insensitive() -> None:
    """Expect: 100-Continue is the same expectation as 100-continue and gets a 100 at once
    (RFC 9110 §10.1.1: the Expect field value is case-insensitive)."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            head = _head("/messages", expect="100-Continue")
            status, raw = await _send_head(
                reader, writer, head, "POST /messages with Expect: 100-Continue"
            )
        finally:
            writer.close()
    assert status == 100, called(
        "POST /messages with Expect: 100-Continue, body not sent: the first answer",
        short(raw),
        "HTTP/1.1 100 Continue",
    )


@pytest.mark.parametrize("target, final", [("/nowhere", 404)], ids=["unknown-path"])
async def test_expect_gets_an_immediate_answer_even_when_refused(target: str, final: int) -> None:
    """Expect: 100-continue on a request that will be refused still gets an immediate 100 or its final status."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            status, raw = await _send_head(
                reader, writer, _head(target), f"POST {target} with Expect"
            )
        finally:
            writer.close()
    assert status in (100, final), called(
        f"POST {target} with Expect: 100-continue, body not sent: the first answer",
        short(raw),
        f"100 Continue or {final}",
    )


async def test_expect_100_continue_is_ignored_in_http10() -> None:
    """An HTTP/1.0 request's Expect: 100-continue is ignored: no 100, only the response (RFC 9110 §10.1.1: MUST ignore)."""
    async with running() as srv:
        data = _head("/messages", "HTTP/1.0") + b"hello"
        reply_bytes = await bounded(_raw(srv.port, data), 3.0, "the answer to an HTTP/1.0 POST")
    assert reply_bytes.startswith(b"HTTP/1.1 201 "), called(
        "HTTP/1.0 POST /messages with Expect: 100-continue and its body: the first bytes",
        short(reply_bytes[:40]),
        "HTTP/1.1 201 Created",
    )
    parse_reply(reply_bytes, "the answer to an HTTP/1.0 POST with Expect")


async def test_expect_with_a_body_over_max_body_gets_413_at_once() -> None:
    """Expect: 100-continue with a Content-Length over max_body gets 413 at once, no 100 first."""
    async with running(max_body=4) as srv:
        raw = await bounded(_raw(srv.port, _head("/messages")), 3.0, "the answer to the head")
    assert raw.startswith(b"HTTP/1.1 413 "), called(
        "POST with Expect: 100-continue, Content-Length: 5, max_body=4, body not sent: "
        "the first bytes",
        short(raw[:40]),
        "HTTP/1.1 413 Content Too Large",
    )


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        while chunk := await reader.read(65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()
