"""An 8 MiB download through the router to a client that stops reading: the router must pass the
back-pressure on to the backend instead of buffering the stream. Counted, not timed: tracemalloc
measures how much memory the process holds while the backend is stalled (or has finished)."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from _helpers import build_hello, running_router, sni_ext

from grader.spectools import (
    LOCALHOST,
    BigPeer,
    bounded,
    called,
    read_digest,
    slow_reader,
    tcp_server,
)

SIZE = 8 * 1024 * 1024
BOUND = 2 * 1024 * 1024


def backend_for(hello: bytes) -> BigPeer:
    """A backend that reads the hello, writes SIZE bytes, then half-closes and waits for EOF."""

    async def before(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(hello))

    async def after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write_eof()
        await reader.read(-1)

    return BigPeer(SIZE, before=before, after=after)


@pytest.mark.points(3)
async def test_slow_reader_bounds_the_router() -> None:
    """While 8 MiB cross the router to a client that has stopped reading, the router holds
    less than 2 MiB (it reads from the backend only as fast as the client takes), and the
    bytes arrive intact."""
    hello = build_hello(sni_ext("big.test"))
    backend = backend_for(hello)
    async with (
        tcp_server(backend.handle) as (_, backend_port),
        running_router({"big.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        reader, writer = await slow_reader(port)
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
            received, digest = await read_digest(reader, SIZE, "the 8 MiB")
        finally:
            writer.close()
    got = (received, digest == backend.digest())
    assert got == (SIZE, True), called(
        "8 MiB from the backend through the router: (bytes, same bytes)", got, (SIZE, True)
    )
    assert held < BOUND, called(
        "8 MiB to a client that stopped reading: memory the process held at most",
        f"{held} bytes ({backend.sent} bytes sent by the backend)",
        f"< {BOUND} bytes",
    )
