"""Hidden specs for event_loop: every byte comes back, in order, to many clients at once,
through partial writes and after a half-close."""

from __future__ import annotations

import random
import socket

import pytest
from _helpers import (
    LOCALHOST,
    Recorder,
    connect,
    exchange,
    payloads,
    receive,
    serving,
    sockopt,
)
from event_loop import EchoServer

from grader.spectools import called


def first_wrong(results, sent) -> str | None:
    """'client i: what it got' for the first client whose echo differs from what it sent."""
    for i, (result, payload) in enumerate(zip(results, sent, strict=True)):
        if result.data != payload:
            return f"client {i} got {result.describe(payload)}"
    return None


# -- the basics ------------------------------------------------------------------------------


@pytest.mark.points(1)
def test_address_is_bound_before_the_loop_runs():
    """The constructor binds and listens: address is (127.0.0.1, a real port), connectable at once."""
    server = EchoServer()
    try:
        host, port = server.address
        assert host == LOCALHOST and port != 0, called(
            "EchoServer().address", server.address, f"('{LOCALHOST}', <the port the OS chose>)"
        )
        # No loop is running: the kernel completes the handshake and queues the connection.
        with connect(server.address):
            pass
    finally:
        server.close()


@pytest.mark.points(2)
def test_one_client_gets_its_bytes_back():
    """A client that sends a message reads the same bytes back."""
    server = EchoServer()
    with serving(server), connect(server.address) as client:
        client.sendall(b"hello, event loop")
        got = receive(client, 17)
        assert got.data == b"hello, event loop", called(
            "client.sendall(b'hello, event loop') then recv", got.data, b"hello, event loop"
        )


@pytest.mark.points(1)
def test_many_messages_on_one_connection_come_back_in_order():
    """One connection carries many messages; the echo is the same stream, in the same order."""
    rng = random.Random(3)
    server = EchoServer()
    with serving(server), connect(server.address) as client:
        for round_ in range(30):
            message = rng.randbytes(rng.randint(1, 3000))
            client.sendall(message)
            got = receive(client, len(message))
            assert got.data == message, (
                f"Message {round_} of 30 on one connection: got {got.describe(message)}; "
                f"expected the {len(message)} bytes sent"
            )
        # Three messages back to back, then one read: the echo is one stream, not messages.
        burst = [rng.randbytes(5000) for _ in range(3)]
        for message in burst:
            client.sendall(message)
        expected = b"".join(burst)
        got = receive(client, len(expected))
        assert got.data == expected, (
            f"Sent 3 messages of 5000 bytes back to back; got {got.describe(expected)}"
        )


@pytest.mark.points(4)
def test_200_concurrent_clients_each_get_their_own_bytes():
    """200 clients send random payloads (0-32 KiB) at the same time; each gets exactly its own back."""
    sent = payloads(seed=200, count=200, low=0, high=32 * 1024)
    # backlog=512: 200 connects arrive in a burst; an overflowing accept queue would drop SYNs
    # and cost each one a 1 s retransmission, which is not what this spec is about.
    server = EchoServer(backlog=512)
    with serving(server):
        results = exchange(server.address, sent)
    wrong = first_wrong(results, sent)
    assert wrong is None, (
        f"Echoed 200 concurrent clients ({sum(map(len, sent))} bytes in all); {wrong}; "
        "expected every client to get exactly the bytes it sent"
    )


# -- partial writes ----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_4_mb_through_a_small_send_buffer_arrives_intact():
    """4 MB through a 16 KiB SO_SNDBUF: every partial send keeps its unsent tail, no byte lost."""
    payload = random.Random(4).randbytes(4 << 20)
    server = EchoServer(sndbuf=16 * 1024)
    with serving(server):
        [result] = exchange(server.address, [payload], rcvbuf=16 * 1024)
    assert result.data == payload, (
        f"Sent 4 MB through EchoServer(sndbuf=16384); got {result.describe(payload)}; "
        "expected all 4194304 bytes back, in order (send() may take only part of its buffer)"
    )


@pytest.mark.points(1)
def test_sndbuf_is_set_on_client_sockets():
    """EchoServer(sndbuf=n) sets SO_SNDBUF on every accepted client socket."""
    recorder = Recorder()
    server = EchoServer(sndbuf=4096, selector_factory=lambda: recorder)
    with serving(server), connect(server.address):
        registered = recorder.wait_for(lambda: len(recorder.client_keys()) == 1)
        assert registered, called(
            "connect() to the running server",
            "no client socket registered in the selector",
            "the accepted socket registered",
        )
        got = sockopt(recorder.client_keys()[0].fileobj, socket.SO_SNDBUF)
    # Linux doubles the value it is given (the bookkeeping overhead) and has a floor of 4608.
    assert got <= 2 * 4608, called(
        "getsockopt(SO_SNDBUF) on the accepted socket of EchoServer(sndbuf=4096)",
        got,
        "at most 9216 (Linux reports twice the value set)",
    )


# -- half-close ------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_half_closed_client_still_gets_every_byte():
    """After shutdown(SHUT_WR) the client still reads every echoed byte, then EOF."""
    payload = random.Random(5).randbytes(1 << 20)
    # A big max_buffer lets the server read all 1 MB while the client reads nothing: when the
    # server sees EOF, most of the echo is still pending in its own buffer.
    server = EchoServer(max_buffer=4 << 20, sndbuf=16 * 1024)
    with serving(server), connect(server.address, rcvbuf=4096) as client:
        try:
            client.sendall(payload)
        except TimeoutError:
            raise AssertionError(
                "Called client.sendall(1 MB) on EchoServer(max_buffer=4 MB) without reading; "
                "it blocked for 5 s; expected the server to keep reading below max_buffer"
            ) from None
        client.shutdown(socket.SHUT_WR)
        got = receive(client)
    assert got.data == payload and got.ended == "eof", (
        f"Sent 1 MB, shutdown(SHUT_WR), then read to EOF; got {got.describe(payload)}; "
        "expected all 1048576 bytes, then EOF (an EOF from the client ends its input, "
        "not the server's output)"
    )


@pytest.mark.points(1)
def test_half_close_without_data_gets_eof():
    """A client that sends nothing and shuts its write side reads EOF at once."""
    server = EchoServer()
    with serving(server), connect(server.address) as client:
        client.shutdown(socket.SHUT_WR)
        got = receive(client)
    assert (got.data, got.ended) == (b"", "eof"), called(
        "client.shutdown(SHUT_WR) then recv", f"{got.data!r} ({got.ended})", "b'' (EOF)"
    )


@pytest.mark.points(1)
def test_connection_is_closed_after_the_last_echoed_byte():
    """Once a half-closed client has all its echo, the server closes that connection."""
    sent = payloads(seed=6, count=5, low=1, high=100_000)
    recorder = Recorder()
    server = EchoServer(selector_factory=lambda: recorder)
    with serving(server):
        results = exchange(server.address, sent, half_close=True)
        # The clients close their sockets only after reading EOF, that is after the server closed.
        closed = recorder.wait_for(lambda: server.connection_count == 0)
        count = server.connection_count
    wrong = first_wrong(results, sent)
    assert wrong is None, f"5 clients sent, shut down, read to EOF; {wrong}"
    assert closed, called("server.connection_count after 5 half-closed clients read EOF", count, 0)
