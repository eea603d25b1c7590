"""The cache key: the target, then Vary's secondary keys (RFC 9111 §4.1); and invalidation by
unsafe methods (§4.4)."""

from __future__ import annotations

import pytest
from _helpers import BODY, Script, clock, exchange, get, httpdate
from caching_proxy import Cache, Request, Response

from grader.spectools import called, step


def varying(vary: str):
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)

    def reply(request: Request) -> Response:
        body = f"for {request.header('accept-language')}".encode()
        headers = [("Date", httpdate(now())), ("Cache-Control", "max-age=60"), ("Vary", vary)]
        return Response(200, headers, body)

    return now, cache, Script(reply)


def lang(*values: str) -> Request:
    return get("/a", *(("Accept-Language", v) for v in values))


def test_vary_keeps_one_response_per_variant() -> None:
    """Responses with Vary are stored per value of the named request fields, and each is served
    only to requests with the same values (RFC 9111 §4.1)."""
    now, cache, origin = varying("Accept-Language")
    plan = ["en", "fr", "en", "fr"]
    got = []
    for value in plan:
        kind, served = exchange(cache, lang(value), origin)
        got.append((kind, served.body.decode()))
    want = [("miss", "for en"), ("miss", "for fr"), ("fresh", "for en"), ("fresh", "for fr")]
    assert got == want, called(
        "GET /a with Accept-Language en, fr, en, fr (Vary: Accept-Language)", got, want
    )


def test_vary_absent_matches_only_absent() -> None:
    """A Vary field absent from the stored request matches only a request where it is absent too
    (RFC 9111 §4.1)."""
    now, cache, origin = varying("Accept-Language")
    exchange(cache, get("/a"), origin)
    kinds = [exchange(cache, request, origin)[0] for request in (lang(""), lang("en"), get("/a"))]
    assert kinds == ["miss", "miss", "fresh"], called(
        "GET /a without Accept-Language, then with 'Accept-Language: ', 'en', then without",
        kinds,
        ["miss", "miss", "fresh"],
    )


def test_vary_normalises_values() -> None:
    """Vary compares field values after combining repeated fields and dropping whitespace around
    commas (RFC 9111 §4.1), and field names case-insensitively."""
    now, cache, origin = varying("accept-language")
    exchange(cache, lang("en, fr"), origin)
    kinds = [
        exchange(cache, request, origin)[0]
        for request in (lang("en,fr"), lang("en", "fr"), lang("fr, en"))
    ]
    assert kinds == ["fresh", "fresh", "miss"], called(
        "GET /a with Accept-Language 'en,fr', then as two fields 'en' and 'fr', then 'fr, en', "
        "after storing it for 'en, fr'",
        kinds,
        ["fresh", "fresh", "miss"],
    )


def test_vary_star_never_matches() -> None:
    """A response with Vary: * is never served from the cache (RFC 9111 §4.1)."""
    now, cache, origin = varying("*")
    for _ in range(3):
        exchange(cache, lang("en"), origin)
    assert origin.hits == 3, called("GET /a three times, Vary: * (origin hits)", origin.hits, 3)
    assert cache.size == 0, called("cache.size after three Vary: * responses", cache.size, 0)


def stored_a():
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    answers: dict[str, Response] = {}

    def reply(request: Request) -> Response:
        default = Response(200, [("Date", httpdate(now())), ("Cache-Control", "max-age=60")], BODY)
        return answers.get(request.method, default)

    origin = Script(reply)
    exchange(cache, get("/a"), origin)
    exchange(cache, get("/c"), origin)
    return now, cache, origin, answers


def unsafe(method: str, target: str = "/a") -> Request:
    return Request(method, target, [("Host", "origin.test")], b"payload")


UNSAFE = ["POST", "PUT", "DELETE", "PATCH", "PURGE"]


@pytest.mark.points(2)
@pytest.mark.parametrize("method", UNSAFE, ids=UNSAFE)
def test_unsafe_method_invalidates(method: str) -> None:
    """A non-error response to an unsafe method (or one of unknown safety) invalidates the stored
    responses for its target, and only those (RFC 9111 §4.4)."""
    now, cache, origin, answers = stored_a()
    answers[method] = Response(204, [("Date", httpdate(now()))], b"")
    kind, served = exchange(cache, unsafe(method), origin)
    kinds = [exchange(cache, get(target), origin)[0] for target in ("/a", "/c")]
    assert kinds == ["miss", "fresh"], called(
        f"{method} /a -> 204, then GET /a, GET /c", kinds, ["miss", "fresh"]
    )


