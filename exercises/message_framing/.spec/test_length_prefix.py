"""Hidden specs for length-prefixed frames: wire vectors, any chunking, limits, truncation."""

from __future__ import annotations

import socket
import tracemalloc

import pytest
from _helpers import (
    cut,
    cuts,
    examples,
    expect_raise,
    expect_return,
    feed_all,
    frame,
    in_pieces,
    show_chunks,
)
from hypothesis import example, given
from hypothesis import strategies as st
from message_framing import (
    FrameTooLarge,
    FramingError,
    LengthPrefixDecoder,
    TruncatedFrame,
    encode_length_prefixed,
)

from grader.spectools import called, short

payloads = st.binary(max_size=64)
payload_lists = st.lists(payloads, max_size=10)


# -- the wire format --------------------------------------------------------------------------


@pytest.mark.points(2)
def test_encoder_writes_unsigned_big_endian_length():
    """encode_length_prefixed writes the payload length as 4 big-endian bytes, then the payload."""
    cases = [
        (b"hello", b"\x00\x00\x00\x05hello"),  # hand-written vector
        (b"", b"\x00\x00\x00\x00"),
        (b"x" * 300, b"\x00\x00\x01\x2c" + b"x" * 300),  # 300 = 0x012c: byte order shows
        (b"y" * 65536, b"\x00\x01\x00\x00" + b"y" * 65536),
    ]
    for payload, want in cases:
        call = f"encode_length_prefixed({short(payload, 40)})"
        got = expect_return(call, encode_length_prefixed, payload)
        assert got == want, called(call, got, want)
        assert type(got) is bytes, called(call, type(got).__name__, "bytes")


@pytest.mark.points(1)
def test_encoder_agrees_with_grpc_length_prefixed_message():
    """The 4-byte length is the one gRPC puts after its compressed flag (VECTORS.md, gRPC)."""
    # gRPC's Length-Prefixed-Message (grpc doc/PROTOCOL-HTTP2.md, VECTORS.md): 1 byte
    # compressed flag, 4 bytes big-endian length, message. Int32Value(150) is 089601.
    message = bytes.fromhex("089601")
    grpc_frame = b"\x00" + b"\x00\x00\x00\x03" + message
    call = "encode_length_prefixed(bytes.fromhex('089601'))"
    got = expect_return(call, encode_length_prefixed, message)
    assert got == grpc_frame[1:], called(call, got, grpc_frame[1:])
    decoder = LengthPrefixDecoder()
    call = f"LengthPrefixDecoder().feed({grpc_frame[1:]!r})"
    got = expect_return(call, decoder.feed, grpc_frame[1:])
    assert got == [message], called(call, got, [message])


@examples(60)
@given(payload=payloads)
@pytest.mark.points(1)
def test_encoder_agrees_with_struct_pack(payload):
    """For any payload, the encoding is struct.pack(">I", len(payload)) + payload."""
    call = f"encode_length_prefixed({short(payload)})"
    got = expect_return(call, encode_length_prefixed, payload)
    assert got == frame(payload), called(call, got, frame(payload))


@pytest.mark.points(2)
def test_decoder_reads_unsigned_big_endian_length():
    """feed(b"\\x00\\x00\\x00\\x05hello") returns [b"hello"]; a 300-byte frame decodes too."""
    cases = [
        b"\x00\x00\x00\x05hello",
        b"\x00\x00\x01\x2c" + bytes(range(256)) + b"z" * 44,
    ]
    for stream in cases:
        decoder = LengthPrefixDecoder()
        call = f"LengthPrefixDecoder().feed({short(stream, 60)})"
        got = expect_return(call, decoder.feed, stream)
        want = [stream[4:]]
        assert got == want, called(call, got, want)


@pytest.mark.points(1)
def test_header_is_unsigned():
    """The length is unsigned: b"\\xff\\xff\\xff\\xff" announces 4 GiB - 1 bytes, not -1."""
    call = "LengthPrefixDecoder().feed(b'\\xff\\xff\\xff\\xff')"
    err = expect_raise(FrameTooLarge, call, LengthPrefixDecoder().feed, b"\xff\xff\xff\xff")
    assert isinstance(err, FramingError), called(call, type(err).__mro__, "a FramingError")
    # With a limit that allows it, such a header means "wait for 4 GiB - 1 more bytes".
    decoder = LengthPrefixDecoder(max_frame=2**32 - 1)
    stream = b"\xff\xff\xff\xff" + b"x" * 10
    call = f"LengthPrefixDecoder(max_frame=2**32 - 1).feed({stream!r})"
    got = expect_return(call, decoder.feed, stream)
    assert got == [], called(call, got, [])


