"""Validation (RFC 9111 §4.3): conditional requests from stored validators, and what a 304 or a
new 200 does to the stored response."""

from __future__ import annotations

from _helpers import BODY, Script, age_of, clock, exchange, get, httpdate
from caching_proxy import Cache, Response

from grader.spectools import called, step

LAST_MODIFIED = "Tue, 14 Nov 2023 00:00:00 GMT"


def cache_with(*headers: tuple[str, str]):
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    origin = Script(lambda request: Response(200, [("Date", httpdate(now())), *headers], BODY))
    exchange(cache, get("/a"), origin)
    return now, cache, origin


def test_if_none_match_from_etag() -> None:
    """Revalidating a stored response with an ETag sends If-None-Match with that entity-tag
    (RFC 9111 §4.3.1)."""
    now, cache, origin = cache_with(("Cache-Control", "max-age=10"), ("ETag", 'W/"v1"'))
    now.advance(10)
    with step("cache.lookup(GET /a) at age 10"):
        decision = cache.lookup(get("/a"))
    forward = decision.forward
    got = (
        None
        if forward is None
        else (forward.method, forward.target, forward.header("if-none-match"))
    )
    assert got == ("GET", "/a", 'W/"v1"'), called(
        "cache.lookup(GET /a) at age 10, max-age=10 -> forward (method, target, If-None-Match)",
        got,
        ("GET", "/a", 'W/"v1"'),
    )


def test_if_modified_since_from_last_modified() -> None:
    """Revalidating a stored response with Last-Modified sends If-Modified-Since with that date
    (RFC 9111 §4.3.1)."""
    now, cache, origin = cache_with(
        ("Cache-Control", "max-age=10"), ("Last-Modified", LAST_MODIFIED)
    )
    now.advance(10)
    with step("cache.lookup(GET /a) at age 10"):
        decision = cache.lookup(get("/a"))
    forward = decision.forward
    got = None if forward is None else forward.header("if-modified-since")
    assert (decision.kind, got) == ("revalidate", LAST_MODIFIED), called(
        "cache.lookup(GET /a) at age 10 -> (kind, forward's If-Modified-Since)",
        (decision.kind, got),
        ("revalidate", LAST_MODIFIED),
    )


def test_304_updates_stored_headers() -> None:
    """A 304 replaces the stored response's header fields with its own and restarts its age;
    the stored body stays (RFC 9111 §3.2, §4.3.4)."""
    now, cache, origin = cache_with(
        ("Cache-Control", "max-age=10"), ("ETag", '"v1"'), ("X-Version", "1")
    )
    now.advance(10)
    origin.reply = lambda request: Response(
        304,
        [
            ("Date", httpdate(now())),
            ("ETag", '"v1"'),
            ("Cache-Control", "max-age=100"),
            ("X-Version", "2"),
        ],
        b"",
    )
    kind, served = exchange(cache, get("/a"), origin)
    got = (served.status, served.body, served.header("x-version"), age_of(served))
    assert got == (200, BODY, "2", 0), called(
        "GET /a revalidated by a 304 carrying X-Version: 2 -> (status, body, X-Version, Age)",
        got,
        (200, BODY, "2", 0),
    )
    now.advance(99)
    kind, served = exchange(cache, get("/a"), origin)
    assert (kind, age_of(served), origin.hits) == ("fresh", 99, 2), called(
        "GET /a 99 s after a 304 that said max-age=100 (kind, Age, origin hits)",
        (kind, age_of(served), origin.hits),
        ("fresh", 99, 2),
    )


def test_200_replaces_stored_response() -> None:
    """A full response to a revalidation replaces the stored one (RFC 9111 §4.3.3)."""
    now, cache, origin = cache_with(("Cache-Control", "max-age=10"), ("ETag", '"v1"'))
    now.advance(10)
    origin.reply = lambda request: Response(
        200,
        [("Date", httpdate(now())), ("ETag", '"v2"'), ("Cache-Control", "max-age=10")],
        b"new body",
    )
    exchange(cache, get("/a"), origin)
    now.advance(5)
    kind, served = exchange(cache, get("/a"), origin)
    got = (kind, served.body, served.header("etag"), age_of(served))
    assert got == ("fresh", b"new body", '"v2"', 5), called(
        "GET /a 5 s after the revalidation got a new 200", got, ("fresh", b"new body", '"v2"', 5)
    )


