"""A sans-IO HTTP/1.1 server core (RFC 9112) and a small asyncio server on top.

Three layers, each usable without the next:

* ``RequestParser`` — bytes in, ``Request`` objects out. No sockets, no clock, no asyncio: the
  same object parses a byte string in a test and a TCP stream in the server.
* ``serialize_response`` — one response out, as bytes.
* ``Router`` and ``HttpServer`` — the I/O glue: read, feed, dispatch, write, repeat.

Strategy of the parser: bytes accumulate in one buffer; ``next_request`` runs the reader of
the current state (a table, as in h11's ``_readers.py``) until a request is complete or the
buffer runs dry. Every reader consumes only what it fully understood, so whatever follows a
request (a pipelined request) stays in the buffer for the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = [
    "HttpError",
    "HttpServer",
    "Request",
    "RequestParser",
    "Response",
    "Router",
    "serialize_response",
]

Header = tuple[str, str]

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
# RFC 9112 §3: method SP request-target SP HTTP-version, exactly one SP between the three.
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])")
# RFC 9112 §5.1: field-name ":" OWS field-value OWS; no whitespace before the colon.
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(.*?)[ \t]*", re.DOTALL)
# RFC 9110 §5.5: field-vchar = VCHAR / obs-text, with SP and HTAB inside. No controls.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
# RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF, where chunk-ext = *( BWS ";" ... ). The
# extensions are skipped, not interpreted; trailing whitespace is tolerated, as h11 does. They
# may hold no bare CR (§2.2) and no other control character: only what a field value may hold.
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(;[\t\x20-\x7e\x80-\xff]*)?")
_DIGITS = re.compile(r"[0-9]+")  # never int(): it takes "+5", " 5", "5_0" and "٥"
_END_OF_SECTION = re.compile(rb"\n\r?\n")  # the empty line; a lone LF ends a line (§2.2)
_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
# RFC 9112 §3.2.2: absolute-form, "http://host:port" in front of the path (what a client sends
# to a proxy). A server MUST accept it; the path is what follows the authority.
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_OWS = " \t"  # RFC 9110 §5.6.3: the only optional whitespace. str.strip() also eats \x85, \xa0


class HttpError(Exception):
    """The request can't be processed: answer ``status`` (400, 413, 431, 501, 505) and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    """One complete request. Names keep their case; look them up with ``header()``."""

    method: str
    target: str
    version: str
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    trailers: tuple[Header, ...] = ()

    def header(self, name: str) -> str | None:
        """All values of field ``name`` (any case) joined with ", " (RFC 9110 §5.3); None if absent."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ", ".join(values) if values else None

    @property
    def path(self) -> str:
        """The target's path without the query; "/" for an absolute-form target with none."""
        path = self.target.partition("?")[0]
        authority = _ABSOLUTE_FORM.match(path)
        if authority is not None:
            return path[authority.end() :] or "/"
        return path

    @property
    def keep_alive(self) -> bool:
        """RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive"."""
        options = _list_values(self.header("connection"))
        if "close" in options:
            return False
        return self.version == "HTTP/1.1" or "keep-alive" in options


def _list_values(value: str | None) -> list[str]:
    """The elements of a comma-separated list field, trimmed and lowercased."""
    return [] if value is None else [item.strip(_OWS).lower() for item in value.split(",")]


def _section_lines(section: bytes) -> list[bytes]:
    """Split a header section (ending with its empty line) into lines, CRLF or lone LF."""
    lines = section.split(b"\n")[:-2]  # the last two are the empty line and what follows it
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _parse_fields(lines: list[bytes]) -> tuple[Header, ...]:
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 §5.2: obs-fold. Refusing it is simpler and safer than unfolding it.
            raise HttpError(400, "obsolete line folding is not accepted")
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise HttpError(400, "invalid field line")
        name, value = match.groups()
        if not _FIELD_VALUE.fullmatch(value):
            raise HttpError(400, "invalid character in a field value")
        fields.append((name.decode("ascii"), value.decode("latin-1")))
    return tuple(fields)


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise HttpError(400, "invalid request line")
    method, target, version = (part.decode("ascii") for part in match.groups())
    if version not in _VERSIONS:
        raise HttpError(505, "HTTP version not supported")
    return method, target, version


