"""Helpers for the websocket specs: client frames built by hand, the server's bytes parsed by the
`websockets` library (the oracle), a sans-IO driver, and a running server.

Client frames are packed here with ``struct`` from RFC 6455 §5.2, never with the learner's
``encode_frame``. What the server writes is parsed with ``websockets.frames.Frame.parse``
(``mask=False``: a masked server frame is a protocol error there too, RFC 6455 §5.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from websocket import CloseReceived, Connection, Failed, Message, Ping, Pong, State, serve
from websockets.exceptions import ProtocolError
from websockets.frames import Frame
from websockets.frames import Opcode as WsOpcode
from websockets.streams import StreamReader

from grader.spectools import LOCALHOST, bounded, short, step

MASK = bytes.fromhex("37fa213d")  # the masking key of RFC 6455 §5.7
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def masked(payload: bytes, mask: bytes = MASK) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length_form: int | None = None,
    length: int | None = None,
) -> bytes:
    """A client frame. ``length_form`` forces 7, 16 or 64 bits for the length; ``length``
    announces a length other than the payload's (the payload is still appended)."""
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    size = len(data) if length is None else length
    form = length_form or (7 if size <= 125 else 16 if size <= 0xFFFF else 64)
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    bit = 0x80 if mask is not None else 0
    if form == 7:
        header = struct.pack("!BB", first, bit | size)
    elif form == 16:
        header = struct.pack("!BBH", first, bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, bit | 127, size)
    if mask is None:
        return header + data
    return header + mask + masked(data, mask)


def close_frame(code: int | None = None, reason: bytes | str = b"", **options) -> bytes:
    body = b"" if code is None else struct.pack("!H", code)
    body += reason.encode("utf-8") if isinstance(reason, str) else reason
    return frame(CLOSE, body, **options)


# --- the server's bytes, parsed by the oracle ----------------------------------------------------


