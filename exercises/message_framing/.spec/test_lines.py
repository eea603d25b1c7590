"""Hidden specs for line-delimited frames: LF and CRLF, any chunking, limits, truncation."""

from __future__ import annotations

import pytest
from _helpers import (
    cut,
    cuts,
    examples,
    expect_raise,
    expect_return,
    feed_all,
    show_chunks,
)
from hypothesis import example, given
from hypothesis import strategies as st
from message_framing import FrameTooLarge, FramingError, LineDecoder, TruncatedFrame, encode_line

from grader.spectools import called, short

# Streams built from pieces that stress the terminator: bare \r, \r\n, \n, and other bytes.
pieces = st.sampled_from([b"a", b"z", b"\x00", b"\xff", b" ", b"\r", b"\n", b"\r\n", b"\r\r"])
streams = st.lists(pieces, max_size=30).map(lambda ps: b"".join(ps) + b"\n")
line_payloads = (
    st.binary(max_size=30)
    .map(lambda b: b.replace(b"\n", b"N"))
    .filter(lambda b: not b.endswith(b"\r"))
)


def oracle_lines(stream: bytes) -> list[bytes]:
    """The lines of a stream that ends with \\n: split at \\n, drop one \\r before each \\n."""
    return [line[:-1] if line.endswith(b"\r") else line for line in stream.split(b"\n")[:-1]]


def decode(stream: bytes, max_line: int = 1000) -> tuple[str, list[bytes]]:
    call = f"LineDecoder(max_line={max_line}).feed({short(stream, 80)})"
    return call, expect_return(call, LineDecoder(max_line=max_line).feed, stream)


# -- the wire format --------------------------------------------------------------------------


@pytest.mark.points(2)
def test_lines_end_at_newline():
    """feed(b"hello\\nworld\\n") returns [b"hello", b"world"]: the \\n is not part of the payload."""
    call, got = decode(b"hello\nworld\n")
    assert got == [b"hello", b"world"], called(call, got, [b"hello", b"world"])
    assert all(type(line) is bytes for line in got), called(
        call, [type(line).__name__ for line in got], ["bytes", "bytes"]
    )


@pytest.mark.points(2)
def test_crlf_is_a_terminator_too():
    """A \\r right before the \\n belongs to the terminator, also when the two arrive apart."""
    call, got = decode(b"EHLO example.com\r\nQUIT\n")
    assert got == [b"EHLO example.com", b"QUIT"], called(call, got, [b"EHLO example.com", b"QUIT"])
    decoder = LineDecoder()
    got1 = expect_return("feed(b'PING\\r')", decoder.feed, b"PING\r")
    got2 = expect_return("then feed(b'\\n')", decoder.feed, b"\n")
    assert (got1, got2) == ([], [b"PING"]), called(
        "feed(b'PING\\r') then feed(b'\\n')", (got1, got2), ([], [b"PING"])
    )


@pytest.mark.points(2)
def test_cr_anywhere_else_is_payload():
    """A \\r that is not right before the \\n is an ordinary payload byte, kept as it is."""
    cases = [
        (b"a\rb\r\n", [b"a\rb"]),
        (b"\r\r\n", [b"\r"]),
        (b"\rstart\n", [b"\rstart"]),
        (b"two\r\r\n", [b"two\r"]),
    ]
    for stream, want in cases:
        call, got = decode(stream)
        assert got == want, called(call, got, want)
    decoder = LineDecoder()
    got1 = expect_return("feed(b'x\\r')", decoder.feed, b"x\r")
    got2 = expect_return("then feed(b'y\\n')", decoder.feed, b"y\n")
    assert (got1, got2) == ([], [b"x\ry"]), called(
        "feed(b'x\\r') then feed(b'y\\n')", (got1, got2), ([], [b"x\ry"])
    )


@pytest.mark.points(1)
def test_empty_lines():
    """Empty lines are frames too: b"\\n\\r\\n\\n" is three empty payloads."""
    call, got = decode(b"\n\r\n\n")
    assert got == [b"", b"", b""], called(call, got, [b"", b"", b""])


# -- a stream, not messages -------------------------------------------------------------------


