"""Helpers for the http1_server specs: parsing through the learner's parser and through h11,
request generators for the differential, a running server, raw socket exchanges.

h11 is the independent oracle: ``h11.Connection(h11.SERVER)`` parses requests, and
``h11.Connection(h11.CLIENT)`` parses what the learner's server and serializer write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import h11
from http1_server import HttpError, HttpServer, Request, RequestParser, Response, Router
from hypothesis import strategies as st

from grader.spectools import LOCALHOST, bounded, short, step

BIG = 1 << 20

# --- parsing a whole byte string ----------------------------------------------------------------


@dataclass
class Parsed:
    """What a parser made of a byte stream: the requests, then how the stream ended."""

    requests: list[Request] = field(default_factory=list)
    error: HttpError | None = None  # raised by next_request

    @property
    def status(self) -> int | None:
        return None if self.error is None else self.error.status

    def describe(self) -> str:
        parts = [
            f"{r.method} {short(r.target, 40)} body={short(r.body, 40)}" for r in self.requests
        ]
        text = f"{len(self.requests)} request(s)" + (f" [{'; '.join(parts)}]" if parts else "")
        if self.error is not None:
            text += f", then HttpError({self.error.status}, {short(self.error.reason, 40)})"
        return text


def parse(data: bytes | Iterable[bytes], **limits: int) -> Parsed:
    """Feed ``data`` (one piece, or several) to a fresh RequestParser, taking every request.

    ``next_request`` is called after each piece until it returns None or raises HttpError.
    """
    pieces = [data] if isinstance(data, bytes | bytearray) else list(data)
    fed = bytearray()
    with step(f"RequestParser({', '.join(f'{k}={v}' for k, v in limits.items())})"):
        parser = RequestParser(**limits)
    out = Parsed()
    for piece in pieces:
        fed += piece
        with step(f"parser.feed() then next_request() after {what(bytes(fed), 120)}"):
            parser.feed(bytes(piece))
            try:
                while (request := parser.next_request()) is not None:
                    out.requests.append(request)
            except HttpError as error:
                out.error = error
                return out
    return out


def what(data: bytes, limit: int = 160) -> str:
    """A short, readable rendering of request bytes for a message."""
    return short(bytes(data), limit)


def one(data: bytes, **limits: int) -> Request:
    """The single request ``data`` holds; fails with a readable message otherwise."""
    got = parse(data, **limits)
    assert got.error is None and len(got.requests) == 1, (
        f"Fed {what(data)}; got {got.describe()}; expected exactly one request and no error"
    )
    return got.requests[0]


def rejected(data: bytes, statuses: Iterable[int], why: str, **limits: int) -> None:
    """Feeding ``data`` must end in HttpError with one of ``statuses``, and no request before it."""
    allowed = sorted(set(statuses))
    got = parse(data, **limits)
    want = " or ".join(str(s) for s in allowed)
    assert got.error is not None and got.status in allowed and not got.requests, (
        f"Fed {what(data)} ({why}); got {got.describe()}; expected HttpError({want}) and no request"
    )


# --- the h11 oracle -----------------------------------------------------------------------------

# Fields whose stored form h11 rewrites (it lowercases Transfer-Encoding and keeps one copy of
# duplicate Content-Length fields). Framing is compared through the body instead.
FRAMING = {"content-length", "transfer-encoding"}


def normal(method: str, target: str, version: str, headers, body: bytes, trailers) -> dict:
    def keep(fields):
        return [(n, v) for n, v in fields if n.lower() not in FRAMING]

    return {
        "method": method,
        "target": target,
        "version": version,
        "headers": keep(headers),
        "body": body,
        "trailers": keep(trailers),
    }


def h11_parse(data: bytes) -> tuple[list[dict], str]:
    """h11's reading of ``data`` as a server: the requests, then "error", "closed" or "more".

    After each request h11 is given a response so it moves on to the next one; it stops at the
    first request after which the connection must close (Connection: close, or HTTP/1.0).
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=BIG)
    conn.receive_data(data)
    out: list[dict] = []
    current: dict[str, Any] = {}
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return out, "error"
        if event is h11.NEED_DATA:
            return out, "more"
        if isinstance(event, h11.Request):
            current = {
                "method": event.method.decode("ascii"),
                "target": event.target.decode("ascii"),
                "version": "HTTP/" + event.http_version.decode("ascii"),
                "headers": [
                    (n.decode(), v.decode("latin-1")) for n, v in event.headers.raw_items()
                ],
                "body": b"",
            }
        elif isinstance(event, h11.Data):
            current["body"] += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            trailers = [(n.decode(), v.decode("latin-1")) for n, v in event.headers.raw_items()]
            out.append(normal(**current, trailers=trailers))
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE:
                return out, "closed"
            conn.start_next_cycle()
        else:  # pragma: no cover - the generators never ask for an upgrade or CONNECT
            return out, f"unexpected {event!r}"


