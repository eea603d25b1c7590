"""Message framing over a byte stream: length-prefixed frames and lines, sans-IO.

Read README.md first. TCP delivers bytes, not messages: one send() may arrive in several
recv() calls, and several send() calls may arrive in one. A framing puts the message
boundaries back. Nothing here touches a socket: a decoder is fed whatever bytes the network
produced and returns every frame those bytes completed.

Two framings:

* length prefix: a 4-byte UNSIGNED BIG-ENDIAN length, then that many payload bytes;
* lines: the payload, then b"\\n". One b"\\r" right before the b"\\n" belongs to the
  terminator (b"\\r\\n", as in SMTP); a b"\\r" anywhere else is payload.

The exception classes and constants below are complete; the functions and methods are yours.
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

    ``encode_length_prefixed(b"hello") == b"\\x00\\x00\\x00\\x05hello"``.
    Raises FrameTooLarge if the payload is longer than ``max_frame`` bytes.
    """
    # TODO: a payload of exactly max_frame bytes is allowed; one byte more is not.
    # TODO: return bytes (not bytearray).
    raise NotImplementedError


class LengthPrefixDecoder:
    """Split a byte stream of length-prefixed frames back into payloads."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        """``max_frame``: the largest payload accepted, in bytes (the header not counted)."""
        # TODO: keep max_frame and an empty receive buffer (a bytearray).
        raise NotImplementedError

    def feed(self, data: BytesLike) -> list[bytes]:
        """Add ``data`` (any bytes-like object) from the stream; return all frames now complete.

        Returns the payloads in stream order, as ``bytes``; [] when no frame completed.
        Raises FrameTooLarge as soon as a header announces more than ``max_frame`` bytes.
        """
        # TODO: data may hold no frame, part of one, or many (coalesced): return them ALL.
        # TODO: keep every byte after the last complete frame: it starts the next frame.
        # TODO: check the limit right after reading a header, before any of the body arrives.
        # TODO: no quadratic copying: never re-copy the whole buffer per feed or per frame
        #       (walk it with an offset; drop the consumed bytes once at the end).
        raise NotImplementedError

    def eof(self) -> None:
        """The stream ended (recv() returned b""). Raises TruncatedFrame if part of a
        frame (header or body) is still buffered; returns None otherwise."""
        raise NotImplementedError


# -- line-delimited frames --------------------------------------------------------------------


def encode_line(payload: BytesLike, max_line: int = DEFAULT_MAX_LINE) -> bytes:
    """Frame ``payload`` as a line: the payload, then ``b"\\n"``.

    Raises FramingError if the payload contains ``b"\\n"`` or ends with ``b"\\r"`` (it would
    read back without it), and FrameTooLarge if it is longer than ``max_line`` bytes.
    """
    # TODO: a b"\r" in the middle of the payload is fine; only a final one is ambiguous.
    raise NotImplementedError


class LineDecoder:
    """Split a byte stream of ``\\n``-terminated lines (``\\r\\n`` accepted) into payloads."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        """``max_line``: the longest payload accepted, in bytes (the terminator not counted)."""
        raise NotImplementedError

    def feed(self, data: BytesLike) -> list[bytes]:
        """Add ``data`` (any bytes-like object) from the stream; return all lines now complete.

        Returns the payloads (terminator removed) in stream order, as ``bytes``.
        Raises FrameTooLarge as soon as a line is known to be longer than ``max_line``.
        """
        # TODO: strip b"\n", and one b"\r" right before it; keep any other b"\r".
        # TODO: a b"\r\n" may arrive split: b"...\r" in one feed, b"\n" in the next.
        # TODO: raise as soon as more than max_line bytes are buffered without a b"\n" (a
        #       final b"\r" does not count yet: it may be half of b"\r\n"), and for a
        #       complete line longer than max_line.
        # TODO: don't search the whole buffer for b"\n" again on every feed: remember how
        #       far you already looked (a long line arriving in small pieces is the case).
        raise NotImplementedError

    def eof(self) -> None:
        """The stream ended. Raises TruncatedFrame if a line without its ``\\n`` is buffered."""
        raise NotImplementedError
