"""An 8 MiB download through the router to a client that stops reading: the router must pass the
back-pressure on to the backend instead of buffering the stream. Counted, not timed: tracemalloc
measures how much memory the process holds while the backend is stalled (or has finished)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tracemalloc

import pytest
from _helpers import build_hello, running_router, sni_ext

from grader.spectools import LOCALHOST, bounded, called, tcp_server

SIZE = 8 * 1024 * 1024
PIECE = bytes(range(256)) * 256  # 64 KiB
BOUND = 2 * 1024 * 1024


class BigBackend:
    """Reads the hello, then writes SIZE bytes, awaiting drain() after each 64 KiB; notes when
    its writes back up."""

    def __init__(self, hello_size: int) -> None:
        self.hello_size = hello_size
        self.sent = 0
        self.blocked = False
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 65536
        )
        await reader.readexactly(self.hello_size)
        while self.sent < SIZE:
            writer.write(PIECE)
            self.sent += len(PIECE)
            if writer.transport.get_write_buffer_size() > 0:
                self.blocked = True
                self.changed.set()
            await writer.drain()
            self.blocked = False
        self.changed.set()
        writer.write_eof()
        await reader.read(-1)

    async def settled(self) -> None:
        """Return once the backend has written everything, or has stayed blocked on drain()
        while the event loop ran 200 more callbacks (nobody is reading its bytes any more)."""
        while self.sent < SIZE:
            self.changed.clear()
            if not self.blocked:
                await self.changed.wait()
                continue
            mark = self.sent
            for _ in range(200):
                await asyncio.sleep(0)
            if self.blocked and self.sent == mark:
                return


@pytest.mark.points(3)
async def test_slow_reader_bounds_the_router() -> None:
    """While 8 MiB cross the router to a client that has stopped reading, the router holds
    less than 2 MiB (it reads from the backend only as fast as the client takes), and the
    bytes arrive intact."""
    hello = build_hello(sni_ext("big.test"))
    backend = BigBackend(len(hello))
    async with (
        tcp_server(backend.handle) as (_, backend_port),
        running_router({"big.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect((LOCALHOST, port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                writer.write(hello)
                await bounded(backend.settled(), 30, "the backend to finish or stall")
                held = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()
            digest, received = hashlib.sha256(), 0
            while received < SIZE:
                data = await bounded(
                    reader.read(1 << 20), 30, f"the rest of the 8 MiB ({received} bytes so far)"
                )
                if not data:
                    break
                digest.update(data)
                received += len(data)
        finally:
            writer.close()
    want = hashlib.sha256(PIECE * (SIZE // len(PIECE))).hexdigest()
    got = (received, digest.hexdigest() == want)
    assert got == (SIZE, True), called(
        "8 MiB from the backend through the router: (bytes, same bytes)", got, (SIZE, True)
    )
    assert held < BOUND, called(
        "8 MiB to a client that stopped reading: memory the process held at most",
        f"{held} bytes ({backend.sent} bytes sent by the backend)",
        f"< {BOUND} bytes",
    )
