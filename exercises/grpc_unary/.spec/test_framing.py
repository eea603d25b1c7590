"""Hidden specs for gRPC's pure parts: Length-Prefixed-Messages, grpc-message percent-encoding
and grpc-timeout, as grpc/grpc doc/PROTOCOL-HTTP2.md defines them."""

from __future__ import annotations

import urllib.parse

import pytest
from grpc_unary import (
    MessageReader,
    RpcError,
    StatusCode,
    encode_length_prefixed,
    parse_timeout,
    percent_decode,
    percent_encode,
)
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, short, step

FAST = settings(max_examples=40, phases=[Phase.explicit, Phase.generate])


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "message, wire",
    [(b"", "0000000000"), (bytes.fromhex("089601"), "0000000003089601"), (b"x" * 256, None)],
    ids=["empty", "Int32Value 150", "256 bytes"],
)
def test_a_message_gets_a_flag_byte_and_a_big_endian_length(message, wire):
    """A Length-Prefixed-Message is the compressed flag 0, the length as 4 bytes big-endian,
    then the message (PROTOCOL-HTTP2.md, Requests)."""
    want = bytes.fromhex(wire) if wire else b"\x00\x00\x00\x01\x00" + message
    with step(f"encode_length_prefixed({short(message, 30)})"):
        got = encode_length_prefixed(message)
    assert got == want, called(f"encode_length_prefixed({short(message, 30)})", got, want)


def frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@pytest.mark.points(3)
@FAST
@given(st.lists(st.binary(max_size=40), max_size=5), st.lists(st.integers(0, 400), max_size=8))
@example([b"abc"], [1])  # split inside the prefix
@example([b"abc"], [5])  # split right after the prefix
@example([b"", b"", b"x"], [])  # empty messages
@example([b"a", b"bc"], list(range(20)))  # one byte at a time
def test_the_reader_reassembles_messages_cut_anywhere(messages, cuts):
    """MessageReader.feed returns each message exactly once, whatever the DATA frame boundaries
    (PROTOCOL-HTTP2.md: DATA frame boundaries have no relation to message boundaries)."""
    stream = b"".join(frame(m) for m in messages)
    pieces = cut(stream, cuts)
    reader = MessageReader()
    got: list[bytes] = []
    with step(f"MessageReader().feed(...) with pieces {short(pieces, 200)}"):
        for piece in pieces:
            got += reader.feed(piece)
        mid = reader.mid_message
    assert got == messages, called(f"feed() of pieces {short(pieces, 200)}", got, messages)
    assert mid is False, called("mid_message after whole messages", mid, False)


@pytest.mark.points(1)
def test_the_reader_knows_when_it_is_inside_a_message():
    """mid_message is true while a message (or its prefix) is only partly received."""
    reader = MessageReader()
    for piece, want in [(b"\x00\x00", True), (b"\x00\x00\x02", True), (b"h", True), (b"i", False)]:
        with step(f"feed({piece!r})"):
            reader.feed(piece)
            got = reader.mid_message
        assert got is want, called(f"mid_message after feed({piece!r})", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "length, ok", [(99, True), (100, True), (101, False)], ids=["limit-1", "limit", "limit+1"]
)
def test_the_reader_enforces_its_limit_at_the_limit(length, ok):
    """A message of max_length bytes is accepted; one byte more is RESOURCE_EXHAUSTED
    (doc/statuscodes.md: larger than the configured limit)."""
    reader = MessageReader(max_length=100)
    data = frame(b"m" * length)
    try:
        got = reader.feed(data)
    except RpcError as error:
        assert not ok and error.code == StatusCode.RESOURCE_EXHAUSTED, called(
            f"MessageReader(max_length=100).feed(<a {length}-byte message>)",
            f"RpcError({error.code!r})",
            "the message" if ok else "RpcError(RESOURCE_EXHAUSTED)",
        )
        return
    assert ok and got == [b"m" * length], called(
        f"MessageReader(max_length=100).feed(<a {length}-byte message>)",
        f"{len(got)} message(s)",
        "the message" if ok else "RpcError(RESOURCE_EXHAUSTED)",
    )


@pytest.mark.points(2)
def test_an_oversized_message_is_refused_at_its_prefix():
    """The reader refuses a message as soon as its prefix declares too many bytes, before any
    of them arrive: a client can't make the server buffer what it will refuse."""
    reader = MessageReader(max_length=1000)
    prefix = b"\x00" + (2**32 - 1).to_bytes(4, "big")
    with pytest.raises(RpcError) as info:
        got = reader.feed(prefix)
        raise AssertionError(called("feed(<a prefix declaring 4 GiB>)", got, "RpcError"))
    code = info.value.code
    want = StatusCode.RESOURCE_EXHAUSTED
    assert code == want, called("feed(<a prefix declaring 4 GiB>)", f"RpcError({code!r})", want)


