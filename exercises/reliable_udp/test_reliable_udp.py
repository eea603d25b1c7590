"""Visible examples for the reliable_udp kata. Run them with `nox -s try -- reliable_udp`.

The endpoint is driven by hand: you play its peer, writing datagrams and reading what it sends
back, on a clock you move yourself. The hidden specs go much further (a lossy network that
drops, duplicates and reorders, validation, chunking, expiry, the UDP adapter).
"""

from __future__ import annotations

try:
    from reliable_udp import Closed, Connected, DataReceived, LrcpEndpoint
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Closed, Connected, DataReceived and LrcpEndpoint "
        "from reliable_udp.py"
    ) from err

PEER = ("192.0.2.10", 40000)


class Clock:
    """A clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def server(clock: Clock | None = None) -> LrcpEndpoint:
    return LrcpEndpoint(clock=clock or Clock(), retransmit_after=3.0, expire_after=60.0)


def deliver(endpoint: LrcpEndpoint, datagram: bytes) -> list[bytes]:
    """Hand one datagram from PEER to the endpoint; return what it sent back."""
    endpoint.datagram_received(datagram, PEER)
    out = endpoint.datagrams_to_send()
    assert all(addr == PEER for _, addr in out), f"replies went to {out!r}, expected {PEER}"
    return [datagram for datagram, _ in out]


def test_the_example_session_from_the_protocol():
    endpoint = server()
    assert deliver(endpoint, b"/connect/12345/") == [b"/ack/12345/0/"]
    assert endpoint.events() == [Connected(12345)]
    got = deliver(endpoint, b"/data/12345/0/Hello, world!/")
    assert got == [b"/ack/12345/13/"], f"the data was answered with {got!r}"
    assert endpoint.events() == [DataReceived(12345, b"Hello, world!")]
    assert deliver(endpoint, b"/close/12345/") == [b"/close/12345/"]
    assert endpoint.events() == [Closed(12345)]


def test_an_escaped_slash_is_one_byte():
    endpoint = server()
    deliver(endpoint, b"/connect/7/")
    got = deliver(endpoint, b"/data/7/0/\\//")
    assert got == [b"/ack/7/1/"], f"'\\/' is one byte of data; the endpoint acked {got!r}"
    assert endpoint.events()[-1] == DataReceived(7, b"/")


def test_duplicate_data_is_acked_but_delivered_once():
    endpoint = server()
    deliver(endpoint, b"/connect/7/")
    endpoint.events()
    assert deliver(endpoint, b"/data/7/0/hello/") == [b"/ack/7/5/"]
    assert deliver(endpoint, b"/data/7/0/hello/") == [b"/ack/7/5/"]
    events = endpoint.events()
    assert events == [DataReceived(7, b"hello")], f"events were {events!r}"


def test_data_after_a_gap_is_not_accepted():
    endpoint = server()
    deliver(endpoint, b"/connect/7/")
    endpoint.events()
    got = deliver(endpoint, b"/data/7/5/world/")
    assert got == [b"/ack/7/0/"], f"data at 5 when nothing was received; answered {got!r}"
    assert endpoint.events() == [], "data beyond a gap must not be delivered"


def test_unacked_data_is_retransmitted_after_the_timeout():
    clock = Clock()
    endpoint = server(clock)
    deliver(endpoint, b"/connect/7/")
    endpoint.send(7, b"olleh\n")
    assert [d for d, _ in endpoint.datagrams_to_send()] == [b"/data/7/0/olleh\n/"]
    clock.now += 2.5
    endpoint.tick()
    assert endpoint.datagrams_to_send() == [], "nothing is due 2.5 s after the send"
    clock.now += 0.5
    endpoint.tick()
    got = [d for d, _ in endpoint.datagrams_to_send()]
    assert got == [b"/data/7/0/olleh\n/"], f"3 s without an ack; tick() sent {got!r}"
    assert deliver(endpoint, b"/ack/7/6/") == []
    clock.now += 30
    endpoint.tick()
    assert endpoint.datagrams_to_send() == [], "acked data must not be sent again"
