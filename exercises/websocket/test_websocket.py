"""Visible examples for the websocket kata. Run them with `nox -s try -- websocket`.

The frames here are packed by hand with `struct`, from RFC 6455 §5.2, so you can read exactly
what crosses the wire. The hidden specs go much further: every protocol error, the limits,
the Autobahn TestSuite cases of sections 1-7, a real WebSocket client, and the room.
"""

from __future__ import annotations

import asyncio
import struct

try:
    from websocket import (
        CloseReceived,
        Connection,
        Failed,
        Message,
        accept_key,
        encode_frame,
        handshake,
        serve,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Connection, accept_key, encode_frame, handshake, "
        "serve and the events from websocket.py"
    ) from err

MASK = bytes.fromhex("37fa213d")


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (payloads up to 125 bytes)."""
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + MASK + masked


def test_accept_key_rfc_example():
    got = accept_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert got == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", f"accept_key(RFC 6455 §1.3 key) returned {got!r}"


def test_handshake_accepts_a_valid_upgrade():
    request = (
        b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    got = handshake(request)
    assert got.status == 101, f"handshake(valid request).status is {got.status}, expected 101"
    assert got.response.startswith(b"HTTP/1.1 101 "), f"response starts {got.response[:30]!r}"
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in got.response, (
        f"no Sec-WebSocket-Accept with the RFC's value in {got.response!r}"
    )


def test_handshake_refuses_version_8():
    request = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    )
    got = handshake(request)
    assert got.status == 426, f"handshake(version 8).status is {got.status}, expected 426"
    assert b"Sec-WebSocket-Version: 13" in got.response, (
        f"426 without the version: {got.response!r}"
    )


def test_encode_frame_rfc_examples():
    assert encode_frame(1, b"Hello").hex() == "810548656c6c6f", "unmasked 'Hello' (RFC 6455 §5.7)"
    got = encode_frame(1, b"Hello", mask=MASK).hex()
    assert got == "818537fa213d7f9f4d5158", f"masked 'Hello' (RFC 6455 §5.7) was {got}"


def test_masked_hello_is_a_text_message():
    events = Connection().receive_data(bytes.fromhex("818537fa213d7f9f4d5158"))
    assert events == [Message("Hello")], f"receive_data(RFC masked Hello) returned {events}"


def test_fragments_with_a_ping_between():
    conn = Connection()
    events = conn.receive_data(
        client_frame(1, b"Hel", fin=False) + client_frame(9, b"?") + client_frame(0, b"lo")
    )
    assert events[-1] == Message("Hello"), f"events were {events}"
    assert conn.data_to_send() == b"\x8a\x01?", "the Ping gets a Pong with its payload"


def test_unmasked_client_frame_fails_with_1002():
    conn = Connection()
    events = conn.receive_data(b"\x81\x02hi")  # no MASK bit
    assert len(events) == 1 and isinstance(events[0], Failed), f"events were {events}"
    assert events[0].code == 1002, f"Failed with code {events[0].code}, expected 1002"
    sent = conn.data_to_send()
    assert sent[0] == 0x88 and sent[2:4] == b"\x03\xea", f"expected a Close with 1002: {sent!r}"


def test_close_is_echoed():
    conn = Connection()
    events = conn.receive_data(client_frame(8, struct.pack("!H", 1000) + b"bye"))
    assert events == [CloseReceived(1000, "bye")], f"events were {events}"
    assert conn.data_to_send() == b"\x88\x02\x03\xe8", "the Close reply carries the same code"


async def test_echo_server_over_tcp():
    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    server = await serve(echo, host="127.0.0.1", port=0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), f"the server answered {head!r}"
        writer.write(client_frame(1, b"ping me back"))
        reply = await asyncio.wait_for(reader.readexactly(2 + 12), 5)
        assert reply == b"\x81\x0cping me back", f"the echo was {reply!r}"
        writer.close()
    finally:
        await server.close()
