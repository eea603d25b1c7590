"""Prefix integers (§5.1) and Huffman-coded strings (§5.2, Appendix B), checked against the RFC's
examples and against the hpack library."""

from __future__ import annotations

import pytest
from _helpers import oracle, oracle_huffman_encoder
from hpack.hpack import encode_integer as oracle_encode_integer
from hpack.huffman_table import decode_huffman as oracle_huffman_decode
from hpack_codec import HPACKError, decode_integer, encode_integer, huffman_decode, huffman_encode
from hypothesis import example, given
from hypothesis import strategies as st

from grader.spectools import called, short, step


def decode_outcome(call: str, fn, *args) -> object:  # type: ignore[no-untyped-def]
    """The result, or "HPACKError" when fn raised it; another exception fails the spec."""
    try:
        return fn(*args)
    except HPACKError:
        return "HPACKError"
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called {call}; raised {type(exc).__name__}: {exc}; expected a result or HPACKError"
        ) from None


# --- integers -----------------------------------------------------------------------------------

C1 = [
    pytest.param(10, 5, b"\x0a", id="C.1.1-10-in-5-bits"),
    pytest.param(1337, 5, b"\x1f\x9a\x0a", id="C.1.2-1337-in-5-bits"),
    pytest.param(42, 8, b"\x2a", id="C.1.3-42-in-8-bits"),
    pytest.param(30, 5, b"\x1e", id="2^N-2-fits-the-prefix"),
    pytest.param(31, 5, b"\x1f\x00", id="2^N-1-needs-a-zero-octet"),
    pytest.param(32, 5, b"\x1f\x01", id="2^N-continues"),
    pytest.param(31 + 127, 5, b"\x1f\x7f", id="one-full-continuation-octet"),
    pytest.param(31 + 128, 5, b"\x1f\x80\x01", id="two-continuation-octets"),
    pytest.param(0, 1, b"\x00", id="0-in-1-bit"),
    pytest.param(1, 1, b"\x01\x00", id="1-in-1-bit"),
    pytest.param(255, 8, b"\xff\x00", id="255-in-8-bits"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("value", "prefix_bits", "wire"), C1)
def test_encode_integer(value: int, prefix_bits: int, wire: bytes) -> None:
    """An integer is encoded in an N-bit prefix, then 7 bits per continuation octet, least
    significant first (§5.1, Appendix C.1)."""
    call = f"encode_integer({value}, {prefix_bits})"
    with step(call):
        got = encode_integer(value, prefix_bits)
    assert got == wire, called(call, got, wire)


@pytest.mark.points(2)
@pytest.mark.parametrize(("value", "prefix_bits", "wire"), C1)
def test_decode_integer(value: int, prefix_bits: int, wire: bytes) -> None:
    """A prefix integer decodes to its value and the offset after its last octet, ignoring the
    pattern bits above the prefix (§5.1, Appendix C.1)."""
    flags = (0xFF << prefix_bits) & 0xFF
    data = b"\xaa" + bytes([wire[0] | flags]) + wire[1:] + b"\xbb"
    call = f"decode_integer({data!r}, 1, {prefix_bits})"
    with step(call):
        got = decode_integer(data, 1, prefix_bits)
    want = (value, 1 + len(wire))
    assert got == want, called(call, got, want)


@pytest.mark.points(1)
def test_encode_integer_keeps_pattern_bits() -> None:
    """encode_integer puts the given pattern bits above the prefix of the first octet (§5.1)."""
    for args, want in [
        ((1337, 5, 0x20), b"\x3f\x9a\x0a"),
        ((62, 7, 0x80), b"\xbe"),
        ((2, 4, 0x10), b"\x12"),
    ]:
        call = f"encode_integer{args}"
        with step(call):
            got = encode_integer(*args)
        assert got == want, called(call, got, want)


@pytest.mark.points(2)
@given(value=st.integers(0, 2**32 - 1), prefix_bits=st.integers(1, 8))
@example(value=2**32 - 1, prefix_bits=1)
@example(value=2**32 - 1, prefix_bits=8)
@example(value=0, prefix_bits=8)
@example(value=127, prefix_bits=7)
def test_integers_round_trip_with_the_library(value: int, prefix_bits: int) -> None:
    """Any 32-bit value encodes to the bytes the hpack library makes and decodes back (§5.1)."""
    want = bytes(oracle_encode_integer(value, prefix_bits))
    call = f"encode_integer({value}, {prefix_bits})"
    with step(call):
        got = encode_integer(value, prefix_bits)
    assert got == want, called(call, got, want)
    call = f"decode_integer({want!r}, 0, {prefix_bits})"
    with step(call):
        back = decode_integer(want, 0, prefix_bits)
    assert back == (value, len(want)), called(call, back, (value, len(want)))


LONG_INTEGERS = [
    pytest.param(b"\x1f\x80\x80\x80\x80\x00", 31, id="5-continuation-octets-of-zeros"),
    pytest.param(b"\x1f\xff\xff\xff\xff\x0f", 31 + 2**32 - 1, id="5-continuation-octets-2^32-1"),
    pytest.param(b"\x1f\x80\x80\x80\x80\x80\x00", None, id="6-continuation-octets"),
    pytest.param(
        b"\x1f\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", None, id="10-continuation-octets"
    ),
    pytest.param(b"\x1f", None, id="prefix-full-then-end"),
    pytest.param(b"\x1f\x80", None, id="ends-after-continuation-bit"),
    pytest.param(b"", None, id="empty"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("data", "value"), LONG_INTEGERS)
def test_decode_integer_limits(data: bytes, value: int | None) -> None:
    """An integer may use up to 5 continuation octets; a sixth, or data that ends inside the
    integer, raises HPACKError (§5.1: encodings that exceed implementation limits MUST be
    treated as decoding errors)."""
    call = f"decode_integer({data!r}, 0, 5)"
    got = decode_outcome(call, decode_integer, data, 0, 5)
    want = "HPACKError" if value is None else (value, len(data))
    assert got == want, called(call, got, want)


# --- Huffman ------------------------------------------------------------------------------------

HUFFMAN = [
    pytest.param(b"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff", id="C.4.1-www.example.com"),
    pytest.param(b"no-cache", "a8eb10649cbf", id="C.4.2-no-cache"),
    pytest.param(b"custom-key", "25a849e95ba97d7f", id="C.4.3-custom-key"),
    pytest.param(b"custom-value", "25a849e95bb8e8b4bf", id="C.4.3-custom-value"),
    pytest.param(b"302", "6402", id="C.6.1-302"),
    pytest.param(
        b"Mon, 21 Oct 2013 20:13:21 GMT",
        "d07abe941054d444a8200595040b8166e082a62d1bff",
        id="C.6.1-date",
    ),
    pytest.param(b"", "", id="empty"),
    pytest.param(b"&", "f8", id="padding-0-bits"),
    pytest.param(b":", "b9", id="padding-1-bit"),
    pytest.param(b"-", "5b", id="padding-2-bits"),
    pytest.param(b"a", "1f", id="padding-3-bits"),
    pytest.param(b"#", "ffaf", id="padding-4-bits"),
    pytest.param(b"a-", "1adf", id="padding-5-bits"),
    pytest.param(b"aa", "18ff", id="padding-6-bits"),
    pytest.param(b"00000", "0000007f", id="padding-7-bits"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("raw", "coded"), HUFFMAN)
def test_huffman_encode(raw: bytes, coded: str) -> None:
    """Huffman coding uses the Appendix B codes, most significant bit first, padded to an
    octet with the high bits of EOS, that is 1 bits (§5.2, Appendix C.4, C.6)."""
    call = f"huffman_encode({raw!r})"
    with step(call):
        got = huffman_encode(raw)
    assert got == bytes.fromhex(coded), called(call, got.hex(), coded)


@pytest.mark.points(2)
@pytest.mark.parametrize(("raw", "coded"), HUFFMAN)
def test_huffman_decode(raw: bytes, coded: str) -> None:
    """Huffman-coded strings of Appendix C decode to their octets (§5.2)."""
    call = f"huffman_decode(bytes.fromhex({coded!r}))"
    with step(call):
        got = huffman_decode(bytes.fromhex(coded))
    assert got == raw, called(call, got, raw)


BAD_HUFFMAN = [
    pytest.param(b"\xff", id="8-bits-of-padding"),
    pytest.param(b"\x1f\xff", id="a-then-8-bits-of-padding"),
    pytest.param(b"\x00", id="padding-not-ones"),
    pytest.param(b"\x18", id="a-then-padding-with-a-zero"),
    pytest.param(b"\xff\xff\xff\xfc", id="EOS-code-in-the-string"),
    pytest.param(b"\xff\xff\xff\xff", id="EOS-then-2-bits"),
    pytest.param(b"\xfe", id="partial-code-not-eos-prefix"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("coded", BAD_HUFFMAN)
def test_huffman_decode_rejects(coded: bytes) -> None:
    """huffman_decode raises HPACKError for padding longer than 7 bits, padding that is not
    the most significant bits of EOS, and a string containing EOS (§5.2: MUST be treated as a
    decoding error)."""
    call = f"huffman_decode({coded!r})"
    got = decode_outcome(call, huffman_decode, coded)
    assert got == "HPACKError", called(call, got, "HPACKError")


@pytest.mark.points(3)
@given(raw=st.binary(max_size=64))
@example(raw=bytes(range(256)))
@example(raw=b"\x00\xff\x7f\x80")
def test_huffman_encode_matches_the_library(raw: bytes) -> None:
    """Any octets Huffman-encode to the bytes the hpack library makes, and decode back (§5.2)."""
    want = oracle_huffman_encoder.encode(raw)
    call = f"huffman_encode({short(raw)})"
    with step(call):
        got = huffman_encode(raw)
    assert got == want, called(call, got.hex(), want.hex())
    call = f"huffman_decode({short(want)})"
    with step(call):
        back = huffman_decode(want)
    assert back == raw, called(call, back, raw)


@pytest.mark.points(3)
@given(coded=st.binary(max_size=16))
@example(coded=b"\xff\xff\xff\xfc")
@example(coded=b"\xfe\x3f")
@example(coded=b"\x1f\xff")
@example(coded=b"\x07")
def test_huffman_decode_agrees_with_the_library(coded: bytes) -> None:
    """On any octets, huffman_decode returns what the hpack library decodes, and raises
    HPACKError exactly where the library rejects the string (§5.2)."""
    try:
        want: object = oracle_huffman_decode(coded)
    except oracle.HPACKDecodingError:
        want = "HPACKError"
    call = f"huffman_decode({coded!r})"
    got = decode_outcome(call, huffman_decode, coded)
    assert got == want, called(call, got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("value", "prefix_bits"),
    [
        pytest.param(-1, 5, id="negative-value"),
        pytest.param(1, 0, id="0-bit-prefix"),
        pytest.param(1, 9, id="9-bit-prefix"),
    ],
)
def test_encode_integer_refuses_what_has_no_encoding(value: int, prefix_bits: int) -> None:
    """encode_integer raises ValueError for a negative value or a prefix outside 1..8 bits (§5.1:
    the prefix size N is always between 1 and 8 bits)."""
    call = f"encode_integer({value}, {prefix_bits})"
    try:
        got = encode_integer(value, prefix_bits)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called {call}; raised {type(exc).__name__}: {exc}; expected ValueError"
        ) from None
    raise AssertionError(called(call, got, "ValueError"))
