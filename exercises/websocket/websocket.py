"""A WebSocket server (RFC 6455): a sans-IO core, an asyncio adapter and a broadcast room.

Three layers, each usable without the next:

* ``accept_key`` and ``handshake`` — the opening handshake: an HTTP/1.1 request head in, the
  HTTP response to write out (101 Switching Protocols, or the error that refuses it).
* ``encode_frame`` and ``Connection`` — the sans-IO protocol engine: bytes in, events out
  (``Message``, ``Ping``, ``Pong``, ``CloseReceived``, ``Failed``); the bytes to send back
  wait in ``data_to_send()``. No sockets, no clock.
* ``serve``, ``WebSocket`` and ``Room`` — the thin asyncio adapter: it reads the socket,
  feeds the engine, writes what the engine queued, and hands messages to a handler.

Standard library only. See README.md for the rules in full.
"""

from __future__ import annotations

import asyncio
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
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2).

    TODO: base64 of the SHA-1 digest of the key (as sent, a string) followed by GUID.
    """
    raise NotImplementedError


@dataclass(frozen=True)
class Handshake:
    """What ``handshake`` decided: the status, the response bytes to write, the request path."""

    status: int
    response: bytes
    path: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 101


def handshake(head: bytes, *, allowed_origins: Collection[str] | None = None) -> Handshake:
    """Answer one opening handshake.

    ``head`` is the request line and the header lines, up to and including the blank line
    (``b"GET /chat HTTP/1.1\\r\\nHost: ...\\r\\n\\r\\n"``). Returns a Handshake whose
    ``response`` is the whole HTTP/1.1 response to write and ``path`` the request target.

    TODO: 400 Bad Request when the request line is not exactly "GET <target> HTTP/1.1" (target
          starting with "/"), a header line has no colon, there is not exactly one Host, or
          Sec-WebSocket-Key is missing, repeated, or not the base64 of exactly 16 bytes.
    TODO: 426 Upgrade Required with "Upgrade: websocket" when the Upgrade header has no
          "websocket" token or the Connection header no "upgrade" token. Both are
          comma-separated lists matched case-insensitively ("keep-alive, Upgrade").
    TODO: 426 Upgrade Required with "Sec-WebSocket-Version: 13" when Sec-WebSocket-Version is
          anything but exactly "13" (missing included).
    TODO: allowed_origins given -> the Origin header must be one of them (compared
          case-insensitively); missing or not listed -> 403 Forbidden.
    TODO: otherwise 101 Switching Protocols with "Upgrade: websocket", "Connection: Upgrade" and
          "Sec-WebSocket-Accept: <accept_key(key)>". Never answer Sec-WebSocket-Extensions:
          no extension is negotiated, even when the client offers permessage-deflate.
    TODO: every refusal (4xx) has Content-Length and "Connection: close".
    """
    raise NotImplementedError


# --- frames (RFC 6455 §5.2) ---------------------------------------------------------------------


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One frame on the wire.

    TODO: byte 0 = FIN bit (0x80) | opcode; the RSV bits are 0.
    TODO: byte 1 = MASK bit (0x80 when ``mask`` is given) | length, in the SHORTEST form:
          0-125 in the 7 bits; 126-65535 as 126 then 2 bytes; larger as 127 then 8 bytes
          (network byte order).
    TODO: with ``mask`` (4 bytes): the key follows the length, and payload byte i is XORed with
          mask[i % 4]. A server never masks; a client always does.
    """
    raise NotImplementedError


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


