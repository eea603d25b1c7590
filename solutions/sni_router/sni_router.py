"""TLS passthrough: read the ClientHello without decrypting, route by server name, splice bytes.

Strategy: two layers, as in h11. ``HelloParser`` is sans-IO: it takes bytes in whatever pieces
TCP delivers and answers "need more" (None), a parsed ``ClientHello``, or ``HelloError``. It
never touches a socket, so it is tested with bytes alone. ``SniRouter`` is the thin asyncio
adapter: it buffers the raw bytes until the parser answers, picks a backend by name, replays
the buffered bytes to it unchanged and then copies bytes both ways. The router never holds a
key: the TLS session runs end to end between the client and the backend.

Layout (RFC 8446 §5.1, §4, §4.1.2, §4.2):

    record:     type(1)=22  legacy_version(2)  length(2) <= 2^14   fragment
    handshake:  msg_type(1)=1  length(3)   body                    (may span records)
    body:       legacy_version(2) random(32) session_id<0..32>
                cipher_suites<2..2^16-2> compression_methods<1..2^8-1>
                extensions<8..2^16-1>                              (absent in old hellos)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MAX_RECORD", "ClientHello", "HelloError", "HelloParser", "SniRouter", "is_grease"]

CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
MAX_RECORD = 2**14  # RFC 8446 §5.1: a TLSPlaintext fragment is at most 2^14 bytes

EXT_SERVER_NAME = 0  # RFC 6066 §3
EXT_ALPN = 16  # RFC 7301 §3.1
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1
NAME_TYPE_HOST = 0


def is_grease(value: int) -> bool:
    """True for the sixteen GREASE code points of RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


class HelloError(ValueError):
    """The bytes are not a well-formed TLS ClientHello within the parser's limits."""


@dataclass(frozen=True)
class ClientHello:
    """What a router may learn from a ClientHello without any key."""

    server_name: str | None  # the host_name of server_name, lower-cased; None when absent
    alpn_protocols: tuple[bytes, ...]  # ALPN protocol names in the client's order, GREASE dropped
    supported_versions: tuple[int, ...]  # from supported_versions (empty when absent), no GREASE
    extensions: tuple[int, ...]  # extension types in wire order, GREASE dropped


