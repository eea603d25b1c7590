"""A TLS-terminating reverse proxy on asyncio and the standard library's ``ssl``.

Clients speak HTTPS to the proxy; the proxy decrypts, rewrites the request head (who the
client is, that it came over TLS, which client certificate it showed) and forwards plaintext
HTTP/1.1 to one backend.

Theory of operation:

* One listening ``SSLContext`` (the *front* context) owns the ``sni_callback``. When a
  ClientHello arrives, the callback picks the certificate for the name the client asked for
  and switches the connection to that name's context (``ssl_object.context = ...``). Every
  context, the default one included, comes from the current *generation*: a dict built in
  full by ``_build`` and swapped in one assignment by ``reload``. A connection that finished
  its handshake holds its own ``SSLObject`` and keeps its certificate whatever happens to
  the generation after that.
* The pure pieces (``pick_name``, ``rfc4514``, ``forwarded_node``, ``rewrite_headers``) carry
  the rules; ``TLSTerminator`` is the I/O around them.
* One request per client connection: the proxy answers with ``Connection: close``. That keeps
  the HTTP side small, so the kata stays about TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import weakref
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

MAX_HEAD = 16 * 1024  # a request head longer than this: 431
CHUNK = 64 * 1024  # the most a copy loop reads at once
SUBJECT_HEADER = "X-Client-Subject"

# Fields only this proxy may set: a client's own copies are lies and are removed.
TRUST_FIELDS = frozenset(
    {
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        SUBJECT_HEADER.lower(),
    }
)
# Fields that describe one connection (RFC 9110 §7.6.1); the proxy sets its own Connection.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})

# RFC 4514 §3: the attribute type names a string representation uses. The keys are the names
# OpenSSL (and so ``getpeercert()``) gives the same attributes.
RFC4514_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate chain (leaf first) and its private key, as files."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class TLSConfig:
    """What the proxy serves.

    ``default``: the certificate for clients without SNI or with a name not in ``names``.
    ``names``: SNI name -> certificate; a key ``*.example.test`` is a wildcard for one label.
    ``alpn``: the protocols the proxy may agree on (RFC 7301), in its order of preference.
    ``client_ca``: a PEM file of the CA(s) whose client certificates are accepted; None: no mTLS.
    ``require_client_cert``: with ``client_ca``, refuse clients without a certificate.
    """

    default: Certificate
    names: Mapping[str, Certificate] = field(default_factory=dict)
    alpn: tuple[str, ...] = ("http/1.1",)
    client_ca: str | None = None
    require_client_cert: bool = False


@dataclass(frozen=True)
class Handshake:
    """One completed handshake: the SNI name asked (None if none), the ``names`` key chosen
    (None for the default certificate), the ALPN protocol agreed, the TLS version, and the
    client certificate's subject (RFC 4514) if one was verified."""

    server_name: str | None
    certificate: str | None
    alpn: str | None
    version: str | None
    subject: str | None


