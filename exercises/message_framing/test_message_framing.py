"""Examples of working framings. Run them with `nox -s try -- message_framing`."""

import pytest

try:
    from message_framing import (
        FrameTooLarge,
        FramingError,
        LengthPrefixDecoder,
        LineDecoder,
        TruncatedFrame,
        encode_length_prefixed,
        encode_line,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import the decoders, encoders and errors from "
        "message_framing.py"
    ) from err


def test_length_prefix_is_four_big_endian_bytes():
    got = encode_length_prefixed(b"hello")
    assert got == b"\x00\x00\x00\x05hello", (
        f"Called encode_length_prefixed(b'hello'); returned {got!r}; "
        "expected b'\\x00\\x00\\x00\\x05hello'"
    )


def test_one_read_may_hold_several_frames_and_a_half():
    decoder = LengthPrefixDecoder()
    got = decoder.feed(b"\x00\x00\x00\x02hi\x00\x00\x00\x00\x00\x00\x00\x05wor")
    assert got == [b"hi", b""], f"Called feed(...); returned {got!r}; expected [b'hi', b'']"
    got = decoder.feed(b"ld")
    assert got == [b"world"], f"Called feed(b'ld') next; returned {got!r}; expected [b'world']"


def test_one_frame_may_need_several_reads():
    decoder = LengthPrefixDecoder()
    got = [decoder.feed(b"\x00\x00"), decoder.feed(b"\x00\x03a"), decoder.feed(b"bc")]
    assert got == [[], [], [b"abc"]], f"Called feed() three times; returned {got!r}"


def test_oversize_header_is_refused_before_its_body():
    decoder = LengthPrefixDecoder(max_frame=100)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x00\x00\x01\x00")  # announces 256 bytes; none of them sent yet


def test_stream_ending_inside_a_frame_is_truncated():
    decoder = LengthPrefixDecoder()
    decoder.feed(b"\x00\x00\x00\x05hel")
    with pytest.raises(TruncatedFrame):
        decoder.eof()


def test_lines_lf_and_crlf():
    decoder = LineDecoder()
    got = decoder.feed(b"HELO example.com\r\nNOOP\nQUI")
    assert got == [b"HELO example.com", b"NOOP"], f"Called feed(...); returned {got!r}"
    got = decoder.feed(b"T\r")
    assert got == [], f"Called feed(b'T\\r'); returned {got!r}; expected [] (no newline yet)"
    got = decoder.feed(b"\n")
    assert got == [b"QUIT"], f"Called feed(b'\\n'); returned {got!r}; expected [b'QUIT']"


def test_line_without_newline_is_refused_past_the_limit():
    decoder = LineDecoder(max_line=8)
    assert decoder.feed(b"12345678") == [], "8 bytes without a newline are still allowed"
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"9")


def test_encode_line():
    assert encode_line(b"a\rb") == b"a\rb\n", "Called encode_line(b'a\\rb'); expected b'a\\rb\\n'"
    with pytest.raises(FramingError):
        encode_line(b"two\nlines")