def ours_parse(data: bytes) -> tuple[list[dict], str]:
    """The learner's reading, in the same shape as ``h11_parse`` (limits far away)."""
    parser = RequestParser(max_header_bytes=BIG, max_body_bytes=BIG)
    parser.feed(data)
    out: list[dict] = []
    while True:
        with step(f"parser.next_request() after feeding {what(data, 200)}"):
            try:
                request = parser.next_request()
            except HttpError:
                return out, "error"
        if request is None:
            return out, "more"
        out.append(
            normal(
                request.method,
                request.target,
                request.version,
                list(request.headers),
                request.body,
                list(request.trailers),
            )
        )
        # h11 never keeps an HTTP/1.0 connection open (see the differential spec).
        if not request.keep_alive or request.version == "HTTP/1.0":
            return out, "closed"


# --- a running server ---------------------------------------------------------------------------


class Recorder:
    """The spec's handlers: each records the request it got and answers something checkable."""

    def __init__(self) -> None:
        self.seen: list[Request] = []

    async def echo(self, request: Request) -> Response:
        self.seen.append(request)
        info = {
            "method": request.method,
            "target": request.target,
            "version": request.version,
            "body": request.body.decode("latin-1"),
            "x-tag": request.header("x-tag"),
        }
        return Response(200, [("Content-Type", "application/json")], json.dumps(info).encode())

    async def hello(self, request: Request) -> Response:
        self.seen.append(request)
        return Response(200, [("Content-Type", "text/plain")], b"hello")

    async def pieces(self, request: Request) -> Response:
        self.seen.append(request)
        return Response(200, [("Content-Type", "text/plain")], [b"chunked ", b"", b"reply"])

    async def boom(self, request: Request) -> Response:
        self.seen.append(request)
        raise RuntimeError("handler bug")

    def router(self) -> Router:
        router = Router()
        router.route("GET", "/hello", self.hello)
        for method in ("GET", "POST", "PUT"):
            router.route(method, "/echo", self.echo)
        router.route("GET", "/pieces", self.pieces)
        router.route("GET", "/boom", self.boom)
        router.route("DELETE", "/hello", self.hello)
        return router

    @property
    def targets(self) -> list[str]:
        return [r.target for r in self.seen]


@contextlib.asynccontextmanager
async def running(recorder: Recorder | None = None, **options: Any) -> AsyncIterator[int]:
    """An HttpServer on 127.0.0.1, port 0, with the Recorder's routes; yields the port."""
    recorder = recorder or Recorder()
    with step(f"HttpServer(router, {', '.join(f'{k}={v}' for k, v in options.items())})"):
        server = HttpServer(recorder.router(), **options)
    with step("server.start('127.0.0.1', 0)"):
        port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start() to return the port")
    assert isinstance(port, int) and port > 0, f"Called server.start(); returned {short(port)}"
    try:
        yield port
    finally:
        await bounded(server.close(), 5.0, "server.close() to return")


