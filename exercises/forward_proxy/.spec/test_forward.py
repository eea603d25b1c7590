"""Forwarding absolute-form requests: httpx configured with the proxy, and raw requests for
each rule. The origin (h11 on 127.0.0.1:0) records what the proxy sent it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from _helpers import Resolver, exchange, loopback_policy, running_proxy, serve
from forward_proxy import MAX_HEAD

from grader.spectools import (
    answer_with,
    bounded,
    called,
    refused_port,
    running_h11_origin,
    step,
)


def get(
    port: int, path: str = "/a", *lines: str, method: str = "GET", version: str = "1.1"
) -> bytes:
    head = [
        f"{method} http://origin.test:{port}{path} HTTP/{version}",
        f"Host: origin.test:{port}",
        *lines,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


@pytest.mark.points(3)
async def test_httpx_through_the_proxy() -> None:
    """httpx configured with the proxy gets the origin's answer to a GET and a POST with a body."""

    def respond(request, body):
        return 200, [("X-Method", request.method.decode())], b"echo:" + body

    async with (
        running_h11_origin(respond) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        async with httpx.AsyncClient(
            proxy=f"http://127.0.0.1:{port}", trust_env=False, timeout=10
        ) as client:
            with step(f"httpx GET http://origin.test:{origin.port}/hello through the proxy"):
                first = await bounded(
                    client.get(f"http://origin.test:{origin.port}/hello?x=1"), 15, "the GET"
                )
            with step("httpx POST with a 5-byte body through the proxy"):
                second = await bounded(
                    client.post(f"http://origin.test:{origin.port}/up", content=b"12345"),
                    15,
                    "the POST",
                )
        got = (
            first.status_code,
            first.content,
            second.status_code,
            second.content,
            second.headers.get("x-method"),
        )
        want = (200, b"echo:", 200, b"echo:12345", "POST")
        assert got == want, called(
            "GET then POST through the proxy (status, body, status, body, X-Method)", got, want
        )
        targets = [r.target for r, _ in origin.requests]
        assert targets == [b"/hello?x=1", b"/up"], called(
            "the request-targets the origin saw", targets, [b"/hello?x=1", b"/up"]
        )


async def test_origin_form_target_and_host_from_the_target() -> None:
    """The origin gets the origin-form target and a Host taken from the absolute-form target, not
    the client's Host (RFC 9112 §3.2.2)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        data = f"GET http://origin.test:{origin.port}/p/q?r=s HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode()
        answer = await exchange(
            port, data, "GET http://origin.test/p/q?r=s with Host: evil.example"
        )
        assert answer.status == 200, called("GET with an absolute-form target", answer.status, 200)
        got = (origin.last.target, origin.header("host"))
        want = (b"/p/q?r=s", [f"origin.test:{origin.port}"])
        assert got == want, called("what the origin saw (target, Host values)", got, want)


async def test_empty_path_becomes_slash_and_options_star() -> None:
    """An empty path is sent as "/", and OPTIONS with an empty path as "OPTIONS *"
    (RFC 9112 §3.2.1, §3.2.4)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        await exchange(port, get(origin.port, ""), "GET http://origin.test:port (no path)")
        await exchange(
            port, get(origin.port, "", method="OPTIONS"), "OPTIONS http://origin.test:port"
        )
        got = [(r.method, r.target) for r, _ in origin.requests]
        want = [(b"GET", b"/"), (b"OPTIONS", b"*")]
        assert got == want, called(
            "GET and OPTIONS without a path (method, target at the origin)", got, want
        )


async def test_empty_path_with_a_query_keeps_the_slash() -> None:
    """An empty path followed by a query is sent as "/?query", for OPTIONS too: "*" is only for
    an empty path without a query (RFC 9112 §3.2.1, §3.2.4)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        for method in ("GET", "OPTIONS"):
            await exchange(
                port,
                get(origin.port, "?q=1", method=method),
                f"{method} http://origin.test:port?q=1",
            )
        got = [(r.method, r.target) for r, _ in origin.requests]
        want = [(b"GET", b"/?q=1"), (b"OPTIONS", b"/?q=1")]
        assert got == want, called(
            "GET and OPTIONS of http://origin.test:port?q=1 (method, target at the origin)",
            got,
            want,
        )


@pytest.mark.points(2)
async def test_hop_by_hop_request_fields_removed() -> None:
    """Connection, the fields it names, Keep-Alive, Proxy-Connection, TE and Upgrade never reach
    the origin; end-to-end fields do (RFC 9110 §7.6.1)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        lines = (
            "Connection: keep-alive, X-Hop",
            "X-Hop: secret",
            "Keep-Alive: timeout=5",
            "Proxy-Connection: keep-alive",
            "TE: trailers",
            "Upgrade: websocket",
            "X-End: kept",
            "Cache-Control: no-cache",
        )
        answer = await exchange(port, get(origin.port, "/", *lines), "GET with hop-by-hop fields")
        assert answer.status == 200, called("GET with hop-by-hop fields", answer.status, 200)
        names = {k.decode().lower() for k, _ in origin.last.headers}
        leaked = sorted(names & {"x-hop", "keep-alive", "proxy-connection", "te", "upgrade"})
        assert not leaked, called(
            "the fields the origin saw",
            sorted(names),
            "none of x-hop, keep-alive, proxy-connection, te, upgrade",
        )
        kept = (origin.header("x-end"), origin.header("cache-control"))
        assert kept == (["kept"], ["no-cache"]), called(
            "X-End and Cache-Control at the origin", kept, (["kept"], ["no-cache"])
        )
        connection = [v.lower() for v in origin.header("connection")]
        assert all("x-hop" not in v and "keep-alive" not in v for v in connection), called(
            "the Connection field the origin saw",
            connection,
            "the proxy's own options only (e.g. close)",
        )


async def test_hop_by_hop_response_fields_removed() -> None:
    """The origin's hop-by-hop response fields, and those its Connection names, never reach the
    client; its end-to-end fields do (RFC 9110 §7.6.1)."""

    def respond(request, body):
        headers = [
            ("Connection", "X-Origin-Hop"),
            ("X-Origin-Hop", "1"),
            ("Keep-Alive", "timeout=9"),
            ("Upgrade", "h2c"),
            ("X-End", "kept"),
        ]
        return 200, headers, b"body"

    async with (
        running_h11_origin(respond) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin.port), "GET of a response with hop-by-hop fields")
        names = {k.lower() for k, _ in answer.headers}
        leaked = sorted(names & {"x-origin-hop", "keep-alive", "upgrade"})
        got = (answer.status, answer.body, leaked, answer.values("x-end"))
        want = (200, b"body", [], ["kept"])
        assert got == want, called(
            "GET; the answer (status, body, hop-by-hop fields left, X-End)", got, want
        )


