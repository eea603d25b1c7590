"""Hidden spec for DNS over TCP with a client that pipelines queries and never reads the answers.

The server's duty: write an answer, then await drain() before it reads the next query. What
waits for such a client is then about one answer above the transport's high-water mark
(64 KiB by default), and the queries the client keeps sending stay unread in the kernel. A
server that writes without drain() reads every query and queues every answer in memory.

Counted, never timed. The spec finds the server's end of the connection among the process's
asyncio transports (the one whose local port is the server's), caps that socket's kernel send
buffer at 64 KiB (loopback autotunes it up to 4 MiB, which would swallow megabytes of answers
and make the figure depend on the machine), pipelines QUERIES queries for a 4,833-byte answer
each (1.2 MB of answers) and, while the server works, samples the bytes the transport holds
unsent (``get_write_buffer_size()``) until the server has made no progress for SPINS turns of
the event loop. The reference peaks at about 67 KB (64 KiB + one answer), BOUND leaves more
than 4x room; a server without drain() holds about 1 MB.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios

import dns.message
import pytest
from _helpers import big_zone, read_tcp_message, served

from grader.spectools import bounded, called, slow_reader, transports_on_port

BIG = 300  # A records at big.example.com.: a 4,833-byte answer
QUERIES = 256  # 1.2 MB of answers: far more than the kernel holds with the buffers capped below
SNDBUF = 65536  # the server socket's kernel send buffer, set by the spec
SPINS = 200  # event-loop turns without progress after which the server counts as stalled
BOUND = 320 * 1024  # the reference holds 64 KiB + one answer at most


def kernel_queues(sock: socket.socket) -> tuple[int, int]:
    """(bytes received and not yet read, bytes written and not yet acknowledged) of ``sock``."""
    unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    return unread, unsent


async def peak_while_busy(transports: list[asyncio.Transport], client: socket.socket) -> int:
    """The most bytes ``transports`` held unsent, sampled every loop turn until nothing moved
    (their buffers, the kernel queues of both ends) for SPINS turns."""
    peak, still, last = 0, 0, None
    while still < SPINS:
        await asyncio.sleep(0)
        held = sum(t.get_write_buffer_size() for t in transports)
        peak = max(peak, held)
        sockets = [t.get_extra_info("socket") for t in transports]
        state = (held, kernel_queues(client), [kernel_queues(s) for s in sockets])
        still = still + 1 if state == last else 0
        last = state
    return peak


@pytest.mark.points(2)
async def test_a_client_that_never_reads_its_answers_pins_down_a_bounded_buffer():
    """A TCP client that pipelines queries and never reads the answers makes the server hold
    less than 320 KiB of answers unsent: it awaits drain() after each answer before it reads the
    next query."""
    async with served(big_zone(BIG)) as (_, port):
        reader, writer = await slow_reader(port)
        try:
            query = dns.message.make_query("big.example.com.", "A").to_wire()
            framed = struct.pack(">H", len(query)) + query
            writer.write(framed)
            await read_tcp_message(reader, "the answer to a first query over TCP")
            transports = transports_on_port(port)
            assert transports, (
                f"Called DnsServer over TCP: a query on port {port} was answered, but no asyncio "
                "transport of the server has that local port; this spec measures the answers the "
                "server's transport holds unsent, so serve TCP with asyncio.start_server"
            )
            for transport in transports:
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF
                )
            writer.write(framed * QUERIES)  # and never read again
            client = writer.get_extra_info("socket")
            held = await bounded(
                peak_while_busy(transports, client), 25, "the server to stop sending"
            )
        finally:
            writer.close()
    assert held < BOUND, called(
        f"{QUERIES} pipelined queries for big.example.com. A (4,833-byte answers) on one "
        "connection, no answer read -> most bytes the server's transport held unsent",
        f"{held} bytes (about {held // 4835} answers)",
        f"< {BOUND} bytes (await writer.drain() after each answer, before the next query)",
    )
