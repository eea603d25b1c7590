"""Serving stale: stale-while-revalidate and stale-if-error (RFC 5861), and what forbids them.

hishel's policy serves nothing stale under RFC 5861, so these rules are checked against the
RFC text directly. A response stored at T0 with max-age=10 is stale at +10 s; "staleness" below
is the age past the lifetime (0 at +10 s).
"""

from __future__ import annotations

import pytest
from _helpers import BODY, Script, age_of, clock, exchange, get, httpdate
from caching_proxy import Cache, Response

from grader.spectools import called, step


def setup(directives: str, answer):
    """A cache holding GET /a (max-age=10 plus ``directives``, ETag "v1"); the origin then
    answers with ``answer(request)``. Returns (clock, cache, origin)."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    first = True

    def reply(request):
        nonlocal first
        if first:
            first = False
            headers = [
                ("Date", httpdate(now())),
                ("Cache-Control", f"max-age=10, {directives}"),
                ("ETag", '"v1"'),
            ]
            return Response(200, headers, BODY)
        return answer(request)

    origin = Script(reply)
    exchange(cache, get("/a"), origin)
    return now, cache, origin


def not_modified(now):
    return lambda request: Response(304, [("Date", httpdate(now())), ("ETag", '"v1"')], b"")


STALENESS = [0, 29, 30]


@pytest.mark.points(2)
@pytest.mark.parametrize("staleness", STALENESS, ids=[f"stale_by_{s}s_of_30" for s in STALENESS])
def test_swr_serves_stale_and_revalidates(staleness: int) -> None:
    """Within stale-while-revalidate=N (stale by up to N seconds, RFC 5861 §3) the stale response is
    served at once and a conditional request revalidates it."""
    now, cache, origin = setup("stale-while-revalidate=30", lambda r: None)
    origin.reply = not_modified(now)
    now.advance(10 + staleness)
    with step(f"cache.lookup(GET /a) stale by {staleness} s"):
        decision = cache.lookup(get("/a"))
    assert decision.kind == "stale", called(
        f"cache.lookup(GET /a) stale by {staleness} s under stale-while-revalidate=30",
        decision.kind,
        "stale",
    )
    served = decision.serve
    assert served is not None and served.body == BODY and age_of(served) == 10 + staleness, called(
        "decision.serve", served, f"the stored response with Age {10 + staleness}"
    )
    forward = decision.forward
    assert forward is not None and forward.header("if-none-match") == '"v1"', called(
        "decision.forward (the background revalidation)",
        forward,
        'a GET /a with If-None-Match: "v1"',
    )
    with step("cache.complete(decision, 304)"):
        cache.complete(decision, origin(forward))
    kind, again = exchange(cache, get("/a"), origin)
    assert (kind, age_of(again), origin.hits) == ("fresh", 0, 2), called(
        "GET /a after the background 304", (kind, age_of(again), origin.hits), ("fresh", 0, 2)
    )


def test_swr_window_ends() -> None:
    """Stale by more than stale-while-revalidate=N seconds, the response is revalidated before it is
    served (RFC 5861 §3)."""
    now, cache, origin = setup("stale-while-revalidate=30", lambda r: None)
    origin.reply = not_modified(now)
    now.advance(10 + 31)
    kind, served = exchange(cache, get("/a"), origin)
    assert (kind, age_of(served), origin.hits) == ("revalidate", 0, 2), called(
        "GET /a stale by 31 s under stale-while-revalidate=30 (kind, Age, origin hits)",
        (kind, age_of(served), origin.hits),
        ("revalidate", 0, 2),
    )


FORBIDDEN = ["must-revalidate", "proxy-revalidate", "no-cache", "s-maxage=10"]


@pytest.mark.parametrize("directive", FORBIDDEN, ids=[d.split("=")[0] for d in FORBIDDEN])
def test_swr_forbidden(directive: str) -> None:
    """must-revalidate, proxy-revalidate, no-cache and s-maxage forbid serving a stale response,
    even under stale-while-revalidate (RFC 9111 §4.2.4, §5.2.2.10)."""
    now, cache, origin = setup(f"stale-while-revalidate=30, {directive}", lambda r: None)
    origin.reply = not_modified(now)
    now.advance(15)
    with step("cache.lookup(GET /a) stale by 5 s"):
        decision = cache.lookup(get("/a"))
    assert decision.kind == "revalidate", called(
        f"cache.lookup(GET /a) stale by 5 s under max-age=10, stale-while-revalidate=30, {directive}",
        decision.kind,
        "revalidate",
    )


def test_swr_not_for_request_no_cache() -> None:
    """A request with no-cache is not answered stale under stale-while-revalidate: it waits for the
    revalidation (RFC 9111 §5.2.1.4)."""
    now, cache, origin = setup("stale-while-revalidate=30", lambda r: None)
    origin.reply = not_modified(now)
    now.advance(15)
    with step("cache.lookup(GET /a with Cache-Control: no-cache) stale by 5 s"):
        decision = cache.lookup(get("/a", ("Cache-Control", "no-cache")))
    assert decision.kind == "revalidate", called(
        "cache.lookup(GET /a, Cache-Control: no-cache) stale by 5 s under stale-while-revalidate=30",
        decision.kind,
        "revalidate",
    )


ERRORS = [500, 502, 503, 504, None]
ERROR_IDS = ["500", "502", "503", "504", "unreachable"]


def error_reply(now, status):
    if status is None:
        return lambda request: None
    return lambda request: Response(status, [("Date", httpdate(now()))], b"origin error\n")


SIE_CASES = [(status, staleness) for status in ERRORS for staleness in (29, 30)]
SIE_IDS = [f"{name}_stale_by_{staleness}s_of_30" for name in ERROR_IDS for staleness in (29, 30)]


@pytest.mark.points(2)
@pytest.mark.parametrize("status,staleness", SIE_CASES, ids=SIE_IDS)
def test_sie_serves_stale_on_error(status: int | None, staleness: int) -> None:
    """Under stale-if-error=N, a 500, 502, 503, 504 or an unreachable origin is answered with the
    stale response while it is stale by up to N seconds (RFC 5861 §4)."""
    now, cache, origin = setup("stale-if-error=30", lambda r: None)
    origin.reply = error_reply(now, status)
    now.advance(10 + staleness)
    kind, served = exchange(cache, get("/a"), origin)
    what = "no answer" if status is None else f"a {status}"
    want = (200, BODY, 10 + staleness)
    assert (served.status, served.body, age_of(served)) == want, called(
        f"GET /a stale by {staleness} s under stale-if-error=30, the origin giving {what}",
        (served.status, served.body, age_of(served)),
        want,
    )


@pytest.mark.parametrize("status", ERRORS, ids=ERROR_IDS)
def test_sie_window_ends(status: int | None) -> None:
    """Stale by more than stale-if-error=N seconds, the origin's error reaches the client (502 when
    the origin can't be reached) (RFC 5861 §4)."""
    now, cache, origin = setup("stale-if-error=30", lambda r: None)
    origin.reply = error_reply(now, status)
    now.advance(10 + 31)
    kind, served = exchange(cache, get("/a"), origin)
    want = 502 if status is None else status
    assert served.status == want, called(
        f"GET /a stale by 31 s under stale-if-error=30, the origin giving {status or 'no answer'}",
        (served.status, served.body),
        f"status {want}",
    )