def pick_name(server_name: str | None, names: Mapping[str, object]) -> str | None:
    """The key of ``names`` that serves ``server_name``, or None for the default certificate.

    Names compare case-insensitively. An exact key wins; else a key ``*.rest`` serves a name
    that is exactly one label followed by ``.rest``.
    """
    if not server_name:
        return None
    wanted = server_name.lower()
    by_lower = {key.lower(): key for key in names}
    if wanted in by_lower:
        return by_lower[wanted]
    label, dot, rest = wanted.partition(".")
    if label and dot and rest:
        return by_lower.get("*." + rest)
    return None


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 §2.4 asks, plus every control or non-ASCII
    character as hex pairs of its UTF-8 bytes (allowed there), so the result fits a header."""
    out = []
    for char in value:
        if char in '"+,;<>\\':
            out.append("\\" + char)
        elif char < " " or char > "~":
            out.append("".join(f"\\{byte:02X}" for byte in char.encode()))
        else:
            out.append(char)
    if value.startswith((" ", "#")):
        out[0] = "\\" + out[0]
    if value.endswith(" ") and (len(value) > 1 or not out[0].startswith("\\")):
        out[-1] = "\\ "
    return "".join(out)


def rfc4514(subject: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """The RFC 4514 string of a subject as ``SSLObject.getpeercert()["subject"]`` gives it.

    ``subject`` lists the RDNs in certificate order, each a tuple of (type, value) pairs. The
    string lists the RDNs in reverse order, joined by ","; the pairs of one RDN joined by "+".
    """
    rdns = []
    for rdn in reversed(subject):
        rdns.append(
            "+".join(f"{RFC4514_NAMES.get(kind, kind)}={_escape(value)}" for kind, value in rdn)
        )
    return ",".join(rdns)


def forwarded_node(ip: str) -> str:
    """The node of a ``Forwarded: for=`` parameter (RFC 7239 §6): an IPv4 address as it is, an
    IPv6 address in brackets and quotes."""
    if ipaddress.ip_address(ip).version == 6:
        return f'"[{ip}]"'
    return ip


def connection_options(headers: Headers) -> set[str]:
    """The field names (lower case) that the ``Connection`` fields of ``headers`` list: those
    fields describe the sender's connection too and are removed before forwarding (RFC 9110
    §7.6.1). Options are comma-separated, with optional whitespace; there may be several
    ``Connection`` lines."""
    return {
        option.strip(" \t").lower()
        for name, value in headers
        if name.strip().lower() == "connection"
        for option in value.split(",")
    } - {""}


def rewrite_headers(headers: Headers, client_ip: str, subject: str | None) -> Headers:
    """The request fields the backend gets.

    Removed (names compare case-insensitively): every field in ``TRUST_FIELDS`` and
    ``HOP_BY_HOP``, and every field the client's ``Connection`` names. Kept: the rest, in
    order. Added at the end: ``X-Forwarded-For``, ``X-Forwarded-Proto: https``,
    ``Forwarded: for=...;proto=https``, ``X-Client-Subject`` when a client certificate was
    verified, and ``Connection: close``.
    """
    drop = TRUST_FIELDS | HOP_BY_HOP | connection_options(headers)
    kept = [(name, value) for name, value in headers if name.lower() not in drop]
    kept += [
        ("X-Forwarded-For", client_ip),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", f"for={forwarded_node(client_ip)};proto=https"),
    ]
    if subject is not None:
        kept.append((SUBJECT_HEADER, subject))
    kept.append(("Connection", "close"))
    return kept


class HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(head: bytes) -> tuple[str, Headers]:
    """Split a request head into its request line and fields; HttpError(400) if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0]
    if len(request_line.split(" ")) != 3 or not request_line.endswith(("HTTP/1.1", "HTTP/1.0")):
        raise HttpError(400, "Bad Request")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[0] in " \t":
            raise HttpError(400, "Bad Request")
        headers.append((name, value.strip(" \t")))
    return request_line, headers


def body_length(headers: Headers) -> int:
    """The request body's length from Content-Length (0 if absent); chunked bodies are refused."""
    if any(name.lower() == "transfer-encoding" for name, _ in headers):
        raise HttpError(501, "Not Implemented")
    lengths = {value for name, value in headers if name.lower() == "content-length"}
    if not lengths:
        return 0
    length = next(iter(lengths))
    # ASCII digits only: str.isdigit() also takes "²" (byte 0xB2 in latin-1), which int() refuses
    if len(lengths) > 1 or not (length.isascii() and length.isdigit()):
        raise HttpError(400, "Bad Request")
    return int(length)


def _head(first_line: str, headers: Headers) -> bytes:
    return (first_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
        "latin-1"
    )


def _status(status_line: str) -> int:
    """The status code of a response's status line, 0 if it has none."""
    parts = status_line.split(" ", 2)
    code = parts[1] if len(parts) > 1 else ""
    return int(code) if len(code) == 3 and code.isascii() and code.isdigit() else 0


async def _read_response_head(up_reader: asyncio.StreamReader) -> tuple[str, Headers]:
    """The backend's next response head: its status line, and its fields without the
    hop-by-hop ones and those its Connection names (RFC 9110 §7.6.1). 502 if there is none."""
    try:
        head = await up_reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise HttpError(502, "Bad Gateway") from None
    status_line, _, fields = head[:-4].decode("latin-1").partition("\r\n")
    headers = [
        (name, value.strip())
        for name, value in (line.split(":", 1) for line in fields.split("\r\n") if ":" in line)
    ]
    drop = HOP_BY_HOP | connection_options(headers)  # the backend's Connection names its own
    return status_line, [(k, v) for k, v in headers if k.strip().lower() not in drop]


async def _copy_body(
    reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter, length: int
) -> None:
    """Copy exactly ``length`` body bytes, CHUNK by CHUNK, awaiting drain() after each write."""
    while length:
        data = await reader.readexactly(min(length, CHUNK))
        length -= len(data)
        up_writer.write(data)
        await up_writer.drain()
    await up_writer.drain()


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


