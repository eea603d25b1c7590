"""An HTTP/2 server: a sans-IO connection (RFC 9113) and an asyncio h2c server on top of it.

``H2Connection`` owns no socket. Bytes from the client go in through ``receive_data``, which
returns events; what the server has to say goes into a buffer that ``data_to_send`` empties.
``H2Server`` is the thin asyncio adapter that runs an application over it.

Header blocks are compressed with your ``hpack_codec`` module from the hpack kata (it is
placed beside this file when the kata is graded). Standard library otherwise. See README.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from hpack_codec import Decoder, Encoder, HPACKError

__all__ = [
    "PREFACE",
    "ConnectionTerminated",
    "DataReceived",
    "ErrorCode",
    "Event",
    "FrameType",
    "H2Connection",
    "H2ConnectionError",
    "H2Server",
    "Request",
    "RequestReceived",
    "Response",
    "Setting",
    "StreamEnded",
    "StreamReset",
    "TrailersReceived",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # §3.4
MAX_WINDOW = 2**31 - 1  # §6.9.1
DEFAULT_WINDOW = 65_535  # §6.9.2
MIN_FRAME_SIZE = 2**14  # §4.2: the default (and smallest) SETTINGS_MAX_FRAME_SIZE
MAX_FRAME_SIZE = 2**24 - 1

# Flags (§6): END_STREAM and ACK share a bit, on different frame types.
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20


class FrameType(IntEnum):
    """Frame types of RFC 9113 §6."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class ErrorCode(IntEnum):
    """Error codes of RFC 9113 §7."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class Setting(IntEnum):
    """SETTINGS parameters of RFC 9113 §6.5.2."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


class H2ConnectionError(Exception):
    """A connection error (§5.4.1): GOAWAY with ``error_code`` is queued; the connection is over."""

    def __init__(self, error_code: ErrorCode, reason: str) -> None:
        super().__init__(f"{error_code.name}: {reason}")
        self.error_code = error_code
        self.reason = reason


# --- events -------------------------------------------------------------------------------------

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class RequestReceived:
    """A new stream opened with a well-formed request header block."""

    stream_id: int
    headers: Headers


@dataclass(frozen=True)
class DataReceived:
    """A piece of a request body. ``flow_controlled_length`` (padding included) is what to
    hand back to ``acknowledge_received_data`` once the data is consumed."""

    stream_id: int
    data: bytes
    flow_controlled_length: int


@dataclass(frozen=True)
class TrailersReceived:
    """The trailer fields that end a request."""

    stream_id: int
    headers: Headers


@dataclass(frozen=True)
class StreamEnded:
    """The client sent END_STREAM: the request is complete."""

    stream_id: int


@dataclass(frozen=True)
class StreamReset:
    """A stream ended abruptly: reset by the client (``remote``) or by us for a stream error."""

    stream_id: int
    error_code: int
    remote: bool


@dataclass(frozen=True)
class ConnectionTerminated:
    """The client sent GOAWAY."""

    error_code: int
    last_stream_id: int
    additional_data: bytes


Event = (
    RequestReceived
    | DataReceived
    | TrailersReceived
    | StreamEnded
    | StreamReset
    | ConnectionTerminated
)


# --- the connection -----------------------------------------------------------------------------


