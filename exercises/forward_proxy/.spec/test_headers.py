"""Hop-by-hop fields, sans-IO: strip_hop_by_hop(headers) (RFC 9110 §7.6.1)."""

from __future__ import annotations

import pytest
from forward_proxy import strip_hop_by_hop
from hypothesis import example, given
from hypothesis import strategies as st

from grader.spectools import called, step

CASES = [
    (
        "fixed-list",
        [
            ("Host", "a"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Accept", "*/*"),
        ],
        [("Host", "a"), ("Accept", "*/*")],
    ),
    ("connection-itself", [("Connection", "close"), ("Accept", "*/*")], [("Accept", "*/*")]),
    (
        "named-by-connection",
        [("Connection", "X-Trace, x-secret"), ("X-Trace", "1"), ("X-Secret", "s"), ("X-Kept", "k")],
        [("X-Kept", "k")],
    ),
    (
        "case-insensitive",
        [("CONNECTION", "x-a"), ("x-A", "1"), ("KEEP-ALIVE", "5"), ("Accept", "*/*")],
        [("Accept", "*/*")],
    ),
    (
        "two-connection-lines",
        [("Connection", "x-a"), ("Connection", " x-b ,"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3")],
        [("X-C", "3")],
    ),
    (
        "order-and-repeats-kept",
        [("X-A", "1"), ("Via", "1.0 a"), ("X-A", "2"), ("Via", "1.1 b")],
        [("X-A", "1"), ("Via", "1.0 a"), ("X-A", "2"), ("Via", "1.1 b")],
    ),
    (
        "end-to-end-untouched",
        [("Cache-Control", "no-cache"), ("Authorization", "Bearer t"), ("Content-Length", "3")],
        [("Cache-Control", "no-cache"), ("Authorization", "Bearer t"), ("Content-Length", "3")],
    ),
    ("empty", [], []),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("why", "headers", "want"), CASES, ids=[c[0] for c in CASES])
def test_strip_hop_by_hop(why: str, headers, want) -> None:
    """strip_hop_by_hop removes Connection, the fixed hop-by-hop list and every field Connection
    names, and keeps every other field in order (RFC 9110 §7.6.1)."""
    with step(f"strip_hop_by_hop({headers!r})"):
        got = strip_hop_by_hop(list(headers))
    assert got == want, called(f"strip_hop_by_hop({headers!r})", got, want)


NAMES = st.sampled_from(
    ["X-A", "x-b", "Accept", "Keep-Alive", "Upgrade", "X-Trace", "Cookie", "te"]
)


@given(
    fields=st.lists(st.tuples(NAMES, st.sampled_from(["1", "v", ""])), max_size=8),
    options=st.lists(NAMES, max_size=3),
)
@example(fields=[], options=[])
@example(fields=[("X-A", "1")], options=["x-a"])
def test_strip_matches_the_rule(fields, options) -> None:
    """Over generated messages: a field survives exactly when it is not hop-by-hop, and the
    survivors keep their order."""
    headers = list(fields)
    if options:
        headers.insert(0, ("Connection", ", ".join(options)))
    drop = {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
    drop |= {o.lower() for o in options}
    want = [(k, v) for k, v in headers if k.lower() not in drop]
    with step(f"strip_hop_by_hop({headers!r})"):
        got = strip_hop_by_hop(headers)
    assert got == want, called(f"strip_hop_by_hop({headers!r})", got, want)
