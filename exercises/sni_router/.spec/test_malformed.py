"""Malformed, truncated and corrupted hellos: a HelloError (or "need more"), never another
exception, never a wrong answer."""

from __future__ import annotations

import pytest
from _helpers import (
    alpn_ext,
    ext,
    handshake,
    hello_body,
    python_hello,
    records,
    sni_ext,
    unwrap,
    vec,
    versions_ext,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sni_router import ClientHello, HelloError, HelloParser

from grader.spectools import called

GOOD = hello_body([sni_ext("ok.test")])


def one(body: bytes) -> bytes:
    return records(handshake(body))


def with_extensions(block: bytes) -> bytes:
    """A body whose extensions block is exactly ``block`` (length prefix added)."""
    return one(GOOD[: len(GOOD) - len(sni_ext("ok.test")) - 2] + vec(2, block))


MALFORMED = [
    ("http-request", b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ("ssh-banner", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("alert-record", b"\x15\x03\x01\x00\x02\x02\x28"),
    ("application-data-record", b"\x17\x03\x03\x00\x05hello"),
    ("hello-in-application-data-record", b"\x17" + one(GOOD)[1:]),
    ("hello-in-alert-record", b"\x15" + one(GOOD)[1:]),
    ("zero-length-record", b"\x16\x03\x01\x00\x00" + one(GOOD)),
    ("server-hello-type", records(handshake(GOOD, msg_type=2))),
    (
        "ccs-between-fragments",
        records(handshake(GOOD)[:20], ())
        + b"\x14\x03\x03\x00\x01\x01"
        + records(handshake(GOOD)[20:]),
    ),
    ("body-shorter-than-random", one(b"\x03\x03" + bytes(20))),
    ("session-id-33-bytes", one(hello_body([sni_ext("ok.test")], session_id=bytes(33)))),
    ("cipher-suites-empty", one(hello_body([sni_ext("ok.test")], suites=()))),
    (
        "cipher-suites-odd-length",
        one(
            b"\x03\x03"
            + bytes(32)
            + b"\x00"
            + b"\x00\x03\x13\x01\x13"
            + b"\x01\x00"
            + vec(2, sni_ext("ok.test"))
        ),
    ),
    ("compression-empty", one(hello_body([sni_ext("ok.test")], compression=b""))),
    (
        "extensions-length-too-long",
        one(
            GOOD[: -len(sni_ext("ok.test")) - 2]
            + (len(sni_ext("ok.test")) + 1).to_bytes(2, "big")
            + sni_ext("ok.test")
        ),
    ),
    ("trailing-bytes-after-extensions", one(GOOD + b"\x00")),
    ("extension-data-overruns-block", with_extensions(b"\x00\x17\x00\x05\x00")),
    ("duplicate-extension", with_extensions(ext(23, b"") + sni_ext("ok.test") + ext(23, b""))),
    ("duplicate-server-name", with_extensions(sni_ext("a.test") + sni_ext("b.test"))),
    (
        "duplicate-grease-extension",
        with_extensions(ext(0x0A0A, b"") + sni_ext("ok.test") + ext(0x0A0A, b"\x00")),
    ),
    ("server-name-list-empty", with_extensions(ext(0, vec(2, b"")))),
    ("server-name-two-host-names", with_extensions(sni_ext("a.test", "b.test"))),
    ("server-name-empty-host", with_extensions(sni_ext(b""))),
    ("server-name-not-ascii", with_extensions(sni_ext("bücher.test".encode()))),
    ("server-name-unknown-type", with_extensions(ext(0, vec(2, b"\x01" + vec(2, b"a.test"))))),
    (
        "server-name-trailing-bytes",
        with_extensions(ext(0, vec(2, b"\x00" + vec(2, b"a.test")) + b"\x00")),
    ),
    ("server-name-host-overruns-list", with_extensions(ext(0, vec(2, b"\x00\x00\x09a.test")))),
    ("alpn-list-empty", with_extensions(ext(16, vec(2, b"")))),
    ("alpn-empty-name", with_extensions(ext(16, vec(2, b"\x00\x02h2")))),
    ("alpn-name-overruns-list", with_extensions(ext(16, vec(2, b"\x05h2")))),
    ("alpn-trailing-bytes", with_extensions(ext(16, vec(2, b"\x02h2") + b"\x00"))),
    ("supported-versions-odd", with_extensions(ext(43, vec(1, b"\x03\x04\x03")))),
    ("supported-versions-empty", with_extensions(versions_ext())),
    ("supported-versions-trailing-bytes", with_extensions(ext(43, vec(1, b"\x03\x04") + b"\x00"))),
]


@pytest.mark.points(3)
@pytest.mark.parametrize("data", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_hello_is_an_error(data: bytes) -> None:
    """Bytes that are not a well-formed ClientHello raise HelloError, and nothing else (RFC 8446
    §4.1.2, §4.2, §5.1; RFC 6066 §3; RFC 7301 §3.1)."""
    try:
        got = HelloParser().feed(data)
    except HelloError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the spec's point: only HelloError
        got = f"raised {type(exc).__name__}: {exc}"
    raise AssertionError(called(f"HelloParser().feed({data[:48]!r}...)", got, "HelloError"))


REAL = python_hello("trunc.example.test", ["h2", "http/1.1"])
SPLIT = records(unwrap(REAL), (4, 100))


@settings(max_examples=120)
@example(cut=0, pieces=1)
@example(cut=1, pieces=1)
@example(cut=5, pieces=1)
@example(cut=9, pieces=2)
@example(cut=len(SPLIT) - 1, pieces=1)
@example(cut=len(SPLIT) - 1, pieces=7)
@given(cut=st.integers(0, len(SPLIT) - 1), pieces=st.integers(1, 8))
def test_truncated_hello_needs_more(cut: int, pieces: int) -> None:
    """Every strict prefix of a valid 3-record hello, fed in any number of pieces, answers None
    (need more): never an error, never a hello."""
    data = SPLIT[:cut]
    parser = HelloParser()
    step = max(1, len(data) // pieces)
    answers = []
    try:
        for i in range(0, len(data), step):
            answers.append(parser.feed(data[i : i + step]))
        answers.append(parser.feed(b""))
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        answers.append(f"raised {type(exc).__name__}: {exc}")
    bad = [a for a in answers if a is not None]
    assert not bad, called(
        f"parser.feed() with the first {cut} of {len(SPLIT)} bytes in {pieces} pieces",
        bad[:1],
        "None",
    )


@settings(max_examples=200)
@example(offset=0, value=0x17)
@example(offset=3, value=0xFF)
@example(offset=5, value=0x02)
@example(offset=6, value=0xFF)
@example(offset=48, value=0x21)
@example(offset=len(REAL) - 1, value=0x01)
@given(offset=st.integers(0, len(REAL) - 1), value=st.integers(0, 255))
def test_corrupted_hello_never_crashes(offset: int, value: int) -> None:
    """A real hello with one byte changed gives a ClientHello, None or HelloError: never another
    exception."""
    data = bytearray(REAL)
    data[offset] = value
    try:
        got = HelloParser().feed(bytes(data))
    except HelloError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        got = f"raised {type(exc).__name__}: {exc}"
    assert got is None or isinstance(got, ClientHello), called(
        f"HelloParser().feed(<hello with byte {offset} set to {value:#04x}>)",
        got,
        "a ClientHello, None or HelloError",
    )


@settings(max_examples=60)
@example(sizes=[1] * 8, chunk=1)
@example(sizes=[4], chunk=1000)
@example(sizes=[], chunk=3)
@given(sizes=st.lists(st.integers(1, 200), max_size=8), chunk=st.integers(1, 700))
def test_any_framing_same_hello(sizes: list[int], chunk: int) -> None:
    """The same hello in any record fragmentation, fed in TCP reads of any size, parses to the
    same ClientHello."""
    want = HelloParser().feed(REAL)
    data = records(unwrap(REAL), sizes)
    parser = HelloParser()
    got = None
    for i in range(0, len(data), chunk):
        got = parser.feed(data[i : i + chunk])
    assert want is not None and got == want, called(
        f"parser.feed() on the hello in records of {sizes}, reads of {chunk} bytes", got, want
    )


@settings(max_examples=150)
@example(data=b"", chunk=1)
@example(data=b"\x16", chunk=1)
@example(data=b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", chunk=1)
@example(data=b"\x16\x03\x01\x00\x01\x01\x16\x03\x01\x00\x03\x00\x00\x00", chunk=2)
@example(data=b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", chunk=9)
@example(data=b"\x16\xff\xff\xff\xff", chunk=5)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"\x16\x03\x01" + b),
        st.binary(max_size=300).map(lambda b: b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b),
    ),
    chunk=st.integers(1, 64),
)
def test_arbitrary_bytes_never_crash(data: bytes, chunk: int) -> None:
    """Arbitrary bytes, fed in pieces of any size, give None, a ClientHello or HelloError:
    never another exception."""
    parser = HelloParser()
    got = None
    try:
        for i in range(0, len(data), chunk):
            got = parser.feed(data[i : i + chunk])
    except HelloError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        got = f"raised {type(exc).__name__}: {exc}"
    assert got is None or isinstance(got, ClientHello), called(
        f"parser.feed() on {data[:40]!r} in pieces of {chunk}",
        got,
        "None, a ClientHello or HelloError",
    )