class H2Connection:
    """The server side of one HTTP/2 connection, sans IO.

    ``max_concurrent_streams``, ``initial_window_size`` and ``max_header_list_size`` are
    advertised in the server's SETTINGS and enforced once the client acknowledges them.
    More than ``max_resets`` streams reset by the client within ``reset_interval`` seconds of
    ``clock`` is the rapid-reset attack: GOAWAY with ENHANCE_YOUR_CALM.
    """

    def __init__(
        self,
        *,
        max_concurrent_streams: int = 100,
        initial_window_size: int = DEFAULT_WINDOW,
        max_header_list_size: int = 65_536,
        max_resets: int = 100,
        reset_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set up the connection and queue the server preface.

        TODO: queue the server connection preface: a SETTINGS frame with the three settings
              above (§3.4); it is the first thing data_to_send() returns.
        TODO: our settings bind the client only once it ACKs them (§6.5.3): until then, stream
              windows are 65,535 and there is no limit on concurrent streams.
        TODO: flow-control windows (§6.9): the connection's, both ways, start at 65,535
              whatever SETTINGS say; each stream's at the initial window size.
        TODO: an hpack Encoder (responses) and Decoder(max_header_list_size=...) (requests),
              one each for the whole connection.
        """
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Everything queued for the client since the last call (empty bytes if nothing)."""
        raise NotImplementedError

    @property
    def open_streams(self) -> int:
        """Streams that are open or half-closed (§5.1.2 counts both)."""
        raise NotImplementedError

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the client (any split); return the events they complete.

        A connection error queues GOAWAY (last stream id: the highest the client opened; the
        error code) and raises ``H2ConnectionError``; after that, input is ignored. A stream
        error queues RST_STREAM and returns ``StreamReset(remote=False)``.

        TODO: the client preface (§3.4), possibly a byte at a time; wrong bytes -> PROTOCOL_ERROR
              as soon as one differs. Then the first frame must be SETTINGS (not an ACK).
        TODO: frames (§4.1): 24-bit length, type, flags, 31-bit stream id (ignore the reserved
              bit). A frame longer than 16,384 -> FRAME_SIZE_ERROR before it has all arrived.
        TODO: unknown frame types and undefined flags are ignored (§4.1, §5.5) — except
              inside a header block: HEADERS without END_HEADERS must be followed by
              CONTINUATION frames on the same stream, nothing else (§6.2, §6.10).
        TODO: a header block still open with more than max_header_list_size bytes buffered
              -> ENHANCE_YOUR_CALM (the CONTINUATION flood).
        TODO: decode every complete header block, even of a stream you will refuse or ignore:
              the HPACK table belongs to the connection. HPACKError -> COMPRESSION_ERROR.
        TODO: stream states (§5.1): idle streams (beyond the highest id, or even) take only
              HEADERS and PRIORITY; a new stream id must be odd and higher than every
              earlier one (§5.1.1); frames on closed streams, half-closed (remote) streams,
              streams you reset: see the README's table.
        TODO: padding (§6.1, §6.2): Pad Length >= what follows it -> PROTOCOL_ERROR; padding
              counts against flow control.
        TODO: flow control on receipt (§6.9): DATA beyond the stream window -> stream error
              FLOW_CONTROL_ERROR; beyond the connection window -> connection error. DATA you
              discard (a stream you reset, a closed stream) still counts against the
              connection window: give it back at once with WINDOW_UPDATE on stream 0.
        TODO: requests (§8.1, §8.2, §8.3) are checked, their trailers too (no pseudo-headers,
              no connection-specific fields); every field passes §8.2.1 (names: no byte
              0x00-0x20, 0x41-0x5A, 0x7F-0xFF, no colon but a pseudo-header's first; values:
              no NUL, CR, LF, no space or tab at either end). A malformed one -> stream error
              PROTOCOL_ERROR. Over max_concurrent_streams -> REFUSED_STREAM.
        TODO: SETTINGS -> apply in order, then ACK; PING -> ACK with the same 8 bytes;
              WINDOW_UPDATE -> grow a window (0 and overflow are errors); PRIORITY ->
              ignore (self-dependency and length are still checked); PUSH_PROMISE ->
              PROTOCOL_ERROR; GOAWAY -> ConnectionTerminated.
        TODO: RST_STREAM from the client counts toward the rapid-reset limit.
        """
        raise NotImplementedError

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` flow-controlled bytes: give the client its window back.

        TODO: WINDOW_UPDATE of ``size`` on the connection, and on the stream if the client may
              still send on it. Never an increment of 0.
        """
        raise NotImplementedError

    def send_headers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """Queue the response header block (HEADERS, then CONTINUATION if it is larger than a frame).

        TODO: pieces no larger than the client's SETTINGS_MAX_FRAME_SIZE; END_HEADERS on the
              last; END_STREAM on the HEADERS frame when ``end_stream``.
        TODO: a stream that is closed, reset or already ended on our side -> ValueError.
        TODO: called again after the response's HEADERS -> ValueError, nothing sent: a second
              HEADERS is only valid as trailers, with END_STREAM (§8.1); use send_trailers.
        TODO: a connection-specific field (connection, keep-alive, proxy-connection,
              transfer-encoding, upgrade; te, which only a request may carry) -> ValueError,
              nothing sent (§8.2.2).
        """
        raise NotImplementedError

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body bytes; they leave as DATA frames as far as the client's windows allow.

        TODO: never more than the stream's window, the connection's window and the client's
              max frame size; the rest waits for WINDOW_UPDATE (or a SETTINGS change).
        TODO: END_STREAM on the frame that carries the last byte (an empty DATA frame if
              ``data`` is empty).
        TODO: when several streams wait, they take turns: one frame each per round.
        TODO: before send_headers -> ValueError: a response begins with HEADERS (§8.1).
        """
        raise NotImplementedError

    def send_trailers(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Queue trailer fields; they end the stream once the queued body has been sent.

        TODO: a header block with END_STREAM, sent only after the last DATA byte has gone out.
        TODO: before send_headers, or with a pseudo-header or a connection-specific field
              -> ValueError (§8.1, §8.2.2).
        """
        raise NotImplementedError

    def reset_stream(self, stream_id: int, error_code: ErrorCode = ErrorCode.CANCEL) -> None:
        """End a stream with RST_STREAM; what was queued for it is dropped.

        TODO: DATA the client already had in flight on it is then ignored (§5.1, "closed").
        """
        raise NotImplementedError

    def close(self, error_code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """Send GOAWAY: streams up to the last one opened are still served, newer ones ignored (§6.8)."""
        raise NotImplementedError


# --- the asyncio server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A complete request, as the application sees it: its bytes decoded as latin-1 (one
    character per byte; field values may carry bytes 0x80-0xFF, RFC 9110 §5.5)."""

    method: str
    path: str
    authority: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    scheme: str = "http"

    def header(self, name: str) -> str | None:
        """The first value of the field ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass
class Response:
    """What the application answers."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)


App = Callable[[Request], Awaitable[Response]]


class H2Server:
    """Serve ``app`` over cleartext HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3).

    ``handle`` is an ``asyncio.start_server`` callback; ``connection_options`` go to each
    connection's H2Connection.
    """

    def __init__(self, app: App, **connection_options: object) -> None:
        """TODO: keep the app and the options."""
        raise NotImplementedError

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one TCP connection until the client closes it or a connection error.

        TODO: one H2Connection per TCP connection; write its data_to_send() after every step.
        TODO: collect each request (headers, body, trailers); acknowledge body bytes as you
              take them, or the client's window runs dry.
        TODO: on StreamEnded, run the app in its own task: requests are concurrent.
        TODO: a raising app, or a response that cannot be sent (not a Response, a field value
              outside latin-1, a body that is not bytes, trailers send_trailers refuses) -> a
              500 if its HEADERS have not gone out yet, else RST_STREAM INTERNAL_ERROR: the
              stream always ends (RFC 9113 §5.4.2, §7). The connection keeps serving.
        TODO: a stream the client resets -> cancel its task.
        TODO: response field names in lowercase (§8.2.1); ":status" first; the app's
              connection-specific fields (Connection, Transfer-Encoding...) left out (§8.2.2).
        TODO: no body and no trailers in a response to HEAD, or with status 204 or 304
              (RFC 9110 §6.4.1); the app's other fields still go out.
        """
        raise NotImplementedError
