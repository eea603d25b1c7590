"""A 16 MiB download through the proxy to a client that stops reading, and a 16 MiB upload to an
origin that stops reading: the proxy must pass the back-pressure on instead of buffering the
body. Counted, not timed: tracemalloc measures how much memory the process holds while the slow
side is stalled (or the fast one has finished).

Why 16 MiB and not 5: on loopback the kernel's socket buffers absorb several MiB (the proxy's
send buffer autotunes up to tcp_wmem's 4 MiB, its receive buffer further still), so a proxy
that never awaits drain() held only 1.8 MiB of a 5 MiB body, against 1 MiB for the reference.
With 16 MiB it holds 13 MiB, and the reference still about 1 MiB."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from _helpers import loopback_policy, read_head, running_proxy, serve

from grader.spectools import (
    LOCALHOST,
    BigPeer,
    StalledSink,
    bounded,
    called,
    memory_held,
    read_digest,
    slow_reader,
)

SIZE = 16 * 1024 * 1024
BOUND = 4 * 1024 * 1024


async def http_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The origin's side of a forwarded GET: read the request, answer with SIZE bytes' head."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)


async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The origin's side of a tunnel once it has written everything: wait for the proxy's EOF."""
    await reader.read(-1)


@pytest.mark.points(3)
@pytest.mark.parametrize("kind", ["forward", "tunnel"])
async def test_slow_reader_bounds_the_proxy(kind: str) -> None:
    """While a 16 MiB body crosses the proxy to a client that has stopped reading, the process
    holds less than 4 MiB more memory (the proxy reads only as fast as the client takes), and
    the body arrives intact."""
    if kind == "forward":
        origin = BigPeer(SIZE, before=http_head)
    else:
        origin = BigPeer(SIZE, after=until_eof)
    async with serve(origin.handle) as origin_port:
        policy = loopback_policy(origin_port, connect=(origin_port,))
        async with running_proxy(policy) as (proxy, port):
            reader, writer = await slow_reader(port)
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
                received, digest = await read_digest(reader, SIZE, "the 16 MiB")
            finally:
                writer.close()
    assert head.status == 200, called(f"the {kind} request for 16 MiB", head.status, 200)
    got = (received, digest == origin.digest())
    assert got == (SIZE, True), called(
        f"16 MiB through the proxy ({kind}): (bytes, same bytes)", got, (SIZE, True)
    )
    assert held < BOUND, called(
        f"16 MiB ({kind}) to a client that stopped reading: memory the process held at most",
        f"{held} bytes ({origin.sent} bytes sent by the origin)",
        f"< {BOUND} bytes",
    )


@pytest.mark.points(2)
async def test_stalled_origin_bounds_an_upload() -> None:
    """While a 16 MiB request body goes to an origin that has stopped reading, the process holds
    less than 4 MiB more memory (the proxy copies the body CHUNK by CHUNK, awaiting drain(),
    instead of reading it whole), and the origin gets it intact once it reads again."""
    origin = StalledSink(SIZE)
    async with serve(origin.handle) as origin_port:
        head = (
            f"PUT http://origin.test:{origin_port}/up HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {SIZE}\r\n\r\n"
        ).encode()
        client = BigPeer(SIZE, prefix=head)
        async with running_proxy(loopback_policy(origin_port)) as (proxy, port):
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            upload = asyncio.create_task(client.handle(reader, writer))
            try:
                held = await memory_held(client.settled(), 30, "the upload to finish or stall")
                origin.release()
                await bounded(upload, 60, "the rest of the upload")
                received, digest = await bounded(origin.body, 60, "the origin to read the body")
                answer = await read_head(reader, "the PUT of 16 MiB")
            finally:
                upload.cancel()
                writer.close()
    got = (answer.status, received, digest == client.digest())
    assert got == (204, SIZE, True), called(
        "PUT of 16 MiB through the proxy: (status, bytes at the origin, same bytes)",
        got,
        (204, SIZE, True),
    )
    assert held < BOUND, called(
        "16 MiB uploaded to an origin that stopped reading: memory the process held at most",
        f"{held} bytes ({client.sent} bytes sent by the client)",
        f"< {BOUND} bytes",
    )
