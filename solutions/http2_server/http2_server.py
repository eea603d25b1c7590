"""An HTTP/2 server: a sans-IO connection (RFC 9113) and an asyncio h2c server on top of it.

Theory of operation
-------------------
``H2Connection`` owns no socket. Bytes from the client go in through ``receive_data``, which
returns events (a request's headers, a piece of its body, its end, a reset...). Whatever the
connection has to say goes into an outgoing buffer that ``data_to_send`` empties: the server's
SETTINGS, ACKs, PING answers, WINDOW_UPDATEs, RST_STREAMs, GOAWAY, and the response frames
queued by ``send_headers`` / ``send_data`` / ``send_trailers``.

Two kinds of failure (RFC 9113 §5.4): a *stream error* ends one stream with RST_STREAM and the
connection carries on (``StreamReset`` with ``remote=False``); a *connection error* sends
GOAWAY and ends everything: ``receive_data`` raises ``H2ConnectionError`` after queueing it.

Response bodies are queued per stream and leave as DATA frames only as far as the client's
flow-control windows allow (the stream's and the connection's, §6.9); a WINDOW_UPDATE from the
client releases more. Streams take turns, one frame each, so two big bodies interleave.

Header blocks are decoded with ``hpack_codec``, the module of the hpack kata. Every block is decoded,
even the block of a stream about to be refused or ignored: HPACK's dynamic table is shared by
the whole connection, and skipping one block would desynchronise it for every later request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

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
MIN_FRAME_SIZE = 2**14  # §4.2: every endpoint takes frames this big; the default maximum
MAX_FRAME_SIZE = 2**24 - 1
STREAM_ID_MASK = 0x7FFF_FFFF  # the reserved high bit is ignored on receipt (§4.1)

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


class _StreamError(Exception):
    """A stream error (§5.4.2): answered with RST_STREAM; the connection carries on."""

    def __init__(self, stream_id: int, error_code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.stream_id = stream_id
        self.error_code = error_code


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

# --- streams ------------------------------------------------------------------------------------


class State(Enum):
    """The states of §5.1 a live stream can be in (idle and closed streams are not stored)."""

    OPEN = "open"
    HALF_CLOSED_REMOTE = "half-closed (remote)"  # the request is complete
    HALF_CLOSED_LOCAL = "half-closed (local)"  # the response is complete


@dataclass
class _Stream:
    stream_id: int
    send_window: int  # how much DATA we may still send (the client's window for this stream)
    recv_window: int  # how much DATA the client may still send us
    state: State = State.OPEN
    headers_sent: bool = False  # a response begins with HEADERS (§8.1): no DATA before it
    content_length: int | None = None
    received: int = 0
    outbound: bytearray = field(default_factory=bytearray)
    finishing: bool = False  # END_STREAM goes out once ``outbound`` (and trailers) are sent
    trailers: Headers | None = None


@dataclass
class _HeaderBlock:
    """A header block still arriving in CONTINUATION frames (§6.10)."""

    stream_id: int
    fragment: bytearray
    end_stream: bool
    self_dependent: bool


# --- request validation (§8.2, §8.3) ------------------------------------------------------------

REQUEST_PSEUDO = {b":method", b":scheme", b":authority", b":path"}
# §8.2.2: fields that only make sense on one HTTP/1.1 hop.
CONNECTION_SPECIFIC = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
}


def _field_problem(name: bytes, value: bytes) -> str | None:
    """§8.2.1's minimal validation, which every field of every block must pass."""
    bare = name[1:] if name.startswith(b":") else name  # only a pseudo-header starts with ":"
    if not bare or any(c <= 0x20 or 0x41 <= c <= 0x5A or c >= 0x7F or c == 0x3A for c in bare):
        return f"invalid field name {name!r} (lowercase visible ASCII, no colon)"
    if any(c in b"\0\r\n" for c in value):
        return f"field {name!r} has NUL, CR or LF in its value"
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        return f"field {name!r} has whitespace at an end of its value"
    return None


