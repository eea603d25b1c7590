"""A WebSocket server (RFC 6455): a sans-IO core, an asyncio adapter and a broadcast room.

Three layers, each usable without the next:

* ``accept_key`` and ``handshake`` — the opening handshake: an HTTP/1.1 request head in, the
  HTTP response to write out (101 Switching Protocols, or the error that refuses it).
* ``encode_frame`` and ``Connection`` — the sans-IO protocol engine: bytes in, events out
  (``Message``, ``Ping``, ``Pong``, ``CloseReceived``, ``Failed``); the bytes to send back
  wait in ``data_to_send()``. No sockets, no clock: the whole protocol can be tested by
  feeding it bytes, the way h11 and wsproto are built.
* ``serve``, ``WebSocket`` and ``Room`` — the thin asyncio adapter: it reads the socket,
  feeds the engine, writes what the engine queued, and hands messages to a handler.

Theory of operation of the frame reader: ``Connection._buffer`` holds the bytes received and
not yet parsed. ``receive_data`` parses as many whole frames as the buffer holds; a partial
frame stays buffered until more bytes arrive. The frame header is checked (reserved bits,
opcode, mask bit, length encoding, size limits) as soon as the header is complete, *before*
its payload arrives: a peer that announces a 2^62-byte frame is refused at once instead of
being buffered toward it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import contextlib
import hashlib
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = [
    "GUID",
    "CloseReceived",
    "Connection",
    "ConnectionClosed",
    "Failed",
    "Handshake",
    "Message",
    "Opcode",
    "Ping",
    "Pong",
    "Room",
    "State",
    "WebSocket",
    "WebSocketServer",
    "accept_key",
    "encode_frame",
    "handshake",
    "serve",
]

# RFC 6455 §1.3: the fixed GUID the server appends to the client's key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 §5.2). 3-7 and 11-15 are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


# --- the opening handshake (RFC 6455 §4.2) ----------------------------------------------------


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2):
    base64(SHA-1(key + GUID))."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Handshake:
    """What ``handshake`` decided: the status, the response bytes to write, the request path."""

    status: int
    response: bytes
    path: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 101


_REASONS = {
    101: "Switching Protocols",
    400: "Bad Request",
    403: "Forbidden",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}


def _response(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
    if status != 101:
        headers = [
            *headers,
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _refuse(status: int, why: str, headers: list[tuple[str, str]] | None = None) -> Handshake:
    return Handshake(status, _response(status, headers or [], why.encode() + b"\n"))


def _tokens(value: str) -> set[str]:
    """The comma-separated tokens of a header value, lower-cased (RFC 9110 §5.6.1)."""
    return {item.strip(" \t").lower() for item in value.split(",")}


def _valid_key(key: str) -> bool:
    """A key is the base64 of 16 bytes: 24 characters, canonical (RFC 6455 §4.1, item 7)."""
    try:
        raw = base64.b64decode(key, validate=True)
    except binascii.Error:
        return False
    return len(raw) == 16 and base64.b64encode(raw).decode() == key


def handshake(head: bytes, *, allowed_origins: Collection[str] | None = None) -> Handshake:
    """Answer one opening handshake: ``head`` is the request line and headers, up to and
    including the blank line."""
    try:
        text = head.decode("latin-1")
        request_line, *field_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        return _refuse(400, "malformed request line")
    if method != "GET" or version != "HTTP/1.1" or not target.startswith("/"):
        return _refuse(400, "a WebSocket handshake is GET <path> HTTP/1.1")
    headers: dict[str, list[str]] = {}
    for line in field_lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(" \t"):
            return _refuse(400, "malformed header line")
        headers.setdefault(name.lower(), []).append(value.strip(" \t"))

    def one(name: str) -> str | None:
        values = headers.get(name, [])
        return values[0] if len(values) == 1 else None

    if one("host") is None:
        return _refuse(400, "exactly one Host header is required")
    upgrade = ",".join(headers.get("upgrade", []))
    connection = ",".join(headers.get("connection", []))
    if "websocket" not in _tokens(upgrade) or "upgrade" not in _tokens(connection):
        # RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
        return _refuse(426, "this endpoint speaks WebSocket only", [("Upgrade", "websocket")])
    if one("sec-websocket-version") != "13":
        # RFC 6455 §4.4: say which versions we do speak.
        return _refuse(426, "unsupported WebSocket version", [("Sec-WebSocket-Version", "13")])
    key = one("sec-websocket-key")
    if key is None or not _valid_key(key):
        return _refuse(400, "Sec-WebSocket-Key must be the base64 of 16 bytes")
    if allowed_origins is not None:
        origin = one("origin")
        allowed = {o.lower() for o in allowed_origins}
        if origin is None or origin.lower() not in allowed:
            return _refuse(403, "origin not allowed")
    # No Sec-WebSocket-Extensions in the answer: no extension (permessage-deflate included)
    # is negotiated, so the reserved bits stay reserved. No Sec-WebSocket-Protocol either.
    accept = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    return Handshake(101, _response(101, accept), target)


# --- frames (RFC 6455 §5.2) ---------------------------------------------------------------------


def _apply_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte masking key, repeated (RFC 6455 §5.3); the same call unmasks."""
    if not payload:
        return b""
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One frame on the wire: header, length in the shortest form, optional masking key, payload."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    if length <= 125:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask is None:
        return header + payload
    return header + mask + _apply_mask(payload, mask)


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A whole data message: ``str`` for a text message, ``bytes`` for a binary one."""

    data: str | bytes


@dataclass(frozen=True)
class Ping:
    payload: bytes


@dataclass(frozen=True)
class Pong:
    payload: bytes


@dataclass(frozen=True)
class CloseReceived:
    """The peer's Close frame: its code (1005 when the frame had none) and reason."""

    code: int
    reason: str