@examples(120)
@given(stream=streams, cut_at=cuts)
@example(stream=b"\n", cut_at=[]).via("one empty line, one read")
@example(stream=b"a\r\n", cut_at=[2]).via("\\r and \\n in different reads")
@example(stream=b"\r\n", cut_at=[1]).via("an empty CRLF line split at its \\r")
@example(stream=b"x\r\r\n", cut_at=[2, 3]).via("\\r\\r\\n, each byte alone")
@example(stream=b"ab\ncd\n", cut_at=[3]).via("a cut right after a \\n")
@example(stream=b"ab\r\ncd\n", cut_at=[0, 0, 4, 4, 7, 7]).via("empty reads everywhere")
@example(stream=b"a\rb\r\n\n", cut_at=list(range(7))).via("one byte per read")
@example(stream=b" a \r\n\tb\t\n\x00\n", cut_at=[]).via("spaces, tabs and NUL are payload")
@pytest.mark.points(4)
def test_any_chunking_gives_the_same_lines(stream, cut_at):
    """However the stream is split into reads (or coalesced), the decoder returns the same lines."""
    want = oracle_lines(stream)
    chunks = cut(stream, cut_at)
    decoder = LineDecoder()
    call = f"feed() for each chunk of {show_chunks(chunks)}"
    got = expect_return(call, feed_all, decoder, chunks)
    assert got == want, called(call, got, want)
    expect_return("eof() after the last complete line", decoder.eof)


@pytest.mark.points(1)
def test_bytes_after_a_line_are_kept_for_the_next():
    """Bytes after a newline are kept: they start the next line."""
    decoder = LineDecoder()
    got1 = expect_return("feed(b'ab\\ncd')", decoder.feed, b"ab\ncd")
    got2 = expect_return("then feed(b'e')", decoder.feed, b"e")
    got3 = expect_return("then feed(b'\\r\\nf\\n')", decoder.feed, b"\r\nf\n")
    want = ([b"ab"], [], [b"cde", b"f"])
    assert (got1, got2, got3) == want, called(
        "feed(b'ab\\ncd'), feed(b'e'), feed(b'\\r\\nf\\n')", (got1, got2, got3), want
    )


@examples(80)
@given(payload_list=st.lists(line_payloads, max_size=10), cut_at=cuts)
@example(payload_list=[], cut_at=[]).via("nothing at all")
@example(payload_list=[b""], cut_at=[]).via("one empty line")
@example(payload_list=[b"a\rb", b""], cut_at=[2, 3]).via("a \\r inside, cut around it")
@example(payload_list=[b"x", b"y"], cut_at=[1, 2, 3]).via("one byte per read")
@pytest.mark.points(2)
def test_round_trip(payload_list, cut_at):
    """Lines made by encode_line decode back to the same payloads, \\r in the middle included."""
    decoder = LineDecoder()
    parts = [expect_return(f"encode_line({short(p)})", encode_line, p) for p in payload_list]
    chunks = cut(b"".join(parts), cut_at)
    call = f"feed() for each chunk of {show_chunks(chunks)}"
    got = expect_return(call, feed_all, decoder, chunks)
    assert got == payload_list, called(call, got, payload_list)


# -- the encoder ------------------------------------------------------------------------------


@pytest.mark.points(1)
def test_encode_line_appends_newline():
    """encode_line(payload) is the payload followed by b"\\n"."""
    for payload in (b"hello", b"", b"a\rb", b"\x00\xff"):
        got = expect_return(f"encode_line({payload!r})", encode_line, payload)
        assert got == payload + b"\n", called(f"encode_line({payload!r})", got, payload + b"\n")
        assert type(got) is bytes, called(f"encode_line({payload!r})", type(got).__name__, "bytes")


@pytest.mark.points(2)
def test_encode_line_rejects_payloads_it_cannot_frame():
    """encode_line raises FramingError for a payload holding \\n or ending with \\r."""
    for payload in (b"a\nb", b"\n", b"end\n", b"cr at end\r", b"\r"):
        expect_raise(FramingError, f"encode_line({payload!r})", encode_line, payload)


@pytest.mark.parametrize(
    "size", [4, 5, 6], ids=["max_line - 1 bytes", "max_line bytes", "max_line + 1 bytes"]
)
@pytest.mark.points(1)
def test_encode_line_enforces_max_line(size):
    """encode_line accepts a payload of up to max_line bytes and raises FrameTooLarge above."""
    call = f"encode_line(b'x' * {size}, max_line=5)"
    if size > 5:
        expect_raise(FrameTooLarge, call, encode_line, b"x" * size, max_line=5)
        return
    got = expect_return(call, encode_line, b"x" * size, max_line=5)
    assert got == b"x" * size + b"\n", called(call, got, b"x" * size + b"\n")


# -- limits -----------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_long_line_raises_before_its_newline_arrives():
    """With no newline yet, FrameTooLarge comes with the first byte beyond max_line."""
    decoder = LineDecoder(max_line=5)
    for i in range(5):
        got = expect_return(f"LineDecoder(max_line=5): feed(b'a') #{i + 1}", decoder.feed, b"a")
        assert got == [], called(f"LineDecoder(max_line=5): feed(b'a') #{i + 1}", got, [])
    expect_raise(
        FrameTooLarge, "LineDecoder(max_line=5): feed(b'a') #6, no newline yet", decoder.feed, b"a"
    )


