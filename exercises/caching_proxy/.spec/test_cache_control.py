"""parse_cache_control: the Cache-Control grammar of RFC 9111 §5.2 (a list of token or
token=value directives, values as tokens or quoted strings, names case-insensitive)."""

from __future__ import annotations

import pytest
from caching_proxy import parse_cache_control
from hishel._core._headers import parse_cache_control as hishel_parse
from hypothesis import example, given, settings
from hypothesis import strategies as st

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


FLAGS = ["no-cache", "no-store", "private", "public", "must-revalidate", "proxy-revalidate"]
NUMBERS = ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"]


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, dict[str, str | None]]:
    """A Cache-Control value with distinct directives in any case, quoted or bare numbers, and
    any spacing; and the dict it means."""
    names = draw(st.lists(st.sampled_from(FLAGS + NUMBERS), unique=True, min_size=1, max_size=6))
    parts, meaning = [], {}
    for name in names:
        spelled = draw(st.sampled_from([name, name.upper(), name.title()]))
        if name in NUMBERS:
            number = draw(st.integers(0, 10**6))
            quote = draw(st.sampled_from(["", '"']))
            parts.append(f"{spelled}={quote}{number}{quote}")
            meaning[name] = str(number)
        else:
            parts.append(spelled)
            meaning[name] = None
    separators = st.sampled_from([",", ", ", " ,", ",\t", " , ", ",,", ", ,"])
    text = parts[0]
    for part in parts[1:]:
        text += draw(separators) + part
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "])), meaning


def hishel_reading(value: str) -> dict[str, str | None]:
    """What hishel's parser (hishel._core._headers.parse_cache_control) found, as the same dict."""
    parsed = hishel_parse(value)
    found: dict[str, str | None] = {}
    for name in FLAGS + NUMBERS:
        attribute = getattr(parsed, name.replace("-", "_"))
        if name in NUMBERS and attribute is not None:
            found[name] = str(attribute)
        elif name in FLAGS and attribute:
            found[name] = None
    return found


@settings(max_examples=100)
@given(case=headers())
@example(case=("max-age=60", {"max-age": "60"}))
@example(case=('S-MAXAGE="0" ,\tNo-Store', {"s-maxage": "0", "no-store": None}))
@example(case=("public,,stale-if-error=7", {"public": None, "stale-if-error": "7"}))
def test_parse_cache_control_agrees_with_hishel(case: tuple[str, dict[str, str | None]]) -> None:
    """Cache-Control parses the same as hishel's parser does, whatever the case, quoting and spacing
    of the directives (RFC 9111 §5.2)."""
    value, meaning = case
    with step(f"parse_cache_control({value!r})"):
        got = parse_cache_control(value)
    oracle = hishel_reading(value)
    assert oracle == meaning, f"spec defect: hishel reads {value!r} as {oracle!r}, not {meaning!r}"
    assert got == meaning, called(f"parse_cache_control({value!r})", got, meaning)
