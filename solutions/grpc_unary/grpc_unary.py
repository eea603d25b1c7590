"""A gRPC server for unary and server-streaming calls: HTTP/2 + message framing + trailers.

Theory of operation. ``h2`` is the HTTP/2 state machine (frames, HPACK, flow-control
windows); this module is the gRPC layer on top of it (grpc/grpc doc/PROTOCOL-HTTP2.md):

* a call is one HTTP/2 stream: ``POST /pkg.Service/Method`` with
  ``content-type: application/grpc``, an optional ``grpc-timeout``;
* the request body is a sequence of Length-Prefixed-Messages (1 flag byte, 4-byte big-endian
  length, the protobuf bytes) whose boundaries have nothing to do with DATA frames;
* the response is ``:status 200`` headers, messages, then *trailers* carrying
  ``grpc-status`` and a percent-encoded ``grpc-message``; a call that fails before its first
  message is answered with one HEADERS frame (Trailers-Only).

Every call runs as its own task; the connection task feeds bytes to h2 and routes events to
calls. Only the connection task reads; any task may write, since ``flush`` hands h2's
pending bytes to the transport in one synchronous step.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from protowire import DecodeError, MessageType, decode, encode

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
_PREFIX = 5  # Compressed-Flag (1 byte) + Message-Length (4 bytes, big-endian)


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
    """End the call with this status. Handlers raise it; the server raises it internally too."""

    def __init__(self, code: StatusCode, message: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


# --- the pure parts: framing, percent-encoding, timeouts ---------------------------------


def encode_length_prefixed(message: bytes) -> bytes:
    """One uncompressed Length-Prefixed-Message: flag 0, 4-byte big-endian length, message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


class MessageReader:
    """Sans-IO reassembly of Length-Prefixed-Messages from DATA payloads cut anywhere."""

    def __init__(self, max_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH) -> None:
        self.max_length = max_length
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the messages they complete.

        Raises ``RpcError(RESOURCE_EXHAUSTED)`` as soon as a prefix declares more than
        ``max_length`` bytes (before buffering them), and ``RpcError(INTERNAL)`` for a
        compressed flag: this server negotiates no compression, so the flag must be 0.
        """
        self._buffer += data
        messages = []
        while len(self._buffer) >= _PREFIX:
            flag = self._buffer[0]
            length = int.from_bytes(self._buffer[1:_PREFIX], "big")
            if flag != 0:
                raise RpcError(StatusCode.INTERNAL, "compressed flag set without grpc-encoding")
            if length > self.max_length:
                raise RpcError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"received message larger than max ({length} vs. {self.max_length})",
                )
            if len(self._buffer) < _PREFIX + length:
                break
            messages.append(bytes(self._buffer[_PREFIX : _PREFIX + length]))
            del self._buffer[: _PREFIX + length]
        return messages

    @property
    def mid_message(self) -> bool:
        """Whether bytes of an unfinished message are buffered."""
        return bool(self._buffer)


# Percent-Byte-Unencoded: space and VCHAR except "%" (0x20-0x24, 0x26-0x7E).
_UNENCODED = frozenset(range(0x20, 0x7F)) - {ord("%")}


def percent_encode(text: str) -> str:
    """The ``grpc-message`` form of ``text``: UTF-8, then every byte outside 0x20-0x7E, and
    ``%`` itself, as ``%XX`` (upper-case hex)."""
    return "".join(chr(b) if b in _UNENCODED else f"%{b:02X}" for b in text.encode("utf-8"))


_PERCENT_BYTE = re.compile(rb"%([0-9A-Fa-f]{2})")


def percent_decode(value: str) -> str:
    """Undo ``percent_encode``. Broken escapes stay as they are and bad UTF-8 becomes U+FFFD:
    decoding a status message must never fail."""
    raw = _PERCENT_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", "replace")


_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_timeout(value: str) -> float:
    """``grpc-timeout`` (at most 8 digits, then one unit of H M S m u n) in seconds."""
    match = _TIMEOUT.fullmatch(value)
    if match is None:
        raise ValueError(f"malformed grpc-timeout {value!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# --- the service table -------------------------------------------------------------------


@dataclass
class Context:
    """What a handler knows about its call besides the request."""

    method: str
    metadata: dict[str, str]
    deadline: float | None
    clock: Callable[[], float] = time.monotonic

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never below 0), None without a deadline."""
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())


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
    """A unary method: ``async def handler(request, context) -> response``."""
    return Method(request, response, handler)


