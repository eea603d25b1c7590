"""Helpers for the sse_stream specs: the WHATWG event-stream parser (the oracle), a running
server, raw streams read through the parser, and an injected sleep the spec releases by hand."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
import resource
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sse_stream import Hub, SSEServer

from grader.spectools import LOCALHOST, Gauge, bounded, called, short, step

__all__ = [
    "LOCALHOST",
    "Dispatched",
    "Running",
    "Stream",
    "Ticker",
    "WhatwgParser",
    "bounded",
    "called",
    "open_stream",
    "parse_all",
    "raise_open_files",
    "receive_until",
    "running",
    "short",
    "stalled_client",
    "step",
]


# -- the oracle: WHATWG HTML §9.2.5 "Parsing an event stream" and §9.2.6 "Interpreting an
#    event stream", transcribed step by step -------------------------------------------------


# §9.2.5: "end-of-line = ( cr lf / cr / lf )"; CRLF first, so it counts as one line end.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Dispatched:
    """A MessageEvent as a browser's EventSource would fire it."""

    type: str
    data: str
    last_event_id: str


@dataclass
class WhatwgParser:
    """Feed it the bytes of a text/event-stream; it dispatches events as EventSource does.

    §9.2.5: the stream is decoded with UTF-8 decode (a leading BOM is stripped, invalid bytes
    become U+FFFD); a line ends with CRLF, a lone LF or a lone CR. §9.2.6: the buffers, the
    fields, and the dispatch steps. It also counts comment lines (heartbeats) and records each
    retry value, which a browser keeps to itself.
    """

    events: list[Dispatched] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retries: list[int] = field(default_factory=list)
    last_event_id: str = ""  # the event source's last event ID string
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    _started: bool = False
    _text: str = ""
    _data: str = ""  # the data buffer
    _type: str = ""  # the event type buffer
    _id_buffer: str = ""  # the last event ID buffer
    # Every line-level item in order: ("event", Dispatched) or ("comment", text).
    log: list[tuple[str, object]] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Dispatched]:
        """Parse more bytes; return the events they completed."""
        text = self._decoder.decode(data)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):  # UTF-8 decode: one leading BOM is dropped
                text = text[1:]
        self._text += text
        before = len(self.events)
        while True:
            cut = self._next_line_end()
            if cut is None:
                break
            end, length = cut
            line, self._text = self._text[:end], self._text[end + length :]
            self._process(line)
        return self.events[before:]

    def end(self) -> list[Dispatched]:
        """The end of the stream: a CR held back (a LF might have followed) ends its line;
        then any pending data is discarded, an unfinished event is never dispatched."""
        before = len(self.events)
        self._text += self._decoder.decode(b"", final=True)
        if self._text.endswith("\r") and "\n" not in self._text and "\r" not in self._text[:-1]:
            self._process(self._text[:-1])
        self._text = ""
        return self.events[before:]

    def _next_line_end(self) -> tuple[int, int] | None:
        found = _LINE_END.search(self._text)
        if found is None:
            return None
        if found.group() == "\r" and found.end() == len(self._text):
            return None  # a CR at the end: wait, a LF may follow in the next chunk
        return found.start(), found.end() - found.start()

    def _process(self, line: str) -> None:
        if line == "":  # a blank line: dispatch the event
            self._dispatch()
        elif line.startswith(":"):  # a comment: ignore the line
            self.comments.append(line[1:])
            self.log.append(("comment", line[1:]))
        elif ":" in line:
            name, _, value = line.partition(":")
            if value.startswith(" "):  # one leading space is removed, no more
                value = value[1:]
            self._field(name, value)
        else:  # the whole line is the field name, the value is empty
            self._field(line, "")

    def _field(self, name: str, value: str) -> None:
        if name == "event":
            self._type = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():  # "" is no digits
            self.retries.append(int(value))
        # otherwise (a retry that is not only ASCII digits too) the field is ignored

    def _dispatch(self) -> None:
        self.last_event_id = self._id_buffer  # step 1
        if self._data == "":  # step 2
            self._type = ""
            return
        data = self._data[:-1] if self._data.endswith("\n") else self._data  # step 3
        event = Dispatched(self._type or "message", data, self.last_event_id)  # steps 4-5
        self._data = self._type = ""  # step 6
        self.events.append(event)
        self.log.append(("event", event))


def parse_all(data: bytes) -> WhatwgParser:
    """Parse a whole stream at once (pending data at the end is discarded, as at EOF)."""
    parser = WhatwgParser()
    parser.feed(data)
    parser.end()
    return parser


# -- a running server -------------------------------------------------------------------


