"""Starting and stopping the proxy."""

from __future__ import annotations

import asyncio

from _helpers import loopback_policy, read_head, running_proxy, serve

from grader.spectools import LOCALHOST, bounded, called, step


async def test_close_stops_listening_and_ends_tunnels() -> None:
    """close() stops listening and ends open tunnels: their client sees EOF."""

    async def hold(reader, writer):
        await reader.read(-1)

    async with serve(hold) as origin_port:
        async with running_proxy(loopback_policy(connect=(origin_port,))) as (proxy, port):
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            writer.write(f"CONNECT origin.test:{origin_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await read_head(reader, "CONNECT")
            with step("await proxy.close()"):
                await bounded(proxy.close(), 10, "proxy.close() with a tunnel open")
            try:
                rest = await bounded(reader.read(-1), 10, "EOF on the tunnel after close()")
            except ConnectionError:
                rest = b""
            writer.close()
            try:
                await asyncio.open_connection(LOCALHOST, port)
                listening = True
            except OSError:
                listening = False
        got = (head.status, rest, listening)
        assert got == (200, b"", False), called(
            "CONNECT, then proxy.close() (status, rest of tunnel, still listening)",
            got,
            (200, b"", False),
        )
