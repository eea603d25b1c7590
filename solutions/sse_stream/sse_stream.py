"""Server-sent events: an event encoder, a hub with a replay buffer, and a streaming endpoint.

Theory of operation
-------------------
Three layers, each usable without the next:

* ``encode(event)`` turns one event into the bytes of the ``text/event-stream`` format (WHATWG
  HTML §9.2.5): ``id:``, ``event:``, ``retry:``, one ``data:`` line per line of the data, and
  an empty line that tells the client to dispatch it. Pure: no I/O, no state.
* ``Hub`` numbers the events it publishes (ids "1", "2", ...), keeps the newest ``replay`` of
  them for clients that reconnect with ``Last-Event-ID``, and hands every event to every
  ``Subscription``. A subscription's queue is bounded: a publish that finds it full drops the
  subscriber (and disconnects it) instead of waiting for it or growing without end. A dropped
  client reconnects with its ``Last-Event-ID`` and the replay buffer fills the gap.
* ``SSEServer`` speaks just enough HTTP/1.1 to accept ``GET /events`` and answer with an
  endless ``200 text/event-stream`` response, one task per stream. One more task, for the
  whole server, writes a heartbeat comment to every idle stream every ``heartbeat`` seconds.
  Its sleep is injected so a test can decide when time passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["HEARTBEAT", "MAX_HEAD", "Event", "Hub", "SSEServer", "Subscription", "encode"]

MAX_HEAD = 8192  # bytes of a request head, the empty line included; more gets 431
HEARTBEAT = b": heartbeat\n\n"  # a comment line: every client ignores it (§9.2.6)
LINGER_TIMEOUT = 5.0  # seconds without a byte before a lingering close gives up
LINGER_TIME = 30.0  # seconds a lingering close reads at most

# §9.2.5: a line ends with CRLF, a lone LF or a lone CR, and nothing else. Not
# str.splitlines(), which also breaks at \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One server-sent event. ``event=None`` is a plain "message"; ``retry`` is in milliseconds."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def encode(event: Event) -> bytes:
    """The event in the text/event-stream format (UTF-8), ending with the empty line."""
    lines = []
    if event.id is not None:
        # A client ignores an id with NUL (§9.2.6), and CR or LF would end the field early.
        if any(char in event.id for char in "\r\n\0"):
            raise ValueError(f"an event id may not contain CR, LF or NUL: {event.id!r}")
        lines.append(f"id: {event.id}")
    if event.event is not None:
        if "\r" in event.event or "\n" in event.event:
            raise ValueError(f"an event type may not contain CR or LF: {event.event!r}")
        lines.append(f"event: {event.event}")
    if event.retry is not None:
        if event.retry < 0:
            raise ValueError(f"retry is a number of milliseconds, not {event.retry}")
        lines.append(f"retry: {event.retry}")
    # One data line per line; the client joins them with LF. "field: value" with one space:
    # the client strips exactly one, so a value that starts with a space keeps it.
    lines += [f"data: {line}" for line in _LINE_BREAK.split(event.data)]
    return ("\n".join(lines) + "\n\n").encode()


class Subscription:
    """One client's view of a Hub: the replayed backlog, then every event published after."""

    def __init__(self, hub: Hub, backlog: list[Event], on_drop: Callable[[], None] | None) -> None:
        self.backlog = backlog
        self.dropped = False
        self.closed = False
        self._hub = hub
        self._on_drop = on_drop
        self._queue: deque[Event] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Events published to this subscription and not yet taken with ``get``."""
        return len(self._queue)

    async def get(self) -> Event | None:
        """The next published event, waiting for one; None once the subscription is closed."""
        while not self._queue and not self.closed:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        if self.closed:
            return None
        return self._queue.popleft()

    def close(self) -> None:
        """Leave the hub; ``get`` returns None from now on. Calling it twice is harmless."""
        self.closed = True
        self._queue.clear()
        self._hub._subscriptions.discard(self)
        self._wake()

    def _offer(self, event: Event) -> None:
        if len(self._queue) >= self._hub.queue_size:
            # Full: this client reads slower than we publish. Waiting for it would stall
            # every other client, and queueing without a bound would let it eat the memory.
            # Drop it; it can come back with Last-Event-ID.
            self.dropped = True
            self.close()
            if self._on_drop is not None:
                self._on_drop()
            return
        self._queue.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class Hub:
    """Publishes numbered events to every subscriber and keeps the newest for replay."""

    def __init__(self, *, replay: int = 100, queue_size: int = 64) -> None:
        self.replay = replay
        self.queue_size = queue_size
        self._last = 0  # the id of the newest event; 0 before the first
        self._buffer: deque[Event] = deque(maxlen=replay)
        self._subscriptions: set[Subscription] = set()

    @property
    def last_id(self) -> str:
        """The id of the newest event published ("0" before the first)."""
        return str(self._last)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)

    def publish(self, data: str, event: str | None = None) -> Event:
        """Number the event, keep it for replay, offer it to every subscriber; return it."""
        self._last += 1
        published = Event(data, event=event, id=str(self._last))
        self._buffer.append(published)
        for subscription in list(self._subscriptions):  # _offer may drop one from the set
            subscription._offer(published)
        return published

    def subscribe(
        self, last_event_id: str | None = None, on_drop: Callable[[], None] | None = None
    ) -> Subscription:
        """A new subscription; its backlog is what the client missed after ``last_event_id``."""
        subscription = Subscription(self, self._backlog(last_event_id), on_drop)
        self._subscriptions.add(subscription)
        return subscription

    def _backlog(self, last_event_id: str | None) -> list[Event]:
        if not last_event_id:  # a new client: live events only
            return []
        oldest = self._last - len(self._buffer) + 1  # the oldest id still in the buffer
        seen = _event_number(last_event_id)
        if seen is not None and oldest - 1 <= seen <= self._last:
            # Every event after `seen` is still here: exactly the missed ones, in order.
            return list(self._buffer)[seen - oldest + 1 :]
        # Too old (the buffer has moved past it), from the future, or not an id of ours: the
        # gap can't be filled, so say so. The client resyncs its state and carries on from
        # the id the reset carries.
        return [Event("", event="reset", id=self.last_id)]


def _event_number(text: str) -> int | None:
    """The id as a number if it is ASCII digits (an id this hub could have issued)."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts: no id of ours anyway
        return None


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str, extra: str = "") -> None:
        super().__init__(reason)
        self.response = (
            f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-store\r\n"  # every stream is live: no cache may answer for it
    b"X-Accel-Buffering: no\r\n"  # tells nginx not to buffer the response
    b"Connection: close\r\n"  # no Content-Length: the body ends when the connection does
    b"\r\n"
)