async def exchange(port: int, data: bytes, *, timeout: float = 4.0) -> bytes:
    """Send ``data`` in one write, then read until the server closes (bounded)."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_to_eof(
            reader, timeout, f"the server to answer {what(data, 80)} and close"
        )
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def read_to_eof(reader: asyncio.StreamReader, timeout: float, waiting_for: str) -> bytes:
    """Everything until EOF; a connection reset after some bytes counts as EOF."""
    received = bytearray()

    async def go() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    try:
        await bounded(go(), timeout, waiting_for)
    except AssertionError as error:
        raise AssertionError(f"{error} (received so far: {what(bytes(received), 120)})") from None
    return bytes(received)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.lower()]
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {short(self.headers, 120)} {short(self.body, 60)}>"


def replies(data: bytes, eof: bool = True, methods: Iterable[str] | None = None) -> list[Reply]:
    """Parse a server's bytes as responses, with h11 as the client; fail on anything invalid.

    ``methods`` are the request methods answered, in order (GET if not given). After a response
    that closes the connection, any further byte is an error.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=BIG)
    conn.receive_data(data)
    if eof:
        conn.receive_data(b"")
    out: list[Reply] = []
    method_list = list(methods or [])
    try:
        while True:
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.CLOSED:
                break
            method = method_list[len(out)] if len(out) < len(method_list) else "GET"
            conn.send(h11.Request(method=method, target="/", headers=[("Host", "spec")]))
            conn.send(h11.EndOfMessage())
            status, headers, body = 0, [], bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                    if conn.their_state is h11.SEND_BODY or status:
                        raise h11.RemoteProtocolError("a response was cut short")
                    return out
                if isinstance(event, h11.Response):
                    status = event.status_code
                    headers = [(n.decode(), v.decode("latin-1")) for n, v in event.headers]
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            out.append(Reply(status, headers, bytes(body)))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
        leftover = conn.trailing_data[0]
        assert not leftover, (
            f"The server sent {what(leftover, 80)} after a response that closed the connection"
        )
    except h11.RemoteProtocolError as error:
        raise AssertionError(
            f"The server's bytes are not valid HTTP/1.1 responses ({error}): {what(data, 200)}"
        ) from None
    return out


def request_bytes(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """Raw request bytes, exactly as given (Host added for 1.1 unless present)."""
    fields = list(headers)
    if version == "HTTP/1.1" and not any(n.lower() == "host" for n, _ in fields):
        fields.insert(0, ("Host", "spec"))
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields)
    return (head + "\r\n").encode("latin-1") + body


# --- request generators for the differential ----------------------------------------------------
#
# Every generated stream is complete: no request waits for bytes that never come. A stream is
# one to three pipelined requests; in the "subtle" flavour one of them carries one corruption.
# What the generators never produce, and why, is listed in test_differential_spec.py.
#
# The strategies are built once, at import: building strategies inside every draw costs more
# than the draws themselves, and the specs must stay fast under coverage.

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
# 0x85 (NEL) and 0xA0 (NBSP) are whitespace to str.strip() but field content to HTTP.
OBS_TEXT = "".join(chr(c) for c in range(0x80, 0x88)) + "\xa0"
NOT_TCHAR = ' "(),/;<=>?@[\\]{}\t\x7f\x80'  # no ":" (it would just end the name early)
RESERVED = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "expect"}
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]

