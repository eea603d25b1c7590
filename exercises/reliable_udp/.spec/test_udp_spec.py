"""Hidden specs for reliable_udp: the asyncio adapter on real UDP sockets on 127.0.0.1.

Timers are scaled down (retransmit_after=0.05 s) so a lossy transfer takes well under a second;
every wait is bounded, none sleeps for a condition.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from _helpers import RawClient, UdpRelay, first_difference, payload
from reliable_udp import Closed, Connected, DataReceived, LrcpSocket

from grader.spectools import LOCALHOST, bounded, called, short

S = 31337


async def next_event(sock: LrcpSocket, what: str, timeout: float = 3.0):
    return await bounded(sock.next_event(), timeout, what)


@pytest.mark.points(2)
async def test_socket_speaks_lrcp_on_a_real_port():
    """LrcpSocket.open() binds 127.0.0.1 on a free port, answers connect and data, closes, reports events."""
    server = await LrcpSocket.open(LOCALHOST, 0)
    client = await RawClient.open()
    try:
        host, port = server.address
        assert host == LOCALHOST and port > 0, called(
            "LrcpSocket.open('127.0.0.1', 0).address", (host, port), "('127.0.0.1', <port>)"
        )
        client.send(b"/connect/%d/" % S, (host, port))
        got = await client.recv(3.0, "the ack of /connect/")
        assert got == b"/ack/%d/0/" % S, called_on_udp(b"/connect/%d/" % S, got, b"/ack/%d/0/" % S)
        event = await next_event(server, "Connected from next_event()")
        assert event == Connected(S), called("next_event() after a connect", event, Connected(S))
        client.send(b"/data/%d/0/hi\\/there/" % S, (host, port))
        got = await client.recv(3.0, "the ack of /data/")
        assert got == b"/ack/%d/8/" % S, called_on_udp(
            b"/data/%d/0/hi\\/there/" % S, got, b"/ack/%d/8/" % S
        )
        event = await next_event(server, "DataReceived from next_event()")
        want = DataReceived(S, b"hi/there")
        assert event == want, called("next_event() after data", event, want)
        server.close(S)
        got = await client.recv(3.0, "the /close/ after close()")
        assert got == b"/close/%d/" % S, called(f"close({S})", got, b"/close/%d/" % S)
        event = await next_event(server, "Closed from next_event() after close()")
        assert event == Closed(S), called(f"next_event() after close({S})", event, Closed(S))
    finally:
        client.close()
        server.shutdown()


def called_on_udp(sent: bytes, got: bytes, want: bytes) -> str:
    return f"Sent {short(sent)} over UDP; the socket answered {short(got)}; expected {short(want)}"


@pytest.mark.points(2)
async def test_socket_retransmits_on_its_own_timer():
    """With no ack, the socket resends data after retransmit_after by itself (a loop timer, no input)."""
    server = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.05, expire_after=5.0)
    client = await RawClient.open()
    try:
        client.send(b"/connect/%d/" % S, server.address)
        await client.recv(3.0, "the ack of /connect/")
        await next_event(server, "Connected")
        server.send(S, b"olleh\n")
        want = b"/data/%d/0/olleh\n/" % S
        first = await client.recv(3.0, "the data message after send()")
        assert first == want, called(f"send({S}, b'olleh\\n')", first, want)
        again = await client.recv_until(
            lambda d: d == want, 2.0, "the retransmission of unacked data (retransmit_after=0.05)"
        )
        assert again == want, called("waiting for a retransmission", again, want)
        client.send(b"/ack/%d/6/" % S, server.address)
        client.send(b"/data/%d/0/ok/" % S, server.address)
        event = await next_event(server, "DataReceived after the ack")
        assert event == DataReceived(S, b"ok"), called(
            "next_event()", event, DataReceived(S, b"ok")
        )
    finally:
        client.close()
        server.shutdown()


@pytest.mark.points(1)
async def test_socket_expires_a_session_whose_data_is_never_acked():
    """On the socket, data left unacked for expire_after closes the session: next_event() gives Closed(S)."""
    server = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.05, expire_after=0.2)
    client = await RawClient.open()
    try:
        client.send(b"/connect/%d/" % S, server.address)
        await next_event(server, "Connected")
        server.send(S, b"anyone?\n")
        event = await next_event(server, "Closed after expire_after=0.2 s with the data unacked")
        assert event == Closed(S), called(
            f"send({S}, b'anyone?\\n'), never acked; next_event()", event, Closed(S)
        )
    finally:
        client.close()
        server.shutdown()


@pytest.mark.points(1)
async def test_an_idle_socket_wakes_up_for_nothing():
    """With every session idle (nothing owed), the socket runs no timer: tick() is never called."""
    server = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.02, expire_after=0.05)
    client = await RawClient.open()
    ticks = 0
    try:
        real_tick = server.endpoint.tick

        def counting_tick() -> None:
            nonlocal ticks
            ticks += 1
            real_tick()

        server.endpoint.tick = counting_tick  # type: ignore[method-assign]
        client.send(b"/connect/%d/" % S, server.address)
        await next_event(server, "Connected")
        server.send(S, b"ok\n")
        await client.recv_until(lambda d: d.startswith(b"/data/"), 3.0, "the data after send()")
        client.send(b"/ack/%d/3/" % S, server.address)
        client.send(b"/data/%d/0/done/" % S, server.address)
        await next_event(server, "DataReceived after the ack")
        ticks = 0
        # Not a wait for a condition: the window in which an idle socket must do nothing,
        # 10 retransmission intervals and 4 expiry intervals long.
        await asyncio.sleep(0.2)
        assert ticks == 0, called(
            "an idle session (all acked) for 0.2 s with retransmit_after=0.02, expire_after=0.05; "
            "endpoint.tick() calls",
            ticks,
            0,
        )
    finally:
        client.close()
        server.shutdown()


@pytest.mark.points(3)
async def test_two_sockets_through_a_lossy_udp_relay():
    """Client and server sockets exchange streams through a relay dropping 30% of datagrams."""
    server = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.05, expire_after=5.0)
    relay = await UdpRelay.open(server.address, seed=11, loss=0.3)
    client = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.05, expire_after=5.0)
    up, down = payload(21, 6000), payload(22, 4000)
    received = {"server": bytearray(), "client": bytearray()}

    async def collect(sock: LrcpSocket, side: str, want: int) -> None:
        while len(received[side]) < want:
            event = await sock.next_event()
            if isinstance(event, Connected) and side == "server":
                sock.send(S, down)
            elif isinstance(event, DataReceived):
                received[side] += event.data
            elif isinstance(event, Closed):
                raise AssertionError(
                    f"the {side} socket reported Closed({event.session}) mid-transfer"
                )

    try:
        client.connect(S, relay.address)
        client.send(S, up)
        work = asyncio.gather(
            collect(server, "server", len(up)), collect(client, "client", len(down))
        )
        try:
            await bounded(work, 6.0, "both streams through the lossy relay")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; got {len(received['server'])}/{len(up)} bytes at the server and "
                f"{len(received['client'])}/{len(down)} at the client "
                f"(relay forwarded {relay.forwarded}, dropped {relay.dropped})"
            ) from None
        for side, want in (("server", up), ("client", down)):
            got = bytes(received[side])
            assert got == want, (
                f"the {side} socket received {len(got)} bytes that are not the {len(want)} sent "
                f"({first_difference(got, want)})"
            )
        assert relay.dropped > 0, "the relay dropped nothing: the spec's network is broken"
    finally:
        client.shutdown()
        relay.close()
        server.shutdown()


@pytest.mark.points(1)
async def test_shutdown_releases_the_port():
    """After shutdown() (and one turn of the loop) the socket is closed: its port can be bound again."""
    server = await LrcpSocket.open(LOCALHOST, 0)
    host, port = server.address
    server.shutdown()
    await asyncio.sleep(0)  # transport.close() closes the socket on the loop's next turn
    await asyncio.sleep(0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AssertionError(
                f"Called shutdown(); then binding {host}:{port} raised {short(exc)}; "
                "expected the port to be free"
            ) from None


@pytest.mark.points(1)
async def test_shutdown_stops_the_timer():
    """After shutdown() with data unacked, the endpoint's timer never fires again: no tick() calls."""
    server = await LrcpSocket.open(LOCALHOST, 0, retransmit_after=0.02, expire_after=5.0)
    client = await RawClient.open()
    ticks = 0
    try:
        real_tick = server.endpoint.tick

        def counting_tick() -> None:
            nonlocal ticks
            ticks += 1
            real_tick()

        server.endpoint.tick = counting_tick  # type: ignore[method-assign]
        client.send(b"/connect/%d/" % S, server.address)
        await next_event(server, "Connected")
        server.send(S, b"never acked\n")
        await client.recv_until(lambda d: d.startswith(b"/data/"), 3.0, "the data after send()")
        server.shutdown()
        ticks = 0
        # Not a wait for a condition: the window in which a shut-down socket must do nothing,
        # 10 retransmission intervals long.
        await asyncio.sleep(0.2)
        assert ticks == 0, called(
            "shutdown() with data unacked (retransmit_after=0.02), then 0.2 s; "
            "endpoint.tick() calls",
            ticks,
            0,
        )
    finally:
        client.close()
        server.shutdown()
