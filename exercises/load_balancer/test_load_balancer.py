"""Visible examples for the load_balancer kata. Run them with `nox -s try -- load_balancer`.

They show the shape of success; the hidden specs go much further (other weights against an
oracle, pick/release/failure sequences, dead and hanging backends, half-close, resets, close()).
"""

from __future__ import annotations

import asyncio

try:
    from load_balancer import (
        Backend,
        LeastConnections,
        NoBackendAvailable,
        RoundRobin,
        SmoothWeighted,
        TcpProxy,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Backend, LeastConnections, NoBackendAvailable, "
        "RoundRobin, SmoothWeighted and TcpProxy from load_balancer.py"
    ) from err


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def three(weights: tuple[int, int, int] = (1, 1, 1)) -> list[Backend]:
    return [
        Backend(name, "127.0.0.1", 9000 + i, w)
        for i, (name, w) in enumerate(zip("abc", weights, strict=True))
    ]


def test_round_robin_goes_in_list_order():
    picker = RoundRobin(three())
    got = [picker.pick().name for _ in range(5)]
    assert got == ["a", "b", "c", "a", "b"], f"Called pick() five times; returned {got}"


def test_smooth_weighted_spreads_the_heavy_backend():
    picker = SmoothWeighted(three((5, 1, 1)))
    got = "".join(picker.pick().name for _ in range(7))
    assert got == "aabacaa", f"Called pick() seven times with weights 5, 1, 1; returned {got!r}"


def test_least_connections_prefers_the_idle_backend():
    a, b, c = three()
    picker = LeastConnections([a, b, c])
    for _ in range(3):
        picker.pick()  # one each: a, b, c
    picker.release(b)
    got = picker.pick().name
    assert got == "b", f"Called pick() with a=1, b=0, c=1 in flight; returned {got}; expected b"
    assert picker.in_flight(b) == 1, (
        f"Called in_flight(b); returned {picker.in_flight(b)}; expected 1"
    )


def test_a_failing_backend_is_ejected_then_readmitted():
    clock = Clock()
    a, b, c = three()
    picker = RoundRobin([a, b, c], max_fails=2, fail_timeout=10.0, clock=clock)
    picker.report_failure(b)
    picker.report_failure(b)
    got = [picker.pick().name for _ in range(4)]
    assert got == ["a", "c", "a", "c"], f"Called pick() four times with b ejected; returned {got}"
    clock.now += 10.0
    assert picker.is_available(b), "Called is_available(b) fail_timeout later; returned False"


def test_no_backend_left_raises():
    picker = RoundRobin(three()[:1], max_fails=1, clock=Clock())
    picker.report_failure(picker.backends[0])
    try:
        got = picker.pick()
    except NoBackendAvailable:
        return
    raise AssertionError(f"Called pick() with the only backend ejected; returned {got}")


async def test_the_proxy_pipes_bytes_to_a_backend_and_back():
    async def upper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # to EOF: the client half-closed
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upper, "127.0.0.1", 0)
    backend = Backend("up", "127.0.0.1", server.sockets[0].getsockname()[1])
    proxy = TcpProxy(RoundRobin([backend]))
    port = await proxy.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello, backend")
        writer.write_eof()
        got = await asyncio.wait_for(reader.read(), 5.0)
        writer.close()
        assert got == b"HELLO, BACKEND", f"Sent b'hello, backend' through the proxy; got {got!r}"
    finally:
        await proxy.close()
        server.close()
