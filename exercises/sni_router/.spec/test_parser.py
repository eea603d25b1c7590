"""HelloParser on real ClientHellos from Python's ssl (OpenSSL) in several configurations, and on
hand-built ones for what OpenSSL never sends (GREASE, upper-case names, exact sizes)."""

from __future__ import annotations

import ssl

import pytest
from _helpers import (
    GREASE,
    add_extensions,
    alpn_ext,
    build_hello,
    ext,
    handshake,
    hello_body,
    python_hello,
    records,
    sni_ext,
    unwrap,
    versions_ext,
)
from sni_router import ClientHello, HelloError, HelloParser, is_grease

from grader.spectools import called, step

V13, V12 = 0x0304, 0x0303
T12, T13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3

# (id, server_hostname, alpn, kwargs, expected server_name, expected supported_versions)
CONFIGS = [
    ("sni-and-alpn", "a.example.test", ["h2", "http/1.1"], {}, "a.example.test", (V13, V12)),
    ("sni-only", "backend.example.test", None, {}, "backend.example.test", (V13, V12)),
    ("no-sni", None, ["http/1.1"], {}, None, (V13, V12)),
    ("ip-address-no-sni", "127.0.0.1", None, {}, None, (V13, V12)),
    ("tls13-only", "v13.example.test", ["h2"], {"minimum": T13}, "v13.example.test", (V13,)),
    ("tls12-only", "v12.example.test", ["h2"], {"maximum": T12}, "v12.example.test", ()),
    (
        "tls12-one-cipher",
        "one.example.test",
        None,
        {"maximum": T12, "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"},
        "one.example.test",
        (),
    ),
    (
        "many-ciphers",
        "many.example.test",
        None,
        {"ciphers": "ALL:@SECLEVEL=0"},
        "many.example.test",
        (V13, V12),
    ),
    (
        "long-alpn-list",
        "alpn.example.test",
        ["h2", "http/1.1", "spdy/3.1", "x" * 255, "acme-tls/1"],
        {},
        "alpn.example.test",
        (V13, V12),
    ),
    (
        "long-name",
        "a" * 63 + "." + "b" * 63 + ".test",
        None,
        {},
        "a" * 63 + "." + "b" * 63 + ".test",
        (V13, V12),
    ),
]


def parse(data: bytes, what: str, max_hello_size: int | None = None) -> ClientHello | None:
    with step(what):
        parser = HelloParser() if max_hello_size is None else HelloParser(max_hello_size)
        return parser.feed(data)


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("name", "alpn", "kwargs", "want_name", "want_versions"),
    [c[1:] for c in CONFIGS],
    ids=[c[0] for c in CONFIGS],
)
def test_python_ssl_hellos(name, alpn, kwargs, want_name, want_versions) -> None:
    """A ClientHello from Python's ssl yields its server name, ALPN list and supported versions
    (RFC 8446 §4.1.2, §4.2.1; RFC 6066 §3; RFC 7301 §3.1)."""
    hello = python_hello(name, alpn, **kwargs)
    got = parse(hello, f"HelloParser().feed(<ClientHello for {name!r}>)")
    assert isinstance(got, ClientHello), called(
        f"HelloParser().feed(<the whole {len(hello)}-byte ClientHello for {name!r}>)",
        got,
        "a ClientHello",
    )
    have = (got.server_name, got.alpn_protocols, got.supported_versions, 0 in got.extensions)
    want = (
        want_name,
        tuple(p.encode() for p in alpn or ()),
        want_versions,
        want_name is not None,
    )
    assert have == want, called(
        f"HelloParser().feed(<ClientHello for {name!r}, ALPN {alpn}>): "
        "(server_name, alpn_protocols, supported_versions, 0 in extensions)",
        have,
        want,
    )


def test_extension_order_kept() -> None:
    """extensions lists every extension type in the order the client sent them (RFC 8446 §4.2)."""
    hello = build_hello(
        ext(23, b""), sni_ext("x.test"), ext(65281, b"\x00"), alpn_ext(b"h2"), ext(21, b"\x00" * 7)
    )
    got = parse(hello, "HelloParser().feed(<hello with extensions 23, 0, 65281, 16, 21>)")
    have = got.extensions if isinstance(got, ClientHello) else got
    assert have == (23, 0, 65281, 16, 21), called(
        "HelloParser().feed(<hello with extensions 23, 0, 65281, 16, 21>).extensions",
        have,
        (23, 0, 65281, 16, 21),
    )


def test_server_name_lower_cased() -> None:
    """The server name comes back lower-cased: DNS names compare case-insensitively (RFC 4343,
    RFC 6066 §3)."""
    hello = build_hello(sni_ext("API.Example.TEST"))
    got = parse(hello, "HelloParser().feed(<hello for 'API.Example.TEST'>)")
    have = got.server_name if isinstance(got, ClientHello) else got
    assert have == "api.example.test", called(
        "HelloParser().feed(<hello for 'API.Example.TEST'>).server_name", have, "api.example.test"
    )


def test_tls12_hello_without_extensions() -> None:
    """A ClientHello that ends after compression_methods (no extensions block, allowed before
    TLS 1.3: RFC 5246 §7.4.1.2) parses with no server name and no extensions."""
    hello = records(handshake(hello_body(None)))
    got = parse(hello, "HelloParser().feed(<hello without extensions>)")
    want = ClientHello(server_name=None, alpn_protocols=(), supported_versions=(), extensions=())
    assert got == want, called("HelloParser().feed(<hello without extensions>)", got, want)


