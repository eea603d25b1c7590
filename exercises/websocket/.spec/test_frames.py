"""Hidden specs for encode_frame: the RFC 6455 §5.7 examples, and websockets' serializer as the
oracle for every length form."""

from __future__ import annotations

import pytest
from _helpers import BINARY, CLOSE, PING, PONG, TEXT, oracle_frame, parse_frames
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websocket import encode_frame

from grader.spectools import called, short, step


def encode(opcode: int, payload: bytes, **options) -> bytes:
    label = f"encode_frame({opcode}, {short(payload, 40)}{''.join(f', {k}={v!r}' for k, v in options.items())})"
    with step(label):
        return encode_frame(opcode, payload, **options)


@pytest.mark.points(2)
def test_rfc_examples():
    """encode_frame writes the RFC's examples: unmasked "Hello" is 81 05 48 65 6c 6c 6f, and
    masked with 37 fa 21 3d it is 81 85 37 fa 21 3d 7f 9f 4d 51 58 (RFC 6455 §5.7)."""
    plain = encode(TEXT, b"Hello")
    assert plain.hex() == "810548656c6c6f", called(
        'encode_frame(TEXT, b"Hello")', plain.hex(), "810548656c6c6f"
    )
    mask = bytes.fromhex("37fa213d")
    hidden = encode(TEXT, b"Hello", mask=mask)
    assert hidden.hex() == "818537fa213d7f9f4d5158", called(
        'encode_frame(TEXT, b"Hello", mask=37fa213d)', hidden.hex(), "818537fa213d7f9f4d5158"
    )


@pytest.mark.points(1)
def test_rfc_fragmented_and_control_examples():
    """encode_frame writes the RFC's fragmented "Hel"+"lo" and its unmasked Ping "Hello" (RFC 6455 §5.7)."""
    first = encode(TEXT, b"Hel", fin=False)
    last = encode(0, b"lo")
    ping = encode(PING, b"Hello")
    got = (first.hex(), last.hex(), ping.hex())
    want = ("010348656c", "80026c6f", "890548656c6c6f")
    assert got == want, called(
        'encode_frame(TEXT, "Hel", fin=False), (CONT, "lo"), (PING, "Hello")', got, want
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "size",
    [0, 1, 125, 126, 127, 65535, 65536, 70000],
    ids=[
        "0",
        "1",
        "125-last-7-bit",
        "126-first-16-bit",
        "127",
        "65535-last-16-bit",
        "65536-first-64-bit",
        "70000",
    ],
)
def test_length_uses_the_shortest_form(size):
    """Payload lengths use the shortest of the 7-bit, 16-bit and 64-bit forms: 0-125 in 7 bits,
    126-65535 in 16, larger in 64 (RFC 6455 §5.2), byte for byte as websockets writes them."""
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    got = encode(BINARY, payload)
    want = oracle_frame(BINARY, payload)
    assert got == want, called(
        f"encode_frame(BINARY, <{size} bytes>) header", got[:10].hex(), want[:10].hex()
    )


@pytest.mark.points(2)
@settings(max_examples=60)
@given(
    opcode=st.sampled_from([0, TEXT, BINARY, CLOSE, PING, PONG]),
    payload=st.binary(max_size=300),
    fin=st.booleans(),
)
@example(opcode=PONG, payload=b"", fin=True)
@example(opcode=BINARY, payload=b"\x00" * 125, fin=False)
@example(opcode=BINARY, payload=b"\xff" * 126, fin=True)
def test_unmasked_frames_match_websockets(opcode, payload, fin):
    """Every server frame (unmasked) is byte for byte the one websockets serializes (RFC 6455 §5.2)."""
    if opcode >= CLOSE:
        payload, fin = payload[:125], True
    got = encode(opcode, payload, fin=fin)
    want = oracle_frame(opcode, payload, fin)
    assert got == want, called(
        f"encode_frame({opcode}, {short(payload, 30)}, fin={fin})", short(got, 60), short(want, 60)
    )


@pytest.mark.points(1)
@settings(max_examples=60)
@given(payload=st.binary(max_size=200), mask=st.binary(min_size=4, max_size=4))
@example(payload=b"", mask=b"\x00\x00\x00\x00")
@example(payload=b"abcde", mask=b"\xff\xff\xff\xff")
def test_masking_xors_with_the_key_repeated(payload, mask):
    """A masked frame carries the 4-byte key after the length and the payload XORed with it,
    byte i with key[i % 4] (RFC 6455 §5.3)."""
    got = encode(BINARY, payload, mask=mask)
    header = oracle_frame(BINARY, payload)[: -len(payload) or None]
    header = bytes([header[0], header[1] | 0x80]) + header[2:]
    want = header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert got == want, called(
        f"encode_frame(BINARY, {short(payload, 30)}, mask={mask.hex()})",
        short(got, 60),
        short(want, 60),
    )


@pytest.mark.points(1)
def test_frames_read_back_with_websockets():
    """Frames from encode_frame read back as the same opcode, payload and FIN with the websockets parser."""
    data = (
        encode(TEXT, "caf\u00e9".encode(), fin=False)
        + encode(0, b"!")
        + encode(CLOSE, b"\x03\xe8bye")
    )
    frames = parse_frames(data, "three frames from encode_frame")
    got = [(f.opcode, f.data, f.fin) for f in frames]
    want = [(TEXT, "caf\u00e9".encode(), False), (0, b"!", True), (CLOSE, b"\x03\xe8bye", True)]
    assert got == want, called("encode_frame x3, parsed by websockets", got, want)
