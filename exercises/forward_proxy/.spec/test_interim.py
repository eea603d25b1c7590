"""Interim (1xx) responses: the origin here writes raw bytes, a 100 Continue and a 103 Early
Hints before its final answer, as Python's http.server does for curl's Expect: 100-continue.
RFC 9110 §15.2: a proxy forwards 1xx responses, then the final one; never to an HTTP/1.0
client."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import exchange, loopback_policy, running_proxy, serve

from grader.spectools import (
    INTERIM,
    LOCALHOST,
    ContinuingOrigin,
    bounded,
    called,
    raw_origin,
    response_heads,
)

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
# Only the proxy ends a connection to these origins.
interim_then_final = raw_origin(INTERIM + FINAL, hold=True)


def responses(raw: bytes) -> tuple[list[tuple[int, list[str]]], bytes]:
    """The responses in ``raw`` as (status, Link values) for each head, and the final body."""
    heads, rest = response_heads(raw)
    return [(h.status, h.values("link")) for h in heads], rest


@pytest.mark.points(2)
async def test_interim_responses_forwarded_then_the_final_one() -> None:
    """An origin's 100 Continue and 103 Early Hints reach an HTTP/1.1 client in order, each with
    its fields, and the final response follows on the same connection (RFC 9110 §15.2)."""
    async with (
        serve(interim_then_final) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        data = f"GET http://origin.test:{origin_port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        answer = await exchange(port, data, "a GET answered 100, 103, then 200")
    got = responses(answer.raw)
    want = ([(100, []), (103, ["</style.css>; rel=preload"]), (200, [])], b"final")
    assert got == want, called(
        "GET to an origin that answers 100, 103 (Link), then 200 'final' "
        "(each response head as (status, Link values), final body)",
        got,
        want,
    )


async def test_no_interim_response_to_an_http10_client() -> None:
    """An HTTP/1.0 client gets only the final response: 1xx responses are not sent to a client
    that knows none (RFC 9110 §15.2: a server MUST NOT send a 1xx to an HTTP/1.0 client)."""
    async with (
        serve(interim_then_final) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        data = f"GET http://origin.test:{origin_port}/ HTTP/1.0\r\nHost: x\r\n\r\n".encode()
        answer = await exchange(port, data, "an HTTP/1.0 GET answered 100, 103, then 200")
    got = responses(answer.raw)
    want = ([(200, [])], b"final")
    assert got == want, called(
        "HTTP/1.0 GET to an origin that answers 100, 103, then 200 'final' "
        "(each response head as (status, Link values), final body)",
        got,
        want,
    )


@pytest.mark.points(2)
async def test_expect_100_continue_gets_the_100_before_sending_the_body() -> None:
    """A client that sends Expect: 100-continue and waits for the 100 before sending its body
    gets the origin's 100 while the proxy still waits for that body, then the final answer
    (RFC 9110 §10.1.1: the body goes up while the answer comes down)."""
    body = b"x" * 3000
    origin = ContinuingOrigin(always=True, hold=True)
    async with (
        serve(origin.handle) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(
                f"POST http://origin.test:{origin_port}/up HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
            )
            await writer.drain()
            first = await bounded(
                reader.readuntil(b"\r\n\r\n"),
                10,
                "the 100 Continue to a POST with Expect: 100-continue, its body not sent yet "
                "(is the proxy reading the whole body before it reads the origin's answer?)",
            )
            writer.write(body)
            await writer.drain()
            rest = await bounded(reader.read(-1), 10, "the final answer after the body was sent")
        finally:
            writer.close()
    got = (responses(first)[0], responses(rest), origin.bodies == [body])
    want = ([(100, [])], ([(200, [])], b"stored!"), True)
    assert got == want, called(
        "POST with Expect: 100-continue, the body sent after the first answer "
        "(first answer's heads, then (heads, body) of the rest, origin got the body)",
        got,
        want,
    )


async def test_switching_protocols_from_the_origin_is_502() -> None:
    """An origin that answers 101 Switching Protocols, though the proxy removed Upgrade and never
    asked to switch, gets the client a 502 (RFC 9110 §7.8: a server switches only to a protocol
    the request's Upgrade named)."""
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    async with (
        serve(raw_origin(switching, hold=True)) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        data = (
            f"GET http://origin.test:{origin_port}/ HTTP/1.1\r\nHost: x\r\n"
            "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ).encode()
        answer = await exchange(port, data, "a GET answered 101 Switching Protocols")
    got = responses(answer.raw)[0]
    assert got == [(502, [])], called(
        "GET with Upgrade: websocket, origin answers 101 (response heads as (status, Links))",
        got,
        [(502, [])],
    )
