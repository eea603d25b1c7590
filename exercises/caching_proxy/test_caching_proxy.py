"""Visible examples for the caching_proxy kata. Run them with `nox -s try -- caching_proxy`.

They drive the Cache by hand with a clock you move yourself, the way the proxy does (lookup,
ask the origin if told to, complete), and run the proxy once in front of a tiny origin. The
hidden specs go much further: a table of scenarios cross-checked with hishel, Vary,
invalidation, stale serving, the byte-bounded LRU, and request collapsing over real sockets.
"""

from __future__ import annotations

import asyncio
import email.utils

try:
    from caching_proxy import Cache, CachingProxy, Request, Response, parse_cache_control
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Cache, CachingProxy, Request, Response and "
        "parse_cache_control from caching_proxy.py"
    ) from err

T0 = 1_700_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def test_parse_cache_control() -> None:
    got = parse_cache_control('max-age=60, No-Cache="Set-Cookie"')
    assert got == {"max-age": "60", "no-cache": "Set-Cookie"}, f"returned {got!r}"


def test_fresh_then_stale() -> None:
    clock = Clock()
    cache = Cache(max_bytes=1000, clock=clock)
    request = Request("GET", "/a", [("Host", "example.test")])

    first = cache.lookup(request)
    assert first.kind == "miss", f"an empty cache looked up GET /a: kind {first.kind!r}"
    origin = Response(200, [("Date", date(clock())), ("Cache-Control", "max-age=60")], b"hello")
    served = cache.complete(first, origin)
    assert served.body == b"hello", f"complete() returned {served!r}"
    assert cache.size == 5, f"cache.size is {cache.size} after storing a 5-byte body"

    clock.now += 59
    second = cache.lookup(request)
    assert second.kind == "fresh", f"at age 59 of 60: kind {second.kind!r}, expected 'fresh'"
    assert second.serve.header("age") == "59", f"Age {second.serve.header('age')!r}, expected '59'"

    clock.now += 1
    third = cache.lookup(request)
    assert third.kind in ("revalidate", "miss"), f"at age 60 of 60: kind {third.kind!r}"


def test_no_store_is_not_stored() -> None:
    clock = Clock()
    cache = Cache(max_bytes=1000, clock=clock)
    request = Request("GET", "/a")
    origin = Response(200, [("Date", date(clock())), ("Cache-Control", "no-store")], b"secret")
    cache.complete(cache.lookup(request), origin)
    assert cache.lookup(request).kind == "miss", "a no-store response was served from the cache"
    assert cache.size == 0, f"cache.size is {cache.size}, expected 0"


def test_etag_revalidation() -> None:
    clock = Clock()
    cache = Cache(max_bytes=1000, clock=clock)
    request = Request("GET", "/a")
    stored = Response(
        200, [("Date", date(clock())), ("Cache-Control", "max-age=10"), ("ETag", '"v1"')], b"body"
    )
    cache.complete(cache.lookup(request), stored)

    clock.now += 10
    decision = cache.lookup(request)
    assert decision.kind == "revalidate", f"at age 10 of 10: kind {decision.kind!r}"
    assert decision.forward.header("if-none-match") == '"v1"', f"forward: {decision.forward!r}"
    served = cache.complete(decision, Response(304, [("Date", date(clock())), ("ETag", '"v1"')]))
    assert (served.status, served.body) == (200, b"body"), f"after a 304: {served!r}"


async def test_proxy_serves_second_get_from_cache() -> None:
    clock = Clock()
    hits = 0

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        await reader.readuntil(b"\r\n\r\n")
        hits += 1
        head = f"HTTP/1.1 200 OK\r\nDate: {date(clock())}\r\nCache-Control: max-age=60\r\n"
        writer.write(head.encode() + b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    proxy = CachingProxy(server.sockets[0].getsockname()[:2], Cache(max_bytes=1000, clock=clock))
    host, port = await proxy.start("127.0.0.1", 0)
    try:
        answers = []
        for _ in range(2):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n")
            answers.append(await asyncio.wait_for(reader.read(), 5))
            writer.close()
        assert answers[0].startswith(b"HTTP/1.1 200"), f"first answer {answers[0]!r}"
        assert answers[1].endswith(b"\r\n\r\nhi"), f"second answer {answers[1]!r}"
        assert hits == 1, f"the origin got {hits} requests, expected 1"
    finally:
        await proxy.close()
        server.close()