def test_sie_not_for_client_errors() -> None:
    """stale-if-error hides only 500, 502, 503 and 504: a 404 from the origin is passed on (RFC 5861 §4)."""
    now, cache, origin = setup("stale-if-error=30", lambda r: None)
    origin.reply = lambda request: Response(404, [("Date", httpdate(now()))], b"gone\n")
    now.advance(15)
    kind, served = exchange(cache, get("/a"), origin)
    assert served.status == 404, called(
        "GET /a stale by 5 s; the origin says 404", served.status, 404
    )


@pytest.mark.parametrize("status", [501, 505])
def test_sie_not_for_other_server_errors(status: int) -> None:
    """stale-if-error hides only 500, 502, 503 and 504, not every 5xx: a 501 or a 505 from the
    origin is passed on (RFC 5861 §4)."""
    now, cache, origin = setup("stale-if-error=30", lambda r: None)
    origin.reply = error_reply(now, status)
    now.advance(15)
    kind, served = exchange(cache, get("/a"), origin)
    assert served.status == status, called(
        f"GET /a stale by 5 s under stale-if-error=30; the origin says {status}",
        (served.status, served.body),
        f"status {status}",
    )


@pytest.mark.parametrize("directive", FORBIDDEN, ids=[d.split("=")[0] for d in FORBIDDEN])
def test_sie_forbidden(directive: str) -> None:
    """must-revalidate, proxy-revalidate, no-cache and s-maxage forbid serving a stale response,
    even under stale-if-error (RFC 9111 §4.2.4, §5.2.2.2)."""
    now, cache, origin = setup(f"stale-if-error=30, {directive}", lambda r: None)
    origin.reply = error_reply(now, 503)
    now.advance(15)
    kind, served = exchange(cache, get("/a"), origin)
    assert served.status == 503, called(
        f"GET /a stale by 5 s under stale-if-error=30, {directive}; the origin says 503",
        served.status,
        503,
    )


def test_unreachable_miss_is_502() -> None:
    """A miss whose origin can't be reached is answered 502 Bad Gateway."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    kind, served = exchange(cache, get("/a"), Script(lambda r: None))
    assert (kind, served.status) == ("miss", 502), called(
        "GET /a on an empty cache, origin unreachable", (kind, served.status), ("miss", 502)
    )
