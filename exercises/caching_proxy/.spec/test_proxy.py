"""The reverse proxy over real sockets: httpx as the client, an origin on 127.0.0.1:0 that h11
parses and that counts every request it receives, the Cache on the spec's clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from _helpers import clock, header_of, httpdate, running_origin
from caching_proxy import Cache, CachingProxy

from grader.spectools import (
    INTERIM,
    FakeClock,
    bounded,
    called,
    loop_reports,
    raw_origin,
    response_heads,
    step,
    tcp_server,
)

N = 5


@contextlib.asynccontextmanager
async def proxied(
    origin, now: FakeClock, max_bytes: int = 10_000
) -> AsyncIterator[tuple[CachingProxy, httpx.AsyncClient]]:
    with step(f"CachingProxy({origin.address}, Cache(max_bytes={max_bytes}, clock=<spec clock>))"):
        proxy = CachingProxy(origin.address, Cache(max_bytes=max_bytes, clock=now))
    with step("await proxy.start('127.0.0.1', 0)"):
        host, port = await bounded(proxy.start("127.0.0.1", 0), 5, "proxy.start()")
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", trust_env=False, timeout=10
        ) as client:
            yield proxy, client
    finally:
        with step("await proxy.close()"):
            await bounded(proxy.close(), 5, "proxy.close()")


async def fetch(
    client: httpx.AsyncClient, method: str = "GET", path: str = "/a", wait: float = 10, **kwargs
) -> httpx.Response:
    with step(f"{method} {path} through the proxy"):
        return await bounded(
            client.request(method, path, **kwargs), wait, f"the proxy's answer to {method} {path}"
        )


def cacheable(now: FakeClock, directives: str = "max-age=60", body: bytes = b"hello"):
    def respond(request):
        if header_of(request, "if-none-match") == '"v1"':
            return 304, [("Date", httpdate(now())), ("ETag", '"v1"')], b""
        return (
            200,
            [("Date", httpdate(now())), ("Cache-Control", directives), ("ETag", '"v1"')],
            body,
        )

    return respond


@pytest.mark.points(3)
async def test_second_get_served_from_cache() -> None:
    """A second GET for a fresh response is answered by the proxy with an Age field; the origin sees
    one request."""
    now = clock()
    async with running_origin(cacheable(now)) as origin, proxied(origin, now) as (proxy, client):
        first = await fetch(client)
        now.advance(7)
        second = await fetch(client)
        got = (
            first.status_code,
            first.content,
            second.status_code,
            second.content,
            second.headers.get("age"),
        )
        assert got == (200, b"hello", 200, b"hello", "7"), called(
            "GET /a, then GET /a 7 s later: (status, body, status, body, Age)",
            got,
            (200, b"hello", 200, b"hello", "7"),
        )
        assert origin.hits == 1, called(
            "two GET /a 7 s apart, max-age=60 (origin hits)", origin.hits, 1
        )


async def test_forwards_to_the_origin() -> None:
    """The proxy forwards method, target, Host and body to the origin and relays status and body."""
    now = clock()
    async with running_origin(lambda r: (201, [("Date", httpdate(now()))], b"made")) as origin:
        async with proxied(origin, now) as (proxy, client):
            answer = await fetch(
                client, "POST", "/things?x=1", content=b"payload", headers={"Host": "origin.test"}
            )
        seen = origin.requests[0]
        got = (
            answer.status_code,
            answer.content,
            seen.method,
            seen.target,
            header_of(seen, "host"),
        )
        want = (201, b"made", b"POST", b"/things?x=1", "origin.test")
        assert got == want, called(
            "POST /things?x=1 with body b'payload' (answer, what the origin saw)", got, want
        )


@pytest.mark.points(3)
async def test_concurrent_misses_collapse() -> None:
    """N concurrent GETs for one uncached target cause exactly one origin request, and all N get
    its response."""
    now = clock()
    async with running_origin(cacheable(now)) as origin, proxied(origin, now) as (proxy, client):
        origin.gate = asyncio.Event()
        cache = proxy.cache
        lookups = 0
        all_in = asyncio.Event()
        real_lookup = cache.lookup

        def counting_lookup(request):
            nonlocal lookups
            lookups += 1
            if lookups >= N:
                all_in.set()
            return real_lookup(request)

        cache.lookup = counting_lookup
        tasks = [asyncio.create_task(fetch(client)) for _ in range(N)]
        try:
            await bounded(origin.arrived.wait(), 10, "the first request to reach the origin")
            await bounded(all_in.wait(), 10, f"the proxy to look up all {N} requests")
        finally:
            origin.gate.set()
        answers = await bounded(asyncio.gather(*tasks), 10, f"the answers to {N} concurrent GETs")
        bodies = [a.content for a in answers]
        assert bodies == [b"hello"] * N, called(f"{N} concurrent GET /a", bodies, [b"hello"] * N)
        assert origin.hits == 1, called(f"{N} concurrent GET /a (origin hits)", origin.hits, 1)


async def test_collapsed_uncacheable_still_answered() -> None:
    """Requests that waited on a response that can't be stored each still get an answer from the
    origin."""
    now = clock()
    async with (
        running_origin(cacheable(now, "no-store")) as origin,
        proxied(origin, now) as (proxy, client),
    ):
        origin.gate = asyncio.Event()
        tasks = [asyncio.create_task(fetch(client)) for _ in range(3)]
        try:
            await bounded(origin.arrived.wait(), 10, "the first request to reach the origin")
        finally:
            origin.gate.set()
        answers = await bounded(asyncio.gather(*tasks), 10, "the answers to 3 concurrent GETs")
        got = [a.status_code for a in answers]
        assert got == [200] * 3 and origin.hits == 3, called(
            "3 concurrent GET /a, Cache-Control: no-store (statuses, origin hits)",
            (got, origin.hits),
            ([200] * 3, 3),
        )


@pytest.mark.points(2)
async def test_stale_while_revalidate_in_background() -> None:
    """Within stale-while-revalidate the proxy answers at once from the cache and revalidates once
    in the background, however many requests arrive meanwhile (RFC 5861 §3)."""
    now = clock()
    respond = cacheable(now, "max-age=10, stale-while-revalidate=30")
    async with running_origin(respond) as origin, proxied(origin, now) as (proxy, client):
        await fetch(client)
        now.advance(15)
        origin.gate = asyncio.Event()
        origin.arrived.clear()
        try:
            first = await fetch(client, wait=5)  # the origin holds its answer: don't wait for it
            await bounded(
                origin.arrived.wait(), 10, "the background revalidation to reach the origin"
            )
            second = await fetch(client, wait=5)
        finally:
            origin.gate.set()
        with step("await proxy.settle()"):
            await bounded(proxy.settle(), 10, "proxy.settle()")
        got = (
            first.content,
            first.headers.get("age"),
            second.content,
            second.headers.get("age"),
            origin.hits,
        )
        want = (b"hello", "15", b"hello", "15", 2)
        assert got == want, called(
            "two GET /a stale by 5 s under swr=30 (bodies, Ages, origin hits)", got, want
        )
        conditional = header_of(origin.requests[1], "if-none-match")
        assert conditional == '"v1"', called(
            "the background revalidation's If-None-Match", conditional, '"v1"'
        )
        now.advance(1)
        third = await fetch(client)
        assert (third.headers.get("age"), origin.hits) == ("1", 2), called(
            "GET /a 1 s after the background 304 (Age, origin hits)",
            (third.headers.get("age"), origin.hits),
            ("1", 2),
        )


async def test_stale_if_error_when_origin_is_down() -> None:
    """Under stale-if-error, a stale response is served when the origin can't be reached, and a
    502 once past the window (RFC 5861 §4)."""
    now = clock()
    respond = cacheable(now, "max-age=10, stale-if-error=30")
    async with running_origin(respond) as origin:
        with step("CachingProxy(...)"):
            proxy = CachingProxy(origin.address, Cache(max_bytes=10_000, clock=now))
        host, port = await bounded(proxy.start("127.0.0.1", 0), 5, "proxy.start()")
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", trust_env=False, timeout=10
        ) as client:
            await fetch(client)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", trust_env=False, timeout=10
        ) as client:
            now.advance(40)
            within = await fetch(client)
            now.advance(1)
            past = await fetch(client)
    finally:
        await bounded(proxy.close(), 5, "proxy.close()")
    got = (within.status_code, within.content, within.headers.get("age"), past.status_code)
    assert got == (200, b"hello", "40", 502), called(
        "GET /a with the origin stopped, stale by 30 s then 31 s under stale-if-error=30 "
        "(status, body, Age, then status)",
        got,
        (200, b"hello", "40", 502),
    )


async def test_post_invalidates_through_the_proxy() -> None:
    """A POST that succeeds invalidates the stored response for its target (RFC 9111 §4.4)."""
    now = clock()
    respond = cacheable(now)
    async with running_origin(respond) as origin, proxied(origin, now) as (proxy, client):
        await fetch(client)
        await fetch(client, "POST", "/a", content=b"x")
        await fetch(client)
        methods = [r.method.decode() for r in origin.requests]
        assert methods == ["GET", "POST", "GET"], called(
            "GET /a, POST /a, GET /a (what the origin saw)", methods, ["GET", "POST", "GET"]
        )


async def raw_exchange(host: str, port: int, data: bytes) -> bytes:
    """Send ``data`` to the proxy on a new connection and read its whole answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await bounded(reader.read(), 10, f"the proxy's answer to {data!r}")
    finally:
        writer.close()