@pytest.mark.points(2)
async def test_via_on_the_forwarded_request() -> None:
    """The proxy appends "<received-protocol> <pseudonym>" to Via on the request it forwards,
    after any Via already there (RFC 9110 §7.6.3)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port), via="gw") as (proxy, port),
    ):
        await exchange(
            port, get(origin.port, "/", "Via: 1.0 fred"), "GET (HTTP/1.1) with Via: 1.0 fred"
        )
        await exchange(port, get(origin.port, "/", version="1.0"), "GET (HTTP/1.0) without Via")
        got = [", ".join(origin.header("via", 0)), ", ".join(origin.header("via", 1))]
        want = ["1.0 fred, 1.1 gw", "1.0 gw"]
        assert got == want, called(
            "Via at the origin for an HTTP/1.1 request with Via: 1.0 fred, and an HTTP/1.0 one",
            got,
            want,
        )


async def test_via_on_the_relayed_response() -> None:
    """The proxy adds Via to the response it relays too: "1.1 <pseudonym>" after the origin's own
    (RFC 9110 §7.6.3)."""

    async with running_h11_origin(lambda r, b: (200, [("Via", "1.1 origin-side")], b"x")) as origin:
        async with running_proxy(loopback_policy(origin.port), via="gw") as (proxy, port):
            answer = await exchange(port, get(origin.port), "GET")
        got = ", ".join(answer.values("via"))
        assert got == "1.1 origin-side, 1.1 gw", called(
            "GET; the Via of the answer", got, "1.1 origin-side, 1.1 gw"
        )


async def test_via_on_a_response_names_the_origins_version() -> None:
    """The Via the proxy adds to a response names the protocol the response arrived with: "1.0"
    after an HTTP/1.0 origin (RFC 9110 §7.6.3, received-protocol)."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")
        await writer.drain()

    async with serve(origin_handler) as origin_port:
        async with running_proxy(loopback_policy(origin_port), via="gw") as (proxy, port):
            answer = await exchange(port, get(origin_port), "GET answered by an HTTP/1.0 origin")
        got = answer.values("via")
        assert got == ["1.0 gw"], called(
            "GET answered in HTTP/1.0; the Via of the relayed answer", got, ["1.0 gw"]
        )