class TLSTerminator:
    """Terminates TLS for ``backend`` (host, port) with the certificates of ``config``.

    ``handshakes`` records every completed handshake, in order.
    """

    def __init__(self, config: TLSConfig, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.handshakes: list[Handshake] = []
        self._generation = self._build(config)
        self._chosen: weakref.WeakKeyDictionary[ssl.SSLObject, tuple[str | None, str | None]] = (
            weakref.WeakKeyDictionary()
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @staticmethod
    def server_context(cert: Certificate, config: TLSConfig) -> ssl.SSLContext:
        """A server context for one certificate: TLS 1.2 or newer, the ALPN list, and client
        certificates verified against ``config.client_ca`` when it is set."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996: TLS 1.0 and 1.1 are gone
        context.load_cert_chain(cert.cert_file, cert.key_file)
        context.set_alpn_protocols(list(config.alpn))
        if config.client_ca is not None:
            context.load_verify_locations(cafile=config.client_ca)
            context.verify_mode = (
                ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
            )
        return context

    def _build(self, config: TLSConfig) -> tuple[ssl.SSLContext, dict[str, ssl.SSLContext]]:
        """The default context and one per name of ``config``. Raises if any fails to load."""
        default = self.server_context(config.default, config)
        return default, {
            name: self.server_context(cert, config) for name, cert in config.names.items()
        }

    def reload(self, config: TLSConfig) -> None:
        """Serve ``config`` to new handshakes; open connections keep theirs. If any certificate
        fails to load, raise and keep serving the old configuration."""
        self._generation = self._build(config)  # build everything first, then swap in one step

    def _sni(
        self, ssl_object: ssl.SSLObject, server_name: str | None, front: ssl.SSLContext
    ) -> None:
        default, by_name = self._generation  # one generation for the whole decision
        chosen = pick_name(server_name, by_name)
        # Always switch, even to the default: the front context holds the certificate of the
        # generation the server started with, and a reload must reach clients without SNI too.
        ssl_object.context = default if chosen is None else by_name[chosen]
        self._chosen[ssl_object] = (server_name, chosen)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 picks a free one); return the address bound."""
        front = self._generation[0]
        front.sni_callback = self._sni
        self._server = await asyncio.start_server(
            self._serve, host, port, ssl=front, limit=MAX_HEAD
        )
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop listening and close every open connection. Calling it twice is harmless."""
        assert self._server is not None, "start() first"
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def _record(self, ssl_object: ssl.SSLObject) -> str | None:
        cert = ssl_object.getpeercert()
        subject = rfc4514(cert["subject"]) if cert else None
        server_name, chosen = self._chosen.pop(ssl_object, (None, None))
        self.handshakes.append(
            Handshake(
                server_name=server_name,
                certificate=chosen,
                alpn=ssl_object.selected_alpn_protocol(),
                version=ssl_object.version(),
                subject=subject,
            )
        )
        return subject

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            subject = self._record(writer.get_extra_info("ssl_object"))
            client_ip = writer.get_extra_info("peername")[0]
            try:
                await self._forward(reader, writer, client_ip, subject)
            except HttpError as err:
                writer.write(
                    f"HTTP/1.1 {err.status} {err.reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_ip: str,
        subject: str | None,
    ) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(431, "Request Header Fields Too Large") from None
        if len(head) > MAX_HEAD:
            raise HttpError(431, "Request Header Fields Too Large")
        request_line, headers = parse_head(head[:-4])
        length = body_length(headers)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            raise HttpError(502, "Bad Gateway") from None
        try:
            up_writer.write(_head(request_line, rewrite_headers(headers, client_ip, subject)))
            # The body goes up while the answer comes down: a client that sent
            # "Expect: 100-continue" holds its body back until the backend's 100 reaches it
            # (RFC 9110 §10.1.1), and a backend may answer before it has read the body.
            await _together(
                _copy_body(reader, up_writer, length),
                self._relay_response(up_reader, writer, request_line.endswith("HTTP/1.1")),
            )
        finally:
            up_writer.close()

    async def _relay_response(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, http11: bool
    ) -> None:
        status_line, kept = await _read_response_head(up_reader)
        while 100 <= _status(status_line) < 200:
            # RFC 9110 §15.2: a proxy MUST forward interim responses (100 Continue, 103 Early
            # Hints) and the final one follows on the same connection, but a server MUST NOT
            # send a 1xx to an HTTP/1.0 client. A 101 switches to a protocol nobody asked for:
            # this proxy removes Upgrade (§7.8), so the backend is broken.
            if _status(status_line) == 101:
                raise HttpError(502, "Bad Gateway")
            if http11:
                writer.write(_head(status_line, kept))  # no Connection: close, more follows
                await writer.drain()
            status_line, kept = await _read_response_head(up_reader)
        writer.write(_head(status_line, [*kept, ("Connection", "close")]))
        while data := await up_reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        await writer.drain()
