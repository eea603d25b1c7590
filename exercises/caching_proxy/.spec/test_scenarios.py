"""The table of cache scenarios: a response, clock steps, expected origin hits and Age.

Every row runs through the learner's Cache with the spec's clock; where hishel's RFC 9111
policy models the row, the same steps run through hishel too and the two must agree. Rows
hishel does not model say why (hishel computes Age as now - Date only, ignores a request's
no-store, and treats a duplicated max-age as stale where this kata takes the first, both readings
RFC 9111 §4.2.1 permits). Stale serving (RFC 5861) hishel does not model: see test_stale.py.
"""

from __future__ import annotations

import pytest
from _helpers import Row, Step, hishel_replay, replay

from grader.spectools import called

MAX60 = (("Cache-Control", "max-age=60"),)
ETAG = ("ETag", '"v1"')
AUTH = (("Authorization", "Bearer abc"),)


def check(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    got = replay(row)
    want = [(s.hits, s.age) for s in row.steps]
    plan = ", ".join(
        f"+{s.advance:g}s" + (f" {dict(s.headers)}" if s.headers else "") for s in row.steps
    )
    where = f"GET /a at {plan} against {row.status} {dict(row.headers)}" + (
        f" (request {dict(row.request)})" if row.request else ""
    )
    for number, ((hits, age, kind), (want_hits, want_age)) in enumerate(
        zip(got, want, strict=True), 1
    ):
        assert (hits, age) == (want_hits, want_age), called(
            f"{where}: request {number}",
            f"origin hits so far {hits}, Age {age} ({kind})",
            f"origin hits {want_hits}, Age {want_age}",
        )
    if row.hishel:
        oracle = hishel_replay(row, monkeypatch)
        assert [(h, a) for h, a, _ in got] == oracle, called(
            f"{where} (hits, Age) per request", [(h, a) for h, a, _ in got], f"hishel's {oracle}"
        )


STORING = [
    Row(
        "no_store",
        (("Cache-Control", "no-store, max-age=60"),),
        (Step(0, 1, None), Step(1, 2, None)),
    ),
    Row(
        "private", (("Cache-Control", "private, max-age=60"),), (Step(0, 1, None), Step(1, 2, None))
    ),
    Row(
        "request_no_store",
        MAX60,
        (Step(0, 1, None, (("Cache-Control", "no-store"),)), Step(1, 2, None)),
        hishel=False,
        why="hishel stores the response to a request with no-store",
    ),
    Row("authorization", MAX60, (Step(0, 1, None), Step(1, 2, None)), request=AUTH),
    Row(
        "authorization_s_maxage",
        (("Cache-Control", "s-maxage=60"),),
        (Step(0, 1, None), Step(1, 1, 1)),
        request=AUTH,
    ),
    Row(
        "authorization_public",
        (("Cache-Control", "public, max-age=60"),),
        (Step(0, 1, None), Step(1, 1, 1)),
        request=AUTH,
    ),
    Row(
        "authorization_must_revalidate",
        (("Cache-Control", "max-age=60, must-revalidate"),),
        (Step(0, 1, None), Step(1, 1, 1)),
        request=AUTH,
    ),
    Row("status_404", MAX60, (Step(0, 1, None), Step(1, 1, 1)), status=404),
    Row("status_302_max_age", MAX60, (Step(0, 1, None), Step(1, 1, 1)), status=302),
    Row("status_206", MAX60, (Step(0, 1, None), Step(1, 2, None)), status=206),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("row", STORING, ids=[r.name for r in STORING])
def test_storing(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared cache stores only what RFC 9111 §3 and §3.5 allow: no no-store (either side), no
    private, no Authorization without public, s-maxage or must-revalidate, no 206."""
    check(row, monkeypatch)


FRESHNESS = [
    Row("max_age", MAX60, (Step(0, 1, None), Step(59, 1, 59), Step(1, 2, None), Step(10, 2, 10))),
    Row("max_age_zero", (("Cache-Control", "max-age=0"),), (Step(0, 1, None), Step(0, 2, None))),
    Row(
        "s_maxage_over_max_age",
        (("Cache-Control", "max-age=10, s-maxage=60"),),
        (Step(0, 1, None), Step(30, 1, 30), Step(29, 1, 59), Step(1, 2, None)),
    ),
    Row(
        "max_age_over_expires",
        (("Cache-Control", "max-age=10"),),
        (Step(0, 1, None), Step(9, 1, 9), Step(1, 2, None)),
        expires=100,
    ),
    Row(
        "expires_minus_date", (), (Step(0, 1, None), Step(59, 1, 59), Step(1, 2, None)), expires=60
    ),
    Row("expires_zero", (("Expires", "0"),), (Step(0, 1, None), Step(0, 2, None))),
    Row(
        "expires_with_old_date",
        (),
        (Step(0, 1, None), Step(0, 1, 30), Step(29, 1, 59), Step(1, 2, None)),
        expires=60,
        date_offset=30,
    ),
    Row(
        "invalid_max_age", (("Cache-Control", "max-age=6O"),), (Step(0, 1, None), Step(1, 2, None))
    ),
    Row(
        "first_max_age_wins",
        (("Cache-Control", "max-age=60, max-age=0"),),
        (Step(0, 1, None), Step(30, 1, 30)),
        hishel=False,
        why="hishel takes the other reading RFC 9111 §4.2.1 permits: a duplicate makes it stale",
    ),
    Row(
        "quoted_max_age", (("Cache-Control", 'max-age="60"'),), (Step(0, 1, None), Step(30, 1, 30))
    ),
    Row(
        "upper_case_directive",
        (("Cache-Control", "MAX-AGE=60"),),
        (Step(0, 1, None), Step(30, 1, 30)),
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("row", FRESHNESS, ids=[r.name for r in FRESHNESS])
def test_freshness(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored response is fresh while its lifetime (s-maxage, else max-age, else Expires - Date,
    RFC 9111 §4.2.1) is greater than its age (§4.2); an invalid value means stale."""
    check(row, monkeypatch)


AGE = [
    Row(
        "date_in_the_past",
        MAX60,
        (Step(0, 1, None), Step(0, 1, 30), Step(29, 1, 59), Step(1, 2, None)),
        date_offset=30,
    ),
    Row(
        "age_from_upstream",
        (("Cache-Control", "max-age=60"), ("Age", "50")),
        (Step(0, 1, 50), Step(5, 1, 55), Step(5, 2, 50)),
        hishel=False,
        why="hishel's age is now - Date",
    ),
    Row(
        "response_delay",
        MAX60,
        (Step(0, 1, None), Step(0, 1, 4), Step(55, 1, 59), Step(1, 2, None)),
        delay=4,
        hishel=False,
        why="hishel's age is now - Date",
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("row", AGE, ids=[r.name for r in AGE])
def test_age(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    """Age is computed the conservative way RFC 9111 §4.2.3 gives: the larger of apparent age and
    Age + response delay, plus the time resident in the cache."""
    check(row, monkeypatch)


VALIDATION = [
    Row(
        "etag_revalidation",
        (("Cache-Control", "max-age=10"), ETAG),
        (Step(0, 1, None), Step(10, 2, 0), Step(9, 2, 9), Step(1, 3, 0)),
    ),
    Row(
        "response_no_cache",
        (("Cache-Control", "no-cache, max-age=60"), ETAG),
        (Step(0, 1, None), Step(1, 2, 0), Step(1, 3, 0)),
    ),
    Row(
        "request_no_cache",
        (("Cache-Control", "max-age=60"), ETAG),
        (Step(0, 1, None), Step(1, 2, 0, (("Cache-Control", "no-cache"),)), Step(1, 2, 1)),
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("row", VALIDATION, ids=[r.name for r in VALIDATION])
def test_revalidation(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale response, or one under no-cache (request or response, RFC 9111 §5.2.1.4,
    §5.2.2.4), is revalidated; a 304 makes it fresh again with Age 0 (§4.3.4)."""
    check(row, monkeypatch)


EN, FR = (("Accept-Language", "en"),), (("Accept-Language", "fr"),)
VARY_LANG = (("Cache-Control", "max-age=60"), ("Vary", "Accept-Language"))
VARY = [
    Row(
        "one_response_per_variant",
        VARY_LANG,
        (Step(0, 1, None, EN), Step(0, 2, None, FR), Step(1, 2, 1, EN), Step(1, 2, 2, FR)),
    ),
    Row(
        "absent_is_its_own_variant",
        VARY_LANG,
        (Step(0, 1, None), Step(0, 2, None, EN), Step(1, 2, 1), Step(1, 2, 2, EN)),
    ),
    Row(
        "vary_names_are_case_insensitive",
        (("Cache-Control", "max-age=60"), ("Vary", "ACCEPT-language")),
        (Step(0, 1, None, EN), Step(1, 1, 1, EN), Step(1, 2, None, FR)),
    ),
    Row(
        "vary_star",
        (("Cache-Control", "max-age=60"), ("Vary", "*")),
        (Step(0, 1, None, EN), Step(1, 2, None, EN)),
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("row", VARY, ids=[r.name for r in VARY])
def test_vary_table(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    """A response with Vary answers only requests whose nominated fields match the request that
    stored it, one stored response per variant; Vary: * matches nothing (RFC 9111 §4.1)."""
    check(row, monkeypatch)