class RequestParser:
    """Sans-IO request parser: ``feed`` bytes, then take requests with ``next_request``."""

    def __init__(self, *, max_header_bytes: int = 8192, max_body_bytes: int = 1 << 20) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._error: HttpError | None = None
        self._head: Request | None = None  # the request whose body is being read
        self._body = bytearray()
        self._remaining = 0  # body bytes still due (content-length) or left in the chunk
        self._state = "head"
        self._continue = False  # the request being read asked for 100 Continue
        self._readers: dict[str, Callable[[], Request | bool]] = {
            "head": self._read_head,
            "length": self._read_length_body,
            "chunk-size": self._read_chunk_size,
            "chunk-data": self._read_chunk_data,
            "trailers": self._read_trailers,
        }

    def feed(self, data: bytes) -> None:
        """Append bytes received from the connection."""
        self._buffer += data

    @property
    def expects_continue(self) -> bool:
        """The request being read waits for "100 Continue" before it sends its body.

        True from the end of an HTTP/1.1 head with ``Expect: 100-continue`` and a body to come
        until the first body byte arrives (RFC 9110 §10.1.1).
        """
        return self._continue and not self._buffer

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive; raises ``HttpError``.

        After an error the stream has no trustworthy framing left: every later call raises the
        same error, and the connection must be closed after answering it.
        """
        if self._error is not None:
            raise self._error
        try:
            while True:
                outcome = self._readers[self._state]()
                if outcome is False:
                    return None
                if isinstance(outcome, Request):
                    return outcome
        except HttpError as error:
            self._error = error
            raise

    # -- readers: each returns False (need more bytes), True (progress) or a finished Request --

    def _read_head(self) -> Request | bool:
        # RFC 9112 §2.2: a server SHOULD ignore empty lines received before the request-line.
        while self._buffer[:1] == b"\n" or self._buffer[:2] == b"\r\n":
            del self._buffer[: 1 if self._buffer[:1] == b"\n" else 2]
        found = _END_OF_SECTION.search(self._buffer)
        if found is None:
            if len(self._buffer) >= self.max_header_bytes:  # it can only get longer
                raise HttpError(431, "request header section too large")
            return False
        end = found.end()
        if end > self.max_header_bytes:
            raise HttpError(431, "request header section too large")
        lines = _section_lines(bytes(self._buffer[:end]))
        del self._buffer[:end]  # consume this request's head only: pipelined bytes stay
        method, target, version = _parse_request_line(lines[0])
        head = Request(method, target, version, _parse_fields(lines[1:]))
        return self._start_body(head)

    def _start_body(self, head: Request) -> Request | bool:
        hosts = sum(1 for name, _ in head.headers if name.lower() == "host")
        if hosts > 1 or (hosts == 0 and head.version == "HTTP/1.1"):
            raise HttpError(400, "an HTTP/1.1 request needs exactly one Host field")  # §3.2
        self._head = head
        self._body = bytearray()
        transfer_encoding = head.header("transfer-encoding")
        lengths = [value for name, value in head.headers if name.lower() == "content-length"]
        if transfer_encoding is not None and lengths:
            # RFC 9112 §6.3 (3): two framings in one message is how smuggling starts.
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if transfer_encoding is not None and head.version == "HTTP/1.0":
            # RFC 9112 §6.1: HTTP/1.0 has no Transfer-Encoding; treat the framing as faulty.
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        self._continue = head.version == "HTTP/1.1" and "100-continue" in _list_values(
            head.header("expect")
        )
        if transfer_encoding is not None:
            codings = _list_values(transfer_encoding)
            if codings[-1] != "chunked":
                raise HttpError(400, "chunked is not the final transfer coding")  # §6.3 (4)
            if codings != ["chunked"]:
                raise HttpError(501, "unsupported transfer coding")  # §6.1
            self._state = "chunk-size"
            return True
        if not lengths:
            return self._finish()  # §6.3 (6): a request without framing has no body
        # "5, 5" and two identical fields are one length (§6.3 (5)); differing ones are not.
        # Compared as text: "5" and "05" are the same decimal value, which §8.6 lets a recipient
        # merge, but no upstream that duplicates a field writes it two ways. Reject, never guess.
        distinct = {item.strip(_OWS) for value in lengths for item in value.split(",")}
        length = distinct.pop()
        if distinct or not _DIGITS.fullmatch(length):
            raise HttpError(400, "invalid Content-Length")
        if int(length) > self.max_body_bytes:
            raise HttpError(413, "content too large")  # refuse before the body arrives
        self._remaining = int(length)
        self._state = "length"
        return True

    def _read_length_body(self) -> Request | bool:
        if len(self._buffer) < self._remaining:
            return False
        self._body += self._buffer[: self._remaining]
        del self._buffer[: self._remaining]
        return self._finish()

    def _read_chunk_size(self) -> Request | bool:
        end = self._buffer.find(b"\r\n")
        # An endless chunk extension is a memory attack (Node.js CVE-2024-22019): cap the line.
        # Without a CRLF yet, one byte more than the limit may still be the line's CR.
        too_long = end < 0 and len(self._buffer) > self.max_header_bytes + 1
        if end > self.max_header_bytes or too_long:
            raise HttpError(413, "chunk-size line too long")
        if end < 0:
            return False
        match = _CHUNK_LINE.fullmatch(self._buffer[:end])
        if match is None:
            raise HttpError(400, "invalid chunk-size line")
        size = int(match.group(1), 16)  # safe: the regex admitted hex digits only
        del self._buffer[: end + 2]
        self._continue = False  # the body has started: no 100 Continue is due any more
        if len(self._body) + size > self.max_body_bytes:
            raise HttpError(413, "content too large")
        self._remaining = size
        self._state = "chunk-data" if size else "trailers"
        return True

    def _read_chunk_data(self) -> Request | bool:
        if len(self._buffer) < self._remaining + 2:
            return False
        if self._buffer[self._remaining : self._remaining + 2] != b"\r\n":
            raise HttpError(400, "chunk data not followed by CRLF")
        self._body += self._buffer[: self._remaining]
        del self._buffer[: self._remaining + 2]
        self._state = "chunk-size"
        return True

    def _read_trailers(self) -> Request | bool:
        # Inside chunked framing only CRLF ends a line, the trailer section included: a lone LF
        # here is where a proxy and a server start to disagree about where the message ends.
        lines, start = [], 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            if end == start or self._buffer[end - 1] != 0x0D:
                raise HttpError(400, "a trailer line must end with CRLF")
            line = bytes(self._buffer[start : end - 1])
            start = end + 1
            if start > self.max_header_bytes:
                raise HttpError(431, "trailer section too large")
            if not line:  # the empty line: end of the trailer section
                del self._buffer[:start]
                return self._finish(_parse_fields(lines))
            lines.append(line)
        if len(self._buffer) > self.max_header_bytes:
            raise HttpError(431, "trailer section too large")
        return False

    def _finish(self, trailers: tuple[Header, ...] = ()) -> Request:
        assert self._head is not None
        request = dataclasses.replace(self._head, body=bytes(self._body), trailers=trailers)
        self._head, self._body, self._state = None, bytearray(), "head"
        self._continue = False
        return request


# -- responses ---------------------------------------------------------------------------------

_FRAMING_FIELDS = {"content-length", "transfer-encoding"}
_TOKEN_TEXT = re.compile(_TOKEN.decode())
_SAFE_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def serialize_response(
    status: int,
    headers: Iterable[Header] = (),
    body: bytes | list[bytes] = b"",
    *,
    close: bool = False,
    head: bool = False,
) -> bytes:
    """One HTTP/1.1 response as bytes: status line, fields, framing, body.

    ``body`` as bytes gets a Content-Length; as a list of pieces it is sent chunked. ``head``:
    the answer to a HEAD request, with the fields of the full response and no body bytes.
    """
    if not 200 <= status <= 599:
        raise ValueError(f"status {status}: only final responses (200-599) are supported")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""  # RFC 9112 §4: the reason-phrase may be empty, its SP may not
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers:
        if not _TOKEN_TEXT.fullmatch(name) or not _SAFE_VALUE.fullmatch(value):
            # A CR or LF here would let a caller's data write its own fields (CWE-113).
            raise ValueError(f"invalid field {name!r}: {value!r}")
        if name.lower() in _FRAMING_FIELDS:
            raise ValueError(f"{name} is set by the serializer")
        lines.append(f"{name}: {value}")
    if status in (204, 304):  # RFC 9110 §6.4.1: these never have content
        if body:
            raise ValueError(f"a {status} response has no body")
        payload = b""
    elif isinstance(body, bytes | bytearray):
        lines.append(f"Content-Length: {len(body)}")
        payload = bytes(body)
    else:
        lines.append("Transfer-Encoding: chunked")
        # Skip empty pieces: a zero-size chunk is the last-chunk and would end the body early.
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body if piece]
        payload = b"".join(chunks) + b"0\r\n\r\n"
    if close:
        lines.append("Connection: close")
    if head:
        # RFC 9110 §9.3.2, RFC 9112 §6.3 rule 1: a response to HEAD ends with its header
        # section, whatever Content-Length says; a body would be read as the next response.
        payload = b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


# -- the asyncio server ------------------------------------------------------------------------


@dataclass
class Response:
    """What a handler returns; ``body`` as a list of pieces is sent chunked."""

    status: int = 200
    headers: list[Header] = field(default_factory=list)
    body: bytes | list[bytes] = b""


Handler = Callable[[Request], Awaitable[Response]]


def _plain(status: int, text: str, headers: Iterable[Header] = ()) -> Response:
    return Response(status, [("Content-Type", "text/plain"), *headers], text.encode() + b"\n")


class Router:
    """Exact-path routes: 404 for an unknown path, 405 with Allow for a known path."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes.setdefault(path, {})[method] = handler

    async def dispatch(self, request: Request) -> Response:
        handlers = self._routes.get(request.path)
        if handlers is None:
            return _plain(404, "Not Found")
        handler = handlers.get(request.method)
        if handler is None:
            allow = ", ".join(sorted(handlers))
            return _plain(405, "Method Not Allowed", [("Allow", allow)])
        return await handler(request)


