"""Interim (1xx) responses and Expect: 100-continue. The upstream here writes raw bytes as
Python's http.server does: a 100 Continue when the request says Expect: 100-continue, then
(after reading the body) its final answer. The sidecar buffers whole requests and answers only
with a complete final response: it tells an HTTP/1.1 caller that sent Expect: 100-continue to
go on itself (RFC 9110 §15.2.1), and reads past the upstream's interim responses (§15.2)."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import send, sidecar
from resilience_sidecar import Resilience

from grader.spectools import (
    INTERIM,
    LOCALHOST,
    ContinuingOrigin,
    bounded,
    called,
    raw_origin,
    response_heads,
    tcp_server,
)

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal"


def policy() -> Resilience:
    return Resilience(max_attempts=1, per_try_timeout=10.0, timeout=10.0)


def status_lines(raw: bytes) -> list[str]:
    """The status lines of the response heads at the start of ``raw``, up to the first one
    that is not a 1xx."""
    return [h.status_line for h in response_heads(raw)[0]]


@pytest.mark.points(2)
async def test_the_final_response_is_relayed_after_interim_ones() -> None:
    """An upstream that answers 100 Continue and 103 Early Hints before its 200 gets the caller
    the 200, its fields and its body: interim responses are not the answer (RFC 9110 §15.2)."""
    async with tcp_server(raw_origin(INTERIM + FINAL)) as (_, port), sidecar(port, policy) as own:
        status, headers, body = await send(own, b"GET /x HTTP/1.1\r\nHost: svc\r\n\r\n")
    got = (status, headers.get("x-final"), body)
    want = (200, "yes", b"final")
    assert got == want, called(
        "GET through the sidecar, upstream answering 100, 103, then 200 'final' with X-Final "
        "(status, X-Final, body)",
        got,
        want,
    )


@pytest.mark.points(2)
async def test_expect_100_continue_gets_a_100_before_sending_the_body() -> None:
    """An HTTP/1.1 caller that sends Expect: 100-continue and waits for the 100 before sending
    its body gets 100 Continue from the sidecar, which holds the whole body before any attempt
    (RFC 9110 §15.2.1), then the upstream's final answer; the upstream gets the body."""
    body = b"x" * 3000
    up = ContinuingOrigin()
    async with tcp_server(up.handle) as (_, port), sidecar(port, policy) as own:
        reader, writer = await asyncio.open_connection(LOCALHOST, own)
        try:
            writer.write(
                b"POST /up HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            await writer.drain()
            first = await bounded(
                reader.readuntil(b"\r\n\r\n"),
                10,
                "the 100 Continue to a POST with Expect: 100-continue, its body not sent yet "
                "(is the sidecar reading the body without telling the caller to send it?)",
            )
            writer.write(body)
            await writer.drain()
            rest = await bounded(reader.read(), 10, "the final answer after the body was sent")
        finally:
            writer.close()
    got = (
        status_lines(first),
        status_lines(rest),
        rest.endswith(b"\r\n\r\nstored!"),
        [b == body for _, b in up.requests],
    )
    want = (["HTTP/1.1 100 Continue"], ["HTTP/1.1 200 OK"], True, [True])
    assert got == want, called(
        "POST with Expect: 100-continue, the body sent after the first answer (status lines of "
        "the first answer, of the rest, body 'stored!' at its end, upstream got the body)",
        got,
        want,
    )


async def test_no_100_continue_to_an_http10_caller() -> None:
    """An HTTP/1.0 caller that sends Expect: 100-continue and its body gets only the final
    answer: a server MUST NOT send a 1xx response to an HTTP/1.0 client (RFC 9110 §15.2)."""
    up = ContinuingOrigin()
    request = (
        b"POST /up HTTP/1.0\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
    )
    async with tcp_server(up.handle) as (_, port), sidecar(port, policy) as own:
        reader, writer = await asyncio.open_connection(LOCALHOST, own)
        try:
            writer.write(request)
            await writer.drain()
            raw = await bounded(reader.read(), 10, "the answer to an HTTP/1.0 POST")
        finally:
            writer.close()
    got = (status_lines(raw), raw.endswith(b"\r\n\r\nstored!"))
    want = (["HTTP/1.1 200 OK"], True)
    assert got == want, called(
        "HTTP/1.0 POST with Expect: 100-continue and its body (status lines, body 'stored!')",
        got,
        want,
    )