class Connection:
    """The server side of one WebSocket connection, after the handshake: sans-IO.

    ``receive_data(bytes)`` returns the events the bytes complete; everything to send back
    (pongs, the Close reply, messages from ``send``) collects in ``data_to_send()``.
    ``max_frame_size`` bounds one frame's payload, ``max_message_size`` one whole message.
    """

    def __init__(self, *, max_message_size: int = 1 << 20, max_frame_size: int = 1 << 20) -> None:
        self.state: State
        self.close_code: int | None
        raise NotImplementedError

    def send(self, message: str | bytes) -> None:
        """Queue one unfragmented message: TEXT for ``str`` (UTF-8), BINARY for ``bytes``.

        TODO: raise RuntimeError unless the state is OPEN (no data after a Close, §5.5.1).
        """
        raise NotImplementedError

    def ping(self, payload: bytes = b"") -> None:
        """Queue a Ping.

        TODO: raise ValueError for a payload over 125 bytes (a control frame's limit), and
              RuntimeError unless the state is OPEN.
        """
        raise NotImplementedError

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake: queue a Close frame (code, then the UTF-8 reason, cut
        to at most 123 bytes at a character boundary); the state becomes CLOSING. Does nothing
        unless the state is OPEN."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """The bytes queued for the peer since the last call (and forget them)."""
        raise NotImplementedError

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse ``data`` (any slice of the stream: half a header, ten frames...); return the
        events it completes, in order.

        TODO: buffer bytes until a frame is whole; check its header as soon as the header is
              whole, before the payload arrives.
        TODO: fail with 1002 (protocol error): RSV bits set; a reserved opcode (3-7, 11-15); an
              unmasked frame; a control frame (Close, Ping, Pong) with FIN=0 or more than 125
              bytes; a length not in its shortest form; a 64-bit length with its top bit set;
              a continuation with no message to continue; a new TEXT/BINARY frame while a
              fragmented message is unfinished; a Close body of 1 byte; a close code that is
              not 1000-1003, 1007-1014 or 3000-4999.
        TODO: fail with 1009 (too big): a frame whose payload is over max_frame_size, or a
              message whose fragments add up to more than max_message_size (known from the
              header: fail before the payload arrives).
        TODO: fail with 1007 (invalid data): a text message, or a Close reason, that is not
              valid UTF-8. Check each fragment as it arrives (an incremental decoder): a
              code point may be split across fragments, an invalid byte may not.
        TODO: unmask the payload (XOR with the 4-byte key). Control frames may come between
              the fragments of a message.
        TODO: a Ping queues a Pong with the same payload and gives Ping(payload); a Pong gives
              Pong(payload) and is not answered.
        TODO: a complete message gives Message(str) for TEXT, Message(bytes) for BINARY.
        TODO: a Close while OPEN queues a Close with the same code (an empty Close when the
              peer's had none) and gives CloseReceived(code, reason) (code 1005 when none);
              a Close while CLOSING gives CloseReceived and queues nothing. Either way the
              state becomes CLOSED.
        TODO: to fail: queue a Close frame with the code (if still OPEN), give Failed(code,
              reason), and move to CLOSED. Once CLOSED, receive_data returns [] and queues
              nothing.
        """
        raise NotImplementedError


# --- the asyncio adapter ------------------------------------------------------------------------


class ConnectionClosed(Exception):
    """The connection is closed: ``code`` is the close code (1006 if it dropped without one)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocket:
    """One accepted connection, as a handler sees it. ``path`` is the request target."""

    path: str

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed, else None."""
        raise NotImplementedError

    async def recv(self) -> str | bytes:
        """The next message (``str`` or ``bytes``); raises ``ConnectionClosed`` once closed.

        TODO: read from the socket and feed the Connection until a message is ready; write
              what the Connection queued (pongs, the Close reply) as you go.
        TODO: on CloseReceived or Failed, write the queued Close and close the TCP connection
              (the server closes it first, §7.1.1); on EOF without a Close, code 1006.
        """
        raise NotImplementedError

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """``async for message in websocket``: messages until the connection closes."""
        raise NotImplementedError

    async def send(self, message: str | bytes) -> None:
        """Send one message (text for ``str``); wait for the socket to drain. Raises
        ``ConnectionClosed`` once the connection is closing or closed."""
        raise NotImplementedError

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake: send Close, wait (bounded by close_timeout) for the peer's
        Close, then close TCP. Does nothing if already closed."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake; close_code becomes 1006.

        For a peer that stopped reading: a Close frame would wait behind the same full buffer.
        """
        raise NotImplementedError


Handler = Callable[[WebSocket], Awaitable[None]]


class WebSocketServer:
    """A running server: ``port`` is where it listens; ``close()`` stops it."""

    port: int

    async def close(self) -> None:
        """Stop listening, then close every open connection with 1001 (going away), even one
        whose handler waits in recv(); wait at most close_timeout for the peers."""
        raise NotImplementedError

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
    """Listen on ``host``:``port`` (0: any free port); run ``handler(websocket)`` for each
    accepted connection.

    TODO: read the request head, up to and including the blank line. A head over 8192 bytes
          (or bytes that reach past 8192 without a blank line) gets 431 Request Header Fields
          Too Large. Answer the head with ``handshake``; close unless it was accepted.
    TODO: bytes read past the blank line are the first frames: feed them first.
    TODO: when the handler returns, close with 1000; when it raises, close with 1011.
    """
    raise NotImplementedError


# --- a broadcast room ---------------------------------------------------------------------------


class Room:
    """A set of connections; ``broadcast`` sends a message to every member.

    Each member has its own queue of at most ``max_queue`` messages and a task that sends
    from it. ``broadcast`` never waits: a member whose queue is full is too slow to keep up,
    and is removed and disconnected (``abort``).
    """

    def __init__(self, *, max_queue: int = 32) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of members."""
        raise NotImplementedError

    def join(self, websocket: WebSocket) -> None:
        """Add a member and start its sender task (joining twice changes nothing)."""
        raise NotImplementedError

    def leave(self, websocket: WebSocket) -> None:
        """Remove a member and stop its sender task (its queued messages are dropped)."""
        raise NotImplementedError

    def broadcast(self, message: str | bytes) -> None:
        """Queue ``message`` for every member, without waiting.

        TODO: a member whose queue already holds max_queue messages is removed and aborted
              (the message its task is busy sending has left the queue: it does not count).
        TODO: a member whose connection closed is removed by its sender task.
        """
        raise NotImplementedError