@dataclass(frozen=True)
class Failed:
    """We failed the connection (RFC 6455 §7.1.7) and queued a Close frame with ``code``."""

    code: int
    reason: str


Event = Message | Ping | Pong | CloseReceived | Failed


class State(Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent a Close frame and wait for the peer's
    CLOSED = "closed"  # the closing handshake is over (or the connection failed)


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_OPCODES = frozenset(Opcode)  # the defined opcodes (an IntEnum member hashes as its int)
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
TOO_BIG = 1009
NO_STATUS = 1005


def _valid_close_code(code: int) -> bool:
    """Codes a peer may send in a Close frame (RFC 6455 §7.4.1, §7.4.2, IANA registry):
    1000-1003 and 1007-1014 are defined, 3000-4999 are for libraries and applications.
    1004 is reserved; 1005, 1006 and 1015 must never be sent on the wire."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Connection:
    """The server side of one WebSocket connection, after the handshake: sans-IO.

    ``receive_data(bytes)`` returns the events the bytes complete; everything to send back
    (pongs, the Close reply, messages from ``send``) collects in ``data_to_send()``.
    """

    def __init__(self, *, max_message_size: int = 1 << 20, max_frame_size: int = 1 << 20) -> None:
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size
        self.state = State.OPEN
        self.close_code: int | None = None
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self._message_opcode: int | None = None  # TEXT or BINARY while a fragmented message runs
        self._fragments: list = []  # decoded str pieces of a text message, bytes otherwise
        self._message_size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    # -- sending --------------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        """Queue one unfragmented text (``str``) or binary (``bytes``) message."""
        if self.state is not State.OPEN:
            raise RuntimeError(f"cannot send a message on a {self.state.value} connection")
        if isinstance(message, str):
            self._outgoing += encode_frame(Opcode.TEXT, message.encode("utf-8"))
        else:
            self._outgoing += encode_frame(Opcode.BINARY, bytes(message))

    def ping(self, payload: bytes = b"") -> None:
        if self.state is not State.OPEN:
            raise RuntimeError(f"cannot ping on a {self.state.value} connection")
        if len(payload) > 125:
            raise ValueError("a control frame payload is at most 125 bytes")
        self._outgoing += encode_frame(Opcode.PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake: queue a Close frame; the state becomes CLOSING."""
        if self.state is not State.OPEN:
            return
        self._outgoing += self._close_frame(code, reason)
        self.close_code = code
        self.state = State.CLOSING

    def data_to_send(self) -> bytes:
        """The bytes queued for the peer since the last call (and forget them)."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    @staticmethod
    def _close_frame(code: int, reason: str) -> bytes:
        if code == NO_STATUS:  # "no status" is said with an empty Close frame
            return encode_frame(Opcode.CLOSE, b"")
        # A control frame holds at most 125 bytes: 2 for the code, 123 for the reason, cut at
        # a character boundary so that what is left is still UTF-8 (§5.5, §5.5.1).
        text = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
        return encode_frame(Opcode.CLOSE, struct.pack("!H", code) + text)

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse ``data`` (any slice of the stream); return the events it completes."""
        if self.state is State.CLOSED:
            return []  # after the Close frame, the peer's bytes mean nothing (§5.5.1)
        self._buffer += data
        events: list[Event] = []
        try:
            while self.state is not State.CLOSED:
                frame = self._next_frame()
                if frame is None:
                    break
                event = self._handle(*frame)
                if event is not None:
                    events.append(event)
        except _ProtocolError as error:
            events.append(self._fail(error.code, error.reason))
        return events

    def _fail(self, code: int, reason: str) -> Failed:
        """Fail the WebSocket connection (§7.1.7): send a Close frame, then stop reading."""
        if self.state is State.OPEN:
            self._outgoing += self._close_frame(code, reason)
        self.state = State.CLOSED
        self.close_code = code
        self._buffer.clear()
        return Failed(code, reason)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        """The next whole frame in the buffer as (fin, opcode, unmasked payload), or None."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        fin, rsv, opcode = bool(first & 0x80), first & 0x70, first & 0x0F
        masked, length = bool(second & 0x80), second & 0x7F
        if rsv:
            raise _ProtocolError(PROTOCOL_ERROR, "reserved bits set without an extension")
        if opcode not in _OPCODES:
            raise _ProtocolError(PROTOCOL_ERROR, f"reserved opcode {opcode}")
        if not masked:
            raise _ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
        if opcode >= Opcode.CLOSE:
            if not fin:
                raise _ProtocolError(PROTOCOL_ERROR, "control frames must not be fragmented")
            if length > 125:
                raise _ProtocolError(PROTOCOL_ERROR, "control frame payload over 125 bytes")
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                return None
            (length,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
            if length <= 125:
                raise _ProtocolError(PROTOCOL_ERROR, "length not in its shortest form")
        elif length == 127:
            if len(buffer) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buffer, 2)
            offset = 10
            if length >> 63:
                raise _ProtocolError(PROTOCOL_ERROR, "64-bit length with its top bit set")
            if length <= 0xFFFF:
                raise _ProtocolError(PROTOCOL_ERROR, "length not in its shortest form")
        if length > self.max_frame_size:
            raise _ProtocolError(TOO_BIG, f"frame of {length} bytes over the limit")
        if opcode < Opcode.CLOSE and self._message_size + length > self.max_message_size:
            raise _ProtocolError(TOO_BIG, "message over the limit")
        end = offset + 4 + length
        if len(buffer) < end:
            return None
        mask = bytes(buffer[offset : offset + 4])
        payload = _apply_mask(bytes(buffer[offset + 4 : end]), mask)
        del buffer[:end]
        return fin, opcode, payload

    def _handle(self, fin: bool, opcode: int, payload: bytes) -> Event | None:
        if opcode == Opcode.PING:
            if self.state is State.OPEN:
                self._outgoing += encode_frame(Opcode.PONG, payload)
            return Ping(payload)
        if opcode == Opcode.PONG:
            return Pong(payload)
        if opcode == Opcode.CLOSE:
            return self._receive_close(payload)
        return self._receive_data_frame(fin, opcode, payload)

    def _receive_data_frame(self, fin: bool, opcode: int, payload: bytes) -> Event | None:
        if opcode == Opcode.CONTINUATION:
            if self._message_opcode is None:
                raise _ProtocolError(PROTOCOL_ERROR, "continuation frame with nothing to continue")
        elif self._message_opcode is not None:
            raise _ProtocolError(PROTOCOL_ERROR, "new message before the fragmented one ended")
        else:
            self._message_opcode = opcode
            self._decoder.reset()
        if self._message_opcode == Opcode.TEXT:
            # Decode fragment by fragment: invalid UTF-8 fails as soon as its frame arrives,
            # even when the sequence is split across frames (§8.1; Autobahn 6.4).
            try:
                self._fragments.append(self._decoder.decode(payload, fin))
            except UnicodeDecodeError:
                raise _ProtocolError(INVALID_DATA, "text message is not valid UTF-8") from None
        else:
            self._fragments.append(payload)
        self._message_size += len(payload)
        if not fin:
            return None
        empty = "" if self._message_opcode == Opcode.TEXT else b""
        data = empty.join(self._fragments)
        self._message_opcode, self._fragments, self._message_size = None, [], 0
        if self.state is State.CLOSING:
            return None  # we are closing: late messages are dropped
        return Message(data)

    def _receive_close(self, payload: bytes) -> Event:
        if len(payload) == 1:
            raise _ProtocolError(PROTOCOL_ERROR, "a 1-byte Close body: a close code takes 2")
        code, reason = NO_STATUS, ""
        if payload:
            (code,) = struct.unpack_from("!H", payload)
            if not _valid_close_code(code):
                raise _ProtocolError(PROTOCOL_ERROR, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _ProtocolError(INVALID_DATA, "close reason is not valid UTF-8") from None
        if self.state is State.OPEN:
            # §5.5.1: answer with a Close frame, echoing the code we received.
            self._outgoing += self._close_frame(code, "")
            self.close_code = code
        self.state = State.CLOSED
        return CloseReceived(code, reason)


# --- the asyncio adapter ------------------------------------------------------------------------


class ConnectionClosed(Exception):
    """The connection is closed: ``code`` is the close code (1006 if it dropped without one)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


ABNORMAL = 1006
READ_SIZE = 1 << 16


class WebSocket:
    """One accepted connection, as a handler sees it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: Connection,
        path: str,
        close_timeout: float = 5.0,
        early: bytes = b"",
    ) -> None:
        self.path = path
        self._early = early
        self._reader = reader
        self._writer = writer
        self._connection = connection
        self._close_timeout = close_timeout
        self._inbox: deque[str | bytes] = deque()
        self._closed: ConnectionClosed | None = None
        # recv() and close() may overlap (a server shutting down closes a connection whose
        # handler waits in recv): one of them reads at a time, the other finds its result.
        self._read_lock = asyncio.Lock()

    @property
    def close_code(self) -> int | None:
        return None if self._closed is None else self._closed.code

    async def recv(self) -> str | bytes:
        """The next message; raises ``ConnectionClosed`` once the connection is closed."""
        while not self._inbox:
            if self._closed is not None:
                raise self._closed
            await self._read_once()
        return self._inbox.popleft()

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: str | bytes) -> None:
        if self._closed is not None or self._connection.state is not State.OPEN:
            raise self._closed or ConnectionClosed(self._connection.close_code or ABNORMAL)
        self._connection.send(message)
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake: send Close, wait (bounded) for the peer's, close TCP."""
        if self._closed is not None:
            return
        self._connection.close(code, reason)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self._flush()
            async with asyncio.timeout(self._close_timeout):
                while self._closed is None:
                    await self._read_once()
        self._finish(code, reason)

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake (code 1006).

        For a peer that stopped reading: a Close frame would wait behind the same full buffer.
        """
        self._writer.transport.abort()
        self._finish(ABNORMAL, "aborted")

    async def _read_once(self) -> None:
        async with self._read_lock:
            if self._closed is not None:
                return  # closed while we waited for the other reader
            data, self._early = self._early, b""
            if not data:
                try:
                    data = await self._reader.read(READ_SIZE)
                except ConnectionError:
                    data = b""
            if not data:
                self._finish(ABNORMAL, "connection dropped without a Close frame")
                return
            for event in self._connection.receive_data(data):
                if isinstance(event, Message):
                    self._inbox.append(event.data)
                elif isinstance(event, CloseReceived | Failed):
                    self._finish(event.code, event.reason, flush=True)
            with contextlib.suppress(ConnectionError):
                await self._flush()

    async def _flush(self) -> None:
        data = self._connection.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)
            await self._writer.drain()

    def _finish(self, code: int, reason: str, *, flush: bool = False) -> None:
        """The connection is over: write what is queued (the Close reply), close TCP."""
        if self._closed is not None:
            return
        self._closed = ConnectionClosed(code, reason)
        if flush and not self._writer.is_closing():
            self._writer.write(self._connection.data_to_send())
        self._writer.close()  # §7.1.1: the server closes the TCP connection first


Handler = Callable[[WebSocket], Awaitable[None]]
MAX_HEAD = 8192  # bytes of request head, through the blank line


class WebSocketServer:
    """A running server: ``port`` is where it listens; ``close()`` stops it."""

    def __init__(
        self, server: asyncio.Server, connections: set[WebSocket], close_timeout: float
    ) -> None:
        self._server = server
        self._connections = connections
        self._close_timeout = close_timeout
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, then close every open connection with 1001 (going away)."""
        self._server.close()
        closing = [ws.close(1001, "server shutting down") for ws in list(self._connections)]
        await asyncio.gather(*closing, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._close_timeout):
                await self._server.wait_closed()

    async def __aenter__(self) -> WebSocketServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def serve(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allowed_origins: Collection[str] | None = None,
    max_message_size: int = 1 << 20,
    max_frame_size: int = 1 << 20,
    close_timeout: float = 5.0,
) -> WebSocketServer:
    """Listen on ``host``:``port``; run ``handler(websocket)`` for each accepted connection."""
    connections: set[WebSocket] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = bytearray()
            while (end := head.find(b"\r\n\r\n")) < 0 and len(head) <= MAX_HEAD:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                head += chunk
            if end < 0 or end + 4 > MAX_HEAD:  # RFC 6585 §5: the head is over our limit
                writer.write(_refuse(431, "request head over 8 KiB").response)
                return
            answer = handshake(bytes(head[: end + 4]), allowed_origins=allowed_origins)
            writer.write(answer.response)
            if not answer.accepted:
                return
            connection = Connection(
                max_message_size=max_message_size, max_frame_size=max_frame_size
            )
            # Frames the client sent right behind its head were read with it: they come first.
            early = bytes(head[end + 4 :])
            websocket = WebSocket(reader, writer, connection, answer.path, close_timeout, early)
            connections.add(websocket)
            try:
                await handler(websocket)
            except ConnectionClosed:
                pass
            except Exception:
                await websocket.close(1011, "internal error")  # §7.4.1
            finally:
                connections.discard(websocket)
            await websocket.close()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, host, port)
    return WebSocketServer(server, connections, close_timeout)


