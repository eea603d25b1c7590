"""A 16 MiB upload through the proxy to a backend that stops reading: the proxy must pass the
back-pressure on to the client instead of buffering the body. Counted, not timed: tracemalloc
measures how much memory the process holds while the backend is stalled (or has finished).

16 MiB as in forward_proxy: the kernel's socket buffers on loopback absorb several MiB on their
own, so a smaller body hides a proxy that reads it whole. The other direction (an answer to a
TLS client that stops reading) is not measured here: with the client in the same process, a
proxy that never awaited drain() held no more traced memory than the reference, so the spec
could not tell them apart."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import connect, running_proxy, standard_config, status_of

from grader.spectools import BigPeer, StalledSink, bounded, called, memory_held, tcp_server

SIZE = 16 * 1024 * 1024
BOUND = 4 * 1024 * 1024


@pytest.mark.points(2)
async def test_stalled_backend_bounds_an_upload() -> None:
    """While a 16 MiB request body goes to a backend that has stopped reading, the process holds
    less than 4 MiB more memory (the proxy copies the body CHUNK by CHUNK, awaiting drain(),
    instead of reading it whole), and the backend gets it intact once it reads again."""
    backend = StalledSink(SIZE)
    head = f"PUT /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: {SIZE}\r\n\r\n".encode()
    client = BigPeer(SIZE, prefix=head)
    async with (
        tcp_server(backend.handle) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        tls = await connect(port, "a.test")
        upload = asyncio.create_task(client.handle(tls.reader, tls.writer))
        try:
            held = await memory_held(client.settled(), 30, "the upload to finish or stall")
            backend.release()
            await bounded(upload, 60, "the rest of the upload")
            received, digest = await bounded(backend.body, 60, "the backend to read the body")
            answer = await bounded(tls.reader.read(-1), 30, "the answer to the PUT")
        finally:
            upload.cancel()
            tls.close()
    got = (status_of(answer), received, digest == client.digest())
    assert got == (204, SIZE, True), called(
        "PUT of 16 MiB through the proxy: (status, bytes at the backend, same bytes)",
        got,
        (204, SIZE, True),
    )
    assert held < BOUND, called(
        "16 MiB uploaded to a backend that stopped reading: memory the process held at most",
        f"{held} bytes ({client.sent} bytes sent by the client)",
        f"< {BOUND} bytes",
    )