@dataclass
class Out:
    """One frame the server wrote, as the websockets library read it."""

    opcode: int
    data: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or not self.data:
            return None
        return struct.unpack("!H", self.data[:2])[0]

    def __repr__(self) -> str:
        names = {0: "CONT", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING", 10: "PONG"}
        if self.opcode == CLOSE:
            return f"CLOSE({self.close_code}, {short(self.data[2:], 40)})"
        return f"{names[self.opcode]}({short(self.data, 50)}{'' if self.fin else ', fin=0'})"


def parse_frames(data: bytes, what: str = "the bytes the server wrote") -> list[Out]:
    """Every frame in ``data`` (server frames: unmasked), parsed by the websockets library."""
    reader = StreamReader()
    reader.feed_data(bytes(data))
    reader.feed_eof()
    frames: list[Out] = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            got: Frame = done.value
            frames.append(Out(int(got.opcode), bytes(got.data), got.fin))
            continue
        except (ProtocolError, ValueError) as error:
            raise AssertionError(
                f"{what} hold an invalid frame after {frames}: websockets says {error} "
                f"(bytes: {short(bytes(data), 80)})"
            ) from None
        raise AssertionError(f"{what} end in the middle of a frame after {frames}")
    return frames


def oracle_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame as the websockets library writes it."""
    return Frame(WsOpcode(opcode), payload, fin=fin).serialize(mask=False)


# --- the sans-IO driver --------------------------------------------------------------------------


def describe_event(event: object) -> str:
    if isinstance(event, Message):
        return f"Message({short(event.data, 50)})"
    return short(event, 80)


@dataclass
class Run:
    """What a Connection did with the bytes fed to it: its events and what it wrote."""

    connection: Connection
    events: list[object] = field(default_factory=list)
    written: bytearray = field(default_factory=bytearray)
    fed: int = 0

    def feed(self, data: bytes, *, echo: bool = False, what: str = "") -> list[object]:
        """``receive_data(data)``; with ``echo``, send each Message back as the echo server would."""
        self.fed += 1
        label = what or f"connection.receive_data({short(bytes(data), 60)})"
        with step(label):
            events = list(self.connection.receive_data(bytes(data)))
        self.events += events
        for event in events:
            if echo and isinstance(event, Message) and self.connection.state is State.OPEN:
                with step(f"connection.send({short(event.data, 40)}) (an echo)"):
                    self.connection.send(event.data)
        with step("connection.data_to_send()"):
            self.written += self.connection.data_to_send()
        return events

    def frames(self) -> list[Out]:
        return parse_frames(bytes(self.written), "the bytes in data_to_send()")

    def failures(self) -> list[Failed]:
        return [e for e in self.events if isinstance(e, Failed)]

    def summary(self) -> str:
        events = ", ".join(describe_event(e) for e in self.events) or "no events"
        return f"events [{events}]; wrote {self.frames()}"


def connection(**limits: int) -> Connection:
    settings = ", ".join(f"{k}={v}" for k, v in limits.items())
    with step(f"Connection({settings})"):
        return Connection(**limits)


def run(pieces: Iterable[bytes], *, echo: bool = True, **limits: int) -> Run:
    """Feed ``pieces`` one ``receive_data`` call each to a fresh Connection."""
    result = Run(connection(**limits))
    for piece in pieces:
        result.feed(piece, echo=echo)
    return result


def chops(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


EVENT_TYPES = (Message, Ping, Pong, CloseReceived, Failed)


# --- a running server and raw clients ------------------------------------------------------------


async def echo(websocket) -> None:
    async for message in websocket:
        await websocket.send(message)


@contextlib.asynccontextmanager
async def running(handler=echo, **options) -> AsyncIterator[int]:
    """``serve(handler, host="127.0.0.1", port=0, **options)``; yields its port; closed on exit."""
    settings = "".join(f", {k}={short(v, 40)}" for k, v in options.items())
    with step(f'serve(handler, host="127.0.0.1", port=0{settings})'):
        server = await bounded(
            serve(handler, host=LOCALHOST, port=0, **options), 5.0, "serve(...) to start"
        )
    port = server.port
    assert isinstance(port, int) and port > 0, f"server.port is {port!r}; expected the bound port"
    try:
        yield port
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close(), 3.0)


def upgrade_request(path: str = "/chat", key: str = KEY, **extra: str) -> bytes:
    headers = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    for name, value in extra.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RawClient:
    """A hand-driven client on a plain TCP connection: the spec writes every byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = bytearray()

    @classmethod
    async def open(cls, port: int, request: bytes | None = None) -> RawClient:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 5.0, "a TCP connection to the server"
        )
        client = cls(reader, writer)
        await client.handshake(request if request is not None else upgrade_request())
        return client

    async def handshake(self, request: bytes) -> None:
        self.writer.write(request)
        head = await bounded(
            self.reader.readuntil(b"\r\n\r\n"), 5.0, "the server's answer to the upgrade"
        )
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"the upgrade was refused: {short(head, 200)}")

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_until_closed(self, timeout: float = 5.0) -> list[Out]:
        """Everything the server writes until it closes the TCP connection."""

        async def drain() -> None:
            while chunk := await self.reader.read(65536):
                self.received += chunk

        with contextlib.suppress(ConnectionError):
            await bounded(drain(), timeout, "the server to close the TCP connection")
        return parse_frames(bytes(self.received))

    async def read_frames(self, count: int, timeout: float = 5.0) -> list[Out]:
        """Read until ``count`` whole frames have arrived."""

        async def more() -> list[Out]:
            while True:
                try:
                    frames = parse_frames(bytes(self.received))
                    if len(frames) >= count:
                        return frames
                except AssertionError:
                    pass
                chunk = await self.reader.read(65536)
                if not chunk:
                    return parse_frames(bytes(self.received))
                self.received += chunk

        return await bounded(more(), timeout, f"{count} frame(s) from the server")

    def close(self) -> None:
        self.writer.close()