@pytest.mark.points(1)
@pytest.mark.parametrize("flag", [1, 2, 255], ids=["compressed", "flag 2", "flag 255"])
def test_a_compressed_flag_without_an_encoding_is_internal(flag):
    """Without a grpc-encoding the compressed flag must be 0; anything else is INTERNAL
    (PROTOCOL-HTTP2.md, Compressed-Flag)."""
    reader = MessageReader()
    data = bytes([flag]) + b"\x00\x00\x00\x01x"
    with pytest.raises(RpcError) as info:
        got = reader.feed(data)
        raise AssertionError(called(f"feed({data!r})", got, "RpcError(INTERNAL)"))
    code = info.value.code
    assert code == StatusCode.INTERNAL, called(f"feed({data!r})", f"RpcError({code!r})", "INTERNAL")


# --- grpc-message ---------------------------------------------------------------------------

PERCENT = {
    "plain ASCII": ("not found", "not found"),
    "percent itself": ("100%", "100%25"),
    "newline and tab": ("a\nb\tc", "a%0Ab%09c"),
    "UTF-8": ("ünï ☃", "%C3%BCn%C3%AF %E2%98%83"),
    "DEL and tilde": ("~\x7f", "~%7F"),
    "empty": ("", ""),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("text, wire", list(PERCENT.values()), ids=list(PERCENT))
def test_grpc_message_is_utf8_then_percent_encoded(text, wire):
    """percent_encode leaves space and printable ASCII except % as they are and writes every
    other UTF-8 byte as %XX (PROTOCOL-HTTP2.md, Status-Message)."""
    with step(f"percent_encode({text!r})"):
        got = percent_encode(text)
    assert got == wire, called(f"percent_encode({text!r})", got, wire)
    with step(f"percent_decode({wire!r})"):
        back = percent_decode(wire)
    assert back == text, called(f"percent_decode({wire!r})", back, text)


@pytest.mark.points(1)
@FAST
@given(st.text(max_size=30))
@example("%")
@example("%%41")
@example("\x00\x1f\x20\x7e\x7f")
def test_percent_encoding_round_trips_and_agrees_with_urllib(text):
    """percent_decode(percent_encode(s)) == s, the encoding uses only space and printable
    ASCII, and urllib.parse.unquote reads it the same."""
    with step(f"percent_encode({text!r})"):
        wire = percent_encode(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in wire), called(
        f"percent_encode({text!r})", wire, "only bytes 0x20-0x7E"
    )
    assert urllib.parse.unquote(wire) == text, called(
        f"percent_encode({text!r})", wire, "a value urllib.parse.unquote reads back"
    )
    with step(f"percent_decode({wire!r})"):
        back = percent_decode(wire)
    assert back == text, called(f"percent_decode({wire!r})", back, text)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "wire, text",
    [("50%", "50%"), ("%zz", "%zz"), ("%C3", "\ufffd"), ("%e2%98%83", "☃")],
    ids=["lone %", "bad hex", "cut UTF-8", "lower-case hex"],
)
def test_percent_decode_never_fails(wire, text):
    """percent_decode keeps broken escapes and replaces bad UTF-8 instead of raising
    (PROTOCOL-HTTP2.md: implementations MUST NOT error when decoding invalid values)."""
    with step(f"percent_decode({wire!r})"):
        got = percent_decode(wire)
    assert got == text, called(f"percent_decode({wire!r})", got, text)


@pytest.mark.points(1)
@FAST
@given(st.text(max_size=30))
@example("☃")
@example("%")
@example("%4")
@example("100%%")
@example("\x00")
def test_percent_decode_takes_any_text(value):
    """percent_decode never raises, whatever arrives, and text without "%" comes back as it is
    (PROTOCOL-HTTP2.md: implementations MUST NOT error when decoding invalid values)."""
    with step(f"percent_decode({value!r})"):
        got = percent_decode(value)
    assert isinstance(got, str), called(f"percent_decode({value!r})", got, "a str")
    if "%" not in value:
        assert got == value, called(f"percent_decode({value!r})", got, value)


# --- grpc-timeout -------------------------------------------------------------------------

TIMEOUTS = {
    "1H": 3600.0,
    "2M": 120.0,
    "1S": 1.0,
    "100m": 0.1,
    "2500u": 0.0025,
    "7n": 7e-9,
    "99999999S": 99999999.0,
    "0m": 0.0,
}


@pytest.mark.points(2)
@pytest.mark.parametrize("value", list(TIMEOUTS), ids=list(TIMEOUTS))
def test_grpc_timeout_units(value):
    """parse_timeout reads TimeoutValue (at most 8 digits) and TimeoutUnit (H M S m u n) into
    seconds (PROTOCOL-HTTP2.md, Requests: Timeout)."""
    with step(f"parse_timeout({value!r})"):
        got = parse_timeout(value)
    want = TIMEOUTS[value]
    assert got == pytest.approx(want, rel=1e-9), called(f"parse_timeout({value!r})", got, want)


BAD_TIMEOUTS = ["", "S", "10", "123456789S", "1.5S", "-1S", "1s", "1 S", "1SS", "1D", "१S"]


@pytest.mark.points(1)
@pytest.mark.parametrize("value", BAD_TIMEOUTS, ids=[repr(v) for v in BAD_TIMEOUTS])
def test_malformed_grpc_timeouts_raise_value_error(value):
    """A grpc-timeout that is not 1-8 ASCII digits and one unit of H M S m u n raises
    ValueError."""
    with pytest.raises(ValueError):
        got = parse_timeout(value)
        raise AssertionError(called(f"parse_timeout({value!r})", got, "ValueError"))