CORRUPTIONS = [
    "bad_name",  # a non-token character inside a field name
    "space_colon",  # whitespace between field name and colon (RFC 9112 §5.1)
    "nul_value",  # NUL inside a field value
    "cr_value",  # a bare CR inside a field value
    "no_host",  # HTTP/1.1 without Host (RFC 9112 §3.2)
    "two_hosts",
    "bad_cl",  # Content-Length that is not 1*DIGIT
    "cl_dup_same",  # two identical Content-Length fields (accepted)
    "cl_list_same",  # Content-Length: 5, 5 (accepted)
    "cl_dup_diff",  # two different Content-Length fields (CL.CL smuggling)
    "cl_list_diff",  # Content-Length: 5, 6
    "cl_unicode_ws",  # Content-Length: 5\xa0 (only SP and HTAB are OWS, RFC 9110 §5.6.3)
    "te_other",  # a Transfer-Encoding that is not exactly "chunked"
    "te_unicode_ws",  # Transfer-Encoding: chunked\x85 (str.strip() would make it chunked)
    "bad_chunk_size",  # 0x1a, +1a, -1, " 1a", 1_a, g ...
    "bad_chunk_end",  # chunk data not followed by CRLF
    "lf_chunk_line",  # a chunk-size line ended by a lone LF
    "bad_request_line",
    "bad_method",
    "ws_first_line",  # whitespace before the first field line (RFC 9112 §2.2)
]
LENGTH_CORRUPTIONS = {
    "bad_cl",
    "cl_dup_same",
    "cl_list_same",
    "cl_dup_diff",
    "cl_list_diff",
    "cl_unicode_ws",
}
CHUNK_CORRUPTIONS = {
    "te_other",
    "te_unicode_ws",
    "bad_chunk_size",
    "bad_chunk_end",
    "lf_chunk_line",
}
UNICODE_WS = ["{}\x85", "{}\xa0", "\xa0{}", "\x85{}", "{} \xa0"]
FIELD_CORRUPTIONS = {"bad_name", "space_colon", "nul_value", "cr_value"}

BAD_CL = ["+5", "-5", "0x5", "5a", "5.0", "1_0", "", "5,", ",5", "5 5", "\xd9\xa5", "1e3"]
BAD_TE = [
    "gzip",
    "chunked, gzip",
    "gzip, chunked",
    "identity",
    "chunked, chunked",
    "chunked,",
    "xchunked",
    "chunked;q=1",
    "",
]
BAD_SIZE = ["0x{}", "+{}", "-{}", " {}", "g", "", "_{}", "{}_0"]
BAD_DATA_END = ["\n", "\r", "XY", "", "\n\r"]
EXTENSIONS = ["", "", ";name=value", ';a;b="x y"', ";ext", "  "]
TRAILERS = ["X-Sum: 1f", "Expires: never", "X-T:  a b "]
CONNECTIONS = [None, None, "close", "keep-alive", "Keep-Alive, x-y"]
OWS = ["", " ", "\t", "  ", " \t "]
SEPARATORS = [" ", "\t", "  "]
EOLS = ["\r\n", "\r\n", "\n"]
VERSIONS = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]
TE_SPELLINGS = ["chunked", "Chunked", "CHUNKED"]
BAD_LINES = [
    "{m}  {t} {v}",
    "{m}\t{t} {v}",
    "{m} {t} {lv}",
    "{m} {t} {v} ",
    "{m} {t} HTTP/11",
    "{m} {v}",
    "{m} {t}",
    " {m} {t} {v}",
    "{m} {t} {v} x",
    "{m} {t}  {v}",
]

_NAME = st.text(TCHAR, min_size=1, max_size=10).filter(lambda n: n.lower() not in RESERVED)
_WORDS = st.lists(st.text(VCHAR + OBS_TEXT, min_size=1, max_size=8), max_size=3)
_METHOD = st.sampled_from(METHODS) | st.text(TCHAR, min_size=1, max_size=8).filter(
    lambda m: m != "CONNECT"
)
_TARGET = st.text(VCHAR, max_size=16)
_BODY = st.binary(max_size=24)
_CUTS = st.lists(st.integers(0, 24), max_size=3)
_CHOICE = st.integers(0, 63)
_FIELD_COUNT = st.integers(0, 3)
_COUNT = st.integers(1, 3)
_BOOL = st.booleans()


def pick(draw, options):
    """One of ``options`` (shrinks toward the first)."""
    return options[draw(_CHOICE) % len(options)]


def field_line(draw) -> str:
    value = pick(draw, SEPARATORS).join(draw(_WORDS))
    return f"{draw(_NAME)}:{pick(draw, OWS)}{value}{pick(draw, OWS)}"


def hex_size(draw, size: int) -> str:
    text = format(size, "x")
    return "0" * (draw(_CHOICE) % 3) + (text.upper() if draw(_BOOL) else text)


