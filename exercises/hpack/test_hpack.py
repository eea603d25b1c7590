"""Visible examples for the hpack kata. Run them with `nox -s try -- hpack`.

They use RFC 7541's own examples (Appendix C) and the standard library only. The hidden specs go
much further: every Appendix C block, the dynamic table after each, malformed blocks, size
updates, the header list limit, and the hpack library as a differential oracle both ways.
"""

from __future__ import annotations

import pytest

try:
    from hpack_codec import (
        Decoder,
        Encoder,
        HPACKError,
        NeverIndexed,
        decode_integer,
        encode_integer,
        huffman_decode,
        huffman_encode,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Decoder, Encoder, HPACKError, NeverIndexed, "
        "decode_integer, encode_integer, huffman_decode and huffman_encode from hpack_codec.py"
    ) from err

# RFC 7541 Appendix C.4.1: the first request, with Huffman coding.
REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":path", b"/"),
    (b":authority", b"www.example.com"),
]
BLOCK = bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")


def test_integer_1337_in_a_5_bit_prefix():
    got = encode_integer(1337, 5)
    assert got == b"\x1f\x9a\x0a", (
        f"Called encode_integer(1337, 5); returned {got!r}; expected b'\\x1f\\x9a\\x0a'"
    )
    got = decode_integer(b"\x1f\x9a\x0a", 0, 5)
    assert got == (1337, 3), (
        f"Called decode_integer(b'\\x1f\\x9a\\x0a', 0, 5); returned {got!r}; expected (1337, 3)"
    )


def test_huffman_www_example_com():
    coded = bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")
    got = huffman_encode(b"www.example.com")
    assert got == coded, (
        f"Called huffman_encode(b'www.example.com'); returned {got.hex()}; expected {coded.hex()}"
    )
    got = huffman_decode(coded)
    assert got == b"www.example.com", f"Called huffman_decode({coded.hex()}); returned {got!r}"


def test_decode_first_request_c41():
    decoder = Decoder()
    got = decoder.decode(BLOCK)
    assert got == REQUEST, (
        f"Called decoder.decode(C.4.1 block); returned {got!r}; expected {REQUEST!r}"
    )
    table = decoder.table.entries()
    assert table == [(b":authority", b"www.example.com")], (
        f"Called decoder.table.entries(); returned {table!r}"
    )
    assert decoder.table.size == 57, (
        f"Called decoder.table.size; returned {decoder.table.size}; expected 57"
    )


def test_encode_first_request_c41():
    got = Encoder(huffman=True).encode(REQUEST)
    assert got == BLOCK, (
        f"Called Encoder(huffman=True).encode(C.4.1 headers); returned {got.hex()}; expected {BLOCK.hex()}"
    )


def test_round_trip_with_a_never_indexed_secret():
    encoder, decoder = Encoder(), Decoder()
    headers = [(b":method", b"GET"), NeverIndexed(b"authorization", b"Bearer abc")]
    for _ in range(2):
        got = decoder.decode(encoder.encode(headers))
        assert got == headers, (
            f"Called decoder.decode(encoder.encode({headers!r})); returned {got!r}"
        )
        assert isinstance(got[1], NeverIndexed), (
            f"the secret came back as {type(got[1]).__name__}, not NeverIndexed"
        )
    assert encoder.table.entries() == [], (
        f"the encoder's table holds {encoder.table.entries()!r}; expected []"
    )


def test_index_zero_is_an_error():
    with pytest.raises(HPACKError):
        Decoder().decode(b"\x80")