def _connection_specific(name: bytes, value: bytes, *, request: bool) -> str | None:
    """§8.2.2: HTTP/2 frames messages itself, so HTTP/1.1's hop-by-hop fields are malformed in
    any field section; TE is the one exception, in a request and only as "trailers"."""
    if name in CONNECTION_SPECIFIC:
        return f"connection-specific field {name!r}"
    if name == b"te" and not (request and value == b"trailers"):
        return "TE with a value other than 'trailers'" if request else "TE in a response"
    return None


def _request_problem(headers: Headers) -> str | None:
    """Why a request header block is malformed (§8.1.1), or None."""
    pseudo: dict[bytes, bytes] = {}
    regular_seen = False
    for name, value in headers:
        if (problem := _field_problem(name, value)) is not None:
            return problem
        if name.startswith(b":"):
            if regular_seen:
                return f"pseudo-header {name!r} after a regular field"
            if name not in REQUEST_PSEUDO:
                return f"pseudo-header {name!r} is not a request pseudo-header"
            if name in pseudo:
                return f"pseudo-header {name!r} appears twice"
            pseudo[name] = value
        else:
            regular_seen = True
            if (problem := _connection_specific(name, value, request=True)) is not None:
                return problem
    if pseudo.get(b":method") == b"CONNECT":  # §8.5: authority only
        if b":authority" not in pseudo or b":scheme" in pseudo or b":path" in pseudo:
            return "CONNECT needs :authority and no :scheme or :path"
        return None
    for required in (b":method", b":scheme", b":path"):
        if not pseudo.get(required):
            return f"missing or empty {required.decode()}"
    return None


def _trailers_problem(headers: Headers) -> str | None:
    """Why a request's trailers are malformed: the rules of any field section, no pseudo-headers."""
    for name, value in headers:
        if name.startswith(b":"):
            return f"pseudo-header {name!r} in trailers"
        if (problem := _field_problem(name, value)) is not None:
            return problem
        if (problem := _connection_specific(name, value, request=True)) is not None:
            return problem
    return None


def _response_problem(headers: Headers, *, trailers: bool) -> str | None:
    """Why a header block the application asks us to send would be malformed (§8.1, §8.2.2)."""
    for name, value in headers:
        if name.startswith(b":"):
            if trailers:
                return f"pseudo-header {name!r} in trailers"
        elif (problem := _connection_specific(name, value, request=False)) is not None:
            return problem
    return None


