"""TLS passthrough: read the ClientHello without decrypting, route by server name, splice bytes.

Two layers. ``HelloParser`` is sans-IO: bytes in (in pieces of any size), "need more" (None),
a ``ClientHello`` or ``HelloError`` out; it never touches a socket. ``SniRouter`` is the asyncio
adapter: it buffers the raw bytes until the parser answers, picks a backend by name, replays
the buffered bytes unchanged and then copies bytes both ways. Read the lesson (README.md) first.

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

MAX_RECORD = 2**14  # RFC 8446 §5.1: a TLSPlaintext fragment is at most 2^14 bytes

Address = tuple[str, int]


def is_grease(value: int) -> bool:
    """True for the sixteen GREASE code points of RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA."""
    # TODO: both bytes equal, and each byte's low nibble is 0xA.
    raise NotImplementedError


class HelloError(ValueError):
    """The bytes are not a well-formed TLS ClientHello within the parser's limits."""


@dataclass(frozen=True)
class ClientHello:
    """What a router may learn from a ClientHello without any key."""

    server_name: str | None  # the host_name of server_name, lower-cased; None when absent
    alpn_protocols: tuple[bytes, ...]  # ALPN protocol names in the client's order, GREASE dropped
    supported_versions: tuple[int, ...]  # from supported_versions (empty when absent), no GREASE
    extensions: tuple[int, ...]  # extension types in wire order, GREASE dropped


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

    def feed(self, data: bytes) -> ClientHello | None:
        """Take the next bytes; return None (need more), the ClientHello, or raise HelloError."""
        # TODO: records (§5.1): type 22 only, length 1..2^14; join their payloads.
        # TODO: handshake header (§4): type 1 (client_hello), 24-bit length <= max_hello_size;
        #       check both as soon as the header bytes arrive, before the body.
        # TODO: the body (§4.1.2): every vector's length within its <lo..hi> and inside its
        #       parent; extensions optional (TLS 1.2), no extension type twice (§4.2).
        # TODO: server_name (RFC 6066 §3): one host_name, ASCII, lower-cased.
        # TODO: ALPN (RFC 7301 §3.1), supported_versions (§4.2.1); drop GREASE (RFC 8701).
        # TODO: once answered (hello or error), answer the same on every later call.
        raise NotImplementedError


class SniRouter:
    """A TCP listener that routes each TLS connection by its SNI, without decrypting it.

    ``routes`` maps a server name to a backend (host, port); names compare case-insensitively.
    A hello whose name is absent or not in ``routes`` goes to ``default``, or the connection is
    closed when there is no default. A malformed or oversized hello, or one not complete within
    ``hello_timeout`` seconds, closes the connection without contacting any backend.
    """

    def __init__(
        self,
        routes: Mapping[str, Address],
        default: Address | None = None,
        *,
        max_hello_size: int = 16384,
        hello_timeout: float = 10.0,
    ) -> None:
        self.routes = routes
        self.default = default
        self.max_hello_size = max_hello_size
        self.hello_timeout = hello_timeout

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on (host, port) and return the bound port."""
        # TODO: asyncio.start_server with a handler per connection (and a generous backlog).
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        raise NotImplementedError

    def choose(self, hello: ClientHello) -> Address | None:
        """The backend for this hello: its route, else the default, else None (close)."""
        raise NotImplementedError

    # TODO: per connection: feed the parser what arrives (keep the raw bytes), within
    #       hello_timeout; choose a backend; connect; write the raw bytes first, unchanged;
    #       then copy both ways, awaiting drain() after each write (back-pressure) and passing
    #       EOF on with write_eof() (half-close); close both sockets when both ways are done.
