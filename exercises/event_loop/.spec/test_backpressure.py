"""Hidden specs for event_loop: backpressure from a client that never reads, and an idle loop
that sleeps instead of spinning (both counted through the selector, never timed)."""

from __future__ import annotations

import selectors

import pytest
from _helpers import (
    Recorder,
    choke,
    connect,
    echo_in_step,
    exchange,
    payloads,
    pump,
    receive,
    serving,
    stream,
)
from event_loop import EchoServer

from grader.spectools import called

MAX_BUFFER = 64 * 1024
READ_SIZE = 16 * 1024
BOUND = MAX_BUFFER + READ_SIZE  # read only below max_buffer, at most read_size at a time
NAMES = {
    0: "nothing",
    selectors.EVENT_READ: "EVENT_READ",
    selectors.EVENT_WRITE: "EVENT_WRITE",
    selectors.EVENT_READ | selectors.EVENT_WRITE: "EVENT_READ|EVENT_WRITE",
}


def choked_server():
    recorder = Recorder()
    server = EchoServer(
        max_buffer=MAX_BUFFER,
        read_size=READ_SIZE,
        sndbuf=16 * 1024,
        selector_factory=lambda: recorder,
    )
    return server, recorder


def slow_client(server):
    # A small receive buffer (set before connect, so the window is small from the handshake
    # on) and a small send buffer: the kernel holds little, the server's buffer the rest.
    return connect(server.address, rcvbuf=4096, sndbuf=16 * 1024)


def check_paused(choked) -> None:
    assert choked.peak[0] <= BOUND, (
        f"A client sent {choked.sent} bytes and read none; server.buffered_bytes() reached "
        f"{choked.peak[0]}; expected at most max_buffer + read_size = {BOUND} "
        "(stop reading from a client whose pending output reached max_buffer)"
    )
    assert choked.paused, (
        f"A client sent {choked.sent} bytes and read none; the server still had EVENT_READ "
        f"registered for it (its loop made {choked.selects} select() calls meanwhile; a loop "
        "stuck in a blocking call makes none); expected the server to drop EVENT_READ once its "
        "pending output reached max_buffer"
    )


# -- backpressure ----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_a_client_that_never_reads_is_paused_and_its_buffer_bounded():
    """A client that never reads is paused (no EVENT_READ) and buffered_bytes() stays <= max_buffer + read_size."""
    server, recorder = choked_server()
    with serving(server), slow_client(server) as slow:
        choked = choke(server, recorder, slow, BOUND)
        check_paused(choked)
        # Paused means paused: nothing the slow client sends is read until it reads.
        still = recorder.wait_for(lambda: server.buffered_bytes() >= MAX_BUFFER)
        assert still, called(
            "server.buffered_bytes() while the paused client still reads nothing",
            server.buffered_bytes(),
            f"at least max_buffer ({MAX_BUFFER})",
        )


@pytest.mark.points(2)
def test_a_client_that_never_reads_does_not_stall_the_others():
    """While one client is paused, other clients still get their echoes."""
    server, recorder = choked_server()
    sent = payloads(seed=21, count=5, low=1, high=20_000)
    with serving(server), slow_client(server) as slow:
        choked = choke(server, recorder, slow, BOUND)
        check_paused(choked)
        results = exchange(server.address, sent)
        for i, (result, payload) in enumerate(zip(results, sent, strict=True)):
            assert result.data == payload, (
                f"With one paused client, client {i} of 5 others got {result.describe(payload)}; "
                "expected its own bytes back (one slow client must not stall the loop)"
            )
        assert choked.peak[0] <= BOUND + sum(map(len, sent)), called(
            "server.buffered_bytes() (its maximum) while 5 clients echoed beside the paused one",
            choked.peak[0],
            f"at most {BOUND} + their {sum(map(len, sent))} bytes",
        )


@pytest.mark.points(2)
def test_a_paused_client_resumes_and_loses_nothing():
    """When the paused client reads, the server resumes reading it and every byte comes back in order."""
    server, recorder = choked_server()
    with serving(server), slow_client(server) as slow:
        choked = choke(server, recorder, slow, BOUND)
        check_paused(choked)
        slow.setblocking(True)
        got = receive(slow, choked.sent)
        expected = stream(choked.sent)
        assert got.data == expected, (
            f"The paused client sent {choked.sent} bytes, then read; it got "
            f"{got.describe(expected)}; expected all of them back, in order"
        )
        slow.sendall(b"still there?")
        got = receive(slow, 12)
        assert got.data == b"still there?", called(
            "slow.sendall(b'still there?') after draining its echo", got.data, b"still there?"
        )


@pytest.mark.points(1)
def test_a_client_that_resets_while_paused_is_dropped():
    """A paused client that disconnects is closed and forgotten: connection_count returns to 0."""
    server, recorder = choked_server()
    with serving(server):
        slow = slow_client(server)
        try:
            check_paused(choke(server, recorder, slow, BOUND))
        finally:
            slow.close()  # with unread data: the kernel answers with a RST
        dropped = recorder.wait_for(lambda: server.connection_count == 0)
        assert dropped, called(
            "server.connection_count after a paused client closed", server.connection_count, 0
        )
        [echo] = exchange(server.address, [b"after the reset"])
        assert echo.data == b"after the reset", called(
            "exchange() for a new client after the reset", echo.data, b"after the reset"
        )


# -- an idle loop sleeps ---------------------------------------------------------------------


def idle_server_with_clients(count: int):
    """A server driven by run_once() in this thread, with ``count`` clients echoed once each."""
    recorder = Recorder()
    server = EchoServer(selector_factory=lambda: recorder)
    clients = [connect(server.address) for _ in range(count)]
    pump(server, lambda: server.connection_count == count)
    messages = [f"ping {i}".encode() for i in range(count)]
    got = echo_in_step(server, clients, messages)
    assert got == messages, called(f"{count} clients echoed through run_once()", got, messages)
    return server, recorder, clients


@pytest.mark.points(3)
def test_an_idle_loop_does_not_spin():
    """With 5 quiet clients and nothing pending, select() reports no events (no busy loop)."""
    server, recorder, clients = idle_server_with_clients(5)
    try:
        before = len(recorder.calls)
        for _ in range(10):
            server.run_once(0)
        busy = sum(1 for call in recorder.calls[before:] if call.ready)
    finally:
        server.close()
        for client in clients:
            client.close()
    assert busy <= 1, (
        f"Called server.run_once(0) 10 times with 5 idle clients and nothing pending; select() "
        f"returned events {busy} times; expected at most 1 (register EVENT_WRITE only while "
        "output is pending: a socket with room in its send buffer is always writable)"
    )


@pytest.mark.points(1)
def test_an_idle_connection_is_registered_for_reading_only():
    """An idle connection with nothing pending is registered for EVENT_READ, not EVENT_WRITE."""
    server, recorder, clients = idle_server_with_clients(3)
    try:
        server.run_once(0)
        events = sorted(NAMES[key.events] for key in recorder.client_keys())
    finally:
        server.close()
        for client in clients:
            client.close()
    assert events == ["EVENT_READ"] * 3, called(
        "server.run_once(0) with 3 idle, fully echoed connections; their interest sets",
        events,
        ["EVENT_READ"] * 3,
    )