class _Reader:
    """A cursor over one length-delimited block; every read past its end is a HelloError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise HelloError(f"{self.what}: truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int, lo: int, hi: int, what: str) -> _Reader:
        """A vector <lo..hi> with a length prefix of ``length_bytes`` bytes (RFC 8446 §3.4)."""
        n = self.uint(length_bytes)
        if not lo <= n <= hi:
            raise HelloError(f"{what}: length {n} outside <{lo}..{hi}>")
        return _Reader(self.take(n), what)

    def done(self) -> bool:
        return self.pos == len(self.data)

    def end(self) -> None:
        if not self.done():
            raise HelloError(f"{self.what}: {len(self.data) - self.pos} trailing bytes")


def _server_name(data: bytes) -> str:
    """RFC 6066 §3: ServerNameList server_name_list<1..2^16-1>, one host_name at most."""
    outer = _Reader(data, "server_name extension")
    names = outer.vector(2, 1, 2**16 - 1, "server_name_list")
    outer.end()
    host: str | None = None
    while not names.done():
        if names.uint(1) != NAME_TYPE_HOST:
            # The list's framing only defines host_name: another type cannot be skipped safely.
            raise HelloError("server_name: unknown name_type")
        raw = names.vector(2, 1, 2**16 - 1, "HostName").data
        if host is not None:
            raise HelloError("server_name: two host_name entries")
        try:
            host = raw.decode("ascii")
        except UnicodeDecodeError:
            raise HelloError("server_name: HostName is not ASCII") from None
    assert host is not None  # the list is non-empty and every entry is a host_name
    return host.lower()  # DNS names compare case-insensitively (RFC 4343)


def _alpn(data: bytes) -> tuple[bytes, ...]:
    """RFC 7301 §3.1: ProtocolName protocol_name_list<2..2^16-1>, each name <1..2^8-1>."""
    outer = _Reader(data, "ALPN extension")
    names = outer.vector(2, 2, 2**16 - 1, "protocol_name_list")
    outer.end()
    protocols = []
    while not names.done():
        name = names.vector(1, 1, 255, "ProtocolName").data
        # RFC 8701 §2: GREASE ALPN identifiers are the two-byte names 0x0A0A .. 0xFAFA.
        if not (len(name) == 2 and is_grease(int.from_bytes(name, "big"))):
            protocols.append(name)
    return tuple(protocols)


def _supported_versions(data: bytes) -> tuple[int, ...]:
    """RFC 8446 §4.2.1: ProtocolVersion versions<2..254> in a ClientHello."""
    outer = _Reader(data, "supported_versions extension")
    versions = outer.vector(1, 2, 254, "versions")
    outer.end()
    found = []
    while not versions.done():
        version = versions.uint(2)
        if not is_grease(version):
            found.append(version)
    return tuple(found)


_EXTENSION_READERS = {
    EXT_SERVER_NAME: ("server_name", _server_name),
    EXT_ALPN: ("alpn_protocols", _alpn),
    EXT_SUPPORTED_VERSIONS: ("supported_versions", _supported_versions),
}


def parse_client_hello_body(body: bytes) -> ClientHello:
    """Parse the body of a ClientHello handshake message (RFC 8446 §4.1.2)."""
    r = _Reader(body, "ClientHello")
    r.take(2 + 32)  # legacy_version, random
    r.vector(1, 0, 32, "legacy_session_id")
    suites = r.vector(2, 2, 2**16 - 2, "cipher_suites")
    if len(suites.data) % 2:
        raise HelloError("cipher_suites: odd length")
    r.vector(1, 1, 255, "legacy_compression_methods")
    fields: dict[str, object] = {
        "server_name": None,
        "alpn_protocols": (),
        "supported_versions": (),
    }
    types: list[int] = []
    if not r.done():  # a TLS 1.2 hello may end here (RFC 5246 §7.4.1.2)
        block = r.vector(2, 0, 2**16 - 1, "extensions")
        r.end()
        seen: set[int] = set()
        while not block.done():
            ext_type = block.uint(2)
            data = block.vector(2, 0, 2**16 - 1, "extension_data").data
            if ext_type in seen:  # RFC 8446 §4.2: at most one extension of each type
                raise HelloError(f"extension {ext_type} appears twice")
            seen.add(ext_type)
            if is_grease(ext_type):  # RFC 8701 §3: a server ignores GREASE extensions
                continue
            types.append(ext_type)
            if ext_type in _EXTENSION_READERS:
                name, reader = _EXTENSION_READERS[ext_type]
                fields[name] = reader(data)
    return ClientHello(extensions=tuple(types), **fields)  # type: ignore[arg-type]


class HelloParser:
    """Sans-IO reader of the first ClientHello on a connection.

    ``feed(data)`` takes the next bytes from the client, in pieces of any size, and returns None
    while more bytes are needed, then the ``ClientHello`` (again on every later call). Bytes that
    cannot be the start of a ClientHello within the limits raise ``HelloError`` (again on every
    later call). Limits: a record longer than 2^14 bytes, or a ClientHello whose handshake
    length exceeds ``max_hello_size``, is an error as soon as its header arrives.
    """

    def __init__(self, max_hello_size: int = 16384) -> None:
        self.max_hello_size = max_hello_size
        self._raw = bytearray()  # bytes not yet consumed as whole records
        self._handshake = bytearray()  # record payloads joined: the handshake message so far
        self._result: ClientHello | None = None
        self._error: HelloError | None = None

    def feed(self, data: bytes) -> ClientHello | None:
        if self._error is not None:
            raise self._error
        if self._result is not None:
            return self._result
        self._raw += data
        try:
            self._result = self._advance()
        except HelloError as error:
            self._error = error
            raise
        return self._result

    def _advance(self) -> ClientHello | None:
        while True:
            self._check_handshake_header()
            if len(self._handshake) >= 4:
                end = 4 + int.from_bytes(self._handshake[1:4], "big")
                if len(self._handshake) >= end:
                    return parse_client_hello_body(bytes(self._handshake[4:end]))
            if len(self._raw) < 5:
                return None
            content_type = self._raw[0]
            length = int.from_bytes(self._raw[3:5], "big")
            if content_type != CONTENT_HANDSHAKE:
                # Not TLS at all (an HTTP request starts with a letter), or a record type
                # interleaved in the handshake (RFC 8446 §5.1).
                raise HelloError(f"record type {content_type}, expected handshake (22)")
            if length > MAX_RECORD:  # RFC 8446 §5.1: record_overflow
                raise HelloError(f"record length {length} > 2^14")
            if length == 0:  # RFC 8446 §5.1: no zero-length handshake fragments
                raise HelloError("zero-length handshake record")
            if len(self._raw) < 5 + length:
                return None
            self._handshake += self._raw[5 : 5 + length]
            del self._raw[: 5 + length]

    def _check_handshake_header(self) -> None:
        if self._handshake and self._handshake[0] != HANDSHAKE_CLIENT_HELLO:
            raise HelloError(f"handshake type {self._handshake[0]}, expected ClientHello (1)")
        if len(self._handshake) >= 4:
            length = int.from_bytes(self._handshake[1:4], "big")
            if length > self.max_hello_size:
                raise HelloError(f"ClientHello of {length} bytes > {self.max_hello_size}")


Address = tuple[str, int]


class SniRouter:
    """A TCP listener that routes each TLS connection by its SNI, without decrypting it.

    ``routes`` maps a lower-case server name to a backend (host, port). A hello whose name is
    absent or not in ``routes`` goes to ``default``, or the connection is closed when there is
    no default. A malformed or oversized hello, or one not complete within ``hello_timeout``
    seconds, closes the connection without contacting any backend.
    """

    def __init__(
        self,
        routes: Mapping[str, Address],
        default: Address | None = None,
        *,
        max_hello_size: int = 16384,
        hello_timeout: float = 10.0,
    ) -> None:
        self.routes = {name.lower(): backend for name, backend in routes.items()}
        self.default = default
        self.max_hello_size = max_hello_size
        self.hello_timeout = hello_timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on (host, port) and return the bound port."""
        self._server = await asyncio.start_server(self._handle, host, port, backlog=512)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def choose(self, hello: ClientHello) -> Address | None:
        """The backend for this hello: its route, else the default, else None (close)."""
        if hello.server_name is not None and hello.server_name in self.routes:
            return self.routes[hello.server_name]
        return self.default

    async def _read_hello(self, reader: asyncio.StreamReader) -> tuple[ClientHello, bytes] | None:
        parser = HelloParser(self.max_hello_size)
        seen = bytearray()
        while True:
            data = await reader.read(4096)
            if not data:
                return None
            seen += data
            hello = parser.feed(data)
            if hello is not None:
                return hello, bytes(seen)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        backend_writer: asyncio.StreamWriter | None = None
        try:
            try:
                found = await asyncio.wait_for(self._read_hello(reader), self.hello_timeout)
            except (HelloError, TimeoutError):
                return
            if found is None:
                return
            hello, seen = found
            backend = self.choose(hello)
            if backend is None:
                return
            try:
                backend_reader, backend_writer = await asyncio.open_connection(*backend)
            except OSError:
                return
            backend_writer.write(seen)  # the hello, replayed byte for byte
            await asyncio.gather(
                _pipe(reader, backend_writer, writer),
                _pipe(backend_reader, writer, backend_writer),
            )
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            if backend_writer is not None:
                backend_writer.close()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: asyncio.StreamWriter
) -> None:
    """Copy ``reader`` to ``writer`` until EOF, waiting for the far side to take each piece
    (back-pressure), then pass the EOF on (a half-close) so the other direction can finish.
    A reset on either side closes both (``source`` is the writer of ``reader``'s socket)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except ConnectionError:
        writer.close()
        source.close()
