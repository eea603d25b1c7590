"""PSUBSCRIBE patterns: Redis's glob (util.c, stringmatchlen), checked against a table and a model."""

from __future__ import annotations

import asyncio
import re

import pytest
from _helpers import LOCALHOST, bounded, called, command, raw_exchange, running, step
from hypothesis import example, given
from hypothesis import strategies as st
from mini_redis import glob_match

CASES = [
    (b"*", b"", True),
    (b"*", b"anything", True),
    (b"news.*", b"news.", True),
    (b"news.*", b"news", False),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[a-b]llo", b"hcllo", False),
    (b"h[b-a]llo", b"hallo", True),
    (b"\\*", b"*", True),
    (b"\\*", b"x", False),
    (b"a\\?", b"a?", True),
    (b"a\\?", b"ab", False),
    (b"[\\]]", b"]", True),
    (b"*a*b", b"xaxxb", True),
    (b"*a*b", b"xaxxbx", False),
    (b"a*", b"b", False),
    (b"", b"", True),
    (b"", b"a", False),
    (b"**", b"ab", True),
    (b"a**?", b"ab", True),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("pattern", "name", "want"),
    CASES,
    ids=[f"{p.decode()}~{n.decode() or 'empty'}" for p, n, _ in CASES],
)
def test_glob_cases(pattern: bytes, name: bytes, want: bool) -> None:
    """glob_match follows Redis: * any run, ? one byte, [abc] [^abc] [a-z] (ends either way round), \\x the byte x."""
    with step(f"glob_match({pattern!r}, {name!r})"):
        got = glob_match(pattern, name)
    assert got is want, called(f"glob_match({pattern!r}, {name!r})", got, want)


def _model(pattern: bytes) -> re.Pattern[bytes]:
    """A well-formed glob (letters a-c, *, ?, [..], [^..]) as a regular expression."""
    out, i = b"", 0
    while i < len(pattern):
        c = pattern[i : i + 1]
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"[":
            end = pattern.index(b"]", i)
            body = pattern[i + 1 : end]
            out += b"[^" + body[1:] + b"]" if body.startswith(b"^") else b"[" + body + b"]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out, re.DOTALL)


ATOM = st.one_of(
    st.sampled_from([b"a", b"b", b"c", b"*", b"?"]),
    st.builds(
        lambda neg, s: b"[" + (b"^" if neg else b"") + bytes(sorted(set(s))) + b"]",
        st.booleans(),
        st.binary(min_size=1, max_size=2).map(lambda b: bytes(97 + x % 3 for x in b)),
    ),
)


@given(
    st.lists(ATOM, max_size=6).map(b"".join),
    st.binary(max_size=8).map(lambda b: bytes(97 + x % 3 for x in b)),
)
@example(b"*a*", b"bab")
@example(b"a*b*c", b"abcbc")
@example(b"[^a]*", b"")
@example(b"??", b"a")
def test_glob_agrees_with_a_model(pattern: bytes, name: bytes) -> None:
    """On well-formed patterns glob_match agrees with the equivalent regular expression, backtracking over every '*'."""
    want = _model(pattern).fullmatch(name) is not None
    with step(f"glob_match({pattern!r}, {name!r})"):
        got = glob_match(pattern, name)
    assert got is want, called(f"glob_match({pattern!r}, {name!r})", got, want)


async def test_psubscribe_uses_the_glob() -> None:
    """PUBLISH delivers to a pattern subscriber exactly the channels its glob matches."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            writer.write(command("PSUBSCRIBE", "h[ae]llo"))
            confirm = b"*3\r\n$10\r\npsubscribe\r\n$8\r\nh[ae]llo\r\n:1\r\n"
            got = await bounded(
                reader.readexactly(len(confirm)), 5.0, "PSUBSCRIBE h[ae]llo confirmed"
            )
            assert got == confirm, called("PSUBSCRIBE h[ae]llo (raw)", got, confirm)
            counts = [
                await raw_exchange(srv.port, command("PUBLISH", ch, ch), f"PUBLISH {ch} {ch}", 4)
                for ch in ("hillo", "hello", "hallo")
            ]
            pushed = b"".join(
                b"*4\r\n$8\r\npmessage\r\n$8\r\nh[ae]llo\r\n$5\r\n%s\r\n$5\r\n%s\r\n" % (ch, ch)
                for ch in (b"hello", b"hallo")
            )
            got = await bounded(reader.readexactly(len(pushed)), 5.0, "the two pmessages")
        finally:
            writer.close()
    assert counts == [b":0\r\n", b":1\r\n", b":1\r\n"], called(
        "PUBLISH hillo, hello, hallo", counts, [b":0\r\n", b":1\r\n", b":1\r\n"]
    )
    assert got == pushed, called("what the pattern subscriber received", got, pushed)
