"""The parser's limits: a record of at most 2^14 bytes (RFC 8446 §5.1) and a ClientHello of at
most max_hello_size bytes, each checked at the limit, one below and one above, and as soon as
the header that states the length arrives."""

from __future__ import annotations

import pytest
from _helpers import ext, handshake, hello_body, records, sni_ext
from sni_router import MAX_RECORD, ClientHello, HelloError, HelloParser

from grader.spectools import called, step

BASE = len(hello_body([sni_ext("big.test"), ext(21, b"")]))


def padded_body(size: int) -> bytes:
    """A ClientHello body of exactly ``size`` bytes (a padding extension, RFC 7685, fills it)."""
    body = hello_body([sni_ext("big.test"), ext(21, b"\x00" * (size - BASE))])
    assert len(body) == size
    return body


def outcome(parser: HelloParser, data: bytes, what: str) -> str:
    with step(what):
        try:
            got = parser.feed(data)
        except HelloError:
            return "HelloError"
    if isinstance(got, ClientHello):
        return f"ClientHello({got.server_name})"
    return repr(got)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("delta", "want"),
    [(-1, "ClientHello(big.test)"), (0, "ClientHello(big.test)"), (1, "HelloError")],
    ids=["limit-minus-1", "at-limit", "limit-plus-1"],
)
def test_record_length_limit(delta: int, want: str) -> None:
    """A handshake record of 2^14 bytes is accepted, one of 2^14 + 1 is an error (RFC 8446
    §5.1: the length MUST NOT exceed 2^14; record_overflow)."""
    message = handshake(padded_body(MAX_RECORD + delta - 4))
    data = records(message, (len(message),))
    got = outcome(
        HelloParser(100_000),
        data,
        f"HelloParser(100000).feed(<one record of {MAX_RECORD + delta} bytes>)",
    )
    assert got == want, called(
        f"HelloParser(100000).feed(<one record of {MAX_RECORD + delta} bytes>)", got, want
    )


def test_record_length_checked_on_the_header() -> None:
    """A record header announcing 2^14 + 1 bytes is an error at once, before its payload
    arrives; one announcing 2^14 needs more."""
    over = outcome(
        HelloParser(100_000),
        b"\x16\x03\x01\x40\x01",
        "HelloParser(100000).feed(<record header, length 16385>)",
    )
    at = outcome(
        HelloParser(100_000),
        b"\x16\x03\x01\x40\x00\x01",
        "HelloParser(100000).feed(<record header, length 16384>)",
    )
    assert (over, at) == ("HelloError", "None"), called(
        "HelloParser(100000).feed(<header of a 16385-byte record>), .feed(<header of a 16384-byte record>)",
        (over, at),
        ("HelloError", "None"),
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("limit", "size", "want"),
    [
        (1000, 999, "ClientHello(big.test)"),
        (1000, 1000, "ClientHello(big.test)"),
        (1000, 1001, "HelloError"),
        (20000, 20000, "ClientHello(big.test)"),
        (20000, 20001, "HelloError"),
    ],
    ids=["1000-below", "1000-at", "1000-above", "20000-at-two-records", "20000-above-two-records"],
)
def test_hello_size_limit(limit: int, size: int, want: str) -> None:
    """A ClientHello whose handshake length is max_hello_size is accepted, one byte more is an
    error, whether it comes in one record or several."""
    message = handshake(padded_body(size))
    data = records(message, (MAX_RECORD,))
    got = outcome(
        HelloParser(limit), data, f"HelloParser({limit}).feed(<a {size}-byte ClientHello>)"
    )
    assert got == want, called(f"HelloParser({limit}).feed(<a {size}-byte ClientHello>)", got, want)


@pytest.mark.parametrize(
    ("size", "want"), [(1000, "None"), (1001, "HelloError")], ids=["at-limit", "above-limit"]
)
def test_hello_size_checked_on_the_header(size: int, want: str) -> None:
    """A handshake header announcing more than max_hello_size is an error as soon as the header
    arrives, before its body (so the router never buffers it)."""
    header = b"\x01" + size.to_bytes(3, "big")
    data = b"\x16\x03\x01\x00\x04" + header
    got = outcome(
        HelloParser(1000),
        data,
        f"HelloParser(1000).feed(<record with only a handshake header for {size} bytes>)",
    )
    assert got == want, called(
        f"HelloParser(1000).feed(<a record holding only a header announcing a {size}-byte hello>)",
        got,
        want,
    )


@pytest.mark.parametrize(
    ("msg_type", "want"), [(1, "None"), (2, "HelloError")], ids=["client-hello", "server-hello"]
)
def test_handshake_type_checked_on_its_first_byte(msg_type: int, want: str) -> None:
    """A handshake message that is not a ClientHello (type 1) is an error as soon as its type byte
    arrives, before its length and body (so the router never waits for the rest of it)."""
    data = b"\x16\x03\x01\x00\x01" + bytes([msg_type])
    got = outcome(
        HelloParser(), data, f"HelloParser().feed(<a record holding only the type byte {msg_type}>)"
    )
    assert got == want, called(
        f"HelloParser().feed(<a record holding only the handshake type byte {msg_type}>)", got, want
    )


def test_default_limit() -> None:
    """HelloParser() accepts a 16384-byte ClientHello and refuses a 16385-byte one."""
    ok = outcome(
        HelloParser(),
        records(handshake(padded_body(16384)), (MAX_RECORD,)),
        "HelloParser().feed(<16384-byte hello>)",
    )
    header = b"\x16\x03\x01\x00\x04\x01" + (16385).to_bytes(3, "big")
    over = outcome(HelloParser(), header, "HelloParser().feed(<header of a 16385-byte hello>)")
    assert (ok, over) == ("ClientHello(big.test)", "HelloError"), called(
        "HelloParser() on a 16384-byte and a 16385-byte hello",
        (ok, over),
        ("ClientHello(big.test)", "HelloError"),
    )