@pytest.mark.points(2)
@pytest.mark.parametrize("method", ["TRACE", "OPTIONS"])
async def test_max_forwards_zero_answered_by_the_proxy(method: str) -> None:
    """A TRACE or OPTIONS with Max-Forwards: 0 is answered 200 by the proxy and never forwarded
    (RFC 9110 §7.6.2)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        answer = await exchange(
            port,
            get(origin.port, "/t", "Max-Forwards: 0", method=method),
            f"{method} with Max-Forwards: 0",
        )
        got = (answer.status, origin.connections)
        assert got == (200, 0), called(
            f"{method} with Max-Forwards: 0 (status, origin connections)", got, (200, 0)
        )


async def test_trace_reflects_the_request_without_credentials() -> None:
    """A TRACE stopped by Max-Forwards: 0 answers with message/http content reflecting the
    request, without Authorization or Cookie, whatever their case (RFC 9110 §9.3.8)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        request = get(
            origin.port,
            "/t",
            "Max-Forwards: 0",
            "X-Probe: 42",
            "Authorization: Bearer s3cret",
            "Cookie: id=s3cret",
            "cookie: other=s3cret",
            method="TRACE",
        )
        answer = await exchange(port, request, "TRACE with Max-Forwards: 0")
        body = answer.body.decode("latin-1")
        got = (
            answer.values("content-type"),
            body.startswith(f"TRACE http://origin.test:{origin.port}/t HTTP/1.1\r\n"),
            "X-Probe: 42" in body,
            "s3cret" in body,
        )
        want = (["message/http"], True, True, False)
        assert got == want, called(
            "TRACE with Max-Forwards: 0 (Content-Type, body starts with the request line, has X-Probe, has credentials)",
            got,
            want,
        )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("method", "sent", "want"),
    [("TRACE", "1", "0"), ("OPTIONS", "5", "4"), ("GET", "5", "5")],
    ids=["trace-1", "options-5", "get-untouched"],
)
async def test_max_forwards_decremented(method: str, sent: str, want: str) -> None:
    """A TRACE or OPTIONS with Max-Forwards above 0 is forwarded with the value minus one; other
    methods forward it untouched (RFC 9110 §7.6.2)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        await exchange(
            port,
            get(origin.port, "/t", f"Max-Forwards: {sent}", method=method),
            f"{method} with Max-Forwards: {sent}",
        )
        got = origin.header("max-forwards") if origin.requests else "not forwarded"
        assert got == [want], called(
            f"{method} with Max-Forwards: {sent}; Max-Forwards at the origin", got, [want]
        )


async def test_request_body_forwarded() -> None:
    """A request body framed by Content-Length reaches the origin whole, with its length."""
    async with (
        running_h11_origin(lambda r, b: (200, [], b"%d" % len(b))) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        body = bytes(range(256)) * 1000
        data = get(origin.port, "/up", f"Content-Length: {len(body)}", method="PUT") + body
        answer = await exchange(port, data, "PUT with a 256000-byte body")
        got = (
            answer.status,
            answer.body,
            origin.requests[0][1] == body if origin.requests else None,
        )
        assert got == (200, b"256000", True), called(
            "PUT of 256000 bytes (status, length the origin saw, same bytes)",
            got,
            (200, b"256000", True),
        )


BAD = [
    ("origin-form", "GET /a HTTP/1.1\r\nHost: origin.test\r\n\r\n", 400),
    ("https-scheme", "GET https://origin.test:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("userinfo", "GET http://user:pw@origin.test:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("empty-user", "GET http://:pw@origin.test:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("empty-userinfo", "GET http://@origin.test:{port}/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bad-port", "GET http://origin.test:99999999/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space-before-colon", "GET http://origin.test:{port}/ HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("field-without-colon", "GET http://origin.test:{port}/ HTTP/1.1\r\nHost x\r\n\r\n", 400),
    ("bad-request-line", "GET http://origin.test:{port}/\r\n\r\n", 400),
    (
        "bad-content-length",
        "POST http://origin.test:{port}/ HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        400,
    ),
    (
        "two-content-lengths",
        "POST http://origin.test:{port}/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
    ),
    (
        "bad-max-forwards",
        "TRACE http://origin.test:{port}/ HTTP/1.1\r\nMax-Forwards: -1\r\n\r\n",
        400,
    ),
    (
        "two-max-forwards",
        "TRACE http://origin.test:{port}/ HTTP/1.1\r\nMax-Forwards: 5\r\nMax-Forwards: 3\r\n\r\n",
        400,
    ),
    (
        "superscript-content-length",
        "POST http://origin.test:{port}/ HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\nab",
        400,
    ),
    (
        "superscript-max-forwards",
        "TRACE http://origin.test:{port}/ HTTP/1.1\r\nMax-Forwards: \u00b9\r\n\r\n",
        400,
    ),
    (
        "chunked-request",
        "POST http://origin.test:{port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("why", "text", "status"), BAD, ids=[b[0] for b in BAD])
async def test_bad_requests_answered_by_the_proxy(why: str, text: str, status: int) -> None:
    """A request the proxy can't forward is answered by the proxy (400, or 501 for request
    content with Transfer-Encoding) and never reaches the origin."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        answer = await exchange(port, text.format(port=origin.port).encode("latin-1"), why)
        got = (answer.status, origin.connections)
        assert got == (status, 0), called(
            f"{why}: {text[:60]!r} (status, origin connections)", got, (status, 0)
        )