# -- a stream, not messages -------------------------------------------------------------------


@examples(120)
@given(payload_list=payload_lists, cut_at=cuts)
@example(payload_list=[], cut_at=[]).via("nothing at all")
@example(payload_list=[b""], cut_at=[]).via("one empty frame")
@example(payload_list=[b"x"], cut_at=[1, 2, 3, 4]).via("one byte per read")
@example(payload_list=[b"hello"], cut_at=[3]).via("the header split 3 + 1")
@example(payload_list=[b"hello"], cut_at=[4]).via("a cut right after the header")
@example(payload_list=[b"ab", b"cd"], cut_at=[6]).via("a cut on the frame boundary")
@example(payload_list=[b"ab", b"", b"cd"], cut_at=[0, 0, 6, 6, 14]).via("empty reads")
@pytest.mark.points(4)
def test_any_chunking_gives_the_same_frames(payload_list, cut_at):
    """However the stream is split into reads (or coalesced), the decoder returns the same frames."""
    stream = b"".join(frame(p) for p in payload_list)
    chunks = cut(stream, cut_at)
    decoder = LengthPrefixDecoder()
    call = f"feed() for each chunk of {show_chunks(chunks)}"
    got = expect_return(call, feed_all, decoder, chunks)
    assert got == payload_list, called(call, got, payload_list)
    expect_return("eof() after the last complete frame", decoder.eof)


@pytest.mark.points(2)
def test_every_coalesced_frame_is_returned():
    """One feed holding several frames returns all of them, in order."""
    payloads_in = [b"first", b"", b"second", b"\x00\x00\x00\x01"]
    stream = b"".join(frame(p) for p in payloads_in)
    decoder = LengthPrefixDecoder()
    call = f"LengthPrefixDecoder().feed({short(stream, 80)})"
    got = expect_return(call, decoder.feed, stream)
    assert got == payloads_in, called(call, got, payloads_in)
    got = expect_return("feed(b'') after that", decoder.feed, b"")
    assert got == [], called("feed(b'') after that", got, [])


@pytest.mark.points(2)
def test_frame_fed_one_byte_at_a_time():
    """Fed one byte at a time, a frame comes out exactly once: on the feed of its last byte."""
    stream = frame(b"hello") + frame(b"")
    decoder = LengthPrefixDecoder()
    results = [
        expect_return(f"feed({stream[i : i + 1]!r})", decoder.feed, stream[i : i + 1])
        for i in range(len(stream))
    ]
    want = [[]] * 8 + [[b"hello"]] + [[]] * 3 + [[b""]]
    assert results == want, called(f"feed() of each byte of {stream!r}", results, want)


@pytest.mark.points(2)
def test_bytes_after_a_frame_are_kept_for_the_next():
    """Bytes after a complete frame are kept: they start the next frame."""
    first, second = frame(b"alpha"), frame(b"beta-gamma")
    for at in (1, 4, 6):  # inside the next header, right after it, inside its body
        decoder = LengthPrefixDecoder()
        chunk1, chunk2 = first + second[:at], second[at:]
        got1 = expect_return(f"feed({chunk1!r})", decoder.feed, chunk1)
        got2 = expect_return(f"feed({chunk2!r}) next", decoder.feed, chunk2)
        assert (got1, got2) == ([b"alpha"], [b"beta-gamma"]), called(
            f"feed({chunk1!r}) then feed({chunk2!r})", (got1, got2), ([b"alpha"], [b"beta-gamma"])
        )


@pytest.mark.points(1)
def test_zero_length_frames():
    """A header of four zero bytes is a complete, empty frame."""
    stream = b"\x00\x00\x00\x00" * 3 + frame(b"x") + b"\x00\x00\x00\x00"
    decoder = LengthPrefixDecoder()
    call = f"LengthPrefixDecoder().feed({stream!r})"
    got = expect_return(call, decoder.feed, stream)
    assert got == [b"", b"", b"", b"x", b""], called(call, got, [b"", b"", b"", b"x", b""])


