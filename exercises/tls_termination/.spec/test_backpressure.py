"""16 MiB through the proxy to a peer that stops reading, in both directions: the proxy must pass
the back-pressure on instead of buffering the message. Counted, not timed.

* An upload to a backend that stops reading: tracemalloc measures how much memory the process
  holds while the backend is stalled (or has finished). 16 MiB as in forward_proxy: the
  kernel's socket buffers on loopback absorb several MiB on their own, so a smaller body hides
  a proxy that reads it whole.
* An answer to a TLS client that stops reading: traced memory can't tell here (a proxy that
  never awaits drain() holds no more of it than the reference: asyncio's TLS layer encrypts
  what it is given into OpenSSL's outgoing memory BIO, which tracemalloc does not see). The
  spec reads the proxy's transports instead: the TLS transport's get_write_buffer_size()
  counts the bytes queued in the TLS layer, BIO included, and the TCP transport's those queued
  below it. They are the asyncio transports whose local port is the proxy's, found with gc
  once the backend has the request. The spec caps that socket's kernel send buffer at 64 KiB
  (loopback autotunes it up to 4 MiB), so the figure is the same on every machine. The
  reference holds about 650 KB (the TLS layer's 512 KiB high-water mark, one CHUNK, what the
  TCP transport holds); one that writes each CHUNK without drain() holds about 15 MiB."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _helpers import connect, pki, running_proxy, standard_config, status_of

from grader.spectools import (
    LOCALHOST,
    BigPeer,
    StalledSink,
    bounded,
    called,
    memory_held,
    read_digest,
    tcp_server,
    transports_on_port,
)

SIZE = 16 * 1024 * 1024
BOUND = 4 * 1024 * 1024
SNDBUF = 65536  # the kernel send buffer of the proxy's socket to the client, set by the spec


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


@pytest.mark.points(2)
async def test_stalled_client_bounds_a_download() -> None:
    """While a 16 MiB answer goes to a TLS client that has stopped reading, the proxy holds less
    than 4 MiB of it unsent in its transports (it copies the answer CHUNK by CHUNK, awaiting
    drain() after each write), and the client gets it intact once it reads again."""
    found: list[asyncio.Transport] = []
    proxy_port = 0

    async def answer_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        # The proxy has the client's connection open now: find its end, cap its send buffer.
        found.extend(transports_on_port(proxy_port))
        for transport in found:
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF
            )
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n".encode())

    backend = BigPeer(SIZE, before=answer_head)
    async with (
        tcp_server(backend.handle) as (_, backend_port),
        running_proxy(standard_config(), backend_port) as (_, port),
    ):
        proxy_port = port
        sock = socket.socket()  # a 64 KiB receive buffer: the kernel holds little for the client
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            sock.connect((LOCALHOST, port))
            sock.setblocking(False)
            reader, writer = await bounded(
                asyncio.open_connection(
                    sock=sock, ssl=pki().client_context(), server_hostname="a.test"
                ),
                20,
                "the TLS handshake for 'a.test'",
            )
        except BaseException:
            sock.close()
            raise
        try:
            writer.write(b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n")
            await bounded(backend.settled(), 30, "the answer to finish or stall")
            assert found, (
                f"Called GET of 16 MiB through the proxy; the backend got the request, but no "
                f"asyncio transport has the proxy's local port {port}; this spec measures what "
                "the proxy's transports hold unsent, so serve with asyncio.start_server"
            )
            held = sum(transport.get_write_buffer_size() for transport in found)
            try:
                head = await bounded(reader.readuntil(b"\r\n\r\n"), 30, "the answer's head")
            except asyncio.IncompleteReadError as err:
                head = err.partial  # closed before a whole head: the status check says so
            received, digest = await read_digest(reader, SIZE, "the 16 MiB answer")
        finally:
            writer.close()
    got = (status_of(head), received, digest == backend.digest())
    assert got == (200, SIZE, True), called(
        "GET of 16 MiB through the proxy, read after a stall: (status, bytes read, same bytes)",
        got,
        (200, SIZE, True),
    )
    assert held < BOUND, called(
        "16 MiB answer to a TLS client that stopped reading: bytes the proxy's transports held",
        f"{held} bytes ({backend.sent} bytes sent by the backend)",
        f"< {BOUND} bytes",
    )
