"""MUTANT: the line decoder deletes every CR in a line, not only the one right before the LF

A copy of the reference solution with that one mistake: a payload that carries a CR in
its middle comes back without it.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_LINE",
    "HEADER_SIZE",
    "FrameTooLarge",
    "FramingError",
    "LengthPrefixDecoder",
    "LineDecoder",
    "TruncatedFrame",
    "encode_length_prefixed",
    "encode_line",
]

HEADER_SIZE = 4  # bytes of the length prefix
MAX_LENGTH = 2**32 - 1  # the largest length 4 unsigned bytes can say
DEFAULT_MAX_FRAME = 4 * 1024 * 1024  # 4 MiB, gRPC's default limit for a received message
DEFAULT_MAX_LINE = 64 * 1024  # 64 KiB, Redis's limit for an inline command

BytesLike = bytes | bytearray | memoryview


class FramingError(ValueError):
    """The byte stream does not follow the framing; the connection should be closed."""


class FrameTooLarge(FramingError):
    """A frame is (or will be) longer than the configured maximum."""


class TruncatedFrame(FramingError):
    """The stream ended in the middle of a frame."""


# -- length-prefixed frames -------------------------------------------------------------------


def encode_length_prefixed(payload: BytesLike, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Frame ``payload``: its length as 4 unsigned big-endian bytes, then the payload.

    Raises FrameTooLarge if the payload is longer than ``max_frame`` bytes (or than the
    4 GiB - 1 that four bytes can express).
    """
    size = len(payload)
    if size > max_frame or size > MAX_LENGTH:
        raise FrameTooLarge(f"payload of {size} bytes exceeds the maximum of {max_frame}")
    return size.to_bytes(HEADER_SIZE, "big") + bytes(payload)


class LengthPrefixDecoder:
    """Split a byte stream of length-prefixed frames back into payloads."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        """``max_frame``: the largest payload accepted, in bytes (the header not counted)."""
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: BytesLike) -> list[bytes]:
        """Add ``data`` from the stream; return the payloads of all frames now complete.

        Raises FrameTooLarge as soon as a header announces more than ``max_frame`` bytes,
        before any of that body has arrived.
        """
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0  # where the next unread frame begins
        while len(buffer) - start >= HEADER_SIZE:
            length = int.from_bytes(buffer[start : start + HEADER_SIZE], "big")
            if length > self.max_frame:
                # Refuse now: waiting for the body would let the peer fill our memory.
                raise FrameTooLarge(
                    f"header announces a {length}-byte frame; the maximum is {self.max_frame}"
                )
            end = start + HEADER_SIZE + length
            if len(buffer) < end:
                break  # the body is still on its way; keep the header for the next feed
            frames.append(bytes(buffer[start + HEADER_SIZE : end]))
            start = end
        # One deletion per feed, not one per frame: consumed bytes leave the buffer together.
        del buffer[:start]
        return frames

    def eof(self) -> None:
        """The stream ended. Raises TruncatedFrame if part of a frame is still buffered."""
        if self._buffer:
            raise TruncatedFrame(
                f"stream ended with {len(self._buffer)} bytes of an incomplete frame buffered"
            )


# -- line-delimited frames --------------------------------------------------------------------


def encode_line(payload: BytesLike, max_line: int = DEFAULT_MAX_LINE) -> bytes:
    """Frame ``payload`` as a line: the payload, then ``\\n``.

    Raises FramingError if the payload contains ``\\n`` (it would end the line early) or
    ends with ``\\r`` (the decoder would take it for half of ``\\r\\n`` and drop it), and
    FrameTooLarge if it is longer than ``max_line`` bytes.
    """
    data = bytes(payload)
    if b"\n" in data:
        raise FramingError("a line payload cannot contain b'\\n'")
    if data.endswith(b"\r"):
        raise FramingError("a line payload cannot end with b'\\r': it would read back as CRLF")
    if len(data) > max_line:
        raise FrameTooLarge(f"line of {len(data)} bytes exceeds the maximum of {max_line}")
    return data + b"\n"


class LineDecoder:
    """Split a byte stream of ``\\n``-terminated lines (``\\r\\n`` accepted) into payloads."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        """``max_line``: the longest payload accepted, in bytes (the terminator not counted)."""
        self.max_line = max_line
        self._buffer = bytearray()
        # Every byte before this index is known to hold no b"\n": a long line arriving in
        # small chunks is scanned once, not once per chunk (h11's _receivebuffer.py does this).
        self._scanned = 0

    def feed(self, data: BytesLike) -> list[bytes]:
        """Add ``data`` from the stream; return the payloads of all lines now complete.

        Raises FrameTooLarge as soon as a line is known to be longer than ``max_line``.
        """
        buffer = self._buffer
        buffer += data
        lines: list[bytes] = []
        start = 0  # where the next unread line begins
        search = self._scanned
        while (newline := buffer.find(b"\n", search)) >= 0:
            line = bytes(buffer[start:newline]).replace(b"\r", b"")  # every CR, anywhere
            if len(line) > self.max_line:
                raise FrameTooLarge(f"line of {len(line)} bytes exceeds {self.max_line}")
            lines.append(line)
            start = search = newline + 1
        del buffer[:start]
        self._scanned = len(buffer)
        # What is left is the start of a line with no b"\n" yet. A final b"\r" may be the
        # first half of b"\r\n", so it does not count against the limit yet.
        pending = len(buffer) - (1 if buffer.endswith(b"\r") else 0)
        if pending > self.max_line:
            raise FrameTooLarge(
                f"{pending} bytes without a newline exceed the maximum line of {self.max_line}"
            )
        return lines

    def eof(self) -> None:
        """The stream ended. Raises TruncatedFrame if an unterminated line is buffered."""
        if self._buffer:
            raise TruncatedFrame(
                f"stream ended inside a line: {len(self._buffer)} bytes without a newline"
            )