# (stream, whether LineDecoder(max_line=5).feed(stream) must raise FrameTooLarge), by id.
COMPLETE_LINES = {
    "max_line - 1 bytes": (b"abcd\n", False),
    "max_line bytes": (b"abcde\n", False),
    "max_line bytes, CRLF": (b"abcde\r\n", False),
    "max_line + 1 bytes": (b"abcdef\n", True),
    "max_line + 1 bytes, CRLF": (b"abcdef\r\n", True),
    "max_line bytes and a \\r of payload, CRLF": (b"abcde\r\r\n", True),
    "max_line + 1 bytes after a good line": (b"ok\nabcdef\n", True),
}
UNTERMINATED = {
    "max_line - 1 bytes": (b"abcd", False),
    "max_line bytes": (b"abcde", False),
    "max_line bytes and a final \\r": (b"abcde\r", False),
    "max_line + 1 bytes": (b"abcdef", True),
    "max_line bytes, then \\r\\r (the first is payload)": (b"abcde\r\r", True),
    "max_line + 1 bytes after a good line": (b"ok\nabcdef", True),
}


def check_limit(stream: bytes, too_long: bool, want: list[bytes]) -> None:
    call = f"LineDecoder(max_line=5).feed({stream!r})"
    if too_long:
        expect_raise(FrameTooLarge, call, LineDecoder(max_line=5).feed, stream)
        return
    got = expect_return(call, LineDecoder(max_line=5).feed, stream)
    assert got == want, called(call, got, want)


@pytest.mark.parametrize("stream, too_long", COMPLETE_LINES.values(), ids=list(COMPLETE_LINES))
@pytest.mark.points(1)
def test_complete_line_limit(stream, too_long):
    """A complete line may hold max_line bytes (its \\r\\n not counted); one more raises FrameTooLarge."""
    check_limit(stream, too_long, oracle_lines(stream))


@pytest.mark.parametrize("stream, too_long", UNTERMINATED.values(), ids=list(UNTERMINATED))
@pytest.mark.points(1)
def test_unterminated_line_limit(stream, too_long):
    """Without its newline a line may hold max_line bytes plus one final \\r; one more byte raises FrameTooLarge."""
    check_limit(stream, too_long, [])


@pytest.mark.points(2)
def test_line_exactly_at_max_is_accepted_byte_by_byte():
    """A line of exactly max_line bytes is accepted when it arrives one byte per read, \\r\\n included."""
    for stream in (b"abcde\n", b"abcde\r\n"):
        decoder = LineDecoder(max_line=5)
        call = f"LineDecoder(max_line=5): feed() of each byte of {stream!r}"
        got = expect_return(
            call, feed_all, decoder, [stream[i : i + 1] for i in range(len(stream))]
        )
        assert got == [b"abcde"], called(call, got, [b"abcde"])


@pytest.mark.points(1)
def test_max_line_zero_allows_empty_lines():
    """LineDecoder(max_line=0) accepts empty lines, with \\n or \\r\\n."""
    call, got = decode(b"\n\r\n", max_line=0)
    assert got == [b"", b""], called(call, got, [b"", b""])


# -- the end of the stream --------------------------------------------------------------------


@pytest.mark.points(2)
def test_eof_inside_a_line_raises_truncated():
    """eof() raises TruncatedFrame when a line without its newline is still buffered."""
    for leftover in (b"abc", b"abc\r", b"\r", b"x"):
        decoder = LineDecoder()
        stream = b"done\n" + leftover
        got = expect_return(f"feed({stream!r})", decoder.feed, stream)
        assert got == [b"done"], called(f"feed({stream!r})", got, [b"done"])
        call = f"eof() after feed({stream!r})"
        err = expect_raise(TruncatedFrame, call, decoder.eof)
        assert isinstance(err, FramingError), called(call, type(err).__mro__, "a FramingError")


@pytest.mark.points(1)
def test_eof_after_a_newline_is_clean():
    """eof() returns quietly when the stream ended right after a newline (or carried nothing)."""
    expect_return("LineDecoder().eof() with nothing fed", LineDecoder().eof)
    decoder = LineDecoder()
    feed_all(decoder, [b"a\r", b"\nb", b"c\n"])
    expect_return("eof() after feed(b'a\\r'), feed(b'\\nb'), feed(b'c\\n')", decoder.eof)