@pytest.mark.parametrize("extra", [-1, 0, 1], ids=["limit-minus-1", "at-limit", "limit-plus-1"])
async def test_request_head_limit(extra: int) -> None:
    """A request head of up to MAX_HEAD (16384) bytes, blank line included, is forwarded; one
    byte more is answered 431 and never forwarded."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        start = get(origin.port, "/", "X-Pad: ")[:-4]
        pad = MAX_HEAD + extra - len(start) - 4
        data = start + b"a" * pad + b"\r\n\r\n"
        assert len(data) == MAX_HEAD + extra
        answer = await exchange(port, data, f"a request head of {len(data)} bytes")
        want = (200, 1) if extra <= 0 else (431, 0)
        got = (answer.status, origin.connections)
        assert got == want, called(
            f"a request head of {len(data)} bytes (status, origin connections)", got, want
        )


async def test_chunked_response_decoded() -> None:
    """A chunked response reaches the client as its decoded content, without Transfer-Encoding:
    the proxy re-frames it (RFC 9110 §7.6.1, RFC 9112 §7.1)."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;ext=1\r\nhello\r\n1a\r\n"
            + b"z" * 26
            + b"\r\n0\r\nX-T: 1\r\n\r\n"
        )
        await writer.drain()

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin_port), "GET of a chunked response")
        got = (answer.status, answer.body, answer.values("transfer-encoding"))
        want = (200, b"hello" + b"z" * 26, [])
        assert got == want, called(
            "GET of a chunked response (status, body, Transfer-Encoding)", got, want
        )


async def test_head_response_has_no_body() -> None:
    """The answer to HEAD ends after its head whatever its Content-Length says, and a 204 or 304
    has no content either (RFC 9112 §6.3)."""

    async def origin_handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        status = b"304 Not Modified" if b" /304 " in head else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 1000\r\n\r\n")
        await writer.drain()
        await reader.read(-1)  # hold the connection open: only the framing ends this answer

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        head = await exchange(port, get(origin_port, method="HEAD"), "HEAD")
        not_modified = await exchange(port, get(origin_port, "/304"), "GET answered 304")
        got = (
            head.status,
            head.values("content-length"),
            head.body,
            not_modified.status,
            not_modified.body,
        )
        want = (200, ["1000"], b"", 304, b"")
        assert got == want, called(
            "HEAD, then GET answered 304 (status, Content-Length, body, status, body)", got, want
        )