# --- a broadcast room ---------------------------------------------------------------------------


class Room:
    """A set of connections; ``broadcast`` sends a message to every member.

    Each member has its own queue of at most ``max_queue`` messages and a task that sends
    from it. ``broadcast`` never waits: a member whose queue is full is too slow to keep up,
    and is removed and disconnected (``abort``), so one slow reader can neither stall the
    room nor make the server buffer without bound.
    """

    def __init__(self, *, max_queue: int = 32) -> None:
        self.max_queue = max_queue
        self._members: dict[WebSocket, tuple[asyncio.Queue[str | bytes], asyncio.Task[None]]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def join(self, websocket: WebSocket) -> None:
        if websocket in self._members:
            return
        queue: asyncio.Queue[str | bytes] = asyncio.Queue(self.max_queue)
        task = asyncio.create_task(self._pump(websocket, queue))
        self._members[websocket] = (queue, task)

    def leave(self, websocket: WebSocket) -> None:
        member = self._members.pop(websocket, None)
        if member is not None:
            member[1].cancel()

    def broadcast(self, message: str | bytes) -> None:
        for websocket, (queue, _) in list(self._members.items()):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.leave(websocket)
                websocket.abort()

    async def _pump(self, websocket: WebSocket, queue: asyncio.Queue[str | bytes]) -> None:
        try:
            while True:
                await websocket.send(await queue.get())
        except (ConnectionClosed, ConnectionError):
            self._members.pop(websocket, None)
