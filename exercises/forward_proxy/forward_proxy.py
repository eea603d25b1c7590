"""An HTTP forward proxy on asyncio: absolute-form requests forwarded, CONNECT tunnels, a
destination policy against SSRF, and Basic proxy authentication.

Read the lesson (README.md) first. Standard library only. Keep the decisions pure
(``strip_hop_by_hop``, ``Policy.allowed``) and the I/O in ``ForwardProxy``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

CHUNK = 64 * 1024  # the most a copy loop reads at once
MAX_HEAD = 16 * 1024  # a request head (request line, fields, blank line) longer than this: 431

Headers = list[tuple[str, str]]
Resolver = Callable[[str, int], Awaitable[list[str]]]

# RFC 9110 §7.6.1: fields that describe one connection, removed whether or not Connection names them.
HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"}
)


def strip_hop_by_hop(headers: Headers) -> Headers:
    """The fields a proxy forwards: ``headers`` without the hop-by-hop ones (RFC 9110 §7.6.1).

    Removed: every field in ``HOP_BY_HOP`` and every field whose name a ``Connection`` field
    lists (names compare case-insensitively). Order and repeated fields are kept.
    """
    # TODO: collect the comma-separated options of every Connection field, lower-cased and trimmed.
    # TODO: drop the fields named in HOP_BY_HOP or in those options; keep the rest in order.
    raise NotImplementedError


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
        # TODO: the port list depends on tunnel.
        # TODO: parse with ipaddress (not an address -> False); unwrap ::ffff:a.b.c.d.
        # TODO: inside an allow_networks block -> True; otherwise only global, non-multicast.
        raise NotImplementedError


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the operating system's resolver, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class ForwardProxy:
    """An HTTP/1.1 forward proxy: absolute-form requests and CONNECT tunnels.

    ``credentials`` (user -> password), when given, turns on Basic proxy authentication;
    ``resolver`` turns a host name into addresses (the spec injects its own); ``via`` is the
    pseudonym this proxy adds to ``Via``.

    One request per client connection: every answer carries ``Connection: close``.
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
        # TODO: keep the options; track the server and the open client connections for close().
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 picks a free one); return the address bound."""
        # TODO: read a request head of at most MAX_HEAD bytes (431 past it, 400 if malformed).
        # TODO: authenticate (407 + Proxy-Authenticate: Basic realm=...) when credentials are set.
        # TODO: CONNECT host:port -> resolve once, check each address with the policy
        #       (tunnel=True), connect to the first allowed address, answer 200 without
        #       Content-Length/Transfer-Encoding, then pump both ways with half-close.
        # TODO: TRACE/OPTIONS with Max-Forwards: 0 -> answer here; otherwise decrement it.
        # TODO: absolute-form http:// targets -> same resolve/check/connect (403 refused,
        #       502 unreachable), send origin-form with Host from the target, hop-by-hop fields
        #       removed, Proxy-Authorization consumed, Via appended, Connection: close.
        # TODO: copy the request body up while you read the answer (a client that sent
        #       Expect: 100-continue waits for the 100 before it sends its body).
        # TODO: forward each 1xx head (hop-by-hop removed, Via appended) to an HTTP/1.1 client,
        #       none to an HTTP/1.0 client, then relay the final response; 101 is a 502.
        # TODO: relay the response: hop-by-hop removed, Via appended; body by Content-Length,
        #       chunked (decoded) or until close; none for HEAD, 204, 304.
        # TODO: every copy loop reads at most CHUNK bytes and awaits drain() after each write.
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening and end every open connection and tunnel."""
        raise NotImplementedError
