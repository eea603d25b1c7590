"""Hidden specs for buffering cost: decoding is linear in the bytes, whatever the chunking.

Each spec feeds the same amount of data twice: as STREAMS independent short streams (the
linear baseline, measured in the same run) and as one long stream. See _helpers.assert_linear.
"""

from __future__ import annotations

import pytest
from _helpers import STREAMS, assert_linear, frame, in_pieces
from message_framing import LengthPrefixDecoder, LineDecoder

# Bytes in the long stream; each short one has 1 / STREAMS of them. Not more: a quadratic
# decoder cannot be cut off in the middle of a feed(), and its baseline is slow too.
# A long line is bigger: searching for b"\n" again is fast (memchr), so rescanning shows
# clearly only on a longer line.
SIZE = 2 << 20  # 2 MiB; the short streams hold 32 KiB each
LINE_SIZE = 4 << 20  # 4 MiB; the short streams hold 64 KiB each


def chunked(make_stream, size: int) -> tuple[list[bytes], list[list[bytes]]]:
    """One stream of ``size`` bytes, and STREAMS streams of ``size // STREAMS`` bytes."""
    return make_stream(size), [make_stream(size // STREAMS) for _ in range(STREAMS)]


@pytest.mark.points(2)
def test_one_big_frame_in_small_chunks_is_linear():
    """A big frame arriving in 64-byte reads costs time linear in its size, not quadratic."""
    whole, parts = chunked(lambda size: in_pieces(frame(b"x" * (size - 4)), 64), SIZE)
    assert_linear(
        "a length-prefixed frame in 64-byte reads",
        lambda: LengthPrefixDecoder(max_frame=SIZE),
        whole,
        parts,
        whole_frames=1,
        part_frames=1,
    )


@pytest.mark.points(2)
def test_many_frames_in_one_read_is_linear():
    """Many small frames arriving in one read cost time linear in their number."""
    whole, parts = chunked(lambda size: [frame(b"f" * 60) * (size // 64)], SIZE)
    assert_linear(
        "one read of many 64-byte frames",
        LengthPrefixDecoder,
        whole,
        parts,
        whole_frames=SIZE // 64,
        part_frames=SIZE // 64 // STREAMS,
    )


@pytest.mark.points(2)
def test_one_long_line_in_small_chunks_is_linear():
    """A long line arriving in 64-byte reads costs time linear in its length, not quadratic."""
    whole, parts = chunked(lambda size: in_pieces(b"x" * (size - 1) + b"\n", 64), LINE_SIZE)
    assert_linear(
        "a long line in 64-byte reads",
        lambda: LineDecoder(max_line=LINE_SIZE),
        whole,
        parts,
        whole_frames=1,
        part_frames=1,
    )


@pytest.mark.points(2)
def test_many_lines_in_one_read_is_linear():
    """Many short lines arriving in one read cost time linear in their number."""
    whole, parts = chunked(lambda size: [(b"l" * 63 + b"\n") * (size // 64)], SIZE)
    assert_linear(
        "one read of many 64-byte lines",
        LineDecoder,
        whole,
        parts,
        whole_frames=SIZE // 64,
        part_frames=SIZE // 64 // STREAMS,
    )