def server_streaming(request: MessageType, response: MessageType, handler: StreamHandler) -> Method:
    """A server-streaming method: ``async def handler(request, context)`` yields responses."""
    return Method(request, response, handler, streaming=True)


# --- the server --------------------------------------------------------------------------


class GrpcServer:
    """Serves ``methods`` (keyed by path, ``"/pkg.Service/Method"``) on HTTP/2 connections.

    ``clock`` gives handlers their deadline; ``sleep`` is how the server waits out a
    ``grpc-timeout`` (inject both to test deadlines without waiting).
    """

    def __init__(
        self,
        methods: Mapping[str, Method],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_receive_message_length: int = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    ) -> None:
        self.methods = dict(methods)
        self.clock = clock
        self.sleep = sleep
        self.max_receive_message_length = max_receive_message_length

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection until it closes; pass to ``asyncio.start_server``."""
        await _Connection(self, reader, writer).run()


@dataclass(eq=False)
class _Call:
    stream_id: int
    path: str
    reader: MessageReader
    messages: list[bytes] = field(default_factory=list)
    request_complete: asyncio.Event = field(default_factory=asyncio.Event)
    remote_ended: bool = False
    headers_sent: bool = False
    finished: bool = False
    task: asyncio.Task[None] | None = None


# Request headers that are gRPC's own, not the application's metadata.
_RESERVED = {"content-type", "te", "user-agent"}


class _Connection:
    def __init__(
        self, server: GrpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config)
        self.calls: dict[int, _Call] = {}
        self.window_opened = asyncio.Event()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        try:
            while not self.reader.at_eof():
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.flush()  # h2 queued a GOAWAY
                    break
                for event in events:
                    self.dispatch(event)
                self.flush()
                await self.writer.drain()
        except ConnectionError:
            pass
        finally:
            tasks = [call.task for call in self.calls.values() if call.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.start_call(event.stream_id, dict(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            # Give the flow-control credit back at once, whatever becomes of the bytes.
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            call = self.calls.get(event.stream_id)
            if call is not None and not call.finished:
                try:
                    call.messages += call.reader.feed(event.data)
                except RpcError as error:
                    self.finish(call, error.code, error.message)
        elif isinstance(event, h2.events.StreamEnded):
            call = self.calls.get(event.stream_id)
            if call is not None:
                call.remote_ended = True
                if call.reader.mid_message and not call.finished:
                    self.finish(call, StatusCode.INTERNAL, "request ended inside a message")
                call.request_complete.set()
        elif isinstance(event, h2.events.StreamReset):
            call = self.calls.pop(event.stream_id, None)
            if call is not None and call.task is not None:
                call.task.cancel()  # the client cancelled (or gave up at its deadline)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window_opened.set()

    def start_call(self, stream_id: int, headers: dict[str, str]) -> None:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("application/grpc"):
            # Not a gRPC client: a plain HTTP error it can understand (a gRPC error has 200).
            self.h2.send_headers(stream_id, [(":status", "415")], end_stream=True)
            return
        path = headers.get(":path", "")
        call = _Call(stream_id, path, MessageReader(self.server.max_receive_message_length))
        self.calls[stream_id] = call
        method = self.server.methods.get(path)
        encoding = headers.get("grpc-encoding", "identity")
        if encoding != "identity":
            return self.finish(
                call,
                StatusCode.UNIMPLEMENTED,
                f"compression {encoding!r} is not supported",
                [("grpc-accept-encoding", "identity")],
            )
        if headers.get(":method") != "POST" or method is None:
            return self.finish(call, StatusCode.UNIMPLEMENTED, f"unknown method {path}")
        timeout = None
        if "grpc-timeout" in headers:
            try:
                timeout = parse_timeout(headers["grpc-timeout"])
            except ValueError as error:
                return self.finish(call, StatusCode.INTERNAL, str(error))
        metadata = {
            name: value
            for name, value in headers.items()
            if not name.startswith((":", "grpc-")) and name not in _RESERVED
        }
        deadline = None if timeout is None else self.server.clock() + timeout
        context = Context(path, metadata, deadline, self.server.clock)
        call.task = asyncio.ensure_future(self.serve(call, method, context, timeout))

    async def serve(self, call: _Call, method: Method, context: Context, timeout: float | None):
        work = asyncio.ensure_future(self.respond(call, method, context))
        timer = asyncio.ensure_future(self.server.sleep(timeout)) if timeout is not None else None
        try:
            waiting = {work} if timer is None else {work, timer}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                # The deadline passed first: stop the handler, and tell the client.
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                self.finish(call, StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        finally:
            for task in (work, timer):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    async def respond(self, call: _Call, method: Method, context: Context) -> None:
        try:
            await call.request_complete.wait()
            if call.finished:
                return
            if len(call.messages) != 1:
                # Request cardinality violation (doc/statuscodes.md).
                raise RpcError(
                    StatusCode.UNIMPLEMENTED,
                    f"expected one request message, got {len(call.messages)}",
                )
            try:
                request = decode(method.request, call.messages[0])
            except DecodeError as error:
                raise RpcError(StatusCode.INTERNAL, f"cannot parse the request: {error}") from None
            if method.streaming:
                async for reply in method.handler(request, context):
                    await self.send_message(call, encode(method.response, reply))
            else:
                reply = await method.handler(request, context)
                await self.send_message(call, encode(method.response, reply))
        except RpcError as error:
            self.finish(call, error.code, error.message)
        except Exception:
            # Don't leak the exception's text to the client; it belongs in the server's logs.
            self.finish(call, StatusCode.UNKNOWN, "Exception calling application")
        else:
            self.finish(call, StatusCode.OK, "")

    async def send_message(self, call: _Call, message: bytes) -> None:
        if not call.headers_sent:
            self.h2.send_headers(
                call.stream_id, [(":status", "200"), ("content-type", "application/grpc")]
            )
            call.headers_sent = True
        data = encode_length_prefixed(message)
        while data:
            # Send no more than the peer's flow-control window allows; wait for it to open.
            window = self.h2.local_flow_control_window(call.stream_id)
            size = min(window, self.h2.max_outbound_frame_size, len(data))
            if size <= 0:
                self.window_opened.clear()
                await self.window_opened.wait()
                continue
            self.h2.send_data(call.stream_id, data[:size])
            data = data[size:]
            self.flush()
        await self.writer.drain()

    def finish(
        self,
        call: _Call,
        code: StatusCode,
        message: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """Send the status: as trailers after the headers, or Trailers-Only if none went out."""
        if call.finished:
            return
        call.finished = True
        trailers = [("grpc-status", str(int(code)))]
        if message:
            trailers.append(("grpc-message", percent_encode(message)))
        trailers += extra or []
        if not call.headers_sent:
            trailers = [(":status", "200"), ("content-type", "application/grpc"), *trailers]
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.send_headers(call.stream_id, trailers, end_stream=True)
            if not call.remote_ended:
                # Early server closure: the request is still open; release the stream.
                self.h2.reset_stream(call.stream_id, h2.errors.ErrorCodes.NO_ERROR)
        self.calls.pop(call.stream_id, None)
        call.request_complete.set()  # a task still waiting for the request sees it is over
        self.flush()