def chunked_body(draw, body: bytes, corruption: str | None) -> bytes:
    cuts = sorted(min(c, len(body)) for c in draw(_CUTS))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    pieces = [p for p in pieces if p]
    out = bytearray()
    for index, piece in enumerate(pieces):
        size, ext, end, data_end = (
            hex_size(draw, len(piece)),
            pick(draw, EXTENSIONS),
            "\r\n",
            "\r\n",
        )
        if index == 0 and corruption == "bad_chunk_size":
            size, ext = pick(draw, BAD_SIZE).format(size), ""
        if index == 0 and corruption == "bad_chunk_end":
            data_end = pick(draw, BAD_DATA_END)
        if index == 0 and corruption == "lf_chunk_line":
            end = "\n"
        out += f"{size}{ext}{end}".encode() + piece + data_end.encode()
    last, last_end = "0", "\r\n"
    if not pieces and corruption == "bad_chunk_size":
        last = pick(draw, BAD_SIZE).format("0")
    if not pieces and corruption == "lf_chunk_line":
        last_end = "\n"
    out += f"{last}{pick(draw, ['', ';done'])}{last_end}".encode()
    trailers = [pick(draw, TRAILERS) for _ in range(draw(_CHOICE) % 3)]
    out += "".join(f"{t}\r\n" for t in trailers).encode() + b"\r\n"
    return bytes(out)


def length_fields(draw, corruption: str | None, body: bytes) -> list[str]:
    length = str(len(body))
    if corruption == "bad_cl":
        return [f"Content-Length: {pick(draw, BAD_CL)}"]
    if corruption == "cl_dup_same":
        return [f"Content-Length: {length}", f"content-length: {length}"]
    if corruption == "cl_list_same":
        return [f"Content-Length: {length},{pick(draw, OWS)}{length}"]
    if corruption == "cl_dup_diff":
        return [f"Content-Length: {length}", f"Content-Length: {len(body) + 1}"]
    if corruption == "cl_list_diff":
        return [f"Content-Length: {length}, {len(body) + 1}"]
    if corruption == "cl_unicode_ws":
        return [f"Content-Length: {pick(draw, UNICODE_WS).format(length)}"]
    return [f"Content-Length: {length}"]


def corrupt_field(draw, corruption: str, line: str) -> str:
    name, _, value = line.partition(":")
    if corruption == "bad_name":
        at = 1 + draw(_CHOICE) % len(name)  # never first: a leading space would be obs-fold
        return f"{name[:at]}{pick(draw, NOT_TCHAR)}{name[at:]}:{value}"
    if corruption == "space_colon":
        return f"{name}{pick(draw, SEPARATORS)}:{value}"
    at = draw(_CHOICE) % (len(value) + 1)
    bad = "\x00" if corruption == "nul_value" else "\r"
    return f"{name}:{value[:at]}{bad}{value[at:]}"


