"""Helpers for the http2_server specs: raw frames in, frames out, and the oracles.

The specs build frames byte by byte (they must be able to build invalid ones) and compress
header blocks with the ``hpack`` library, an encoder independent of the learner's
``hpack_codec``; what the server sends back is split into frames here and its header blocks
decoded by the same library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hpack as oracle_hpack
from h2.errors import ErrorCodes as ErrorCode  # the codes of RFC 9113 §7, from the oracle
from http2_server import H2Connection, H2ConnectionError

from grader.spectools import short, step

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4

(
    DATA,
    HEADERS,
    PRIORITY,
    RST_STREAM,
    SETTINGS,
    PUSH_PROMISE,
    PING,
    GOAWAY,
    WINDOW_UPDATE,
    CONTINUATION,
) = range(10)
TYPE_NAMES = [
    "DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
    "WINDOW_UPDATE", "CONTINUATION",
]  # fmt: skip
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"localhost")]
POST = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":path", b"/upload"),
    (b":authority", b"localhost"),
]


# --- building frames ------------------------------------------------------------------------------


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw frame (RFC 9113 §4.1), whatever its contents: specs build invalid ones too."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((frame_type, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


def settings(*pairs: tuple[int, int]) -> bytes:
    return frame(
        SETTINGS, 0, 0, b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
    )


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def rst_stream(stream_id: int, code: int = ErrorCode.CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, int(code).to_bytes(4, "big"))


def data_frame(
    stream_id: int, data: bytes, *, end_stream: bool = False, pad: int | None = None
) -> bytes:
    flags = END_STREAM if end_stream else 0
    if pad is None:
        return frame(DATA, flags, stream_id, data)
    return frame(DATA, flags | PADDED, stream_id, bytes([pad]) + data + b"\0" * pad)


# --- reading frames -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def code(self) -> int:
        """The error code of RST_STREAM or GOAWAY."""
        raw = self.payload[:4] if self.type == RST_STREAM else self.payload[4:8]
        return int.from_bytes(raw, "big")

    def __repr__(self) -> str:
        name = TYPE_NAMES[self.type] if self.type < len(TYPE_NAMES) else hex(self.type)
        extra = ""
        if self.type in (RST_STREAM, GOAWAY):
            extra = f" {_code_name(self.code)}"
        if self.type == GOAWAY:
            extra += f" last_stream_id={int.from_bytes(self.payload[:4], 'big') & 0x7FFFFFFF}"
        if self.type == WINDOW_UPDATE:
            extra = f" +{int.from_bytes(self.payload, 'big')}"
        return f"{name}(stream={self.stream_id}, flags={self.flags:#x}, {len(self.payload)} bytes{extra})"


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


def parse_frames(data: bytes) -> list[Frame]:
    """Split what the server wrote into frames; a truncated frame fails the spec."""
    frames, i = [], 0
    while i < len(data):
        assert len(data) - i >= 9, f"the server wrote a truncated frame header: {short(data[i:])}"
        length = int.from_bytes(data[i : i + 3], "big")
        assert len(data) - i - 9 >= length, f"the server wrote a truncated frame: {short(data[i:])}"
        frames.append(
            Frame(
                data[i + 3],
                data[i + 4],
                int.from_bytes(data[i + 5 : i + 9], "big") & 0x7FFFFFFF,
                data[i + 9 : i + 9 + length],
            )
        )
        i += 9 + length
    return frames


# --- a client that speaks raw frames to the learner's sans-IO connection --------------------------


@dataclass
class Client:
    """Drives an H2Connection with raw bytes and records everything it says back.

    ``send`` feeds bytes and keeps the events; a connection error is kept in ``error``
    instead of escaping, so a spec can check both the exception and the GOAWAY frame.
    """

    options: dict = field(default_factory=dict)
    conn: H2Connection = field(init=False)
    frames: list[Frame] = field(default_factory=list)
    events: list = field(default_factory=list)
    error: H2ConnectionError | None = None
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        with step(f"H2Connection({args})"):
            self.conn = H2Connection(**self.options)
        self.encoder = oracle_hpack.Encoder()
        self.decoder = oracle_hpack.Decoder()
        self.read()

    def read(self) -> list[Frame]:
        with step("conn.data_to_send()"):
            new = parse_frames(self.conn.data_to_send())
        self.frames += new
        return new

    def send(self, data: bytes, what: str) -> list:
        self.log.append(what)
        with step(f"conn.receive_data({what})"):
            try:
                events = self.conn.receive_data(data)
            except H2ConnectionError as error:
                self.error = error
                events = []
        self.events += events
        self.read()
        return events

    def handshake(self, *pairs: tuple[int, int]) -> None:
        """Client preface and SETTINGS, and the ACK of the server's SETTINGS."""
        self.send(
            PREFACE + settings(*pairs) + frame(SETTINGS, ACK, 0),
            "the client preface, SETTINGS, SETTINGS ACK",
        )

    def block(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        return self.encoder.encode(headers)

    def headers(
        self, stream_id: int, headers=GET, *, end_stream: bool = True, flags: int = 0
    ) -> bytes:
        """A HEADERS frame (END_HEADERS set) with ``headers`` compressed by the oracle encoder."""
        base = END_HEADERS | (END_STREAM if end_stream else 0)
        return frame(HEADERS, base | flags, stream_id, self.block(headers))

    def open(self, stream_id: int, headers=GET, *, end_stream: bool = True) -> list:
        return self.send(
            self.headers(stream_id, headers, end_stream=end_stream),
            f"HEADERS on stream {stream_id}",
        )

    def said(self) -> str:
        return (
            f"after {'; '.join(self.log[-3:]) or 'nothing'}, the server sent {short(self.frames, 300)}"
            + (f" and raised {self.error!r}" if self.error else "")
        )

    def of(self, frame_type: int, stream_id: int | None = None) -> list[Frame]:
        return [
            f
            for f in self.frames
            if f.type == frame_type and (stream_id is None or f.stream_id == stream_id)
        ]

    def response_headers(self, stream_id: int) -> list[list[tuple[bytes, bytes]]]:
        """Every header block the server sent on a stream, decoded by the oracle (in order)."""
        blocks, current = [], b""
        for f in self.frames:
            if f.type in (HEADERS, CONTINUATION) and f.stream_id == stream_id:
                current += f.payload
                if f.flags & END_HEADERS:
                    blocks.append(
                        [(bytes(n), bytes(v)) for n, v in self.decoder.decode(current, raw=True)]
                    )
                    current = b""
        return blocks

    def body(self, stream_id: int) -> bytes:
        return b"".join(f.payload for f in self.of(DATA, stream_id))


def connection_error(client: Client, code: ErrorCode, why: str) -> None:
    """The connection failed with ``code``: H2ConnectionError raised and GOAWAY(code) sent."""
    goaways = client.of(GOAWAY)
    got_code = getattr(client.error, "error_code", None)
    assert client.error is not None and got_code == code and goaways and goaways[-1].code == code, (
        f"{why}: {client.said()}; expected a connection error {code.name}: "
        f"H2ConnectionError with error_code {code.name} and a GOAWAY({code.name})"
    )


def stream_error(
    client: Client,
    stream_id: int,
    codes: tuple[ErrorCode, ...],
    why: str,
    *,
    connection_ok: bool = False,
) -> None:
    """Stream ``stream_id`` was reset with one of ``codes`` (a connection error with one of them
    is also accepted when ``connection_ok``: the RFC allows either)."""
    names = " or ".join(c.name for c in codes)
    resets = [f for f in client.of(RST_STREAM, stream_id) if f.code in codes]
    goaways = [f for f in client.of(GOAWAY) if f.code in codes]
    if connection_ok and client.error is not None and goaways:
        return
    assert resets and client.error is None, (
        f"{why}: {client.said()}; expected RST_STREAM({names}) on stream {stream_id}"
        + (
            " (or a connection error with that code)"
            if connection_ok
            else " and the connection still up"
        )
    )