STATUSES = [303, 400, 404, 500]


@pytest.mark.parametrize("status", STATUSES, ids=[str(s) for s in STATUSES])
def test_invalidation_only_on_success(status: int) -> None:
    """Only a non-error status (2xx or 3xx) to an unsafe method invalidates (RFC 9111 §4.4)."""
    now, cache, origin, answers = stored_a()
    answers["POST"] = Response(status, [("Date", httpdate(now()))], b"")
    exchange(cache, unsafe("POST"), origin)
    kind, _ = exchange(cache, get("/a"), origin)
    want = "miss" if status < 400 else "fresh"
    assert kind == want, called(f"POST /a -> {status}, then GET /a", kind, want)


LOCATIONS = [
    ("Location", "/a", "miss"),
    ("Content-Location", "/a", "miss"),
    ("Location", "http://origin.test/a", "miss"),
    ("Location", "http://elsewhere.test/a", "fresh"),
]


@pytest.mark.parametrize(
    "name,uri,want",
    LOCATIONS,
    ids=["location_path", "content_location", "same_origin_url", "other_origin_url"],
)
def test_invalidation_of_location(name: str, uri: str, want: str) -> None:
    """The Location and Content-Location of a successful unsafe request are invalidated too, but
    only when they are of the same origin (RFC 9111 §4.4)."""
    now, cache, origin, answers = stored_a()
    answers["POST"] = Response(201, [("Date", httpdate(now())), (name, uri)], b"")
    exchange(cache, unsafe("POST", "/b"), origin)
    kind, _ = exchange(cache, get("/a"), origin)
    assert kind == want, called(f"POST /b -> 201 with {name}: {uri}, then GET /a", kind, want)


def test_safe_methods_do_not_invalidate() -> None:
    """HEAD and OPTIONS are safe: they are forwarded and invalidate nothing; only GET is answered from
    the store."""
    now, cache, origin, answers = stored_a()
    kinds = [
        exchange(cache, Request(m, "/a", [("Host", "origin.test")]), origin)[0]
        for m in ("HEAD", "OPTIONS")
    ]
    kinds.append(exchange(cache, get("/a"), origin)[0])
    assert kinds == ["miss", "miss", "fresh"], called(
        "HEAD /a, OPTIONS /a, GET /a", kinds, ["miss", "miss", "fresh"]
    )


def test_invalidation_removes_every_variant() -> None:
    """Invalidating a target removes every stored variant of it (RFC 9111 §4.4)."""
    now, cache, origin = varying("Accept-Language")
    exchange(cache, lang("en"), origin)
    exchange(cache, lang("fr"), origin)
    origin.reply = lambda request: Response(204, [("Date", httpdate(now()))], b"")
    exchange(cache, unsafe("DELETE"), origin)
    assert cache.size == 0 and len(cache) == 0, called(
        "DELETE /a -> 204 after storing two variants (cache.size, len(cache))",
        (cache.size, len(cache)),
        (0, 0),
    )


HEURISTIC = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
NOT_HEURISTIC = [302, 303, 307, 400, 403]


@pytest.mark.parametrize("status", HEURISTIC + NOT_HEURISTIC)
def test_without_explicit_freshness_only_heuristically_cacheable_statuses_are_stored(
    status: int,
) -> None:
    """A response without public, Expires, max-age or s-maxage is stored only if its status is
    heuristically cacheable: 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501 (RFC 9111 §3,
    RFC 9110 §15.1)."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    body = b"" if status == 204 else b"body"
    origin = Script(
        lambda request: Response(status, [("Date", httpdate(now())), ("ETag", '"v1"')], body)
    )
    exchange(cache, get("/a"), origin)
    with step("len(cache)"):
        got = len(cache)
    want = 1 if status in HEURISTIC else 0
    assert got == want, called(
        f"GET /a answered {status} with an ETag and no freshness information; len(cache)",
        got,
        want,
    )