def request_stream(draw, corrupt: bool) -> bytes:
    """One request as bytes; with ``corrupt``, one subtle corruption (maybe a harmless one)."""
    corruption = pick(draw, CORRUPTIONS) if corrupt else None
    version, method, target = pick(draw, VERSIONS), draw(_METHOD), "/" + draw(_TARGET)
    if corruption in CHUNK_CORRUPTIONS:
        version = "HTTP/1.1"  # Transfer-Encoding in HTTP/1.0: see test_differential_spec.py
    eol = pick(draw, EOLS)
    fields = [field_line(draw) for _ in range(draw(_FIELD_COUNT))]
    if version == "HTTP/1.1" or draw(_BOOL):
        fields.append(f"Host:{pick(draw, OWS)}example.test")
    connection = pick(draw, CONNECTIONS)
    if connection is not None:
        fields.append(f"Connection: {connection}")
    framing = pick(draw, ["none", "length", "chunked"])
    if framing == "chunked" and version == "HTTP/1.0":
        framing = "length"
    if corruption in LENGTH_CORRUPTIONS:
        framing = "length"
    if corruption in CHUNK_CORRUPTIONS:
        framing = "chunked"
    body = b"" if framing == "none" else draw(_BODY)
    if corruption == "bad_chunk_end" and not body:
        body = b"x"
    if framing == "length":
        fields += length_fields(draw, corruption, body)
    elif framing == "chunked":
        fields.append(f"Transfer-Encoding: {pick(draw, TE_SPELLINGS)}")
        if corruption == "te_other" and draw(_BOOL):
            fields.append("Transfer-Encoding: chunked")
        elif corruption == "te_other":
            fields[-1] = f"Transfer-Encoding: {pick(draw, BAD_TE)}"
        elif corruption == "te_unicode_ws":
            fields[-1] = f"Transfer-Encoding: {pick(draw, UNICODE_WS).format('chunked')}"
    fields = draw(st.permutations(fields))
    if corruption in FIELD_CORRUPTIONS:
        if not fields:
            fields = [field_line(draw)]
        at = draw(_CHOICE) % len(fields)
        fields[at] = corrupt_field(draw, corruption, fields[at])
    if corruption == "no_host":
        fields = [f for f in fields if not f.lower().startswith("host:")]
    if corruption == "two_hosts":
        fields.append("Host: other.test")
    if corruption == "ws_first_line":
        fields = [" " + (fields[0] if fields else "X-A: b"), *fields[1:]]
    request_line = f"{method} {target} {version}"
    if corruption == "bad_method":
        at = draw(_CHOICE) % (len(method) + 1)
        bad = f"{method[:at]}{pick(draw, NOT_TCHAR[1:])}{method[at:]}"
        request_line = f"{bad} {target} {version}"
    if corruption == "bad_request_line":
        request_line = pick(draw, BAD_LINES).format(
            m=method, t=target, v=version, lv=version.lower()
        )
    head = (request_line + eol + "".join(f + eol for f in fields) + eol).encode("latin-1")
    if framing == "chunked":
        return head + chunked_body(draw, body, corruption)
    return head + body


@st.composite
def pipelines(draw, corrupt: bool) -> bytes:
    """One to three requests back to back; with ``corrupt``, one of them is corrupted."""
    count = draw(_COUNT)
    bad = draw(_CHOICE) % count if corrupt else -1
    return b"".join(request_stream(draw, corrupt=(i == bad)) for i in range(count))


class Client:
    """One raw TCP connection to the server; replies are read one at a time with h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=BIG)

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 3.0, "the connection to be accepted"
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, waiting_for: str, method: str = "GET", timeout: float = 3.0) -> Reply:
        """The next complete response on this connection (bounded)."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        if self.conn.our_state is not h11.IDLE:
            raise AssertionError(
                f"Waited for {waiting_for}, but the previous response closed the connection"
            )
        self.conn.send(h11.Request(method=method, target="/", headers=[("Host", "spec")]))
        self.conn.send(h11.EndOfMessage())
        status, headers, body = 0, [], bytearray()

        async def read() -> None:
            nonlocal status, headers
            while True:
                try:
                    event = self.conn.next_event()
                except h11.RemoteProtocolError as error:
                    raise AssertionError(
                        f"Waited for {waiting_for}; the bytes are not a valid response ({error})"
                    ) from None
                if event is h11.NEED_DATA:
                    try:
                        data = await self.reader.read(65536)
                    except ConnectionError:
                        data = b""
                    self.conn.receive_data(data)
                elif isinstance(event, h11.ConnectionClosed):
                    raise AssertionError(
                        f"Waited for {waiting_for}; the server closed the connection instead"
                    )
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = [(n.decode(), v.decode("latin-1")) for n, v in event.headers]
                elif isinstance(event, h11.Data):
                    body.extend(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return

        await bounded(read(), timeout, waiting_for)
        return Reply(status, headers, bytes(body))

    async def eof(self, waiting_for: str, timeout: float = 3.0) -> bytes:
        """Whatever the server still sends, until it closes the connection (bounded)."""
        pending = self.conn.trailing_data[0]
        return pending + await read_to_eof(self.reader, timeout, waiting_for)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
