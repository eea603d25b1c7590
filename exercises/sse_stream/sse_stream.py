"""Server-sent events: an event encoder, a hub with a replay buffer, and a streaming endpoint.

Read README.md first: it explains the text/event-stream format, Last-Event-ID, heartbeats and
every rule below. Standard library only; you write the small HTTP/1.1 part yourself on top of
``asyncio.start_server`` (no http.server, no aiohttp, no SSE library).

Three layers, each usable without the next:

    encode(Event(...))            -> the bytes of one event (pure, no I/O)
    hub = Hub(replay=100, queue_size=64)
    hub.publish("text", event=None) -> Event with the next id ("1", "2", ...)
    sub = hub.subscribe(last_event_id)   sub.backlog, await sub.get(), sub.dropped, sub.close()
    server = SSEServer(hub, heartbeat=15.0, retry=None, sleep=asyncio.sleep, on_streams=None)
    port = await server.start("127.0.0.1", 0); ...; await server.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_HEAD = 8192  # bytes of a request head, the empty line included; more gets 431
HEARTBEAT = b": heartbeat\n\n"  # a comment line: every client ignores it (WHATWG HTML §9.2.6)


@dataclass(frozen=True)
class Event:
    """One server-sent event. ``event=None`` is a plain "message"; ``retry`` is in milliseconds."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def encode(event: Event) -> bytes:
    """The event in the text/event-stream format, UTF-8, ending with the empty line.

    Fields in this order, each as ``name: value`` with one space after the colon and a LF at
    the end: ``id`` (if not None), ``event`` (if not None), ``retry`` (if not None), then one
    ``data`` line per line of ``data`` (always at least one), then an empty line.

    Raises ValueError for an id containing CR, LF or NUL, an event type containing CR or LF,
    or a negative retry.
    """
    # TODO: the lines of `data` are separated by CRLF, a lone LF or a lone CR (§9.2.5), and by
    #   nothing else: str.splitlines() also splits at \v, \f, \x1c, \x85, \u2028 ... and drops
    #   a trailing empty line. "a\n" is two lines, "a" and "".
    # TODO: "data: " + line, with the space: the client strips one space after the colon, so
    #   a line that starts with a space keeps it only if you write one first.
    raise NotImplementedError


class Subscription:
    """One client's view of a Hub: the replayed backlog, then every event published after.

    ``backlog``: the events to send first (what the client missed, or one reset event).
    ``dropped``: True once a publish found the queue full and dropped this subscriber.
    ``closed``: True once closed (by ``close()``, by a drop, or by the hub).
    """

    backlog: list[Event]
    dropped: bool
    closed: bool

    @property
    def pending(self) -> int:
        """Events published to this subscription and not yet taken with ``get``."""
        raise NotImplementedError

    async def get(self) -> Event | None:
        """The next published event, oldest first, waiting for one (no polling loop);
        None once the subscription is closed (events still queued then are discarded)."""
        raise NotImplementedError

    def close(self) -> None:
        """Leave the hub: it stops counting and feeding this subscription; a ``get`` waiting
        now returns None. Calling it twice is harmless."""
        raise NotImplementedError


class Hub:
    """Publishes numbered events to every subscriber and keeps the newest for replay."""

    def __init__(self, *, replay: int = 100, queue_size: int = 64) -> None:
        """``replay``: how many of the newest events are kept for Last-Event-ID (0: none).
        ``queue_size``: how many published events may wait in one subscription's queue."""
        # TODO: the newest id (0 before the first event), a bounded buffer of the newest
        #   `replay` events (collections.deque(maxlen=...)), the set of subscriptions.
        raise NotImplementedError

    @property
    def last_id(self) -> str:
        """The id of the newest event published ("0" before the first)."""
        raise NotImplementedError

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        raise NotImplementedError

    def publish(self, data: str, event: str | None = None) -> Event:
        """Give the event the next id ("1", "2", ...), keep it for replay, put it in every
        subscription's queue, and return it (``Event(data, event=event, id=...)``).

        Never waits: a subscription whose queue already holds ``queue_size`` events is
        dropped instead (``dropped`` and ``closed`` become True, it leaves the hub, and its
        ``on_drop`` callback, if any, is called).
        """
        # TODO: offer to a copy of the set: dropping a subscriber changes it.
        raise NotImplementedError

    def subscribe(
        self, last_event_id: str | None = None, on_drop: Callable[[], None] | None = None
    ) -> Subscription:
        """A new subscription. Its ``backlog`` depends on ``last_event_id``:

        * None or "": a new client, an empty backlog (live events only);
        * the id of an event still in the replay buffer, or the id just before the oldest
          one in it (every event after it is still there), or the newest id: the events after
          it, oldest first (none if it is the newest);
        * anything else (too old, newer than the newest, not an id this hub issued): exactly
          one event ``Event("", event="reset", id=hub.last_id)``; the client resyncs.
        """
        # TODO: ids are decimal numbers: check text.isascii() and text.isdigit() before int(),
        #   and mind that int() refuses more than 4,300 digits.
        raise NotImplementedError


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
        """Create a server; nothing listens until ``start``.

        ``heartbeat``: seconds between heartbeat comments, slept with ``sleep(heartbeat)``
        (inject your own ``sleep`` to decide when time passes, as the specs do).
        ``retry``: if not None, every stream begins with ``retry: <ms>`` and an empty line.
        ``on_streams``: if given, called with the new number of open streams each time a
        stream opens or ends (a metrics gauge; the specs use it instead of sleeping).
        """
        raise NotImplementedError

    @property
    def streams(self) -> int:
        """How many event streams are open right now."""
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` with ``asyncio.start_server``; start the heartbeat task;
        return the bound port (port 0 asks the kernel for a free one)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening, end every stream and connection, stop the heartbeat task.

        Returns once every connection's handler has finished. Calling it twice is harmless.
        """
        raise NotImplementedError

    # TODO: one request per connection. Read the head with readuntil(b"\r\n\r\n"):
    #   - more than MAX_HEAD bytes (the empty line included) -> 431
    #   - request line not "METHOD SP /target SP HTTP/1.0|HTTP/1.1" -> 400; a header line
    #     without a colon, or with whitespace before it -> 400
    #   - path (the target without its ?query) other than /events -> 404
    #   - method other than GET -> 405 with "Allow: GET"
    #   Errors: "HTTP/1.1 <code> <reason>", Content-Length: 0, Connection: close; then close
    #   in stages (RFC 9112 §9.6): write_eof(), read and drop what the client still sends (5 s
    #   without a byte, 30 s in all), then close: a plain close resets a client still sending.
    # TODO: a stream: subscribe FIRST (with the Last-Event-ID field's value, SP/HTAB trimmed,
    #   and on_drop = the transport's abort), then write "HTTP/1.1 200 OK" with
    #   Content-Type: text/event-stream, Cache-Control: no-store, Connection: close and no
    #   Content-Length; then "retry: <ms>\n\n" if retry is set; then the backlog; then every
    #   event from sub.get(), each written as one write() followed by drain().
    # TODO: watch the socket while streaming: the client closing its end closes the
    #   subscription, and the stream ends (no subscription, no task left behind).
    # TODO: heartbeats: ONE task for the whole server, looping on `await sleep(heartbeat)`,
    #   then writing HEARTBEAT to every open stream whose transport has nothing buffered
    #   (transport.get_write_buffer_size() == 0).
    # TODO: a dropped subscriber's connection is aborted (transport.abort()): a graceful
    #   close would wait forever to flush data to a client that does not read.