class SSEServer:
    """Serves ``GET /events`` as a text/event-stream of a Hub's events."""

    def __init__(
        self,
        hub: Hub,
        *,
        heartbeat: float = 15.0,
        retry: int | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_streams: Callable[[int], None] | None = None,
    ) -> None:
        self.hub = hub
        self.heartbeat = heartbeat
        self.retry = retry
        self._sleep = sleep
        self._on_streams = on_streams
        self._streams: dict[asyncio.StreamWriter, Subscription] = {}
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        """How many event streams are open right now."""
        return len(self._streams)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (port 0: any free port); return the bound port."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        self._ticker = asyncio.create_task(self._heartbeats())
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, end every stream and connection, stop the heartbeats."""
        if self._server is None:
            return
        self._server.close()
        assert self._ticker is not None
        self._ticker.cancel()
        for writer in self._connections:
            writer.transport.abort()  # a stalled client would keep a graceful close waiting
        for subscription in list(self._streams.values()):
            subscription.close()
        await asyncio.gather(self._ticker, *self._connections.values(), return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _heartbeats(self) -> None:
        # One timer for the whole server, not one per stream: an idle stream costs nothing.
        while True:
            await self._sleep(self.heartbeat)
            for writer in self._streams:
                # A stream with bytes still waiting to go out is not idle, and piling
                # heartbeats onto a client that does not read would only grow its buffer.
                if writer.transport.get_write_buffer_size() == 0:
                    writer.write(HEARTBEAT)

    def _count_streams(self) -> None:
        if self._on_streams is not None:
            self._on_streams(len(self._streams))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            try:
                last_event_id = await _read_request(reader)
            except _HTTPError as error:
                writer.write(error.response)
                await _linger(reader, writer)
                return
            await self._stream(reader, writer, last_event_id)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away, or lingered too long
        finally:
            del self._connections[writer]
            writer.close()

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, last_event_id: str | None
    ) -> None:
        # Subscribe before anything is written: no event can fall between the replayed
        # backlog and the live queue, since nothing else runs until the next await.
        subscription = self.hub.subscribe(last_event_id, on_drop=lambda: _reset(writer))
        self._streams[writer] = subscription
        self._count_streams()
        # The client leaving ends the subscription, which ends the loop below.
        watcher = asyncio.create_task(_until_eof(reader))
        watcher.add_done_callback(lambda _: subscription.close())
        try:
            opening = [_STREAM_HEAD]
            if self.retry is not None:
                opening.append(b"retry: %d\n\n" % self.retry)
            opening += [encode(event) for event in subscription.backlog]
            writer.write(b"".join(opening))
            await writer.drain()
            while (event := await subscription.get()) is not None:
                writer.write(encode(event))
                await writer.drain()  # a slow client blocks here, and its queue fills
        finally:
            watcher.cancel()
            subscription.close()
            del self._streams[writer]
            self._count_streams()


async def _read_request(reader: asyncio.StreamReader) -> str | None:
    """Read one request head; return its Last-Event-ID (None if absent), or raise _HTTPError."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _HTTPError(431, "Request Header Fields Too Large") from None
    if len(head) > MAX_HEAD:  # readuntil's limit counts only the bytes before the separator
        raise _HTTPError(431, "Request Header Fields Too Large")
    request_line, *fields = head[:-4].decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[1].startswith("/"):
        raise _HTTPError(400, "Bad Request")
    method, target, _ = parts
    last_event_id = None
    for line in fields:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(" \t"):
            raise _HTTPError(400, "Bad Request")
        if name.lower() == "last-event-id":
            last_event_id = value.strip(" \t")  # only SP and HTAB are whitespace here
    if target.split("?", 1)[0] != "/events":
        raise _HTTPError(404, "Not Found")
    if method != "GET":
        raise _HTTPError(405, "Method Not Allowed", "Allow: GET\r\n")
    return last_event_id


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 9112 §9.6: after an answer to a head alone, half-close and read what the client sends.

    A client still sending a body (a POST /events from urllib or requests sends it whole before
    it reads) would otherwise meet a closed socket: the kernel answers its data with a reset,
    and the client fails on a write without ever reading our answer. Bounded like nginx's
    lingering_timeout (5 s without a byte) and lingering_time (30 s in all).
    """
    await writer.drain()
    writer.write_eof()
    deadline = asyncio.get_running_loop().time() + LINGER_TIME
    async with asyncio.timeout_at(deadline):
        while await asyncio.wait_for(reader.read(65536), LINGER_TIMEOUT):
            pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop a connection now, buffered data and all.

    abort() discards asyncio's buffer, but a plain close() of the socket still leaves the
    kernel sending its send buffer (megabytes, to a client that does not read). SO_LINGER with
    a zero timeout makes the close a reset: the kernel frees the buffer at once.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its end (anything it sends meanwhile is ignored)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass
