"""A 16 MiB download through the proxy to a client that stops reading: the proxy must pass the
back-pressure on to the origin instead of buffering the body. Counted, not timed: tracemalloc
measures how much memory the process holds while the origin is stalled (or has finished).

Why 16 MiB and not 5: on loopback the kernel's socket buffers absorb several MiB (the proxy's
send buffer autotunes up to tcp_wmem's 4 MiB, its receive buffer further still), so a proxy
that never awaits drain() held only 1.8 MiB of a 5 MiB body, against 1 MiB for the reference.
With 16 MiB it holds 13 MiB, and the reference still about 1 MiB."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tracemalloc

import pytest
from _helpers import loopback_policy, read_head, running_proxy, serve

from grader.spectools import LOCALHOST, bounded, called

SIZE = 16 * 1024 * 1024
PIECE = bytes(range(256)) * 256  # 64 KiB
BOUND = 4 * 1024 * 1024


class BigOrigin:
    """Writes SIZE bytes, awaiting drain() after each 64 KiB; notes when its writes back up."""

    def __init__(self, http: bool) -> None:
        self.http = http
        self.sent = 0
        self.blocked = False
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 65536
        )
        if self.http:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
        while self.sent < SIZE:
            writer.write(PIECE)
            self.sent += len(PIECE)
            if writer.transport.get_write_buffer_size() > 0:
                self.blocked = True
                self.changed.set()
            await writer.drain()
            self.blocked = False
        self.changed.set()
        if not self.http:
            await reader.read(-1)

    async def settled(self) -> None:
        """Return once the origin has written everything, or has stayed blocked on drain() while
        the event loop ran 200 more callbacks (nobody is reading its bytes any more)."""
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
@pytest.mark.parametrize("kind", ["forward", "tunnel"])
async def test_slow_reader_bounds_the_proxy(kind: str) -> None:
    """While a 16 MiB body crosses the proxy to a client that has stopped reading, the process
    holds less than 4 MiB more memory (the proxy reads only as fast as the client takes), and
    the body arrives intact."""
    origin = BigOrigin(http=kind == "forward")
    async with serve(origin.handle) as origin_port:
        policy = loopback_policy(origin_port, connect=(origin_port,))
        async with running_proxy(policy) as (proxy, port):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.connect((LOCALHOST, port))
            sock.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                if kind == "forward":
                    writer.write(
                        f"GET http://origin.test:{origin_port}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                    )
                else:
                    writer.write(
                        f"CONNECT origin.test:{origin_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                    )
                tracemalloc.start()
                try:
                    baseline = tracemalloc.get_traced_memory()[0]
                    tracemalloc.reset_peak()
                    head = await read_head(reader, f"the {kind} request for 16 MiB")
                    await bounded(origin.settled(), 30, "the origin to finish or stall")
                    held = tracemalloc.get_traced_memory()[1] - baseline
                finally:
                    tracemalloc.stop()
                digest, received = hashlib.sha256(), 0
                while received < SIZE:
                    data = await bounded(
                        reader.read(1 << 20),
                        30,
                        f"the rest of the 16 MiB ({received} bytes so far)",
                    )
                    if not data:
                        break
                    digest.update(data)
                    received += len(data)
            finally:
                writer.close()
    assert head.status == 200, called(f"the {kind} request for 16 MiB", head.status, 200)
    want = hashlib.sha256(PIECE * (SIZE // len(PIECE))).hexdigest()
    got = (received, digest.hexdigest() == want)
    assert got == (SIZE, True), called(
        f"16 MiB through the proxy ({kind}): (bytes, same bytes)", got, (SIZE, True)
    )
    assert held < BOUND, called(
        f"16 MiB ({kind}) to a client that stopped reading: memory the process held at most",
        f"{held} bytes ({origin.sent} bytes sent by the origin)",
        f"< {BOUND} bytes",
    )