class Ticker:
    """An injected ``sleep``: every call parks until the spec calls ``tick()``.

    ``delays`` records what the server asked to sleep. ``tick()`` wakes the sleeper, then
    waits until the server sleeps again: by then it has written its round of heartbeats.
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._sleeper: asyncio.Future[None] | None = None
        self._asleep = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._sleeper = asyncio.get_running_loop().create_future()
        self._asleep.set()
        try:
            await self._sleeper
        finally:
            self._sleeper = None

    async def asleep(self) -> None:
        await bounded(self._asleep.wait(), 5.0, "the server to call the injected sleep()")

    async def tick(self) -> None:
        await self.asleep()
        self._asleep.clear()
        assert self._sleeper is not None
        self._sleeper.set_result(None)
        await self.asleep()


@dataclass
class Running:
    hub: Hub
    server: SSEServer
    gauge: Gauge
    ticker: Ticker
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/events"


@contextlib.asynccontextmanager
async def running(
    *, replay: int = 100, queue_size: int = 64, **options: object
) -> AsyncIterator[Running]:
    """A Hub and an SSEServer on 127.0.0.1, port 0, with a Gauge and a Ticker; closed on exit."""
    gauge, ticker = Gauge("open stream(s) through on_streams"), Ticker()
    with step(f"Hub(replay={replay}, queue_size={queue_size})"):
        hub = Hub(replay=replay, queue_size=queue_size)
    settings = "".join(f", {k}={v!r}" for k, v in options.items())
    with step(f"SSEServer(hub{settings}, sleep=<injected>, on_streams=<gauge>)"):
        server = SSEServer(hub, sleep=ticker, on_streams=gauge, **options)
    with step("server.start('127.0.0.1', 0)"):
        port = await bounded(server.start(LOCALHOST, 0), 5.0, "server.start()")
    try:
        yield Running(hub, server, gauge, ticker, port)
    finally:
        with contextlib.suppress(AssertionError):
            await bounded(server.close(), 5.0, "server.close()")


# -- raw streams, read through the oracle --------------------------------------------------


@dataclass
class Stream:
    """One raw connection to the server: the response head, then the body through the parser."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    parser: WhatwgParser = field(default_factory=WhatwgParser)
    raw: bytes = b""

    async def read_head(self, what: str, timeout: float = 5.0) -> None:
        head = await bounded(
            self.reader.readuntil(b"\r\n\r\n"), timeout, f"the response head to {what}"
        )
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        parts = status_line.split(" ", 2)
        assert len(parts) >= 2 and parts[1].isdigit(), called(
            what, f"a status line {short(status_line)}", "HTTP/1.1 <code> <reason>"
        )
        self.status = int(parts[1])
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    async def _more(self) -> bool:
        chunk = await self.reader.read(65536)
        if not chunk:
            return False
        if len(self.raw) < 65536:  # the start of the body, for specs that look at the bytes
            self.raw += chunk
        self.parser.feed(chunk)
        return True

    async def events(self, count: int, what: str, timeout: float = 5.0) -> list[Dispatched]:
        """Read until ``count`` events in all have been dispatched; return them all."""

        async def until() -> None:
            while len(self.parser.events) < count:
                if not await self._more():
                    raise AssertionError(
                        f"{what}: the stream ended after {len(self.parser.events)} event(s) "
                        f"of {count}; got {short(self.parser.events)}"
                    )

        with step(what):
            await bounded(until(), timeout, f"{count} event(s) on {what}")
        return self.parser.events

    async def to_end(self, what: str, timeout: float = 5.0) -> None:
        """Read until the server closes the stream (a reset counts as closed)."""

        async def until() -> None:
            with contextlib.suppress(ConnectionError):
                while await self._more():
                    pass

        await bounded(until(), timeout, f"the server to end {what}")

    def close(self) -> None:
        self.writer.close()


async def open_stream(
    port: int,
    last_event_id: str | None = None,
    *,
    request: bytes | None = None,
    read_head: bool = True,
) -> Stream:
    """Connect and send ``GET /events`` (with Last-Event-ID if given); read the head."""
    if request is None:
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        request = f"GET /events HTTP/1.1\r\nHost: spec\r\n{extra}\r\n".encode()
    what = f"GET /events (Last-Event-ID: {last_event_id})" if last_event_id else "GET /events"
    with step(f"connecting for {what}"):
        reader, writer = await asyncio.open_connection(LOCALHOST, port, limit=1 << 20)
        writer.write(request)
        await writer.drain()
    stream = Stream(reader, writer)
    if read_head:
        await stream.read_head(what)
    return stream


async def stalled_client(port: int) -> socket.socket:
    """A client that sends GET /events and then reads nothing: a plain socket with a small
    receive buffer that no event loop reads from (an asyncio stream would read ahead into
    its own buffer), so the server's writes pile up in its kernel and transport buffers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    with step("connecting a client that will stop reading"):
        await bounded(loop.sock_connect(sock, (LOCALHOST, port)), 5.0, "the connect")
        await bounded(
            loop.sock_sendall(sock, b"GET /events HTTP/1.1\r\nHost: spec\r\n\r\n"),
            5.0,
            "sending GET /events",
        )
    return sock


async def receive_until(
    sock: socket.socket, marker: bytes, what: str, timeout: float = 10.0
) -> bytes:
    """Read from a stalled client's socket until ``marker`` has arrived; return the bytes."""
    loop = asyncio.get_running_loop()
    received = bytearray()

    async def until() -> None:
        while marker not in received[-(len(marker) + 65536) :]:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                raise AssertionError(
                    f"{what}: the server closed the stream before sending {short(marker)}"
                )
            received.extend(chunk)

    await bounded(until(), timeout, f"{short(marker)} on {what}")
    return bytes(received)


def raise_open_files(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``needed`` (the hard limit permitting)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
