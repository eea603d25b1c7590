"""Helpers for the mini_redis specs: a running server, real redis clients, raw RESP, a held transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
from mini_redis import MiniRedis

from grader.spectools import LOCALHOST, FakeClock, bounded, called, short, step

__all__ = [
    "LOCALHOST",
    "FakeClock",
    "HeldConnection",
    "Server",
    "async_client",
    "bounded",
    "called",
    "command",
    "held_connection",
    "in_thread",
    "raw_exchange",
    "read_all",
    "running",
    "short",
    "step",
    "sync_client",
]

T = TypeVar("T")


@dataclass
class Server:
    server: MiniRedis
    port: int
    clock: FakeClock


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[Server]:
    """A MiniRedis on 127.0.0.1, port 0, on a FakeClock, no periodic expiry unless asked; closed on exit."""
    clock = options.pop("clock", None) or FakeClock()
    options.setdefault("expire_interval", None)
    settings = ", ".join(f"{k}={v!r}" for k, v in options.items())
    with step(f"MiniRedis(clock=FakeClock(), {settings})"):
        server = MiniRedis(clock=clock, **options)
    with step("server.start('127.0.0.1', 0)"):
        port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    try:
        yield Server(server, port, clock)
    finally:
        with contextlib.suppress(AssertionError):
            await bounded(server.close(), 5.0, "server.close()")


def sync_client(port: int) -> redis.Redis:
    """The blocking redis-py client, speaking RESP2 (redis-py 8 would open with HELLO 3)."""
    return redis.Redis(
        host=LOCALHOST, port=port, protocol=2, socket_timeout=8.0, socket_connect_timeout=8.0
    )


def async_client(port: int) -> aredis.Redis:
    """The asyncio redis-py client, speaking RESP2."""
    return aredis.Redis(
        host=LOCALHOST, port=port, protocol=2, socket_timeout=8.0, socket_connect_timeout=8.0
    )


async def in_thread(function: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """Run blocking client code in a thread while the server runs in this event loop."""
    with step(what):
        return await bounded(asyncio.to_thread(function), timeout, what)


def command(*parts: bytes | str) -> bytes:
    """One command as a RESP2 array of bulk strings, written by hand (the spec's own encoder)."""
    items = [part.encode() if isinstance(part, str) else part for part in parts]
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def raw_exchange(port: int, data: bytes, what: str, reply_size: int | None = None) -> bytes:
    """Send raw bytes; read ``reply_size`` bytes, or (None) everything until the server closes."""
    with step(f"connecting and sending {what}"):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        writer.write(data)
        await writer.drain()
        if reply_size is None:
            return await bounded(
                read_all(reader), 5.0, f"the server to answer {what} and close the connection"
            )
        try:
            return await bounded(
                reader.readexactly(reply_size), 5.0, f"{reply_size} bytes of reply to {what}"
            )
        except asyncio.IncompleteReadError as error:
            return error.partial
    finally:
        writer.close()


class HeldTransport(asyncio.Transport):
    """A transport whose peer reads nothing until the spec calls ``deliver()``.

    What the server writes stays in the write buffer (``get_write_buffer_size``), exactly as
    bytes pile up for a subscriber that stops reading, but byte-exact and without a kernel in
    between. Flow control is a real transport's: above 64 KiB the protocol is paused (``drain``
    waits) until ``deliver`` empties the buffer.
    """

    HIGH_WATER = 64 * 1024

    def __init__(self, protocol: asyncio.StreamReaderProtocol) -> None:
        super().__init__()
        self._protocol = protocol
        self.held = bytearray()
        self.writes = 0  # calls of write(): each is a send() system call on a real socket
        self.closed = False
        self.aborted = False
        self._paused = False
        self._changed = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        self.writes += 1
        self.held += data
        self._changed.set()
        if not self._paused and len(self.held) > self.HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def get_write_buffer_size(self) -> int:
        return len(self.held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self.HIGH_WATER // 4, self.HIGH_WATER)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._changed.set()
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.held.clear()
        self.close()

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 6379)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def deliver(self) -> bytes:
        """The peer reads everything pending: the buffer empties; returns what it read."""
        data = bytes(self.held)
        self.held.clear()
        if self._paused:
            self._paused = False
            self._protocol.resume_writing()
        return data

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until ``condition()`` holds; checked each time the server writes or closes."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await bounded(wait(), 3.0, what)


@dataclass
class HeldConnection:
    reader: asyncio.StreamReader
    transport: HeldTransport
    task: asyncio.Task[None]

    async def take(self, size: int, what: str) -> bytes:
        """Wait (bounded) until ``size`` bytes are pending (or the connection closed); read them all."""
        await self.transport.until(
            lambda: len(self.transport.held) >= size or self.transport.closed, what
        )
        return self.transport.deliver()

    async def send(self, data: bytes, reply: bytes, what: str) -> None:
        """Feed a command to the server and wait until ``reply`` sits in the buffer; take it."""
        self.reader.feed_data(data)
        await self.transport.until(
            lambda: len(self.transport.held) >= len(reply) or self.transport.closed,
            f"the server to answer {what}",
        )
        got = self.transport.deliver()
        assert got == reply, called(what, got, reply)


async def held_connection(server: MiniRedis) -> HeldConnection:
    """Serve one connection through ``server.handle`` on a HeldTransport."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport = HeldTransport(protocol)
    protocol.connection_made(transport)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    task = asyncio.create_task(server.handle(reader, writer))
    return HeldConnection(reader, transport, task)