class HttpServer:
    """An HTTP/1.1 server: persistent connections, pipelining, limits, a request deadline."""

    def __init__(
        self,
        router: Router,
        *,
        max_header_bytes: int = 8192,
        max_body_bytes: int = 1 << 20,
        request_timeout: float = 10.0,
    ) -> None:
        self._router = router
        self._limits = {"max_header_bytes": max_header_bytes, "max_body_bytes": max_body_bytes}
        self._request_timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        parser = RequestParser(**self._limits)
        try:
            while (request := await self._read_request(parser, reader, writer)) is not None:
                writer.write(await self._answer(request))
                await writer.drain()
                if not request.keep_alive:
                    break
        except HttpError as error:
            writer.write(serialize_response(*_error_response(error), close=True))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
                await self._linger(reader, writer)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # close() cancelled us: end normally. A start_server handler that ends cancelled
            # makes Python 3.11 log "Exception in callback ... CancelledError".
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(
        self, parser: RequestParser, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        """The next request, or None when the peer closed or missed the deadline.

        One deadline for the whole request, not one per read: a slowloris client that sends a
        byte every few seconds never makes a read wait long, but it never beats this clock.
        """
        deadline = asyncio.get_running_loop().time() + self._request_timeout
        continued = False
        while (request := parser.next_request()) is None:
            if parser.expects_continue and not continued:
                # RFC 9110 §10.1.1: the client waits for this before it sends the body.
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                continued = True
            try:
                async with asyncio.timeout_at(deadline):
                    data = await reader.read(65536)
            except TimeoutError:
                return None
            if not data:
                return None
            parser.feed(data)
        return request

    async def _answer(self, request: Request) -> bytes:
        try:
            response = await self._router.dispatch(request)
        except Exception:  # a broken handler costs one 500, not the connection
            response = _plain(500, "Internal Server Error")
        headers = list(response.headers)
        close = not request.keep_alive
        if request.version == "HTTP/1.0" and not close:
            headers.append(("Connection", "keep-alive"))  # a 1.0 client assumes close otherwise
        return serialize_response(
            response.status, headers, response.body, close=close, head=request.method == "HEAD"
        )

    @staticmethod
    async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 9112 §9.6: half-close, then drain what the client still sends, briefly.

        Closing a socket that has unread input makes the kernel send a RST, which can destroy
        the error response before the client has read it.
        """
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while await reader.read(65536):
                    pass


def _error_response(error: HttpError) -> tuple[int, list[Header], bytes]:
    return error.status, [("Content-Type", "text/plain")], f"{error.reason}\n".encode()
