"""CONNECT tunnels (RFC 9110 §9.3.6): httpx reaching a TLS origin through the proxy with the
certificate verified end to end, and raw tunnels for the byte-level rules."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from _helpers import exchange, loopback_policy, read_head, running_proxy, serve, tls_pair

from grader.spectools import LOCALHOST, answer_with, bounded, called, running_h11_origin, step


@pytest.mark.points(3)
async def test_httpx_https_through_a_tunnel() -> None:
    """httpx reaches an HTTPS origin through CONNECT, verifying the origin's certificate end to
    end (the proxy only relays the TLS bytes)."""
    server_ctx, client_ctx = tls_pair()
    async with (
        running_h11_origin(answer_with(b"secret page"), server_ctx) as origin,
        running_proxy(loopback_policy(connect=(origin.port,))) as (proxy, port),
        httpx.AsyncClient(
            proxy=f"http://127.0.0.1:{port}", verify=client_ctx, trust_env=False, timeout=10
        ) as client,
    ):
        with step(f"httpx GET https://origin.test:{origin.port}/s through the proxy"):
            answer = await bounded(
                client.get(f"https://origin.test:{origin.port}/s"), 15, "the HTTPS GET"
            )
        got = (answer.status_code, answer.content, origin.last.target if origin.requests else None)
        assert got == (200, b"secret page", b"/s"), called(
            "GET https://origin.test/s through a tunnel (status, body, target at the origin)",
            got,
            (200, b"secret page", b"/s"),
        )


async def open_tunnel(port: int, target: str, *extra: str):
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    head = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", *extra]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    return reader, writer, await read_head(reader, f"CONNECT {target}")


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def test_connect_answer_has_no_framing_and_bytes_flow() -> None:
    """A successful CONNECT is answered 2xx without Content-Length or Transfer-Encoding, and then
    bytes flow both ways unchanged (RFC 9110 §9.3.6)."""
    async with (
        serve(echo) as origin_port,
        running_proxy(loopback_policy(connect=(origin_port,))) as (proxy, port),
    ):
        reader, writer, head = await open_tunnel(port, f"origin.test:{origin_port}")
        try:
            framing = head.values("content-length") + head.values("transfer-encoding")
            assert 200 <= head.status < 300 and not framing, called(
                "CONNECT (status, framing fields)",
                (head.status, framing),
                "2xx and no Content-Length / Transfer-Encoding",
            )
            payload = bytes(range(256)) * 64
            writer.write(payload)
            await writer.drain()
            back = await bounded(
                reader.readexactly(len(payload)), 10, "the echo through the tunnel"
            )
            assert back == payload, called(
                "16384 bytes through the tunnel to an echo origin",
                f"{len(back)} bytes, different",
                "the same bytes",
            )
        finally:
            writer.close()


async def test_bytes_sent_with_the_connect_head_are_relayed() -> None:
    """Bytes the client sends right behind the CONNECT head, in the same packet, go to the origin
    first (RFC 9110 §9.3.6)."""
    async with (
        serve(echo) as origin_port,
        running_proxy(loopback_policy(connect=(origin_port,))) as (proxy, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(
                f"CONNECT origin.test:{origin_port} HTTP/1.1\r\nHost: x\r\n\r\nearly bytes".encode()
            )
            await writer.drain()
            head = await read_head(reader, "CONNECT with early bytes")
            back = await bounded(
                reader.readexactly(11), 10, "the early bytes echoed through the tunnel"
            )
            assert (head.status, back) == (200, b"early bytes"), called(
                "CONNECT + b'early bytes' in one write (status, echo)",
                (head.status, back),
                (200, b"early bytes"),
            )
        finally:
            writer.close()


@pytest.mark.points(2)
async def test_half_close_keeps_the_other_direction() -> None:
    """When the client shuts down its write side, the origin sees EOF and its remaining bytes
    still reach the client before the tunnel closes."""
    reply = b"R" * 300_000

    async def count_then_reply(reader, writer):
        total = 0
        while data := await reader.read(65536):
            total += len(data)
        writer.write(b"got %d;" % total + reply)
        await writer.drain()

    async with (
        serve(count_then_reply) as origin_port,
        running_proxy(loopback_policy(connect=(origin_port,))) as (proxy, port),
    ):
        reader, writer, head = await open_tunnel(port, f"origin.test:{origin_port}")
        try:
            writer.write(b"x" * 100_000)
            await writer.drain()
            writer.write_eof()
            got = await bounded(
                reader.read(-1), 10, "the origin's reply after the client's half-close"
            )
        finally:
            writer.close()
        want = b"got 100000;" + reply
        assert got == want, called(
            "100000 bytes, then shutdown(SHUT_WR), then read to EOF",
            f"{len(got)} bytes starting {got[:16]!r}",
            f"{len(want)} bytes starting {want[:16]!r}",
        )


@pytest.mark.points(2)
async def test_origin_close_ends_the_tunnel() -> None:
    """When the origin closes, the client gets its last bytes and then EOF (RFC 9110 §9.3.6)."""

    async def say_and_close(reader, writer):
        writer.write(b"bye")
        await writer.drain()

    async with (
        serve(say_and_close) as origin_port,
        running_proxy(loopback_policy(connect=(origin_port,))) as (proxy, port),
    ):
        reader, writer, head = await open_tunnel(port, f"origin.test:{origin_port}")
        try:
            got = await bounded(reader.read(-1), 10, "EOF after the origin closed")
        finally:
            writer.close()
        assert got == b"bye", called(
            "a tunnel whose origin writes b'bye' and closes; read to EOF", got, b"bye"
        )


BAD_TARGETS = [
    ("no-port", "origin.test"),
    ("empty-port", "origin.test:"),
    ("port-0", "origin.test:0"),
    ("port-too-big", "origin.test:65536"),
    ("empty-host", ":443"),
    ("url-not-authority", "http://origin.test:443/"),
    ("ipv6-no-port", "[::1]"),
    ("ipv6-unclosed", "[::1:443"),
    ("ipv6-unbracketed", "::1:443"),
]


@pytest.mark.parametrize("target", [t for _, t in BAD_TARGETS], ids=[i for i, _ in BAD_TARGETS])
async def test_connect_needs_host_and_port(target: str) -> None:
    """A CONNECT target that isn't host:port with a port from 1 to 65535 is answered 400
    (RFC 9110 §9.3.6: there is no default port)."""
    async with running_proxy(loopback_policy(connect=(443,))) as (proxy, port):
        answer = await exchange(
            port, f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), f"CONNECT {target}"
        )
        assert answer.status == 400, called(f"CONNECT {target}", answer.status, 400)


async def test_connect_ipv6_literal_target() -> None:
    """A CONNECT target may be an IPv6 literal in brackets; the address inside goes to the policy
    (here ::1, not allowed, so 403)."""
    async with running_proxy(loopback_policy(connect=(443,))) as (proxy, port):
        answer = await exchange(
            port, b"CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT [::1]:443"
        )
        assert answer.status == 403, called(
            "CONNECT [::1]:443 with only 127.0.0.1 allowed", answer.status, 403
        )