@examples(80)
@given(payload_list=payload_lists, cut_at=cuts)
@example(payload_list=[], cut_at=[]).via("nothing at all")
@example(payload_list=[b""], cut_at=[2]).via("an empty frame, its header split")
@example(payload_list=[b"\x00\x00\x00\x01"], cut_at=[4]).via("a payload that looks like a header")
@pytest.mark.points(2)
def test_round_trip(payload_list, cut_at):
    """Frames made by encode_length_prefixed decode back to the same payloads, in order."""
    decoder = LengthPrefixDecoder()
    parts = [
        expect_return(f"encode_length_prefixed({short(p)})", encode_length_prefixed, p)
        for p in payload_list
    ]
    chunks = cut(b"".join(parts), cut_at)
    call = f"feed() for each chunk of {show_chunks(chunks)}"
    got = expect_return(call, feed_all, decoder, chunks)
    assert got == payload_list, called(call, got, payload_list)


@pytest.mark.points(2)
def test_consumed_bytes_leave_the_buffer():
    """A decoder holds only the unfinished frame: bytes of frames it returned leave its buffer."""
    # Counted, not timed: tracemalloc measures the memory the decoder keeps between feeds.
    unit = frame(b"p" * 60)  # 64 bytes; every read ends 40 bytes into a frame
    read = unit[40:] + unit * 255 + unit[:40]  # 16 KiB: the end of one frame, 255, a start
    decoder = LengthPrefixDecoder()
    expect_return("feed() of the first 40 bytes of a frame", decoder.feed, unit[:40])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = 0
        for i in range(64):  # 1 MiB in all
            decoded += len(expect_return(f"feed() of 16 KiB read #{i + 2}", decoder.feed, read))
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 256 * 1024, (
        f"Called feed() 64 more times with 16 KiB reads of 64-byte frames (1 MiB in all); "
        f"the decoder's memory grew by {kept} bytes; expected it to keep only the unfinished "
        "frame (under 256 KiB): bytes of frames already returned must leave the buffer"
    )


@pytest.mark.points(1)
def test_returned_frames_are_independent_bytes():
    """Frames come back as bytes that later feeds never change; any bytes-like input is accepted."""
    decoder = LengthPrefixDecoder()
    first = expect_return("feed(bytearray(...))", decoder.feed, bytearray(frame(b"one")))
    assert [type(f).__name__ for f in first] == ["bytes"], called(
        "feed(bytearray(frame(b'one')))", [type(f).__name__ for f in first], ["bytes"]
    )
    second = expect_return("feed(memoryview(...))", decoder.feed, memoryview(frame(b"two") * 50))
    assert first == [b"one"] and second == [b"two"] * 50, called(
        "feed(bytearray(frame(b'one'))) then feed(memoryview(frame(b'two') * 50))",
        (first, second),
        ([b"one"], [b"two"] * 50),
    )


# -- limits -----------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_oversize_header_raises_before_the_body_arrives():
    """A header announcing more than max_frame raises FrameTooLarge at once, without the body."""
    call = "LengthPrefixDecoder(max_frame=10).feed(b'\\x00\\x00\\x00\\x0b')"
    err = expect_raise(
        FrameTooLarge, call, LengthPrefixDecoder(max_frame=10).feed, b"\x00\x00\x00\x0b"
    )
    assert isinstance(err, FramingError), called(call, type(err).__mro__, "a FramingError")
    # The header itself may arrive in pieces: the error comes with its last byte.
    decoder = LengthPrefixDecoder(max_frame=1000)
    got = expect_return(
        "LengthPrefixDecoder(max_frame=1000).feed(b'\\x00\\x00')", decoder.feed, b"\x00\x00"
    )
    assert got == [], called("LengthPrefixDecoder(max_frame=1000).feed(b'\\x00\\x00')", got, [])
    expect_raise(
        FrameTooLarge, "then feed(b'\\x10\\x00') (a 4096-byte frame)", decoder.feed, b"\x10\x00"
    )
    # A frame announced after good ones: the good ones are not the problem, the header is.
    decoder = LengthPrefixDecoder(max_frame=16)
    expect_raise(
        FrameTooLarge,
        "LengthPrefixDecoder(max_frame=16).feed(frame(b'ok') + b'\\x01\\x00\\x00\\x00')",
        decoder.feed,
        frame(b"ok") + b"\x01\x00\x00\x00",
    )


