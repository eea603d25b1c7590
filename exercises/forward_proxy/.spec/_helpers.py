"""Helpers for the forward_proxy specs: a resolver the spec controls, the learner's proxy started
on port 0, and a raw client that reads the proxy's answer byte for byte. The origins are
grader.spectools' (``running_h11_origin``: h11 reads what the proxy sends, and each counts the
connections it accepts), or a raw handler served by ``serve``.

The specs can reach 127.0.0.1 only, so every origin lives there under a name the spec's
resolver knows ("origin.test" and friends: .test is reserved, RFC 6761 §6.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import trustme
from forward_proxy import ForwardProxy, Policy

from grader.spectools import LOCALHOST, bounded, step


@contextlib.asynccontextmanager
async def serve(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object],
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1:0 (TLS when given a context); yields the port."""
    tasks: set[asyncio.Task] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(asyncio.current_task())
            writer.close()

    server = await asyncio.start_server(tracked, LOCALHOST, 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)


class Resolver:
    """The proxy's resolver, scripted: ``names`` maps a host name to its addresses; an IP
    literal resolves to itself; anything else fails as a lookup does (OSError). ``calls``
    records every (host, port) asked."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = {"origin.test": [LOCALHOST], **(names or {})}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host in self.names:
            return list(self.names[host])
        if host.replace(".", "").isdigit() or ":" in host:
            return [host]
        raise OSError(f"the spec's resolver knows no {host!r}")


def loopback_policy(*ports: int, connect: tuple[int, ...] = ()) -> Policy:
    """The policy for the spec's origins: these ports, and 127.0.0.1 allowed."""
    return Policy(
        ports=frozenset(ports), connect_ports=frozenset(connect), allow_networks=("127.0.0.1/32",)
    )


@contextlib.asynccontextmanager
async def running_proxy(
    policy: Policy, **options: object
) -> AsyncIterator[tuple[ForwardProxy, int]]:
    """The learner's proxy on 127.0.0.1:0 with the spec's resolver (unless one is given)."""
    options.setdefault("resolver", Resolver())
    with step(f"ForwardProxy({policy!r}, ...)"):
        proxy = ForwardProxy(policy, **options)
    with step("await proxy.start('127.0.0.1', 0)"):
        host, port = await bounded(proxy.start(LOCALHOST, 0), 10, "proxy.start()")
    try:
        yield proxy, port
    finally:
        with step("await proxy.close()"):
            await bounded(proxy.close(), 10, "proxy.close()")


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return Answer(status, headers, body, raw)


async def exchange(port: int, data: bytes, what: str, wait: float = 10) -> Answer:
    """Send ``data`` to the proxy, read until it closes, parse the answer."""

    async def run() -> bytes:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(data)
            await writer.drain()
            return await reader.read(-1)
        finally:
            writer.close()

    raw = await bounded(run(), wait, f"the proxy's answer to {what}")
    return parse_answer(raw)


async def read_head(reader: asyncio.StreamReader, what: str) -> Answer:
    """Read a response head (up to the blank line) from a raw connection."""
    try:
        raw = await bounded(reader.readuntil(b"\r\n\r\n"), 10, f"the proxy's answer to {what}")
    except asyncio.IncompleteReadError as error:
        raw = error.partial
    return parse_answer(raw)


def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for "origin.test", client context trusting the spec's CA)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("origin.test").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client
