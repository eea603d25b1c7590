"""Interim (1xx) responses: the backend here writes raw bytes, a 100 Continue and a 103 Early
Hints before its final answer, as Python's http.server does for curl's Expect: 100-continue.
RFC 9110 §15.2: a proxy forwards 1xx responses, then the final one; never to an HTTP/1.0
client."""

from __future__ import annotations

import pytest
from _helpers import connect, running_proxy, standard_config

from grader.spectools import (
    INTERIM,
    ContinuingOrigin,
    bounded,
    called,
    raw_origin,
    response_heads,
    step,
    tcp_server,
)

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nfinal"
interim_then_final = raw_origin(INTERIM + FINAL)

Head = tuple[int, list[str], list[str], list[str]]


def responses(raw: bytes) -> tuple[list[Head], bytes]:
    """The response heads at the start of ``raw``, each as (status, Link values, Connection
    values, Keep-Alive values), and what follows the first head that is not a 1xx."""
    heads, rest = response_heads(raw)
    return [
        (
            h.status,
            h.values("link"),
            [v.lower() for v in h.values("connection")],
            h.values("keep-alive"),
        )
        for h in heads
    ], rest


@pytest.mark.points(2)
async def test_interim_responses_forwarded_then_the_final_one() -> None:
    """A backend's 100 Continue and 103 Early Hints reach an HTTP/1.1 client in order, each with
    its fields and without Connection: close, then the final response follows with its own
    head rewritten: hop-by-hop fields removed, Connection: close (RFC 9110 §15.2)."""
    async with (
        tcp_server(interim_then_final) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("GET / over TLS to a backend that answers 100, 103, then 200"):
            tls = await connect(port, "a.test")
            answer = await tls.request(
                b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "a GET answered 100, 103, then 200"
            )
            tls.close()
    got = responses(answer)
    want = (
        [
            (100, [], [], []),
            (103, ["</style.css>; rel=preload"], [], []),
            (200, [], ["close"], []),
        ],
        b"final",
    )
    assert got == want, called(
        "GET to a backend that answers 100, 103 (Link), then 200 'final' with Keep-Alive "
        "(each response head as (status, Link, Connection, Keep-Alive values), final body)",
        got,
        want,
    )


async def test_no_interim_response_to_an_http10_client() -> None:
    """An HTTP/1.0 client gets only the final response: 1xx responses are not sent to a client
    that knows none (RFC 9110 §15.2: a server MUST NOT send a 1xx to an HTTP/1.0 client)."""
    async with (
        tcp_server(interim_then_final) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("an HTTP/1.0 GET over TLS to a backend that answers 100, 103, then 200"):
            tls = await connect(port, "a.test")
            answer = await tls.request(
                b"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n",
                "an HTTP/1.0 GET answered 100, 103, then 200",
            )
            tls.close()
    got = responses(answer)
    want = ([(200, [], ["close"], [])], b"final")
    assert got == want, called(
        "HTTP/1.0 GET to a backend that answers 100, 103, then 200 'final' "
        "(each response head as (status, Link, Connection, Keep-Alive values), final body)",
        got,
        want,
    )


@pytest.mark.points(2)
async def test_expect_100_continue_gets_the_100_before_sending_the_body() -> None:
    """A client that sends Expect: 100-continue and waits for the 100 before sending its body
    gets the backend's 100 while the proxy still waits for that body, then the final answer
    (RFC 9110 §10.1.1: the body goes up while the answer comes down)."""
    body = b"x" * 3000
    backend = ContinuingOrigin(always=True)
    async with (
        tcp_server(backend.handle) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("POST /up over TLS with Expect: 100-continue, the body held back"):
            tls = await connect(port, "a.test")
            try:
                tls.writer.write(
                    b"POST /up HTTP/1.1\r\nHost: a.test\r\n"
                    + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
                )
                await tls.writer.drain()
                first = await bounded(
                    tls.reader.readuntil(b"\r\n\r\n"),
                    15,
                    "the 100 Continue to a POST with Expect: 100-continue, its body not sent "
                    "yet (is the proxy reading the whole body before it reads the backend's "
                    "answer?)",
                )
                rest = await tls.request(body, "the final answer after the body was sent")
            finally:
                tls.close()
    got = (responses(first)[0], responses(rest), backend.bodies == [body])
    want = ([(100, [], [], [])], ([(200, [], ["close"], [])], b"stored!"), True)
    assert got == want, called(
        "POST with Expect: 100-continue, the body sent after the first answer "
        "(first answer's heads, then (heads, body) of the rest, backend got the body)",
        got,
        want,
    )


async def test_switching_protocols_from_the_backend_is_502() -> None:
    """A backend that answers 101 Switching Protocols, though the proxy removed Upgrade and never
    asked to switch, gets the client a 502 (RFC 9110 §7.8: a server switches only to a protocol
    the request's Upgrade named)."""
    switching = raw_origin(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    )
    async with (
        tcp_server(switching) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("GET / over TLS with Upgrade: websocket, the backend answers 101"):
            tls = await connect(port, "a.test")
            answer = await tls.request(
                b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n",
                "a GET answered 101 Switching Protocols",
            )
            tls.close()
    got = [status for status, *_ in responses(answer)[0]]
    assert got == [502], called(
        "GET with Upgrade: websocket, the backend answers 101 then a WebSocket frame "
        "(statuses of the response heads)",
        got,
        [502],
    )
