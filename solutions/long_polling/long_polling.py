"""Long polling over HTTP/1.1, served from plain asyncio streams.

Theory of operation
-------------------
The server keeps an append-only log of messages; the message with id ``n`` sits at index
``n - 1``, so "every message newer than the cursor ``after``" is the slice ``log[after:]``.

``GET /messages?after=N`` answers at once when that slice is not empty (a short poll).
Otherwise the request *parks*: it creates a future, adds it to the set of waiters and awaits
it, together with a task that watches the socket for the client leaving, and a deadline.
``publish`` appends to the log and resolves every parked future; each woken request then
re-reads the log itself. A parked request costs one coroutine, one future and one socket:
no thread, and no CPU at all until something happens to it.

One request per connection: every response says ``Connection: close`` and the server closes
the socket after writing it. That keeps the parser small and makes "the client went away"
unambiguous (end of stream while parked). Keep-alive is left out on purpose.

Reading a request has a deadline (``request_timeout``) and waiting for news has another
(``poll_timeout``): a client that never finishes its request (slowloris, or lone-LF line ends
that never make the CRLF CRLF this parser looks for) gets a 408, while a parked poll may wait
far longer than any request takes to arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MAX_HEAD", "LongPollServer"]

MAX_HEAD = 16 * 1024  # bytes of the request head, its empty line included; more gets 431

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}

# RFC 9110 §5.6.2: a token is one or more of these characters (method and field names).
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
VERSIONS = ("HTTP/1.0", "HTTP/1.1")
# A number of seconds: ASCII digits, maybe a fraction. Never a bare float(), which also takes
# " 5", "1_0", "1e3", "inf" and Arabic-Indic digits.
SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")
OWS = " \t"  # RFC 9110 §5.6.3; str.strip() would also trim "\x85" and "\xa0"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LINGER_TIMEOUT = 5.0  # seconds without a byte before a lingering close gives up
LINGER_TIME = 30.0  # seconds a lingering close reads at most


@dataclass(frozen=True)
class Message:
    """One published message: its id (1, 2, 3, ...) and its body."""

    id: int
    body: str


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    payload: object = None  # serialised as JSON; a 204 has no body at all
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self, *, head: bool = False) -> bytes:
        """The response as bytes; ``head``: for a HEAD request, the same fields and no body."""
        lines = [f"HTTP/1.1 {self.status} {REASONS[self.status]}"]
        body = b""
        if self.status != 204:  # RFC 9110 §15.3.5: a 204 has no content and no Content-Length
            body = json.dumps(self.payload, ensure_ascii=False).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append("Connection: close")
        if head:  # RFC 9110 §9.3.2: a response to HEAD ends with its header section
            body = b""
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HTTPError(Exception):
    """Raised anywhere while handling a request; becomes an error response."""

    def __init__(self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(detail)
        self.response = Response(status, {"error": detail}, headers)


class Wake(enum.Enum):
    NEWS = "news"
    TIMEOUT = "timeout"
    GONE = "gone"


class LongPollServer:
    """A message log served over HTTP/1.1 with long polling."""

    def __init__(
        self,
        *,
        poll_timeout: float = 30.0,
        max_batch: int = 100,
        max_body: int = 64 * 1024,
        request_timeout: float = 10.0,
        on_waiting: Callable[[int], None] | None = None,
    ) -> None:
        self.poll_timeout = poll_timeout
        self.request_timeout = request_timeout
        self.max_batch = max_batch
        self.max_body = max_body
        self._on_waiting = on_waiting
        self._log: list[Message] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None

    # -- the message log ------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """How many polls are parked right now."""
        return len(self._waiters)

    def publish(self, body: str) -> int:
        """Append ``body`` to the log, wake every parked poll, return the new id."""
        message = Message(len(self._log) + 1, body)
        self._log.append(message)
        # Wake them all: each re-reads the log for itself, so a poll whose cursor is still
        # ahead of the log simply parks again.
        for news in self._waiters:
            if not news.done():
                news.set_result(None)
        return message.id

    def _park(self, news: asyncio.Future[None]) -> None:
        self._waiters.add(news)
        if self._on_waiting is not None:
            self._on_waiting(len(self._waiters))

    def _unpark(self, news: asyncio.Future[None]) -> None:
        self._waiters.discard(news)
        if self._on_waiting is not None:
            self._on_waiting(len(self._waiters))

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (port 0: any free port); return the bound port."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and end every open connection, parked polls included."""
        if self._server is None:
            return
        self._server.close()
        # Closing a connection's transport ends its stream: a parked poll sees the client
        # "leave" and unparks, a half-read request fails to read. No task is cancelled.
        handlers = list(self._connections.values())
        for writer in self._connections:
            writer.close()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    # -- one connection, one request ------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        request: Request | None = None
        try:
            try:
                request = await self._receive(reader, writer)
                response = await self._route(request, reader)
            except HTTPError as error:
                response = error.response
            if response is not None:  # None: the client left while its poll was parked
                head = request is not None and request.method == "HEAD"
                writer.write(response.encode(head=head))
                if request is None and response.status != 408:
                    # Refused before the body was read: close in stages. Not after a 408: that
                    # client had its time, and lingering would give a slowloris 30 s more.
                    await _linger(reader, writer)
                else:
                    await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client left in the middle of a request, or lingered too long
        finally:
            del self._connections[writer]
            writer.close()

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request:
        """The request, read within request_timeout seconds of the connection opening.

        One deadline for the whole request, not one per read: a slowloris client that sends a
        byte every few seconds never makes a read wait long, but it never beats this clock.
        """
        try:
            async with asyncio.timeout(self.request_timeout):
                return await self._read_request(reader, writer)
        except TimeoutError:
            raise HTTPError(
                408, f"request not received within {self.request_timeout:g} s"
            ) from None

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HTTPError(431, f"request head over {MAX_HEAD} bytes") from None
        if len(head) > MAX_HEAD:
            # readuntil's limit counts the bytes before the separator: up to 4 more get here.
            raise HTTPError(431, f"request head over {MAX_HEAD} bytes")
        request_line, *field_lines = head[:-4].split(b"\r\n")

        parts = request_line.split(b" ")
        if len(parts) != 3:
            raise HTTPError(400, "request line is not: method SP target SP version")
        method, target, version = (part.decode("latin-1") for part in parts)
        if not TOKEN.fullmatch(method) or not target.startswith("/") or version not in VERSIONS:
            raise HTTPError(400, "malformed request line")

        headers: dict[str, list[str]] = {}
        for line in field_lines:
            name, colon, value = line.partition(b":")
            # No colon, whitespace before the colon (RFC 9112 §5.1) or a folded line
            # (obs-fold, §5.2): the name is then not a token.
            if not colon or not TOKEN.fullmatch(name.decode("latin-1")):
                raise HTTPError(400, "malformed header field")
            headers.setdefault(name.decode("latin-1").lower(), []).append(
                value.strip(b" \t").decode("latin-1")
            )
        hosts = len(headers.get("host", []))
        if hosts > 1 or (version == "HTTP/1.1" and hosts == 0):
            # RFC 9112 §3.2: a server MUST answer 400 to both.
            raise HTTPError(400, "a request needs one Host field (HTTP/1.0: at most one)")
        if "transfer-encoding" in headers:
            raise HTTPError(501, "transfer codings are not supported; send Content-Length")

        length = self._content_length(headers.get("content-length"))
        if method == "POST" and length is None:
            raise HTTPError(411, "POST needs a Content-Length")
        if length is not None and length > self.max_body:
            raise HTTPError(413, f"body over {self.max_body} bytes")

        url = urlsplit(target)
        expectations = [
            item.strip(OWS).lower()
            for value in headers.get("expect", [])
            for item in value.split(",")
        ]
        if length and version == "HTTP/1.1" and "100-continue" in expectations:
            # RFC 9110 §10.1.1: answer at once, with the final status if the head decides it,
            # else with 100 Continue: the client waits for one of the two before its body.
            _check_route(method, url.path)
            writer.write(CONTINUE)
        body = await reader.readexactly(length) if length else b""
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        return Request(method, url.path, query, body)

    @staticmethod
    def _content_length(values: list[str] | None) -> int | None:
        if values is None:
            return None
        # "5", or repeats of the same value ("5, 5" / two fields): RFC 9112 §6.3 item 5.
        found = {item.strip(OWS) for value in values for item in value.split(",")}
        if len(found) != 1:
            raise HTTPError(400, "conflicting Content-Length values")
        return _natural(found.pop(), "Content-Length")

    async def _route(self, request: Request, reader: asyncio.StreamReader) -> Response | None:
        _check_route(request.method, request.path)
        if request.method == "POST":
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPError(400, "body is not UTF-8") from None
            return Response(201, {"id": self.publish(body)})
        return await self._poll(request, reader)

    # -- the poll -------------------------------------------------------------------------

    async def _poll(self, request: Request, reader: asyncio.StreamReader) -> Response | None:
        after = _natural(request.query.get("after", "0"), "after")
        limit = self.max_batch
        if "limit" in request.query:
            limit = min(_natural(request.query["limit"], "limit"), self.max_batch)
            if limit == 0:
                raise HTTPError(400, "limit must be at least 1")
        timeout = self.poll_timeout
        if "timeout" in request.query:
            timeout = min(_seconds(request.query["timeout"]), self.poll_timeout)

        if len(self._log) <= after:
            wake = await self._wait_for_news(after, timeout, reader)
            if wake is Wake.GONE:
                return None
            if wake is Wake.TIMEOUT:
                return Response(204)
        # The cursor is the id of the last message *sent*, not the head of the log: with a
        # limit the client must come back for the rest.
        batch = self._log[after : after + limit]
        return Response(
            200,
            {"messages": [{"id": m.id, "body": m.body} for m in batch], "cursor": batch[-1].id},
        )

    async def _wait_for_news(
        self, after: int, timeout: float, reader: asyncio.StreamReader
    ) -> Wake:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        gone = asyncio.create_task(_until_eof(reader))
        try:
            while len(self._log) <= after:  # re-check after every wake-up
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Wake.TIMEOUT
                news: asyncio.Future[None] = loop.create_future()
                self._park(news)
                try:
                    await asyncio.wait(
                        (news, gone), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    self._unpark(news)  # on every way out: news, timeout, client gone, cancel
                if gone.done():
                    return Wake.GONE
            return Wake.NEWS
        finally:
            gone.cancel()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 9112 §9.6: after an answer that left the request unread, half-close and read on.

    A client still sending the body we refused (urllib and requests send a whole body before
    they read) would otherwise meet a closed socket: the kernel answers its data with a reset,
    and the client fails on a write without ever reading our answer. Bounded like nginx's
    lingering_timeout (5 s without a byte) and lingering_time (30 s in all).
    """
    await writer.drain()
    writer.write_eof()
    deadline = asyncio.get_running_loop().time() + LINGER_TIME
    async with asyncio.timeout_at(deadline):
        while await asyncio.wait_for(reader.read(65536), LINGER_TIMEOUT):
            pass


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its end (anything it sends meanwhile is ignored)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


def _check_route(method: str, path: str) -> None:
    """404 for any path but /messages, 405 for any method but GET and POST."""
    if path != "/messages":
        raise HTTPError(404, f"no resource at {path}")
    if method not in ("GET", "POST"):
        raise HTTPError(405, f"{method} not allowed", (("Allow", "GET, POST"),))


def _natural(text: str, name: str) -> int:
    """A non-negative decimal integer written with ASCII digits only, or 400."""
    if not (text.isascii() and text.isdigit()):
        raise HTTPError(400, f"{name} must be a non-negative integer")
    try:
        return int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise HTTPError(400, f"{name} is too long") from None


def _seconds(text: str) -> float:
    """A non-negative decimal number of seconds ("25", "0.5"), or 400."""
    if not SECONDS.fullmatch(text):
        raise HTTPError(400, "timeout must be seconds in ASCII digits, as 25 or 0.5")
    return float(text)  # thousands of digits give inf, which poll_timeout then caps