def test_is_grease() -> None:
    """is_grease is true for exactly the sixteen values 0x0A0A, 0x1A1A, ..., 0xFAFA (RFC 8701 §2)."""
    with step("is_grease(v) for every v in 0..0xFFFF"):
        got = [v for v in range(0x10000) if is_grease(v)]
    assert got == GREASE, called("[v for v in range(0x10000) if is_grease(v)]", got, GREASE)


GREASE_CASES = [
    ("grease-extension-first-empty", [ext(0x0A0A, b"")], [], False),
    ("grease-extension-last-one-byte", [], [ext(0xFAFA, b"\x00")], False),
    ("two-grease-extensions", [ext(0x3A3A, b"")], [ext(0xDADA, b"\x00")], False),
    ("grease-extension-with-data", [ext(0x5A5A, b"\x01\x02\x03\x04")], [], False),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("front", "back", "_"), [c[1:] for c in GREASE_CASES], ids=[c[0] for c in GREASE_CASES]
)
def test_grease_extensions_ignored(front, back, _) -> None:
    """GREASE extension types in a real hello are ignored: the result is the same as without
    them (RFC 8701 §3)."""
    hello = python_hello("grease.example.test", ["h2", "http/1.1"])
    with step("HelloParser().feed(<the hello without GREASE>)"):
        plain = HelloParser().feed(hello)
    greased = add_extensions(hello, front, back)
    got = parse(greased, "HelloParser().feed(<the hello with GREASE extensions added>)")
    assert plain is not None and got == plain, called(
        "HelloParser().feed(<hello with GREASE extensions added>)", got, plain
    )


def test_grease_in_alpn_and_versions_ignored() -> None:
    """GREASE ALPN identifiers and GREASE versions in supported_versions are dropped, the real
    values kept in order (RFC 8701 §2, §3)."""
    hello = build_hello(
        sni_ext("g.test"),
        alpn_ext(b"\x2a\x2a", b"h2", b"\x8a\x8a", b"http/1.1", b"\x2a\x2b"),
        versions_ext(0x7A7A, V13, 0xEAEA, V12),
    )
    got = parse(hello, "HelloParser().feed(<hello with GREASE in ALPN and versions>)")
    have = (got.alpn_protocols, got.supported_versions) if isinstance(got, ClientHello) else got
    want = ((b"h2", b"http/1.1", b"\x2a\x2b"), (V13, V12))
    assert have == want, called(
        "HelloParser().feed(<hello with GREASE in ALPN and versions>): (alpn_protocols, supported_versions)",
        have,
        want,
    )


SPLITS = [
    ("two-records-header-split", (2,)),
    ("record-per-header-byte", (1, 1, 1, 1)),
    ("header-then-body", (4,)),
    ("mid-extensions", (300,)),
    ("many-small-records", (50,) * 10),
    ("one-byte-records", (1,) * 40),
]


@pytest.mark.points(3)
@pytest.mark.parametrize("sizes", [c[1] for c in SPLITS], ids=[c[0] for c in SPLITS])
def test_hello_split_across_records(sizes) -> None:
    """A ClientHello split across several handshake records (even its 4-byte header) parses as
    if it came in one (RFC 8446 §5.1: a message may be fragmented over several records)."""
    hello = python_hello("split.example.test", ["h2"])
    want = parse(hello, "HelloParser().feed(<the hello in one record>)")
    again = records(unwrap(hello), sizes)
    got = parse(again, f"HelloParser().feed(<the hello in records of {sizes[:4]}... bytes>)")
    assert want is not None and got == want, called(
        f"HelloParser().feed(<the hello re-framed in records of {list(sizes[:5])}... bytes>)",
        got,
        want,
    )


@pytest.mark.points(2)
def test_one_byte_at_a_time() -> None:
    """Fed one byte at a time, the parser answers None (need more) until the last byte of the
    hello, then the ClientHello."""
    hello = records(unwrap(python_hello("byte.example.test", ["h2"])), (3, 200))
    parser = HelloParser()
    answers = []
    with step("parser.feed(<one byte>) for each byte of a 3-record hello"):
        for i in range(len(hello)):
            answers.append(parser.feed(hello[i : i + 1]))
    early = [i for i, a in enumerate(answers[:-1]) if a is not None]
    assert not early, called(
        f"parser.feed() byte by byte on a {len(hello)}-byte hello",
        f"an answer at byte {early[:1]}",
        "None until the last byte",
    )
    last = answers[-1]
    got = last.server_name if isinstance(last, ClientHello) else last
    assert got == "byte.example.test", called(
        "parser.feed(<last byte>).server_name", got, "byte.example.test"
    )


def test_answer_repeats() -> None:
    """Once a hello is parsed, later feed() calls return the same ClientHello; once an error
    is raised, later calls raise HelloError again."""
    hello = python_hello("again.example.test")
    parser = HelloParser()
    with step("parser.feed(hello); parser.feed(b'more')"):
        first = parser.feed(hello)
        second = parser.feed(b"\x17\x03\x03\x00\x01x")
    assert first is not None and second == first, called(
        "parser.feed(<more bytes>) after the hello", second, first
    )
    bad = HelloParser()
    with pytest.raises(HelloError):
        bad.feed(b"GET / HTTP/1.1\r\n")
    try:
        got = bad.feed(hello)
    except HelloError:
        return
    raise AssertionError(
        called("parser.feed(<a good hello>) after a HelloError", got, "HelloError again")
    )
