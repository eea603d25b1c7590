"""An HTTP forward proxy on asyncio: absolute-form requests forwarded, CONNECT tunnels, a
destination policy against SSRF, and Basic proxy authentication.

Strategy: the decisions are pure functions a spec can call without a socket: which fields are
hop-by-hop (``strip_hop_by_hop``), which destinations may be reached (``Policy.allowed``). The
``ForwardProxy`` class is the I/O around them: read one request head, authenticate, resolve
the destination once through the injected resolver, check the *address* (not the name), connect
to that same address, then either relay one request/response or pump a tunnel both ways.

Every copy loop reads at most ``CHUNK`` bytes and awaits ``drain()`` after each write, so a
slow reader slows the origin down instead of filling the proxy's memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "CHUNK",
    "MAX_HEAD",
    "ForwardProxy",
    "Policy",
    "Resolver",
    "strip_hop_by_hop",
    "system_resolver",
]

CHUNK = 64 * 1024  # the most a copy loop reads at once
MAX_HEAD = 16 * 1024  # a request head (request line, fields, blank line) longer than this: 431

Headers = list[tuple[str, str]]
Resolver = Callable[[str, int], Awaitable[list[str]]]

# RFC 9110 §7.6.1: fields that describe one connection, removed whether or not Connection names them.
HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/1\.([01])")
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: (.*))?")
_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(): it takes "²" too, which int() refuses
_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
}
_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie"})


def strip_hop_by_hop(headers: Headers) -> Headers:
    """The fields a proxy forwards: ``headers`` without the hop-by-hop ones (RFC 9110 §7.6.1).

    Removed: every field in ``HOP_BY_HOP`` and every field whose name a ``Connection`` field
    lists (names compare case-insensitively). Order and repeated fields are kept.
    """
    named = {
        option.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for option in value.split(",")
    }
    drop = HOP_BY_HOP | named
    return [(name, value) for name, value in headers if name.lower() not in drop]


def _as_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


@dataclass(frozen=True)
class Policy:
    """Where the proxy may connect.

    ``ports``: destination ports for forwarded requests; ``connect_ports``: for CONNECT tunnels
    (RFC 9110 §9.3.6 asks for "a limited set of known ports"). ``allow_networks``: CIDR blocks
    that are allowed even though they are not public (the specs' origins on 127.0.0.1).
    """

    ports: frozenset[int] = frozenset({80})
    connect_ports: frozenset[int] = frozenset({443})
    allow_networks: tuple[str, ...] = ()

    def allowed(self, port: int, address: str, *, tunnel: bool = False) -> bool:
        """Whether the proxy may connect to ``address`` (an IP literal) on ``port``.

        The port must be in ``connect_ports`` for a tunnel, ``ports`` otherwise. The address
        must be public unicast (``ipaddress``'s ``is_global``, not multicast), an IPv4-mapped
        IPv6 address judged as the IPv4 address it carries, unless it lies in one of
        ``allow_networks``. Anything that is not an IP address is refused.
        """
        if port not in (self.connect_ports if tunnel else self.ports):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
        if any(ip in _as_network(net) for net in self.allow_networks):
            return True
        return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the operating system's resolver, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class HttpError(Exception):
    """A request the proxy answers itself, with ``status``."""

    def __init__(self, status: int, detail: str, headers: Headers | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.headers = headers or []


@dataclass
class _Request:
    method: str
    target: str
    version: str  # "1.0" or "1.1": the received-protocol for Via
    headers: Headers

    def values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


class ForwardProxy:
    """An HTTP/1.1 forward proxy: absolute-form requests and CONNECT tunnels.

    ``credentials`` (user -> password), when given, turns on Basic proxy authentication;
    ``resolver`` turns a host name into addresses (the spec injects its own); ``via`` is the
    pseudonym this proxy adds to ``Via``.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        resolver: Resolver = system_resolver,
        credentials: Mapping[str, str] | None = None,
        realm: str = "forward_proxy",
        via: str = "forward_proxy",
        connect_timeout: float = 5.0,
    ) -> None:
        self.policy = policy or Policy()
        self._resolver = resolver
        self._credentials = dict(credentials) if credentials is not None else None
        self._realm = realm
        self._via = via
        self._connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 picks a free one); return the address bound."""
        self._server = await asyncio.start_server(self._on_client, host, port, limit=MAX_HEAD)
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop listening and end every open connection and tunnel."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()

    # -- one client connection ---------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._serve(reader, writer)
        except HttpError as error:
            with contextlib.suppress(ConnectionError):
                await _answer(writer, error.status, str(error).encode(), error.headers)
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass  # the client went away, or close(): nothing left to say to anyone
        finally:
            writer.close()
            self._sessions.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = _parse_request(await _read_head(reader))
        self._authenticate(request)
        if request.method == "CONNECT":
            await self._tunnel(request, reader, writer)
            return
        if request.method in ("TRACE", "OPTIONS"):
            remaining = _max_forwards(request)
            if remaining == 0:
                await self._answer_here(request, writer)
                return
        await self._forward(request, reader, writer)

    def _authenticate(self, request: _Request) -> None:
        """Check ``Proxy-Authorization: Basic`` (RFC 7617) when credentials are configured."""
        if self._credentials is None:
            return
        challenge = [("Proxy-Authenticate", f'Basic realm="{self._realm}", charset="UTF-8"')]
        supplied = request.values("proxy-authorization")
        user, password = _basic_credentials(supplied[0]) if len(supplied) == 1 else (None, None)
        expected = self._credentials.get(user or "")
        # compare_digest even for an unknown user: the time taken says nothing about the name.
        good = hmac.compare_digest((password or "").encode(), (expected or "\0").encode())
        if user is None or expected is None or not good:
            raise HttpError(407, "proxy authentication required", challenge)

    async def _answer_here(self, request: _Request, writer: asyncio.StreamWriter) -> None:
        """Max-Forwards: 0 on TRACE or OPTIONS: the proxy is the final recipient (RFC 9110 §7.6.2)."""
        if request.method == "OPTIONS":
            await _answer(writer, 200, b"")
            return
        # TRACE reflects the request it received (§9.3.8), minus the fields carrying secrets.
        lines = [f"{request.method} {request.target} HTTP/{request.version}"]
        lines += [f"{k}: {v}" for k, v in request.headers if k.lower() not in _SENSITIVE]
        body = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        await _answer(writer, 200, body, [("Content-Type", "message/http")])

    async def _open(
        self, host: str, port: int, *, tunnel: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Resolve ``host`` once, check each address, connect to the first allowed one.

        Connecting to the address that was checked, never to the name again, is what defeats
        DNS rebinding: a second lookup could answer with an internal address.
        """
        try:
            addresses = await self._resolver(host, port)
        except OSError as error:
            raise HttpError(502, f"cannot resolve {host}: {error}") from None
        chosen = next((a for a in addresses if self.policy.allowed(port, a, tunnel=tunnel)), None)
        if chosen is None:
            raise HttpError(403, f"destination {host}:{port} is not allowed")
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(chosen, port), self._connect_timeout
            )
        except (OSError, TimeoutError) as error:
            raise HttpError(502, f"cannot connect to {host}:{port}: {error}") from None

    async def _tunnel(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """CONNECT host:port: a 200 without framing fields, then blind bytes (RFC 9110 §9.3.6)."""
        host, port = _authority(request.target)
        origin_reader, origin_writer = await self._open(host, port, tunnel=True)
        try:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _splice(reader, writer, origin_reader, origin_writer)
        finally:
            origin_writer.close()

    async def _forward(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        url = urlsplit(request.target)
        if url.scheme.lower() != "http" or not url.hostname:
            raise HttpError(400, "a forward proxy takes absolute-form http:// targets")
        if "@" in url.netloc:
            raise HttpError(400, "userinfo is not allowed in an http target")  # RFC 9110 §4.2.4
        try:
            port = url.port or 80
        except ValueError:
            raise HttpError(400, "invalid port") from None
        if request.values("transfer-encoding"):
            raise HttpError(501, "request content is accepted with Content-Length only")
        length = _content_length(request.values("content-length"))
        path = url.path or "/"
        if request.method == "OPTIONS" and not url.path and not url.query:
            path = "*"  # RFC 9112 §3.2.4: the last proxy sends OPTIONS * for an empty path
        elif url.query:
            path += "?" + url.query

        fields = [
            (name, value)
            for name, value in strip_hop_by_hop(request.headers)
            if name.lower() not in ("host", "proxy-authorization", "max-forwards")
        ]
        if request.method in ("TRACE", "OPTIONS") and request.values("max-forwards"):
            fields.append(("Max-Forwards", str(_max_forwards(request) - 1)))
        elif request.values("max-forwards"):
            fields += [("Max-Forwards", value) for value in request.values("max-forwards")]
        # RFC 9112 §3.2.2: Host comes from the request-target, never from the client's Host.
        head = [f"{request.method} {path} HTTP/1.1", f"Host: {url.netloc}"]
        head += [f"{name}: {value}" for name, value in fields]
        head += [f"Via: {request.version} {self._via}", "Connection: close"]

        origin_reader, origin_writer = await self._open(url.hostname, port, tunnel=False)
        try:
            origin_writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            # The body goes up while the answer comes down: a client that sent
            # "Expect: 100-continue" waits for the origin's 100 before it sends its body
            # (RFC 9110 §10.1.1), and an origin may answer before it has read the body.
            await _together(
                _copy(reader, origin_writer, length),
                self._relay_response(request, origin_reader, writer),
            )
        finally:
            origin_writer.close()

    async def _relay_response(
        self, request: _Request, origin: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        version, status, reason, headers = await _read_response_head(origin)
        while 100 <= status < 200:
            # RFC 9110 §15.2: a proxy MUST forward interim responses (100 Continue, 103 Early
            # Hints), then the final one follows on the same connection, but a server MUST NOT
            # send a 1xx to an HTTP/1.0 client. A 101 switches to a protocol this proxy never
            # asked for (it removes Upgrade): the origin is broken.
            if status == 101:
                raise HttpError(502, "the origin switched protocols nobody asked for")
            if request.version == "1.1":
                head = [f"HTTP/1.1 {status} {reason}".rstrip()]
                head += [f"{name}: {value}" for name, value in strip_hop_by_hop(headers)]
                head += [f"Via: 1.{version} {self._via}"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                await writer.drain()
            version, status, reason, headers = await _read_response_head(origin)
        lower = {name.lower() for name, _ in headers}
        chunked = "transfer-encoding" in lower
        fields = strip_hop_by_hop(headers)
        length = None
        if chunked:  # we decode the chunks and frame the body by closing the connection
            fields = [(k, v) for k, v in fields if k.lower() != "content-length"]
        elif "content-length" in lower:
            # checked before the head goes out: a length we cannot frame by is a 502 (RFC 9112 §6.3)
            values = [v for k, v in headers if k.lower() == "content-length"]
            length = _content_length(values, error=502)
        head = [f"HTTP/1.1 {status} {reason}".rstrip()]
        head += [f"{name}: {value}" for name, value in fields]
        head += [f"Via: 1.{version} {self._via}", "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()

        if request.method == "HEAD" or status in (204, 304):
            return  # no content, whatever Content-Length says
        if chunked:
            await _copy_chunked(origin, writer)
        else:
            await _copy(origin, writer, length)  # None: until the origin closes


# -- parsing -----------------------------------------------------------------------------------


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request head up to and including the blank line; 431 past ``MAX_HEAD`` bytes."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    if len(head) > MAX_HEAD:
        raise HttpError(431, "request head too large")
    return head


def _parse_request(head: bytes) -> _Request:
    lines = head.decode("latin-1").split("\r\n")[:-2]
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "malformed request line")
    method, target, minor = match.groups()
    return _Request(method, target, f"1.{minor}", _parse_fields(lines[1:], error=400))


async def _read_response_head(origin: asyncio.StreamReader) -> tuple[str, int, str, Headers]:
    """(minor version, status, reason phrase, fields) of the origin's next response head."""
    try:
        raw = await origin.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        raise HttpError(502, "the origin sent no valid response head") from None
    lines = raw.decode("latin-1").split("\r\n")[:-2]
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        raise HttpError(502, "the origin sent no valid status line")
    version, status, reason = status_line.groups()
    return version, int(status), reason or "", _parse_fields(lines[1:], error=502)


def _parse_fields(lines: list[str], *, error: int) -> Headers:
    fields = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):  # also refuses obs-fold and "Name :"
            raise HttpError(error, f"malformed field line {line[:40]!r}")
        fields.append((name, value.strip(" \t")))
    return fields


def _content_length(values: list[str], *, error: int = 400) -> int:
    if not values:
        return 0
    distinct = {value.strip() for value in values}
    text = distinct.pop() if len(distinct) == 1 else ""
    if not _DIGITS.fullmatch(text):
        raise HttpError(error, "invalid Content-Length")
    return int(text)


def _max_forwards(request: _Request) -> int | None:
    values = request.values("max-forwards")
    if not values:
        return None
    if len(values) != 1 or not _DIGITS.fullmatch(values[0]):
        raise HttpError(400, "invalid Max-Forwards")
    return int(values[0])


def _authority(target: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` of a CONNECT request; the port is required."""
    if target.startswith("["):
        host, bracket, rest = target[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise HttpError(400, "CONNECT needs host:port")
        port_text = rest[1:]
    else:
        host, colon, port_text = target.rpartition(":")
        if not colon or ":" in host:
            raise HttpError(400, "CONNECT needs host:port")
    if not host or not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise HttpError(400, "CONNECT needs host:port")
    return host, int(port_text)


def _basic_credentials(value: str) -> tuple[str | None, str | None]:
    """(user, password) from a Basic credential (RFC 7617); (None, None) if it isn't one."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":  # auth-schemes are case-insensitive (RFC 9110 §11.1)
        return None, None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else (None, None)


# -- moving bytes ------------------------------------------------------------------------------


async def _answer(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: Headers | None = None
) -> None:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}".rstrip()]
    head += [f"{k}: {v}" for k, v in headers or []]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def _copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int | None
) -> None:
    """Copy ``length`` bytes (None: until EOF), at most ``CHUNK`` at a time, draining each write."""
    while length is None or length > 0:
        data = await reader.read(CHUNK if length is None else min(CHUNK, length))
        if not data:
            if length is None:
                return
            raise ConnectionError("the peer closed before the end of the content")
        if length is not None:
            length -= len(data)
        writer.write(data)
        await writer.drain()  # back-pressure: never read faster than the far side takes


async def _together(upload: Awaitable[None], relay: Awaitable[None]) -> None:
    """Run ``upload`` and ``relay`` at once until ``relay`` is done; the first failure of
    either ends both and is raised. An upload still running when the answer is complete is
    abandoned: the connection closes after this exchange anyway."""
    tasks = [asyncio.ensure_future(upload), asyncio.ensure_future(relay)]
    try:
        pending = set(tasks)
        while not tasks[1].done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what the task raised
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Decode a chunked body (RFC 9112 §7.1) and copy its data; trailers are dropped."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        if not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
            raise ConnectionError("invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields
            return
        await _copy(reader, writer, size)
        if await reader.readexactly(2) != b"\r\n":
            raise ConnectionError("chunk not followed by CRLF")


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    origin_reader: asyncio.StreamReader,
    origin_writer: asyncio.StreamWriter,
) -> None:
    """Pump both directions until both have ended. An EOF is passed on as a half-close
    (``write_eof``) and the other direction keeps flowing; a reset ends both."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_pump(client_reader, origin_writer))
            group.create_task(_pump(origin_reader, client_writer))
    except* OSError:
        pass  # a reset on one side: the tunnel is over, the caller closes both sockets


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