def _content_length(headers: Headers) -> int | None | str:
    """The declared body length; None without one; a string saying why it is malformed."""
    values = {value for name, value in headers if name == b"content-length"}
    if not values:
        return None
    if len(values) > 1 or not values.copy().pop().isdigit():
        return "invalid content-length"
    return int(values.pop())


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
        self._out = bytearray()
        self._buffer = bytearray()
        self._preface_left = PREFACE
        self._settings_seen = False
        self._terminated = False
        self._encoder = Encoder()
        self._encoder_table_size = 4096
        self._decoder = Decoder(max_header_list_size=max_header_list_size)
        self._max_block = max_header_list_size  # compressed bytes buffered for one block
        self._streams: dict[int, _Stream] = {}
        self._highest = 0  # the highest stream id the client has opened
        self._skipped: deque[range] = deque(maxlen=64)  # ids the client jumped over (§5.1.1)
        self._reset_by_us: deque[int] = deque(maxlen=128)  # late frames on these are ignored
        self._header_block: _HeaderBlock | None = None
        self._goaway_sent = False
        # Flow control (§6.9): the connection windows start at 65,535 whatever SETTINGS say.
        self._send_window = DEFAULT_WINDOW
        self._recv_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = MIN_FRAME_SIZE
        # Our settings bind the client only once it has acknowledged them (§6.5.3); until then
        # the defaults hold: 65,535 bytes per stream and no limit on streams.
        self._local_initial_window = DEFAULT_WINDOW
        self._local_max_streams: int | None = None
        self._unacked = {
            Setting.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            Setting.INITIAL_WINDOW_SIZE: initial_window_size,
            Setting.MAX_HEADER_LIST_SIZE: max_header_list_size,
        }
        # The rapid-reset defence: resets counted in fixed windows of ``reset_interval``.
        self._clock = clock
        self._max_resets = max_resets
        self._reset_interval = reset_interval
        self._resets = 0
        self._resets_since = clock()
        self._handlers = {
            FrameType.DATA: self._on_data,
            FrameType.HEADERS: self._on_headers,
            FrameType.PRIORITY: self._on_priority,
            FrameType.RST_STREAM: self._on_rst_stream,
            FrameType.SETTINGS: self._on_settings,
            FrameType.PUSH_PROMISE: self._on_push_promise,
            FrameType.PING: self._on_ping,
            FrameType.GOAWAY: self._on_goaway,
            FrameType.WINDOW_UPDATE: self._on_window_update,
            FrameType.CONTINUATION: self._on_continuation,
        }
        # The server connection preface is a SETTINGS frame, the first frame we send (§3.4).
        payload = b"".join(
            k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in self._unacked.items()
        )
        self._frame(FrameType.SETTINGS, 0, 0, payload)

    # --- the public API -------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the client since the last call (empty bytes if nothing)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    @property
    def open_streams(self) -> int:
        """Streams that are open or half-closed (§5.1.2 counts both)."""
        return len(self._streams)

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the client; return the events they complete.

        A connection error queues GOAWAY and raises ``H2ConnectionError``; after that, input
        is ignored.
        """
        if self._terminated:
            return []
        self._buffer += data
        events: list[Event] = []
        try:
            if self._preface_left and not self._read_preface():
                return events
            while (frame := self._next_frame()) is not None:
                events.extend(self._dispatch(*frame))
        except H2ConnectionError as error:
            self._frame(
                FrameType.GOAWAY,
                0,
                0,
                self._highest.to_bytes(4, "big") + error.error_code.to_bytes(4, "big"),
            )
            self._terminated = True
            self._buffer.clear()
            raise
        return events

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` flow-controlled bytes: give the client its window back."""
        if size <= 0:
            return
        self._give_back(size)
        stream = self._streams.get(stream_id)
        if stream is not None and stream.state is State.OPEN:
            stream.recv_window += size
            self._frame(FrameType.WINDOW_UPDATE, 0, stream_id, size.to_bytes(4, "big"))

    def send_headers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]], *, end_stream: bool = False
    ) -> None:
        """Queue the response header block (HEADERS, then CONTINUATION if it is larger than a frame)."""
        stream = self._sendable(stream_id)
        # One response HEADERS per stream: after it, a header block is only valid as the
        # trailers, which carry END_STREAM (§8.1).
        if stream.headers_sent:
            raise ValueError(
                f"stream {stream_id}: the response's HEADERS were already sent; "
                "trailers go through send_trailers (§8.1)"
            )
        headers = list(headers)
        if (problem := _response_problem(headers, trailers=False)) is not None:
            raise ValueError(f"stream {stream_id}: {problem} (RFC 9113 §8.2.2)")
        stream.headers_sent = True
        self._header_frames(stream_id, headers, end_stream)
        if end_stream:
            self._end_local(stream)

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body bytes; they leave as DATA frames as far as the client's windows allow."""
        stream = self._sendable(stream_id, after_headers=True)
        stream.outbound += data
        stream.finishing = end_stream
        self._flush()

    def send_trailers(self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Queue trailer fields; they end the stream once the queued body has been sent."""
        stream = self._sendable(stream_id, after_headers=True)
        trailers = list(headers)
        if (problem := _response_problem(trailers, trailers=True)) is not None:
            raise ValueError(f"stream {stream_id}: {problem} (RFC 9113 §8.1, §8.2)")
        stream.trailers = trailers
        stream.finishing = True
        self._flush()

    def reset_stream(self, stream_id: int, error_code: ErrorCode = ErrorCode.CANCEL) -> None:
        """End a stream with RST_STREAM; what was queued for it is dropped."""
        self._reset(stream_id, error_code)

    def close(self, error_code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """Send GOAWAY: streams up to the last one opened are still served, newer ones ignored."""
        self._goaway_sent = True
        payload = self._highest.to_bytes(4, "big") + error_code.to_bytes(4, "big")
        self._frame(FrameType.GOAWAY, 0, 0, payload)

    # --- reading frames -------------------------------------------------------------------------

    def _read_preface(self) -> bool:
        """Match the client preface as it arrives; True once all of it is in."""
        got = bytes(self._buffer[: len(self._preface_left)])
        if not self._preface_left.startswith(got):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid connection preface")
        del self._buffer[: len(got)]
        self._preface_left = self._preface_left[len(got) :]
        return not self._preface_left

    def _next_frame(self) -> tuple[int, int, int, bytes] | None:
        """The next whole frame in the buffer (§4.1), or None until it has all arrived."""
        if len(self._buffer) < 9:
            return None
        length = int.from_bytes(self._buffer[:3], "big")
        if length > MIN_FRAME_SIZE:  # we never raise SETTINGS_MAX_FRAME_SIZE (§4.2)
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, f"a {length}-byte frame")
        if len(self._buffer) < 9 + length:
            return None
        frame_type, flags = self._buffer[3], self._buffer[4]
        stream_id = int.from_bytes(self._buffer[5:9], "big") & STREAM_ID_MASK
        payload = bytes(self._buffer[9 : 9 + length])
        del self._buffer[: 9 + length]
        return frame_type, flags, stream_id, payload

    def _dispatch(self, frame_type: int, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if not self._settings_seen:  # §3.4: the client preface ends with a SETTINGS frame
            if frame_type != FrameType.SETTINGS or flags & ACK:
                raise H2ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, "the first frame must be SETTINGS"
                )
            self._settings_seen = True
        block = self._header_block
        if block is not None and (
            frame_type != FrameType.CONTINUATION or stream_id != block.stream_id
        ):
            # §6.2, §6.10: a header block is contiguous; nothing may cut into it.
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted")
        handler = self._handlers.get(frame_type)  # type: ignore[call-overload]
        if handler is None:
            return []  # an unknown frame type is ignored (§4.1, §5.5)
        try:
            return handler(flags, stream_id, payload)
        except _StreamError as error:
            self._reset(error.stream_id, error.error_code)
            return [StreamReset(error.stream_id, error.error_code, remote=False)]

    def _is_idle(self, stream_id: int) -> bool:
        """Never opened: beyond the client's highest id, or even (a server would open it)."""
        return stream_id > self._highest or stream_id % 2 == 0

    # --- frame handlers (§6) --------------------------------------------------------------------

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        data = _unpad(flags, payload, 0)
        size = len(payload)  # padding counts against the windows too (§6.9.1)
        if size > self._recv_window:
            raise H2ConnectionError(
                ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window"
            )
        self._recv_window -= size
        stream = self._streams.get(stream_id)
        if stream is None or stream.state is State.HALF_CLOSED_REMOTE:
            self._give_back(size)  # nobody will consume these bytes
            if self._is_idle(stream_id):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream")
            if stream_id in self._reset_by_us:
                return []  # in flight when we reset it: ignore (§5.1, "closed")
            raise _StreamError(stream_id, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM")
        if size > stream.recv_window:
            self._give_back(size)
            raise _StreamError(
                stream_id, ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the stream window"
            )
        stream.recv_window -= size
        stream.received += len(data)
        if stream.content_length is not None and stream.received > stream.content_length:
            self._give_back(size)
            raise _StreamError(
                stream_id, ErrorCode.PROTOCOL_ERROR, "body longer than content-length"
            )
        events: list[Event] = [DataReceived(stream_id, data, size)]
        if flags & END_STREAM:
            events += self._end_remote(stream)
        return events

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id == 0 or stream_id % 2 == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, f"HEADERS on stream {stream_id}")
        fragment = _unpad(flags, payload, 5 if flags & PRIORITY else 0)
        self_dependent = False
        if flags & PRIORITY:  # parsed and ignored; RFC 7540 §5.3.1: no self-dependency
            self_dependent = int.from_bytes(fragment[:4], "big") & STREAM_ID_MASK == stream_id
            fragment = fragment[5:]
        block = _HeaderBlock(
            stream_id, bytearray(fragment), bool(flags & END_STREAM), self_dependent
        )
        if flags & END_HEADERS:
            return self._on_header_block(block)
        self._header_block = block
        return []

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        block = self._header_block
        if block is None:  # _dispatch already refused one on another stream
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block")
        block.fragment += payload
        if len(block.fragment) > self._max_block:
            # The CONTINUATION flood (2024): a block that never ends must not grow without bound.
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        if not flags & END_HEADERS:
            return []
        self._header_block = None
        return self._on_header_block(block)

    def _on_header_block(self, block: _HeaderBlock) -> list[Event]:
        stream_id = block.stream_id
        try:  # first, always: the HPACK context is the connection's (§4.3)
            headers = self._decoder.decode(bytes(block.fragment))
        except HPACKError as error:
            raise H2ConnectionError(ErrorCode.COMPRESSION_ERROR, f"header block: {error}") from None
        stream = self._streams.get(stream_id)
        if stream is not None:
            if stream.state is State.HALF_CLOSED_REMOTE:
                raise _StreamError(stream_id, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM")
            return self._on_trailers(stream, headers, block.end_stream)
        if stream_id in self._reset_by_us:
            return []  # trailers in flight when we reset it: decoded above, then ignored (§5.1)
        if stream_id <= self._highest:
            if any(stream_id in gap for gap in self._skipped):  # §5.1.1
                raise H2ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, "stream id lower than a previous one"
                )
            raise H2ConnectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream")
        if self._goaway_sent:
            return []  # §6.8: new streams after our GOAWAY are ignored (decoded above all the same)
        if stream_id > self._highest + 2:
            self._skipped.append(range(self._highest + 1, stream_id))
        self._highest = stream_id
        if block.self_dependent:
            raise _StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "stream depends on itself")
        if self._local_max_streams is not None and len(self._streams) >= self._local_max_streams:
            raise _StreamError(stream_id, ErrorCode.REFUSED_STREAM, "too many concurrent streams")
        problem = _request_problem(headers)
        length = _content_length(headers)
        if problem is not None or isinstance(length, str):
            raise _StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, problem or str(length))
        stream = _Stream(stream_id, self._peer_initial_window, self._local_initial_window)
        stream.content_length = length
        self._streams[stream_id] = stream
        events: list[Event] = [RequestReceived(stream_id, headers)]
        if block.end_stream:
            events += self._end_remote(stream)
        return events

    def _on_trailers(self, stream: _Stream, headers: Headers, end_stream: bool) -> list[Event]:
        # §8.1: a second header block must end the stream, and holds no pseudo-headers.
        problem = _trailers_problem(headers) or (
            None if end_stream else "trailers without END_STREAM"
        )
        if problem is not None:
            raise _StreamError(stream.stream_id, ErrorCode.PROTOCOL_ERROR, problem)
        return [TrailersReceived(stream.stream_id, headers), *self._end_remote(stream)]

    def _on_priority(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
        if len(payload) != 5:
            raise _StreamError(
                stream_id, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY of the wrong length"
            )
        if int.from_bytes(payload[:4], "big") & STREAM_ID_MASK == stream_id:
            raise _StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "stream depends on itself")
        return []  # RFC 9113 deprecates the priority scheme: parsed and ignored (§5.3.2)

    def _on_rst_stream(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of the wrong length")
        if self._is_idle(stream_id):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        if self._streams.pop(stream_id, None) is None:
            return []  # already closed: nothing to do
        self._count_reset()
        code = int.from_bytes(payload, "big")
        return [StreamReset(stream_id, _known(code), remote=True)]

    def _count_reset(self) -> None:
        """CVE-2023-44487: opening and cancelling streams costs the client nothing and the
        server a request each; the concurrency limit never bites because the streams close."""
        now = self._clock()
        if now - self._resets_since >= self._reset_interval:
            self._resets_since, self._resets = now, 0
        self._resets += 1
        if self._resets > self._max_resets:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many streams reset")

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            self._settings_acknowledged()
            return []
        if len(payload) % 6:
            raise H2ConnectionError(
                ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6"
            )
        for i in range(0, len(payload), 6):  # in order: a later value wins (§6.5.3)
            self._apply_setting(
                int.from_bytes(payload[i : i + 2], "big"),
                int.from_bytes(payload[i + 2 : i + 6], "big"),
            )
        self._frame(FrameType.SETTINGS, ACK, 0, b"")
        self._flush()  # a larger initial window may release queued DATA
        return []

    def _apply_setting(self, setting: int, value: int) -> None:
        if setting == Setting.HEADER_TABLE_SIZE:
            size = min(value, 4096)  # we may use less than the client allows, never more
            if size != self._encoder_table_size:
                self._encoder_table_size = size
                self._encoder.set_max_table_size(size)
        elif setting == Setting.ENABLE_PUSH and value > 1:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH other than 0 or 1")
        elif setting == Setting.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise H2ConnectionError(
                    ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE over 2^31-1"
                )
            delta = value - self._peer_initial_window  # §6.9.2: every stream moves by the change
            self._peer_initial_window = value
            for stream in self._streams.values():
                stream.send_window += delta
                if stream.send_window > MAX_WINDOW:
                    raise H2ConnectionError(
                        ErrorCode.FLOW_CONTROL_ERROR, "a stream window over 2^31-1"
                    )
        elif setting == Setting.MAX_FRAME_SIZE:
            if not MIN_FRAME_SIZE <= value <= MAX_FRAME_SIZE:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
            self._peer_max_frame = value
        # anything else (MAX_CONCURRENT_STREAMS limits pushes we never make; unknown ids) is ignored

    def _settings_acknowledged(self) -> None:
        if not self._unacked:
            return
        settings, self._unacked = self._unacked, {}
        self._local_max_streams = settings[Setting.MAX_CONCURRENT_STREAMS]
        delta = settings[Setting.INITIAL_WINDOW_SIZE] - self._local_initial_window
        self._local_initial_window += delta
        for stream in self._streams.values():
            stream.recv_window += delta

    def _on_push_promise(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "a client cannot push (§8.4)")

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING of the wrong length")
        if not flags & ACK:  # never answer an answer
            self._frame(FrameType.PING, ACK, 0, payload)
        return []

    def _on_goaway(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY too short")
        last = int.from_bytes(payload[:4], "big") & STREAM_ID_MASK
        return [
            ConnectionTerminated(_known(int.from_bytes(payload[4:8], "big")), last, payload[8:])
        ]

    def _on_window_update(self, flags: int, stream_id: int, payload: bytes) -> list[Event]:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong length")
        increment = int.from_bytes(payload, "big") & STREAM_ID_MASK
        if stream_id == 0:
            if increment == 0:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise H2ConnectionError(
                    ErrorCode.FLOW_CONTROL_ERROR, "connection window over 2^31-1"
                )
        else:
            if self._is_idle(stream_id):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            stream = self._streams.get(stream_id)
            if stream is None:
                return []  # closed: a late update is harmless
            if increment == 0:
                raise _StreamError(stream_id, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            stream.send_window += increment
            if stream.send_window > MAX_WINDOW:
                raise _StreamError(
                    stream_id, ErrorCode.FLOW_CONTROL_ERROR, "stream window over 2^31-1"
                )
        self._flush()
        return []

    # --- stream state -----------------------------------------------------------------------------

    def _end_remote(self, stream: _Stream) -> list[Event]:
        """The client sent END_STREAM (§5.1)."""
        if stream.content_length is not None and stream.received != stream.content_length:
            raise _StreamError(
                stream.stream_id, ErrorCode.PROTOCOL_ERROR, "body shorter than content-length"
            )
        if stream.state is State.HALF_CLOSED_LOCAL:
            del self._streams[stream.stream_id]
        else:
            stream.state = State.HALF_CLOSED_REMOTE
        return [StreamEnded(stream.stream_id)]

    def _end_local(self, stream: _Stream) -> None:
        """We sent END_STREAM (§5.1)."""
        if stream.state is State.HALF_CLOSED_REMOTE:
            del self._streams[stream.stream_id]
        else:
            stream.state = State.HALF_CLOSED_LOCAL

    def _sendable(self, stream_id: int, *, after_headers: bool = False) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None or stream.state is State.HALF_CLOSED_LOCAL or stream.finishing:
            raise ValueError(f"stream {stream_id} is not open for sending")
        if after_headers and not stream.headers_sent:
            raise ValueError(f"stream {stream_id}: a response begins with send_headers (§8.1)")
        return stream

    def _reset(self, stream_id: int, error_code: ErrorCode) -> None:
        self._streams.pop(stream_id, None)
        self._reset_by_us.append(stream_id)
        self._frame(FrameType.RST_STREAM, 0, stream_id, error_code.to_bytes(4, "big"))

    # --- writing frames ---------------------------------------------------------------------------

    def _frame(self, frame_type: FrameType, flags: int, stream_id: int, payload: bytes) -> None:
        self._out += (
            len(payload).to_bytes(3, "big")
            + bytes((frame_type, flags))
            + stream_id.to_bytes(4, "big")
        )
        self._out += payload

    def _header_frames(self, stream_id: int, headers: Headers, end_stream: bool) -> None:
        block = self._encoder.encode(headers)
        size = self._peer_max_frame
        pieces = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
        for i, piece in enumerate(pieces):
            flags = END_HEADERS if i == len(pieces) - 1 else 0
            if i == 0:
                self._frame(
                    FrameType.HEADERS, flags | (END_STREAM if end_stream else 0), stream_id, piece
                )
            else:
                self._frame(FrameType.CONTINUATION, flags, stream_id, piece)

    def _give_back(self, size: int) -> None:
        """Return ``size`` bytes of connection window to the client."""
        if size > 0:
            self._recv_window += size
            self._frame(FrameType.WINDOW_UPDATE, 0, 0, size.to_bytes(4, "big"))

    def _flush(self) -> None:
        """Send queued bodies as far as the windows allow, one frame per stream per round."""
        progress = True
        while progress:
            progress = False
            for stream in list(self._streams.values()):
                if stream.outbound:
                    size = min(
                        len(stream.outbound),
                        stream.send_window,
                        self._send_window,
                        self._peer_max_frame,
                    )
                    if size <= 0:
                        continue
                    chunk = bytes(stream.outbound[:size])
                    del stream.outbound[:size]
                    stream.send_window -= size
                    self._send_window -= size
                    last = stream.finishing and not stream.outbound and stream.trailers is None
                    self._frame(FrameType.DATA, END_STREAM if last else 0, stream.stream_id, chunk)
                    if last:
                        self._end_local(stream)
                    progress = True
                elif stream.finishing and stream.state is not State.HALF_CLOSED_LOCAL:
                    if stream.trailers is not None:
                        self._header_frames(stream.stream_id, stream.trailers, True)
                    else:  # an empty DATA frame carries END_STREAM; it costs no window
                        self._frame(FrameType.DATA, END_STREAM, stream.stream_id, b"")
                    self._end_local(stream)
                    progress = True


def _unpad(flags: int, payload: bytes, fixed: int) -> bytes:
    """Strip the Pad Length field and the padding (§6.1, §6.2); ``fixed`` bytes of fields follow it."""
    if not flags & PADDED:
        if len(payload) < fixed:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame too short for its fields")
        return payload
    if len(payload) < 1 + fixed:
        raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame too short for its fields")
    pad = payload[0]
    body = payload[1:]
    if pad > len(body) - fixed:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the payload")
    return body[: len(body) - pad]


def _known(code: int) -> int:
    """An ErrorCode when the code is known; unknown codes stay plain ints (§7)."""
    try:
        return ErrorCode(code)
    except ValueError:
        return code


# --- the asyncio server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A complete request, as the application sees it."""

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
INTERNAL_ERROR_FIELDS = [(b"content-type", b"text/plain")]  # the 500 of an app that failed


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _fields(fields: list[tuple[str, str]]) -> Headers:
    """The app's fields for the wire: names lowercase (§8.2.1), and without the fields of an
    HTTP/1.1 hop (Connection, Transfer-Encoding...), which an HTTP/2 message must not carry and
    which a server that frames its own messages removes as an HTTP/1.1-to-HTTP/2 gateway must
    (§8.2.2)."""
    wire = [(name.lower().encode(), value.encode("latin-1")) for name, value in fields]
    return [(n, v) for n, v in wire if n not in CONNECTION_SPECIFIC and n != b"te"]


@dataclass
class _Incoming:
    headers: Headers
    body: bytearray = field(default_factory=bytearray)
    trailers: Headers = field(default_factory=list)

    def request(self) -> Request:
        pseudo = {
            _text(name): _text(value) for name, value in self.headers if name.startswith(b":")
        }
        return Request(
            method=pseudo[":method"],
            path=pseudo.get(":path", ""),
            authority=pseudo.get(":authority", ""),
            scheme=pseudo.get(":scheme", ""),
            headers=[(_text(n), _text(v)) for n, v in self.headers if not n.startswith(b":")],
            body=bytes(self.body),
            trailers=[(_text(n), _text(v)) for n, v in self.trailers],
        )


class H2Server:
    """Serve ``app`` over cleartext HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3).

    ``handle`` is an ``asyncio.start_server`` callback: one H2Connection per TCP connection,
    one task per request, so a slow request never holds up the others on the connection.
    """

    def __init__(self, app: App, **connection_options: object) -> None:
        self._app = app
        self._options = connection_options

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = H2Connection(**self._options)  # type: ignore[arg-type]
        incoming: dict[int, _Incoming] = {}
        tasks: dict[int, asyncio.Task[None]] = {}

        def flush() -> None:
            if data := conn.data_to_send():
                writer.write(data)

        async def respond(stream_id: int, request: Request) -> None:
            started = False  # has the response's HEADERS frame been queued?
            try:
                response = await self._app(request)
                headers = [(b":status", str(response.status).encode()), *_fields(response.headers)]
                trailers = _fields(response.trailers)
                # RFC 9110 §6.4.1: a response to HEAD, a 204 and a 304 have no content (and so no
                # trailers); the app's content-length and other fields still go out (§9.3.2).
                bodyless = request.method == "HEAD" or response.status in (204, 304)
                if not bodyless and (response.body or trailers):
                    conn.send_headers(stream_id, headers)
                    started = True
                    conn.send_data(stream_id, response.body, end_stream=not trailers)
                    if trailers:
                        conn.send_trailers(stream_id, trailers)
                else:
                    conn.send_headers(stream_id, headers, end_stream=True)
            except Exception:
                # The app raised, or answered something that cannot be sent (not a Response, a
                # field outside latin-1, a str body, trailers send_trailers refuses). The stream
                # must still end, or the client waits for ever: a 500 while nothing has gone
                # out, else RST_STREAM INTERNAL_ERROR (RFC 9113 §5.4.2, §7).
                if not started:
                    conn.send_headers(stream_id, [(b":status", b"500"), *INTERNAL_ERROR_FIELDS])
                    conn.send_data(stream_id, b"internal server error", end_stream=True)
                else:
                    conn.reset_stream(stream_id, ErrorCode.INTERNAL_ERROR)
            flush()
            with contextlib.suppress(ConnectionError):
                await writer.drain()

        flush()
        try:
            while data := await reader.read(65_536):
                try:
                    events = conn.receive_data(data)
                except H2ConnectionError:
                    break
                for event in events:
                    if isinstance(event, RequestReceived):
                        incoming[event.stream_id] = _Incoming(event.headers)
                    elif isinstance(event, DataReceived):
                        incoming[event.stream_id].body += event.data
                        conn.acknowledge_received_data(
                            event.stream_id, event.flow_controlled_length
                        )
                    elif isinstance(event, TrailersReceived):
                        incoming[event.stream_id].trailers = event.headers
                    elif isinstance(event, StreamEnded):
                        request = incoming.pop(event.stream_id).request()
                        task = asyncio.create_task(respond(event.stream_id, request))
                        tasks[event.stream_id] = task
                        task.add_done_callback(lambda _, sid=event.stream_id: tasks.pop(sid, None))
                    elif isinstance(event, StreamReset):
                        incoming.pop(event.stream_id, None)
                        if (task := tasks.pop(event.stream_id, None)) is not None:
                            task.cancel()
                flush()
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            flush()
            for task in list(tasks.values()):
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
