"""Helpers for the sni_router specs.

Two sources of ClientHellos, independent of the learner's parser:

* ``python_hello``: the bytes Python's ``ssl`` (OpenSSL) sends first, read from a MemoryBIO;
  the configuration (server name, ALPN, versions, ciphers) is the oracle for what a correct
  parser must find in them.
* ``build_hello``: a hand-made ClientHello from a list of extensions, for what OpenSSL never
  sends (GREASE, upper-case names, exact sizes, malformed vectors).

``records`` re-frames a handshake message into TLS records of chosen sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import AsyncIterator, Iterable, Sequence

import trustme

from grader.spectools import LOCALHOST, bounded

GREASE = [0x0A0A + 0x1010 * i for i in range(16)]


def python_hello(
    server_name: str | None = None,
    alpn: Sequence[str] | None = None,
    *,
    maximum: ssl.TLSVersion | None = None,
    minimum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> bytes:
    """The first flight of an OpenSSL client configured so, as it would go on the wire."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # nothing is verified here: the handshake never completes
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if maximum is not None:
        context.maximum_version = maximum
    if minimum is not None:
        context.minimum_version = minimum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def vec(length_bytes: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def sni_ext(*names: bytes | str) -> bytes:
    entries = b"".join(b"\x00" + vec(2, n.encode() if isinstance(n, str) else n) for n in names)
    return ext(0, vec(2, entries))


def alpn_ext(*names: bytes) -> bytes:
    return ext(16, vec(2, b"".join(vec(1, n) for n in names)))


def versions_ext(*versions: int) -> bytes:
    return ext(43, vec(1, b"".join(v.to_bytes(2, "big") for v in versions)))


def hello_body(
    extensions: Iterable[bytes] | None = (),
    *,
    session_id: bytes = b"\x55" * 32,
    suites: Sequence[int] = (0x1301, 0x1302, 0xC02F),
    compression: bytes = b"\x00",
) -> bytes:
    """A ClientHello body (RFC 8446 §4.1.2); ``extensions=None`` leaves the block out."""
    body = b"\x03\x03" + bytes(range(32)) + vec(1, session_id)
    body += vec(2, b"".join(s.to_bytes(2, "big") for s in suites)) + vec(1, compression)
    if extensions is not None:
        body += vec(2, b"".join(extensions))
    return body


def handshake(body: bytes, msg_type: int = 1) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def records(message: bytes, sizes: Iterable[int] = (), *, version: bytes = b"\x03\x01") -> bytes:
    """``message`` framed as handshake records: fragments of ``sizes`` bytes, then the rest."""
    out, pos = bytearray(), 0
    for size in [*sizes, len(message)]:
        piece = message[pos : pos + size]
        if not piece:
            break
        out += b"\x16" + version + len(piece).to_bytes(2, "big") + piece
        pos += len(piece)
    return bytes(out)


def build_hello(*extensions: bytes, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    """A one-record ClientHello with these extensions."""
    return records(handshake(hello_body(extensions, **kwargs)))


def unwrap(hello: bytes) -> bytes:
    """The handshake message inside a one-record hello (as Python's ssl sends it)."""
    assert hello[0] == 22 and int.from_bytes(hello[3:5], "big") == len(hello) - 5
    return hello[5:]


def add_extensions(hello: bytes, front: Sequence[bytes], back: Sequence[bytes] = ()) -> bytes:
    """A real one-record hello with extensions added before and after its own, lengths fixed."""
    message = unwrap(hello)
    body = message[4:]
    pos = 2 + 32
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    pos += 1 + body[pos]
    own = body[pos + 2 :]
    assert int.from_bytes(body[pos : pos + 2], "big") == len(own)
    block = b"".join(front) + own + b"".join(back)
    return records(handshake(body[:pos] + vec(2, block)))


# --- TLS backends -------------------------------------------------------------------------


class Backend:
    """A TLS server on 127.0.0.1:0 with a certificate for ``name``; answers one HTTP request
    per connection with its own name, and counts the connections it accepts."""

    def __init__(self, ca: trustme.CA, name: str, *also: str) -> None:
        self.name = name
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.set_alpn_protocols(["http/1.1"])
        ca.issue_cert(name, *also).configure_cert(self.context)
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = self.name.encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def tls_backends(*names: str) -> AsyncIterator[tuple[trustme.CA, dict[str, Backend]]]:
    """TLS backends named so; "default.example.test" also holds a certificate for
    "c.example.test" (a name the specs leave unrouted, so it reaches the default)."""
    ca = trustme.CA()
    backends = {
        name: Backend(ca, name, *(["c.example.test"] if name == "default.example.test" else []))
        for name in names
    }
    servers = []
    try:
        for backend in backends.values():
            server = await asyncio.start_server(backend.handle, LOCALHOST, 0, ssl=backend.context)
            backend.port = server.sockets[0].getsockname()[1]
            servers.append(server)
        yield ca, backends
    finally:
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)


class Recorder:
    """A plain TCP backend that keeps every byte it receives per connection and can echo."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.received: list[bytearray] = []
        self.connected = asyncio.Event()
        self.eof = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        self.received.append(buffer)
        self.connected.set()
        try:
            while data := await reader.read(65536):
                buffer += data
                if self.echo:
                    writer.write(data)
                    await writer.drain()
            self.eof.set()
            if self.echo:
                writer.write(b"bye")
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def running_router(*args, **kwargs) -> AsyncIterator[tuple[object, int]]:  # type: ignore[no-untyped-def]
    from sni_router import SniRouter

    router = SniRouter(*args, **kwargs)
    port = await bounded(router.start(LOCALHOST, 0), 10, "router.start('127.0.0.1', 0)")
    try:
        yield router, port
    finally:
        await bounded(router.close(), 10, "router.close()")


async def read_all(reader: asyncio.StreamReader, what: str, timeout: float = 10) -> bytes:
    """Everything until EOF (a reset counts as EOF), bounded."""

    async def run() -> bytes:
        out = bytearray()
        try:
            while data := await reader.read(65536):
                out += data
        except ConnectionError:
            pass
        return bytes(out)

    return await bounded(run(), timeout, what)
