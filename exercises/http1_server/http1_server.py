"""A sans-IO HTTP/1.1 server core (RFC 9112) and a small asyncio server on top.

Three layers, each usable without the next:

* ``RequestParser`` — bytes in, ``Request`` objects out. No sockets, no clock, no asyncio.
* ``serialize_response`` — one response out, as bytes.
* ``Router`` and ``HttpServer`` — the I/O glue: read, feed, dispatch, write, repeat.

Standard library only (``http.server``, ``http.client``, ``email``, ``h11``... are forbidden;
``from http import HTTPStatus`` is fine). See README.md for the rules in full.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

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


class HttpError(Exception):
    """The request can't be processed: answer ``status`` and close the connection.

    ``status`` is 400 (malformed or ambiguous), 413 (body too large), 431 (header section too
    large), 501 (a transfer coding we don't implement) or 505 (HTTP version not supported);
    ``reason`` is a short explanation for the response body.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    """One complete request.

    ``method``, ``target`` and ``version`` ("HTTP/1.1" or "HTTP/1.0") as on the request line;
    ``headers`` in the order received, names in their original case, values with the OWS
    around them trimmed (bytes decoded as latin-1); ``body`` decoded from its framing;
    ``trailers`` the fields after a chunked body (empty otherwise).
    """

    method: str
    target: str
    version: str
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    trailers: tuple[Header, ...] = ()

    def header(self, name: str) -> str | None:
        """The value of field ``name``, matched in any case; None if absent.

        TODO: several fields with the same name are combined into one value, joined with ", "
              in the order received (RFC 9110 §5.3).
        """
        raise NotImplementedError

    @property
    def path(self) -> str:
        """The target without its query string: "/a?b=1" -> "/a".

        TODO: an absolute-form target (RFC 9112 §3.2.2, what clients send to a proxy) is
              accepted: "http://host:8080/a?b=1" -> "/a"; "http://host" -> "/".
        """
        raise NotImplementedError

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the response (RFC 9112 §9.3).

        TODO: the Connection field is a comma-separated list of options, in any case.
        TODO: "close" among them -> False.
        TODO: otherwise HTTP/1.1 -> True; HTTP/1.0 -> True only if "keep-alive" is among them.
        """
        raise NotImplementedError


class RequestParser:
    """Sans-IO request parser: ``feed`` bytes, then take requests with ``next_request``.

    The limits are DoS defences: a header section (request line to the empty line, inclusive)
    longer than ``max_header_bytes`` is a 431; a body longer than ``max_body_bytes`` is a 413.
    """

    def __init__(self, *, max_header_bytes: int = 8192, max_body_bytes: int = 1 << 20) -> None:
        """TODO: keep the limits, an empty buffer, and the state of the message being read."""
        raise NotImplementedError

    def feed(self, data: bytes) -> None:
        """Append bytes received from the connection (any size, any split)."""
        raise NotImplementedError

    @property
    def expects_continue(self) -> bool:
        """The request being read waits for "100 Continue" before it sends its body.

        TODO: True once the head of an HTTP/1.1 request with "Expect: 100-continue" (any case)
              has been parsed and its body is due, until the first body byte arrives. False
              otherwise, and always for HTTP/1.0 (RFC 9110 §10.1.1: a server MUST ignore it).
        """
        raise NotImplementedError

    def next_request(self) -> Request | None:
        """The next complete request, or None until more bytes arrive; raise ``HttpError``.

        Consume exactly one request's bytes: what follows it (a pipelined request) stays
        buffered for the next call. After an error, every later call raises it again.

        Request line (RFC 9112 §3):
        TODO: empty lines before the request line are skipped (§2.2).
        TODO: method SP request-target SP HTTP-version, exactly one SP between them; the method
              a token (RFC 9110 §5.6.2), the target visible ASCII (0x21-0x7E) -> else 400.
        TODO: version "HTTP/1.1" or "HTTP/1.0"; another well-formed "HTTP/d.d" -> 505.
        TODO: lines of the header section end with CRLF or a lone LF (§2.2).

        Fields (RFC 9112 §5):
        TODO: name ":" OWS value OWS. The name is a token with no whitespace before the colon;
              the value may hold HTAB, SP, 0x21-0x7E and 0x80-0xFF only -> else 400.
              OWS is SP and HTAB only (RFC 9110 §5.6.3): never str.strip(), which also
              trims "\x85" and "\xa0" — in values, in list items, in Content-Length.
        TODO: a line starting with SP or HTAB (obs-fold, §5.2) -> 400.
        TODO: an HTTP/1.1 request needs exactly one Host field; any request at most one -> 400.

        Framing (RFC 9112 §6.3) — the smuggling defences:
        TODO: Transfer-Encoding and Content-Length together -> 400.
        TODO: Transfer-Encoding in an HTTP/1.0 request -> 400 (RFC 9112 §6.1: faulty framing).
        TODO: Transfer-Encoding (all its fields, as a comma list, any case) must be exactly
              "chunked"; if "chunked" is not the last coding -> 400; otherwise -> 501.
        TODO: Content-Length: split every field on ",", trim OWS; all items identical as text
              -> that length ("5, 5" is 5); differing items ("5, 05" too) -> 400; not 1*DIGIT
              (ASCII) -> 400.
              Never int() the text: it accepts "+5", " 5", "5_0" and Unicode digits.
        TODO: neither field -> no body.

        Chunked body (RFC 9112 §7.1):
        TODO: chunk-size (1*HEXDIG), optional whitespace, optional ";extensions" (ignored,
              but no CR or other control character in them -> else 400), CRLF; then that many
              bytes and CRLF; size 0 ends the data, then trailer fields and an empty line
              (the trailer section). Inside chunked framing, trailer section included, only
              CRLF ends a line: a lone LF -> 400.

        Limits:
        TODO: header section over max_header_bytes -> 431, as soon as the buffer holds more
              than that without an empty line (don't wait for the end that never comes).
        TODO: Content-Length over max_body_bytes -> 413 before the body arrives; chunked data
              over max_body_bytes -> 413 as soon as a chunk-size says so.
        TODO: a chunk-size line (CRLF excluded) longer than max_header_bytes -> 413; a trailer
              section (its empty line included) longer than max_header_bytes -> 431.
        """
        raise NotImplementedError


def serialize_response(
    status: int,
    headers: Iterable[Header] = (),
    body: bytes | list[bytes] = b"",
    *,
    close: bool = False,
    head: bool = False,
) -> bytes:
    """One HTTP/1.1 response as bytes: status line, fields, framing, body.

    TODO: status line "HTTP/1.1 <status> <reason>\\r\\n" (reason from http.HTTPStatus, or
          empty for an unknown code); only 200-599, else ValueError.
    TODO: the caller's fields in order, "Name: value\\r\\n". A name that is not a token, or a
          value with CR, LF or another control character (except HTAB) -> ValueError: that
          is response splitting. Content-Length / Transfer-Encoding from the caller ->
          ValueError: framing is the serializer's job.
    TODO: body as bytes -> Content-Length; as a list of pieces -> Transfer-Encoding: chunked,
          one chunk per non-empty piece (an empty chunk would end the body), then "0\\r\\n\\r\\n".
    TODO: 204 and 304 -> no framing field, no body (a non-empty body -> ValueError).
    TODO: close=True -> add "Connection: close".
    TODO: head=True (the answer to a HEAD request) -> the same status line and fields as the
          full response, framing field included, but no body bytes (RFC 9110 §9.3.2): the
          client reads no body after a HEAD, so body bytes would be taken for the next response.
    """
    raise NotImplementedError


@dataclass
class Response:
    """What a handler returns; ``body`` as a list of pieces is sent chunked."""

    status: int = 200
    headers: list[Header] = field(default_factory=list)
    body: bytes | list[bytes] = b""


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Exact-path routes (the query string is not part of the path)."""

    def __init__(self) -> None:
        raise NotImplementedError

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method`` (case-sensitive) on ``path`` with ``handler``."""
        raise NotImplementedError

    async def dispatch(self, request: Request) -> Response:
        """Run the matching handler and return its response.

        TODO: unknown path -> 404.
        TODO: known path, method not routed -> 405 with an Allow field listing the path's
              methods, e.g. "Allow: GET, POST".
        """
        raise NotImplementedError


class HttpServer:
    """An HTTP/1.1 server on asyncio streams.

    Per connection: read, ``feed`` the parser, answer every complete request in order, write.

    TODO: after each write, ``await writer.drain()`` before the next request: a client that
          pipelines requests and reads nothing must not make the server buffer every answer.
    TODO: ``close()`` returns only once every connection task has finished.

    TODO: a request with keep_alive False -> its response carries Connection: close, then
          close the connection (ignore anything pipelined behind it).
    TODO: an HTTP/1.0 request that keeps the connection alive -> add "Connection: keep-alive"
          to the response (a 1.0 client assumes close otherwise).
    TODO: HttpError -> answer its status with Connection: close, then close the connection.
    TODO: a handler that raises -> 500; the connection keeps serving.
    TODO: a HEAD request's response (whatever its status: 200, 404, 405...) has no body.
    TODO: while parser.expects_continue, write "HTTP/1.1 100 Continue\r\n\r\n" once per
          request (RFC 9110 §10.1.1: curl waits a second for it before sending a body).
    TODO: a request (or the first byte of the next one on a kept-alive connection) not fully
          received within ``request_timeout`` seconds -> close the connection. One deadline
          per request, not per read: slowloris sends a byte just often enough.
    """

    def __init__(
        self,
        router: Router,
        *,
        max_header_bytes: int = 8192,
        max_body_bytes: int = 1 << 20,
        request_timeout: float = 10.0,
    ) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start listening (asyncio.start_server); return the bound port (port 0: any free one)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop accepting, close every open connection, and return once they are done."""
        raise NotImplementedError