def test_date_added_when_missing() -> None:
    """A response without Date gets one, the time it was received (RFC 9110 §6.6.1), and Expires
    counts from then."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    received = httpdate(now())
    origin = Script(lambda request: Response(200, [("Expires", httpdate(now() + 60))], BODY))
    kind, first = exchange(cache, get("/a"), origin)
    now.advance(59)
    kind, served = exchange(cache, get("/a"), origin)
    got = (first.header("date"), kind, served.header("date"), age_of(served), origin.hits)
    want = (received, "fresh", received, 59, 1)
    assert got == want, called(
        "GET /a, then again 59 s later; the origin sent Expires = now + 60 and no Date "
        "(Date relayed, kind, Date stored, Age, origin hits)",
        got,
        want,
    )


def test_304_keeps_content_length() -> None:
    """A 304's Content-Length does not replace the stored one: it describes no body
    (RFC 9111 §3.2)."""
    now, cache, origin = cache_with(
        ("Cache-Control", "max-age=10"), ("ETag", '"v1"'), ("Content-Length", "10")
    )
    now.advance(10)
    origin.reply = lambda request: Response(
        304, [("Date", httpdate(now())), ("ETag", '"v1"'), ("Content-Length", "0")], b""
    )
    kind, served = exchange(cache, get("/a"), origin)
    got = (served.status, served.body, served.header("content-length"))
    assert got == (200, BODY, "10"), called(
        "GET /a revalidated by a 304 carrying Content-Length: 0 -> (status, body, Content-Length)",
        got,
        (200, BODY, "10"),
    )


def test_304_to_a_client_is_never_stored() -> None:
    """A client's own conditional request is forwarded as it is, and the 304 it gets is relayed
    but never stored (RFC 9111 §3: a cache that can't combine a 304 must not store it)."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)

    def reply(request):
        if request.header("if-none-match") == '"v1"':
            headers = [("Date", httpdate(now())), ("ETag", '"v1"'), ("Cache-Control", "max-age=60")]
            return Response(304, headers, b"")
        return Response(
            200,
            [("Date", httpdate(now())), ("ETag", '"v1"'), ("Cache-Control", "max-age=60")],
            BODY,
        )

    origin = Script(reply)
    kind, relayed = exchange(cache, get("/a", ("If-None-Match", '"v1"')), origin)
    sent = origin.requests[0].header("if-none-match")
    assert (relayed.status, sent) == (304, '"v1"'), called(
        'GET /a with If-None-Match: "v1" on an empty cache (status relayed, If-None-Match forwarded)',
        (relayed.status, sent),
        (304, '"v1"'),
    )
    kind, served = exchange(cache, get("/a"), origin)
    got = (served.status, served.body, origin.hits)
    assert got == (200, BODY, 2), called(
        "GET /a without preconditions afterwards (status, body, origin hits)", got, (200, BODY, 2)
    )


def test_304_after_eviction() -> None:
    """A 304 for a stored response that was evicted while the origin was asked still answers the
    client with that response, freshened (a plain GET must never get a 304)."""
    now = clock()
    with step("Cache(max_bytes=100, clock=<spec clock>)"):
        cache = Cache(max_bytes=100, clock=now)
    headers = [("Cache-Control", "max-age=10"), ("ETag", '"v1"')]
    origin = Script(lambda request: Response(200, [("Date", httpdate(now())), *headers], b"a" * 60))
    exchange(cache, get("/a"), origin)
    now.advance(10)
    with step("cache.lookup(GET /a) at age 10"):
        decision = cache.lookup(get("/a"))
    origin.reply = lambda request: Response(200, [("Date", httpdate(now())), *headers], b"b" * 60)
    exchange(cache, get("/b"), origin)  # 60 + 60 > 100: /a goes
    answer = Response(304, [("Date", httpdate(now())), ("ETag", '"v1"')], b"")
    with step("cache.complete(<the revalidation of /a>, 304)"):
        served = cache.complete(decision, answer)
    got = (served.status, served.body)
    assert got == (200, b"a" * 60), called(
        "GET /a revalidated by a 304 after GET /b evicted /a from a 100-byte store (status, body)",
        got,
        (200, b"a" * 60),
    )
