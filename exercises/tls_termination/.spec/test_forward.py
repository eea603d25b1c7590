"""The plaintext side: what the backend receives and what the client gets back."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _helpers import connect, get_request, running_proxy, stack, standard_config, status_of
from tls_termination import SUBJECT_HEADER

from grader.spectools import LOCALHOST, called, refused_port, step, tcp_server


@pytest.mark.points(3)
async def test_backend_sees_forwarding_fields() -> None:
    """The backend gets the request with X-Forwarded-For (the client's address), X-Forwarded-Proto:
    https and Forwarded: for=...;proto=https (RFC 7239 §4, §5.2, §5.4), and the client gets its answer."""
    async with stack() as (backend, _, port):
        with step("GET /path?q=1 over TLS to a.test"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(path="/path?q=1"), "GET /path?q=1")
            tls.close()
    assert status_of(answer) == 200 and answer.endswith(b"\r\n\r\nbackend says hi"), called(
        "GET /path?q=1 over TLS", answer, "the backend's 200 answer"
    )
    assert len(backend.requests) == 1 and not backend.errors, called(
        "the backend (requests, h11 errors)", (len(backend.requests), backend.errors), (1, [])
    )
    got = {
        "target": backend.requests[0][0].target.decode(),
        "x-forwarded-for": backend.header("x-forwarded-for"),
        "x-forwarded-proto": backend.header("x-forwarded-proto"),
        "forwarded": backend.header("forwarded"),
    }
    want = {
        "target": "/path?q=1",
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-proto": ["https"],
        "forwarded": ["for=127.0.0.1;proto=https"],
    }
    assert got == want, called("GET /path?q=1 through the proxy (what the backend saw)", got, want)


@pytest.mark.points(3)
async def test_client_supplied_fields_are_stripped() -> None:
    """Forwarding fields the client sends itself never reach the backend: they would let anyone
    claim another address, plain HTTP, or a client certificate (RFC 7239 §8.1)."""
    lies = (
        "X-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nX-Forwarded-Proto: http\r\n"
        f"Forwarded: for=10.0.0.1\r\n{SUBJECT_HEADER.upper()}: CN=root\r\nX-Kept: yes\r\n"
    )
    async with stack() as (backend, _, port):
        with step("GET / over TLS with forged forwarding fields"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(extra=lies), "GET / with forged fields")
            tls.close()
    assert backend.requests, called("GET / with forged fields", answer, "a request at the backend")
    got = {
        name: backend.header(name)
        for name in ("x-forwarded-for", "x-forwarded-proto", "forwarded", SUBJECT_HEADER, "x-kept")
    }
    want = {
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-proto": ["https"],
        "forwarded": ["for=127.0.0.1;proto=https"],
        SUBJECT_HEADER: [],
        "x-kept": ["yes"],
    }
    assert got == want, called(
        "GET / with forged X-Forwarded-For/Proto, Forwarded, X-Client-Subject (what the backend saw)",
        got,
        want,
    )


async def test_request_body_forwarded() -> None:
    """A request body framed by Content-Length reaches the backend exactly."""
    body = bytes(range(256)) * 300
    raw = (
        f"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    async with stack() as (backend, _, port):
        with step(f"POST /upload with {len(body)} bytes over TLS"):
            tls = await connect(port, "a.test")
            answer = await tls.request(raw, "POST /upload")
            tls.close()
    got = (
        status_of(answer),
        len(backend.requests[0][1]) if backend.requests else None,
        bool(backend.requests) and backend.requests[0][1] == body,
    )
    assert got == (200, len(body), True), called(
        f"POST /upload with {len(body)} bytes (status, bytes at the backend, same bytes)",
        got,
        (200, len(body), True),
    )


async def test_answer_closes_the_connection() -> None:
    """The answer is relayed with Connection: close (one request per connection), the backend's own
    Content-Type kept."""
    async with stack() as (_, _, port):
        with step("GET / over TLS"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(extra="Connection: keep-alive\r\n"), "GET /")
            tls.close()
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    ok = b"\r\nconnection: close" in head and b"\r\ncontent-type: text/plain" in head
    assert ok, called(
        "GET / with Connection: keep-alive (the answer's head)",
        head,
        "Connection: close and the backend's Content-Type",
    )


MAX_HEAD = 16 * 1024


def head_of_size(size: int) -> bytes:
    """A GET whose head, blank line included, is exactly ``size`` bytes."""
    bare = get_request(extra="X-Pad: \r\n")
    return get_request(extra="X-Pad: " + "p" * (size - len(bare)) + "\r\n")


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (MAX_HEAD - 1, 200),
        (MAX_HEAD, 200),
        (MAX_HEAD + 1, 431),
        (MAX_HEAD + 4, 431),
        (2 * MAX_HEAD, 431),
    ],
    ids=["limit-minus-1", "at-limit", "limit-plus-1", "limit-plus-4", "twice-the-limit"],
)
async def test_head_limit(size: int, status: int) -> None:
    """A request head of up to 16 KiB (16384 bytes, the blank line included) is forwarded; one byte
    more is answered 431 by the proxy (RFC 6585 §5) and never reaches the backend."""
    raw = head_of_size(size)
    assert len(raw) == size, f"the spec built a {len(raw)}-byte head, not {size}"
    async with stack() as (backend, _, port):
        with step(f"a GET with a {size}-byte head over TLS"):
            tls = await connect(port, "a.test")
            answer = await tls.request(raw, f"a {size}-byte head")
            tls.close()
    got = (status_of(answer), len(backend.requests))
    want = (status, 1 if status == 200 else 0)
    assert got == want, called(
        f"a GET with a {size}-byte head (status, requests at the backend)", got, want
    )


ERRORS = [
    (
        "chunked-body",
        b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("no-colon", b"GET / HTTP/1.1\r\nHost a.test\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n", 400),
    ("http-0.9-line", b"GET /\r\n\r\n", 400),
    (
        "two-lengths",
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
    ),
    # RFC 9110 §8.6: Content-Length = 1*DIGIT, ASCII digits; "\xb2" is a superscript two
    (
        "length-superscript-two",
        b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: \xb2\r\n\r\nab",
        400,
    ),
    ("length-signed", b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +2\r\n\r\nab", 400),
]


@pytest.mark.parametrize(
    ("raw", "status"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS]
)
async def test_bad_requests_answered_by_the_proxy(raw: bytes, status: int) -> None:
    """The proxy answers a request it can't forward safely itself (501 for a chunked body,
    400 for a malformed head, whitespace before a colon included: RFC 9112 §5.1) and the backend
    never sees it."""
    async with stack() as (backend, _, port):
        with step("a bad request over TLS"):
            tls = await connect(port, "a.test")
            answer = await tls.request(raw, "a bad request")
            tls.close()
    got = (status_of(answer), len(backend.requests))
    assert got == (status, 0), called(
        f"{raw[:60]!r}... (status, requests at the backend)", got, (status, 0)
    )


async def test_backend_down_is_502() -> None:
    """When the backend refuses the connection, the client gets 502."""
    with refused_port() as closed_port:  # held, never listening: nobody else takes it
        async with running_proxy(standard_config(), closed_port) as (_, port):
            with step("GET / over TLS with the backend down"):
                tls = await connect(port, "a.test")
                answer = await tls.request(get_request(), "GET / with the backend down")
                tls.close()
    assert status_of(answer) == 502, called(
        "GET / with nothing listening at the backend", answer[:80], "a 502 answer"
    )


async def test_backend_closing_without_an_answer_is_502() -> None:
    """When the backend closes the connection without an answer, the client gets 502."""

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async with (
        tcp_server(mute) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("GET / over TLS to a backend that hangs up"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(), "GET / with a backend that hangs up")
            tls.close()
    assert status_of(answer) == 502, called(
        "GET / with a backend that closes without answering", answer[:80], "a 502 answer"
    )


@pytest.mark.points(2)
async def test_pipelined_request_is_not_smuggled() -> None:
    """Bytes the client sends after the first request's body (a second, pipelined request with
    forged fields) never reach the backend: one request per connection, body cut at Content-Length."""
    smuggled = b"GET /admin HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
    raw = b"POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello" + smuggled
    async with stack() as (backend, _, port):
        with step("POST /a (5-byte body) with a second request right behind it, over TLS"):
            tls = await connect(port, "a.test")
            answer = await tls.request(raw, "POST /a followed by a pipelined GET /admin")
            tls.close()
    got = (status_of(answer), [r.target for r, _ in backend.requests], b"/admin" in backend.raw)
    want = (200, [b"/a"], False)
    assert got == want, called(
        "POST /a + pipelined GET /admin in one write (status, targets at the backend, /admin in its bytes)",
        got,
        want,
    )


async def test_long_answer_relayed_whole() -> None:
    """An answer longer than one read (300 KB) reaches the client whole."""
    content = bytes(range(256)) * 1200
    async with stack(content=content) as (_, _, port):
        with step("GET / over TLS for a 307200-byte answer"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(), "GET / (a long answer)")
            tls.close()
    body = answer.partition(b"\r\n\r\n")[2]
    got = (status_of(answer), len(body), body == content)
    assert got == (200, len(content), True), called(
        "GET / with a 307200-byte answer (status, bytes received, same bytes)",
        got,
        (200, len(content), True),
    )


async def test_backend_hop_by_hop_fields_not_relayed() -> None:
    """The backend's hop-by-hop fields (its Connection, Keep-Alive, Upgrade, in any case) never
    reach the client; the answer carries the proxy's own Connection: close (RFC 9110 §7.6.1)."""

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n"
            b"KEEP-ALIVE: timeout=5\r\nupgrade: h2c\r\nX-End: 1\r\n\r\nok"
        )
        await writer.drain()

    async with (
        tcp_server(chatty) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("GET / over TLS to a backend that sends hop-by-hop fields"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(), "GET / (hop-by-hop fields in the answer)")
            tls.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    fields = [line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line]
    names = [name.strip().lower().decode("latin-1") for name, _ in fields]
    connection = [v.strip().lower() for n, v in fields if n.strip().lower() == b"connection"]
    got = (
        status_of(answer),
        sorted({"keep-alive", "upgrade"} & set(names)),
        connection,
        "x-end" in names,
        body,
    )
    want = (200, [], [b"close"], True, b"ok")
    assert got == want, called(
        "GET / answered with Connection: Keep-Alive, KEEP-ALIVE, upgrade (status, hop-by-hop "
        "fields relayed, Connection values, X-End kept, body)",
        got,
        want,
    )


async def test_fields_the_backends_connection_names_not_relayed() -> None:
    """The fields the backend's Connection header names (any case, comma-separated) never reach
    the client; the rest of its answer does (RFC 9110 §7.6.1)."""

    async def naming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close , X-Backend-Hop\r\n"
            b"x-backend-hop: secret\r\nX-End: 1\r\n\r\nok"
        )
        await writer.drain()

    async with (
        tcp_server(naming) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        with step("GET / over TLS to a backend whose Connection names X-Backend-Hop"):
            tls = await connect(port, "a.test")
            answer = await tls.request(get_request(), "GET / (Connection: close, X-Backend-Hop)")
            tls.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    names = [
        line.split(b":", 1)[0].strip().lower().decode("latin-1")
        for line in head.split(b"\r\n")[1:]
        if b":" in line
    ]
    got = (status_of(answer), "x-backend-hop" in names, "x-end" in names, body)
    want = (200, False, True, b"ok")
    assert got == want, called(
        "GET / answered with Connection: close , X-Backend-Hop and x-backend-hop: secret "
        "(status, x-backend-hop relayed, X-End relayed, body)",
        got,
        want,
    )
