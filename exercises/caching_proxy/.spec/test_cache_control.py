"""parse_cache_control: the Cache-Control grammar of RFC 9111 §5.2 (a list of token or
token=value directives, values as tokens or quoted strings, names case-insensitive)."""

from __future__ import annotations

import pytest
from caching_proxy import parse_cache_control

from grader.spectools import called, step

CASES = [
    ("max-age=60", {"max-age": "60"}),
    ("no-cache, max-age=0", {"no-cache": None, "max-age": "0"}),
    ("  public ,  s-maxage=600  ", {"public": None, "s-maxage": "600"}),
    ("MAX-AGE=5, No-Store", {"max-age": "5", "no-store": None}),
    ('max-age="60"', {"max-age": "60"}),
    (
        'no-cache="Set-Cookie, X-Token", private',
        {"no-cache": "Set-Cookie, X-Token", "private": None},
    ),
    (r'ext="a \"quoted\" word"', {"ext": 'a "quoted" word'}),
    ("max-age=60, max-age=0", {"max-age": "60"}),
    ("", {}),
    (None, {}),
    (",,no-store,,", {"no-store": None}),
]
IDS = [
    "one",
    "two",
    "whitespace",
    "case",
    "quoted_value",
    "comma_in_quotes",
    "escaped_quote",
    "first_wins",
    "empty",
    "none",
    "empty_members",
]


@pytest.mark.parametrize("value,want", CASES, ids=IDS)
def test_parse_cache_control(value: str | None, want: dict) -> None:
    """Cache-Control parses into lower-case directive names and unquoted values; a repeated
    directive keeps its first value (RFC 9111 §5.2, §4.2.1)."""
    with step(f"parse_cache_control({value!r})"):
        got = parse_cache_control(value)
    assert got == want, called(f"parse_cache_control({value!r})", got, want)
