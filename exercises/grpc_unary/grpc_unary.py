"""A gRPC server for unary and server-streaming calls: HTTP/2 + message framing + trailers.

``h2`` (allowed here) is the HTTP/2 state machine: frames, HPACK, stream states and
flow-control windows. You write the gRPC layer on top of it (grpc/grpc doc/PROTOCOL-HTTP2.md):

* a call is one HTTP/2 stream: ``POST /pkg.Service/Method``, ``content-type: application/grpc``,
  an optional ``grpc-timeout``;
* the request body is a sequence of Length-Prefixed-Messages (1 flag byte, 4-byte big-endian
  length, the protobuf bytes) whose boundaries have nothing to do with DATA frames;
* the response is ``:status 200`` headers, messages, then trailers with ``grpc-status`` and a
  percent-encoded ``grpc-message``; a call that fails before its first message is answered
  with a single HEADERS frame (Trailers-Only).

Standard library, ``h2`` and your ``protowire`` only. See README.md for the rules in full.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protowire import MessageType

__all__ = [
    "DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH",
    "Context",
    "GrpcServer",
    "MessageReader",
    "Method",
    "RpcError",
    "StatusCode",
    "encode_length_prefixed",
    "parse_timeout",
    "percent_decode",
    "percent_encode",
    "server_streaming",
    "unary",
]

DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 4 * 1024 * 1024  # grpc's default receive limit: 4 MiB


class StatusCode(enum.IntEnum):
    """The gRPC status codes (grpc/grpc doc/statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RpcError(Exception):
    """End the call with this status. Handlers raise it; your server may raise it internally."""

    def __init__(self, code: StatusCode, message: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


# --- the pure parts: framing, percent-encoding, timeouts ---------------------------------


def encode_length_prefixed(message: bytes) -> bytes:
    """One uncompressed Length-Prefixed-Message.

    TODO: the Compressed-Flag byte 0, the length as 4 bytes big-endian, then the message.
    """
    raise NotImplementedError


class MessageReader:
    """Sans-IO reassembly of Length-Prefixed-Messages from DATA payloads cut anywhere."""

    def __init__(self, max_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH) -> None:
        self.max_length = max_length

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the messages they complete (possibly none, possibly several).

        TODO: buffer bytes until a 5-byte prefix and then the whole message are there.
        TODO: a prefix whose length is above max_length raises RpcError(RESOURCE_EXHAUSTED)
              at once: never buffer a message you will refuse.
        TODO: this server negotiates no compression: a flag other than 0 raises
              RpcError(INTERNAL).
        """
        raise NotImplementedError

    @property
    def mid_message(self) -> bool:
        """Whether bytes of an unfinished message (or prefix) are buffered.

        TODO: the server checks this when the request stream ends.
        """
        raise NotImplementedError


def percent_encode(text: str) -> str:
    """The ``grpc-message`` form of ``text``.

    TODO: encode as UTF-8; keep bytes 0x20-0x7E except "%" as they are; write every other
          byte as "%XX" with upper-case hex (PROTOCOL-HTTP2.md, Status-Message).
    """
    raise NotImplementedError


def percent_decode(value: str) -> str:
    """Undo ``percent_encode``.

    TODO: "%XX" (either case of hex) becomes that byte; then decode the bytes as UTF-8.
    TODO: never raise: a broken escape ("%zz", a lone "%") stays as it is, bad UTF-8 becomes
          U+FFFD.
    """
    raise NotImplementedError


def parse_timeout(value: str) -> float:
    """A ``grpc-timeout`` value in seconds.

    TODO: TimeoutValue is 1 to 8 ASCII digits; TimeoutUnit one of H (hours), M (minutes),
          S (seconds), m (milliseconds), u (microseconds), n (nanoseconds).
    TODO: anything else raises ValueError.
    """
    raise NotImplementedError


# --- the service table -------------------------------------------------------------------


@dataclass
class Context:
    """What a handler knows about its call besides the request.

    ``metadata``: the request's custom headers (not the ``:pseudo`` ones, not ``grpc-*``,
    not content-type, te or user-agent). ``deadline``: on the server's ``clock``, or None.
    """

    method: str
    metadata: dict[str, str]
    deadline: float | None
    clock: Callable[[], float] = time.monotonic

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never below 0); None without a deadline.

        TODO: read the injected clock.
        """
        raise NotImplementedError


UnaryHandler = Callable[[dict[str, Any], Context], Awaitable[Mapping[str, Any]]]
StreamHandler = Callable[[dict[str, Any], Context], AsyncIterator[Mapping[str, Any]]]


@dataclass(frozen=True)
class Method:
    """A method's request and response types and its handler."""

    request: MessageType
    response: MessageType
    handler: Callable[..., Any]
    streaming: bool = False


def unary(request: MessageType, response: MessageType, handler: UnaryHandler) -> Method:
    """A unary method: ``async def handler(request: dict, context) -> dict``."""
    return Method(request, response, handler)


def server_streaming(request: MessageType, response: MessageType, handler: StreamHandler) -> Method:
    """A server-streaming method: ``async def handler(request, context)`` yields dicts."""
    return Method(request, response, handler, streaming=True)


# --- the server --------------------------------------------------------------------------


class GrpcServer:
    """Serves ``methods`` (keyed by path, ``"/pkg.Service/Method"``) on HTTP/2 connections.

    ``clock`` gives handlers their deadline (``Context.deadline = clock() + timeout``);
    ``sleep`` is how the server waits out a ``grpc-timeout`` (``await sleep(seconds)``):
    the specs inject both to test deadlines without waiting.

    Use: ``await asyncio.start_server(server.handle_connection, "127.0.0.1", 50051)``.
    """

    def __init__(
        self,
        methods: Mapping[str, Method],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    ) -> None:
        """TODO: keep the methods and the options."""
        raise NotImplementedError

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection until it closes.

        TODO: an h2 server connection (H2Configuration(client_side=False)); send its preface;
              feed it every byte read; write h2.data_to_send() after every change.
        TODO: each call (stream) runs as its own task, so a slow handler never blocks others.
        TODO: content-type not starting with "application/grpc": HTTP 415, no gRPC status.
        TODO: unknown :path (case-sensitive) -> UNIMPLEMENTED; grpc-encoding other than
              identity -> UNIMPLEMENTED with grpc-accept-encoding: identity; malformed
              grpc-timeout -> INTERNAL.
        TODO: acknowledge received DATA (flow-control credit) as you read it.
        TODO: when the request ends: exactly one message, or UNIMPLEMENTED; a message that
              does not decode -> INTERNAL; ended inside a message -> INTERNAL.
        TODO: call the handler with the decoded request and a Context; encode its reply
              (or each reply it yields) as a Length-Prefixed-Message in DATA frames, never
              more than the peer's flow-control window allows (wait for WINDOW_UPDATE).
        TODO: end with trailers: grpc-status (and grpc-message, percent-encoded, if any);
              before any reply, as Trailers-Only (:status 200, content-type, grpc-status in
              one HEADERS frame with END_STREAM).
        TODO: RpcError from the handler -> its code and message; any other exception ->
              UNKNOWN, without the exception's text.
        TODO: grpc-timeout: when sleep(timeout) ends before the handler, cancel the handler
              and answer DEADLINE_EXCEEDED.
        TODO: RST_STREAM from the client, or the connection closing, cancels the handler.
        """
        raise NotImplementedError