async def test_response_without_length_relayed_to_the_close() -> None:
    """A response without Content-Length is relayed until the origin closes (RFC 9112 §6.3)."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        await writer.drain()

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin_port), "GET of a close-delimited response")
        got = (answer.status, answer.body)
        assert got == (200, b"until the end"), called(
            "GET of a close-delimited response", got, (200, b"until the end")
        )


@contextlib.asynccontextmanager
async def _aimed_at(origin_port: int, case: str) -> AsyncIterator[int]:
    """The origin port a case aims at: for "nothing-listening" a refused one, held by a socket
    that never listens (spectools.refused_port: no other process takes it meanwhile), else
    ``origin_port``."""
    if case != "nothing-listening":
        yield origin_port
        return
    with refused_port() as closed_port:
        yield closed_port


@pytest.mark.parametrize(
    "case", ["unknown-name", "nothing-listening", "not-http", "closes-silently"]
)
async def test_unreachable_origin_is_502(case: str) -> None:
    """A name that doesn't resolve, an origin that refuses the connection, or one that doesn't
    answer HTTP (garbage, or a close without a word) gets 502 from the proxy."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if case == "not-http":
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
            await writer.drain()

    async with (
        serve(origin_handler) as origin_port,
        _aimed_at(origin_port, case) as target_port,
    ):
        host = "nowhere.test" if case == "unknown-name" else "origin.test"
        async with running_proxy(loopback_policy(target_port), resolver=Resolver()) as (
            proxy,
            port,
        ):
            data = f"GET http://{host}:{target_port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            answer = await exchange(port, data, f"GET to an origin that is {case}")
        assert answer.status == 502, called(
            f"GET through the proxy, origin {case}", answer.status, 502
        )


async def test_head_without_end_is_431() -> None:
    """A request head that goes on past MAX_HEAD bytes without its blank line is answered 431:
    the proxy stops reading instead of buffering it."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port)) as (proxy, port),
    ):
        data = get(origin.port, "/", "X-Pad: ")[:-4] + b"a" * (2 * MAX_HEAD)
        answer = await exchange(port, data, f"{len(data)} bytes of request head and no blank line")
        got = (answer.status, origin.connections)
        assert got == (431, 0), called(
            f"{len(data)} bytes of head, no blank line (status, origin connections)", got, (431, 0)
        )


BROKEN = {
    "short-content": b"Content-Length: 100\r\n\r\n0123456789",
    "bad-chunk-size": b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
    "chunk-without-crlf": b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "hex-prefixed-chunk-size": b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n",
}


BAD_LENGTHS = {
    "signed": "Content-Length: +5",
    "superscript": "Content-Length: \u00b2",
    "two-values": "Content-Length: 5\r\nContent-Length: 6",
}


@pytest.mark.parametrize("case", sorted(BAD_LENGTHS))
async def test_invalid_response_length_is_502(case: str) -> None:
    """A response whose Content-Length is not one run of ASCII digits (a sign, a superscript, two
    different values) is discarded and answered 502 (RFC 9112 §6.3: the proxy must not relay
    a message it cannot frame)."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\n{BAD_LENGTHS[case]}\r\n\r\n".encode("latin-1")
        writer.write(head + b"hello")
        await writer.drain()

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin_port), f"GET answered with {case} Content-Length")
    assert answer.status == 502, called(
        f"GET answered with {BAD_LENGTHS[case]!r} (status of the proxy's answer)",
        answer.status,
        502,
    )


async def test_chunked_response_loses_its_content_length() -> None:
    """A response with both Transfer-Encoding: chunked and Content-Length is framed by the chunks,
    and the Content-Length it came with is not relayed (RFC 9112 §6.3: an intermediary removes
    it before forwarding)."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
        await writer.drain()

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin_port), "GET of a chunked response with a length")
    got = (answer.status, answer.values("content-length"), answer.body)
    want = (200, [], b"hello")
    assert got == want, called(
        "GET answered chunked with Content-Length: 3 (status, Content-Length relayed, body)",
        got,
        want,
    )


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_broken_response_body_ends_the_connection(case: str) -> None:
    """When the origin's body breaks off (closed before its Content-Length, a bad chunk size, a
    chunk without its CRLF) the proxy relays what was good and closes the client's connection,
    so the client sees an incomplete message instead of waiting forever."""

    async def origin_handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n" + BROKEN[case])
        await writer.drain()
        if case != "short-content":
            await reader.read(-1)  # keep the connection open: only the proxy can end this

    async with (
        serve(origin_handler) as origin_port,
        running_proxy(loopback_policy(origin_port)) as (proxy, port),
    ):
        answer = await exchange(port, get(origin_port), f"GET of a response with {case}")
    want = (200, b"0123456789" if case == "short-content" else b"hello")
    got = (answer.status, answer.body)
    assert got == want, called(
        f"GET of a response with {case} (status, body relayed before the close)", got, want
    )