async def raw_proxy(origin, now: FakeClock):
    with step(f"CachingProxy({origin.address}, Cache(...))"):
        proxy = CachingProxy(origin.address, Cache(max_bytes=10_000, clock=now))
    with step("await proxy.start('127.0.0.1', 0)"):
        host, port = await bounded(proxy.start("127.0.0.1", 0), 5, "proxy.start()")
    return proxy, host, port


BAD = [
    (b"GET /a HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
    (b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"GET nowhere\r\n\r\n", 400),
    (b"GET /a FTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST /a HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400),
    (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501),
]
BAD_IDS = [
    "field_without_colon",
    "space_before_colon",
    "bad_request_line",
    "not_http_1_1",
    "bad_content_length",
    "chunked",
]


@pytest.mark.parametrize("data,status", BAD, ids=BAD_IDS)
async def test_unreadable_request(data: bytes, status: int) -> None:
    """A request the proxy can't read is answered 400 (501 for a chunked body, which this proxy
    doesn't implement) and never reaches the origin."""
    now = clock()
    async with running_origin(cacheable(now)) as origin:
        proxy, host, port = await raw_proxy(origin, now)
        try:
            answer = await raw_exchange(host, port, data)
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 %d" % status) and origin.hits == 0, called(
            f"the proxy with {data!r}",
            (status_line, f"origin hits {origin.hits}"),
            (f"HTTP/1.1 {status} ...", "origin hits 0"),
        )


UPLOAD_CHUNKS = 512  # 512 chunks of 64 KiB: 32 MiB, more than the socket buffers between us


async def test_refused_upload_still_gets_its_answer() -> None:
    """A client still sending a chunked body when the proxy answers 501 gets to read that 501.
    The proxy half-closes and reads on before it closes (RFC 9112 §9.6).

    What urllib, http.client and requests do with a generator body: send it all, then read. A
    proxy that closes with the body unread makes the kernel answer the rest with a reset, and
    the client fails with 'Connection reset by peer' or 'Broken pipe' instead of a 501."""
    now = clock()
    piece = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    async with running_origin(cacheable(now)) as origin:
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reader, writer = await asyncio.open_connection(host, port)
            failure = None
            try:
                writer.write(
                    b"POST /a HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                for _ in range(UPLOAD_CHUNKS):
                    writer.write(piece)
                    await bounded(writer.drain(), 10, "the proxy to take the next 64 KiB")
                writer.write(b"0\r\n\r\n")
                await bounded(writer.drain(), 10, "the proxy to take the last chunk")
                reply = await bounded(reader.read(), 10, "the proxy's answer")
            except ConnectionError as error:
                failure, reply = error, b""
            finally:
                writer.close()
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 501"), called(
        "POST /a with Transfer-Encoding: chunked and a 32 MiB body, sent whole before reading "
        "(the status line the client read)",
        f"the connection was reset: {failure!r}" if failure else status_line,
        "HTTP/1.1 501 ...",
    )


async def serve_raw(answer: bytes):
    """An origin that reads a request head and writes ``answer`` as it is, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()

    return handle


async def test_origin_body_delimited_by_close() -> None:
    """An origin response without Content-Length ends when the origin closes the connection, and
    the proxy relays (and caches) all of it."""

    now = clock()
    head = (
        f"HTTP/1.1 200 OK\r\nDate: {httpdate(now())}\r\nCache-Control: max-age=60\r\n\r\n".encode()
    )
    async with tcp_server(await serve_raw(head + b"all of this")) as address:
        origin = type("O", (), {"address": address})()
        async with proxied(origin, now) as (proxy, client):
            first = await fetch(client)
            second = await fetch(client)
    got = (first.content, second.content, second.headers.get("age"))
    assert got == (b"all of this", b"all of this", "0"), called(
        "GET /a twice; the origin answers without Content-Length",
        got,
        (b"all of this", b"all of this", "0"),
    )


async def test_chunked_origin_body_is_decoded() -> None:
    """A chunked origin response reaches the client decoded (chunk sizes, extensions and trailer
    removed), since Transfer-Encoding is hop-by-hop (RFC 9112 §6.1, §7.1).

    What an origin behind a real reverse proxy does for any streamed body: the proxy speaks
    HTTP/1.1 to it, so chunked is always allowed."""
    now = clock()
    answer = (
        f"HTTP/1.1 200 OK\r\nDate: {httpdate(now())}\r\nCache-Control: max-age=60\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        "6\r\nhello \r\n5;name=value\r\nworld\r\n0\r\nX-Checksum: 1\r\n\r\n"
    ).encode()
    async with tcp_server(await serve_raw(answer)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reply = await raw_exchange(host, port, b"GET /a HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"hello world", called(
        f"GET /a; the origin answers {answer!r} (the status line and body the client got)",
        (head.split(b"\r\n", 1)[0], body),
        (b"HTTP/1.1 200 OK", b"hello world"),
    )


async def test_interim_origin_responses_are_not_the_answer() -> None:
    """Interim 1xx responses from the origin (100 Continue, 103 Early Hints) are not the answer:
    after them the client gets the final response (RFC 9110 §15.2).

    Python's http.server answers every 'Expect: 100-continue' with a 100 before the final
    response; a proxy that relays that 100 as the answer loses the response."""
    now = clock()
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nmade"
    )
    request = (
        b"POST /a HTTP/1.1\r\nHost: origin.test\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    async with tcp_server(await serve_raw(answer)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reply = await raw_exchange(host, port, request)
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    # The relayed 100 and 103 come first (RFC 9110 §15.2; their own spec checks them): this
    # one looks at the last head the client got, which must be the final response.
    heads, body = response_heads(reply)
    got = (heads[-1].status_line if heads else reply, body)
    assert got == ("HTTP/1.1 201 Created", b"made"), called(
        f"POST /a with Expect: 100-continue; the origin answers {answer!r} "
        "(the last status line and the body the client got, after the relayed 1xx heads)",
        got,
        ("HTTP/1.1 201 Created", b"made"),
    )


FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"


def responses(raw: bytes) -> tuple[list[tuple[int, list[str]]], bytes]:
    """The responses in ``raw`` as (status, Link values) for each head, and the final body."""
    heads, rest = response_heads(raw)
    return [(h.status, h.values("link")) for h in heads], rest


async def interim_exchange(version: str) -> bytes:
    """GET /a over ``version`` through a proxy whose origin answers 100, 103 (with a Link),
    then 200 'final': everything the client got."""
    async with tcp_server(raw_origin(INTERIM + FINAL, hold=True)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, clock())
        try:
            return await raw_exchange(
                host, port, f"GET /a {version}\r\nHost: origin.test\r\n\r\n".encode()
            )
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")


@pytest.mark.points(2)
async def test_interim_responses_relayed_then_the_final_one() -> None:
    """An origin's 100 Continue and 103 Early Hints reach an HTTP/1.1 client in order, each with
    its fields, before the final response (RFC 9110 §15.2: a proxy MUST forward the 1xx
    responses it did not ask for itself)."""
    got = responses(await interim_exchange("HTTP/1.1"))
    want = ([(100, []), (103, ["</style.css>; rel=preload"]), (200, [])], b"final")
    assert got == want, called(
        "GET /a HTTP/1.1; the origin answers 100, 103 (Link), then 200 'final' "
        "(each response head the client got as (status, Link values), then the final body)",
        got,
        want,
    )


async def test_no_interim_response_to_an_http10_client() -> None:
    """An HTTP/1.0 client gets only the final response: a server MUST NOT send a 1xx response to
    an HTTP/1.0 client (RFC 9110 §15.2), which knows none."""
    got = responses(await interim_exchange("HTTP/1.0"))
    want = ([(200, [])], b"final")
    assert got == want, called(
        "GET /a HTTP/1.0; the origin answers 100, 103 (Link), then 200 'final' "
        "(each response head the client got as (status, Link values), then the final body)",
        got,
        want,
    )


async def test_switching_protocols_from_the_origin_is_502() -> None:
    """An origin that answers 101 Switching Protocols, though the proxy removed Upgrade and never
    asked to switch, gets the client a 502 and nothing else (RFC 9110 §7.8: a server switches
    only to a protocol the request's Upgrade named)."""
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    request = (
        b"GET /a HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    async with tcp_server(raw_origin(switching, hold=True)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, clock())
        try:
            reply = await raw_exchange(host, port, request)
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    got = [status for status, _ in responses(reply)[0]]
    assert got == [502], called(
        f"{request!r}; the origin answers {switching!r} (the status of each response head "
        "the client got)",
        got,
        [502],
    )


EXPECTING = (
    b"PUT /up HTTP/1.1\r\nHost: origin.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
)


@contextlib.asynccontextmanager
async def expecting_origin() -> AsyncIterator[tuple[tuple[str, int], asyncio.Event, list[bytes]]]:
    """An origin that answers a request head with 100 Continue, then reads the 5-byte body and
    answers 200 with it; ``seen`` is set when a head has arrived, ``got`` holds the bodies."""
    seen, got = asyncio.Event(), []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        seen.set()
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(5)
        got.append(body)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\ngot " + body
        )
        await writer.drain()

    async with tcp_server(handle) as address:
        yield address, seen, got


@contextlib.asynccontextmanager
async def sent_expecting(
    address,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A proxy in front of the origin at ``address``, and a client connected to it that has
    sent the head of EXPECTING and none of its body: the client's (reader, writer). The proxy
    is closed on the way out."""
    origin = type("O", (), {"address": address})()
    proxy, host, port = await raw_proxy(origin, clock())
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(EXPECTING)
        await writer.drain()
        yield reader, writer
    finally:
        writer.close()
        await bounded(proxy.close(), 5, "proxy.close()")


async def test_expect_continue_head_is_forwarded_before_the_body() -> None:
    """A request with Expect: 100-continue and a body is forwarded to the origin before its body
    arrives: the client may be waiting for a 100 Continue before it sends any (RFC 9110 §10.1.1:
    a proxy forwards the request line and header section at once).

    A proxy that reads the whole body first waits for the client while the client waits for it.
    """
    async with expecting_origin() as (address, seen, _), sent_expecting(address):
        await bounded(
            seen.wait(),
            10,
            f"the head of {EXPECTING!r} to reach the origin, the body not sent yet "
            "(forward the head of an Expect: 100-continue request without waiting for its body)",
        )


async def test_expect_continue_early_answer_reaches_a_client_that_never_sends_the_body() -> None:
    """An origin's final answer to the head of an Expect: 100-continue request (a 401 before any
    body) reaches the client, which never sends the body it was spared (RFC 9110 §10.1.1)."""
    answer = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nConnection: close\r\n\r\nlog in"
    async with (
        tcp_server(await serve_raw(answer)) as address,
        sent_expecting(address) as (reader, _),
    ):
        head = await bounded(
            reader.readuntil(b"\r\n\r\n"),
            10,
            f"the origin's 401 to {EXPECTING!r}, the body never sent (relay the origin's "
            "answer without waiting for the body)",
        )
        body = await bounded(reader.readexactly(6), 10, "the 6-byte body of the 401")
    got = (head.split(b"\r\n", 1)[0], body)
    want = (b"HTTP/1.1 401 Unauthorized", b"log in")
    assert got == want, called(
        f"{EXPECTING!r}, no body; the origin answers {answer!r} (status line and body)", got, want
    )


async def test_expect_continue_origin_100_reaches_the_client() -> None:
    """The origin's 100 Continue to a request with Expect: 100-continue reaches the client, which
    then sends its body through to the origin and gets the final response (RFC 9110 §10.1.1,
    §15.2: a proxy forwards the 1xx responses it did not ask for itself)."""
    async with (
        expecting_origin() as (address, _, got),
        sent_expecting(address) as (reader, writer),
    ):
        interim = await bounded(
            reader.readuntil(b"\r\n\r\n"),
            10,
            f"a response head to {EXPECTING!r} before the client sends the body (the origin "
            "answered 100 Continue: relay it)",
        )
        assert interim.startswith(b"HTTP/1.1 100 "), called(
            f"{EXPECTING!r}; the first response head the client got",
            interim,
            b"HTTP/1.1 100 Continue",
        )
        writer.write(b"hello")
        await writer.drain()
        rest = await bounded(reader.read(), 10, "the final response after the body")
    head, _, body = rest.partition(b"\r\n\r\n")
    final = (head.split(b"\r\n", 1)[0], body, got)
    want = (b"HTTP/1.1 200 OK", b"got hello", [b"hello"])
    assert final == want, called(
        f"{EXPECTING!r}, the 100 Continue, then the body b'hello' "
        "(final status line, body, the bodies the origin read)",
        final,
        want,
    )


@pytest.mark.parametrize("status", [b"20", b"2000"], ids=["two_digits", "four_digits"])
async def test_an_origin_status_that_is_not_three_digits_is_502(status: bytes) -> None:
    """An origin answer whose status code is not exactly three digits is not HTTP: the client gets
    502 Bad Gateway."""
    now = clock()
    head = b"HTTP/1.1 " + status + b" OK\r\nContent-Length: 2\r\n\r\nhi"
    async with tcp_server(await serve_raw(head)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reply = await raw_exchange(host, port, b"GET /a HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 502"), called(
        f"GET /a; the origin answers {head[:20]!r} (the status line the client got)",
        status_line,
        b"HTTP/1.1 502 Bad Gateway",
    )


async def test_unreadable_origin_is_502() -> None:
    """An origin answer that is not HTTP/1.x is a 502 Bad Gateway for the client."""

    now = clock()
    async with tcp_server(await serve_raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as address:
        origin = type("O", (), {"address": address})()
        async with proxied(origin, now) as (proxy, client):
            answer = await fetch(client)
    assert answer.status_code == 502, called(
        "GET /a; the origin answers 'SSH-2.0-OpenSSH_9.6'", answer.status_code, 502
    )


async def test_head_is_forwarded() -> None:
    """HEAD is forwarded to the origin, with no body read from or sent for it."""
    now = clock()
    async with running_origin(cacheable(now)) as origin, proxied(origin, now) as (proxy, client):
        answer = await fetch(client, "HEAD")
        got = (answer.status_code, answer.content, [r.method for r in origin.requests])
        assert got == (200, b"", [b"HEAD"]), called(
            "HEAD /a (status, body, what the origin saw)", got, (200, b"", [b"HEAD"])
        )


async def test_collapsing_is_per_target() -> None:
    """Misses for different targets are not collapsed: each goes to the origin at once."""
    now = clock()
    async with running_origin(cacheable(now)) as origin, proxied(origin, now) as (proxy, client):
        origin.gate = asyncio.Event()
        tasks = [asyncio.create_task(fetch(client, path=path)) for path in ("/a", "/b")]
        try:
            await bounded(
                origin.reached(2), 5, "GET /a and GET /b both to reach the origin while it holds /a"
            )
        finally:
            origin.gate.set()
        answers = await bounded(asyncio.gather(*tasks), 10, "the answers to GET /a and GET /b")
        got = sorted(r.target.decode() for r in origin.requests)
        assert got == ["/a", "/b"] and [a.status_code for a in answers] == [200, 200], called(
            "concurrent GET /a and GET /b (what the origin saw)", got, ["/a", "/b"]
        )


async def test_origin_timeout() -> None:
    """An origin that doesn't answer within origin_timeout seconds counts as unreachable: 502."""
    now = clock()
    async with running_origin(cacheable(now)) as origin:
        origin.gate = asyncio.Event()  # never set before the proxy gives up
        with step(f"CachingProxy({origin.address}, Cache(...), origin_timeout=0.2)"):
            proxy = CachingProxy(
                origin.address, Cache(max_bytes=10_000, clock=now), origin_timeout=0.2
            )
        host, port = await bounded(proxy.start("127.0.0.1", 0), 5, "proxy.start()")
        try:
            async with httpx.AsyncClient(
                base_url=f"http://{host}:{port}", trust_env=False, timeout=10
            ) as client:
                answer = await fetch(client)
        finally:
            origin.gate.set()
            await bounded(proxy.close(), 5, "proxy.close()")
    assert answer.status_code == 502, called(
        "GET /a; the origin holds its answer past origin_timeout=0.2", answer.status_code, 502
    )


async def test_close_stops_listening_and_revalidating() -> None:
    """close() stops listening and cancels background revalidations, so settle() returns."""
    now = clock()
    respond = cacheable(now, "max-age=10, stale-while-revalidate=30")
    async with running_origin(respond) as origin:
        proxy, host, port = await raw_proxy(origin, now)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://{host}:{port}", trust_env=False, timeout=10
            ) as client:
                await fetch(client)
                now.advance(15)
                origin.gate = asyncio.Event()
                origin.arrived.clear()
                await fetch(client, wait=5)
                await bounded(
                    origin.arrived.wait(), 10, "the background revalidation to reach the origin"
                )
            with step("await proxy.close() during a background revalidation"):
                await bounded(proxy.close(), 5, "proxy.close()")
            with step("await proxy.settle() after close()"):
                await bounded(proxy.settle(), 5, "proxy.settle() after close()")
            refused = None
            try:
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
            except OSError as error:
                refused = error
            assert refused is not None, called(
                f"connect to the proxy at {host}:{port} after close()", "a connection", "refused"
            )
        finally:
            origin.gate.set()


async def test_close_leaves_the_event_loop_nothing_to_report() -> None:
    """close() during a background revalidation, with a client half-way through its request
    head, leaves no error for the event loop to report.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    now = clock()
    respond = cacheable(now, "max-age=10, stale-while-revalidate=30")
    async with running_origin(respond) as origin:
        proxy, host, port = await raw_proxy(origin, now)
        try:
            async with loop_reports() as reports:
                async with httpx.AsyncClient(
                    base_url=f"http://{host}:{port}", trust_env=False, timeout=10
                ) as client:
                    await fetch(client)
                    now.advance(15)
                    origin.gate = asyncio.Event()
                    origin.arrived.clear()
                    await fetch(client, wait=5)
                    await bounded(
                        origin.arrived.wait(), 10, "the background revalidation to reach the origin"
                    )
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET /a HTTP/1.1\r\nHost: ")  # half a head: the proxy reads on
                await writer.drain()
                with step("await proxy.close() during a revalidation, a client half-way"):
                    await bounded(proxy.close(), 5, "proxy.close()")
                with step("await proxy.settle() after close()"):
                    await bounded(proxy.settle(), 5, "proxy.settle() after close()")
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await bounded(reader.read(), 5, "the half-way connection to close")
        finally:
            origin.gate.set()
    assert not reports, reports.message(
        "proxy.close() during a background revalidation, a client half-way through its head",
        "a task close() cancels (a revalidation, a client connection) should end quietly: "
        "catch CancelledError in a connection handler and return, await what you cancel",
    )


async def recording_origin(heads: list[bytes], answer: bytes):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()

    return handle


def field_names(head: bytes) -> list[str]:
    return [
        line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")[1:] if b":" in line
    ]


async def test_hop_by_hop_fields_stay_on_their_hop() -> None:
    """Hop-by-hop fields (Keep-Alive, Connection and the fields Connection names) are not forwarded,
    in either direction (RFC 9110 §7.6.1)."""
    now = clock()
    heads: list[bytes] = []
    answer = (
        f"HTTP/1.1 200 OK\r\nDate: {httpdate(now())}\r\nCache-Control: max-age=60\r\n"
        "Connection: close, X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n"
        "X-Public: 1\r\nContent-Length: 2\r\n\r\nhi"
    ).encode()
    request = (
        b"GET /a HTTP/1.1\r\nHost: origin.test\r\nConnection: X-Trace\r\nX-Trace: 1\r\n"
        b"Keep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\n"
    )
    async with tcp_server(await recording_origin(heads, answer)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reply = await raw_exchange(host, port, request)
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    sent = field_names(heads[0]) if heads else []
    assert "x-kept" in sent and not {"x-trace", "keep-alive"} & set(sent), called(
        f"the proxy with {request!r} (the fields the origin saw)",
        sent,
        "X-Kept, and no X-Trace or Keep-Alive",
    )
    got = field_names(reply.split(b"\r\n\r\n", 1)[0])
    assert "x-public" in got and not {"x-internal", "keep-alive"} & set(got), called(
        "GET /a; the origin answers with Connection: close, X-Internal (the fields the client got)",
        got,
        "X-Public, and no X-Internal or Keep-Alive",
    )


FIXED_HOP_BY_HOP = ["keep-alive", "proxy-connection", "te", "trailer", "upgrade"]


async def test_every_listed_hop_by_hop_field_stays_on_its_hop() -> None:
    """Keep-Alive, Proxy-Connection, TE, Trailer and Upgrade are hop-by-hop even when Connection
    does not name them: none is forwarded, in either direction (RFC 9110 §7.6.1)."""
    now = clock()
    heads: list[bytes] = []
    hop = "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
    hop += "Trailer: X-Checksum\r\nUpgrade: h2c\r\n"
    answer = (
        f"HTTP/1.1 200 OK\r\nDate: {httpdate(now())}\r\nCache-Control: max-age=60\r\n{hop}"
        "X-Public: 1\r\nContent-Length: 2\r\n\r\nhi"
    ).encode()
    request = f"GET /a HTTP/1.1\r\nHost: origin.test\r\n{hop}X-Kept: yes\r\n\r\n".encode()
    async with tcp_server(await recording_origin(heads, answer)) as address:
        origin = type("O", (), {"address": address})()
        proxy, host, port = await raw_proxy(origin, now)
        try:
            reply = await raw_exchange(host, port, request)
        finally:
            await bounded(proxy.close(), 5, "proxy.close()")
    sent = field_names(heads[0]) if heads else []
    leaked = sorted(set(FIXED_HOP_BY_HOP) & set(sent))
    assert "x-kept" in sent and not leaked, called(
        f"the proxy with {request!r} (the fields the origin saw)",
        sent,
        f"X-Kept, and none of {FIXED_HOP_BY_HOP}",
    )
    got = field_names(reply.split(b"\r\n\r\n", 1)[0])
    leaked = sorted(set(FIXED_HOP_BY_HOP) & set(got))
    assert "x-public" in got and not leaked, called(
        "GET /a; the origin answers with Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade "
        "(the fields the client got)",
        got,
        f"X-Public, and none of {FIXED_HOP_BY_HOP}",
    )