# (max_frame, payload size): at the limit, one below and one above, for several limits.
BOUNDARY = {
    f"max_frame={limit}, {name}": (limit, limit + offset)
    for limit in (0, 1, 10, 4096)
    for name, offset in (
        ("max_frame - 1 bytes", -1),
        ("max_frame bytes", 0),
        ("max_frame + 1 bytes", 1),
    )
    if limit + offset >= 0
}


@pytest.mark.parametrize("max_frame, size", BOUNDARY.values(), ids=list(BOUNDARY))
@pytest.mark.points(1)
def test_decoder_max_frame_boundary(max_frame, size):
    """The decoder accepts a frame of up to max_frame bytes and raises FrameTooLarge at max_frame + 1."""
    payload = b"m" * size
    call = f"LengthPrefixDecoder(max_frame={max_frame}).feed(a frame of {size} bytes)"
    if size > max_frame:
        expect_raise(
            FrameTooLarge, call, LengthPrefixDecoder(max_frame=max_frame).feed, frame(payload)
        )
        return
    got = expect_return(call, LengthPrefixDecoder(max_frame=max_frame).feed, frame(payload))
    assert got == [payload], called(call, got, [payload])


@pytest.mark.parametrize("max_frame, size", BOUNDARY.values(), ids=list(BOUNDARY))
@pytest.mark.points(1)
def test_encoder_max_frame_boundary(max_frame, size):
    """encode_length_prefixed accepts a payload of up to max_frame bytes and raises FrameTooLarge above."""
    payload = b"m" * size
    call = f"encode_length_prefixed({size} bytes, max_frame={max_frame})"
    if size > max_frame:
        expect_raise(FrameTooLarge, call, encode_length_prefixed, payload, max_frame=max_frame)
        return
    got = expect_return(call, encode_length_prefixed, payload, max_frame=max_frame)
    assert got == frame(payload), called(call, got, frame(payload))


# -- the end of the stream --------------------------------------------------------------------


@pytest.mark.points(2)
def test_eof_inside_a_frame_raises_truncated():
    """eof() raises TruncatedFrame when part of a header or body is still buffered."""
    for leftover in (b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x05", b"\x00\x00\x00\x05hell"):
        decoder = LengthPrefixDecoder()
        stream = frame(b"done") + leftover
        got = expect_return(f"feed({stream!r})", decoder.feed, stream)
        assert got == [b"done"], called(f"feed({stream!r})", got, [b"done"])
        call = f"eof() after feed({stream!r})"
        err = expect_raise(TruncatedFrame, call, decoder.eof)
        assert isinstance(err, FramingError), called(call, type(err).__mro__, "a FramingError")


@pytest.mark.points(1)
def test_eof_on_a_frame_boundary_is_clean():
    """eof() returns quietly when the stream ended between frames (or carried nothing)."""
    expect_return("LengthPrefixDecoder().eof() with nothing fed", LengthPrefixDecoder().eof)
    decoder = LengthPrefixDecoder()
    feed_all(decoder, in_pieces(frame(b"a") + frame(b"bc"), 3))
    expect_return("eof() after two complete frames fed in 3-byte pieces", decoder.eof)


@pytest.mark.points(2)
def test_frames_survive_a_real_socket():
    """Frames written to a real stream socket in odd-sized writes decode intact from recv()."""
    payload_list = [bytes([i]) * (i * 37 % 300) for i in range(40)]
    stream = b"".join(frame(p) for p in payload_list)
    sender, receiver = socket.socketpair()
    with sender, receiver:
        # Writes of 1, 2, 3, ... bytes: none lines up with a frame; the total fits the buffer.
        offset, size = 0, 1
        while offset < len(stream):
            sender.sendall(stream[offset : offset + size])
            offset, size = offset + size, size % 97 + 1
        sender.shutdown(socket.SHUT_WR)
        decoder, got, reads = LengthPrefixDecoder(), [], 0
        while chunk := receiver.recv(1000):
            reads += 1
            got.extend(expect_return(f"feed() of a {len(chunk)}-byte recv()", decoder.feed, chunk))
        expect_return("eof() once recv() returned b''", decoder.eof)
    assert got == payload_list, (
        called(
            f"feed() for each of {reads} recv() results",
            [len(p) for p in got],
            [len(p) for p in payload_list],
        )
        + " (frame lengths shown)"
    )
