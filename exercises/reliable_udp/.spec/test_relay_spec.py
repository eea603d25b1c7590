"""Hidden specs for reliable_udp: two endpoints across a seeded lossy network (sans-IO).

The Relay in _helpers.py drops (30%), duplicates, delays and reorders datagrams with a seeded
random.Random; time is a FakeClock moved straight to the next next_deadline() whenever nothing
is in flight, so a run is deterministic and takes no real time.
"""

from __future__ import annotations

import pytest
from _helpers import SERVER, Relay, decode_ack, decode_data, first_difference, payload, show
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from reliable_udp import Closed, Connected

from grader.spectools import called, short

S = 987654


def exchange(seed: int, up_size: int = 8000, down_size: int = 5000, **network) -> tuple:
    """Client connects S and sends `up`; once the server sees the session it sends `down`."""
    relay = Relay(seed, **network)
    up, down = payload(seed, up_size), payload(seed + 1000, down_size)
    relay.client.connect(S, SERVER)
    relay.client.send(S, up)
    relay.run_until(lambda: Connected(S) in relay.events["server"], f"seed {seed}: connecting")
    relay.server.send(S, down)

    def done() -> bool:
        return len(relay.stream("server", S)) >= len(up) and len(relay.stream("client", S)) >= len(
            down
        )

    relay.run_until(done, f"seed {seed}: sending {len(up)} bytes up and {len(down)} down")
    return relay, up, down


def check_streams(relay: Relay, up: bytes, down: bytes, seed: int) -> None:
    for side, want in (("server", up), ("client", down)):
        got = relay.stream(side, S)
        assert got == want, (
            f"seed {seed}: the {side} endpoint's DataReceived events joined gave {len(got)} bytes "
            f"that are not the {len(want)} bytes sent ({first_difference(got, want)}); every byte "
            f"must arrive exactly once and in order"
        )


@pytest.mark.points(5)
def test_a_lossy_network_still_delivers_every_byte_once_in_order():
    """Through 30% loss, duplicates and reordering, both streams arrive complete, once, in order."""
    for seed in (1, 2, 3):
        relay, up, down = exchange(seed)
        check_streams(relay, up, down, seed)
        for side in ("client", "server"):
            connected = relay.count(side, Connected)
            assert connected == {S: 1}, called(
                f"seed {seed}: the {side}'s Connected events per session", connected, {S: 1}
            )
            closed = relay.count(side, Closed)
            assert not closed, called(f"seed {seed}: the {side}'s Closed events", closed, {})


@pytest.mark.points(2)
def test_acks_on_the_wire_never_move_backwards():
    """Every ack an endpoint sends for a session is at least as large as the one before it."""
    for seed in (4, 5):
        relay, up, down = exchange(seed)
        last: dict[tuple[str, int], int] = {}
        for sender, _, datagram in relay.wire:
            ack = decode_ack(datagram)
            if ack is None:
                continue
            key = (sender, ack[0])
            assert ack[1] >= last.get(key, 0), (
                f"seed {seed}: the {sender} sent /ack/{ack[0]}/{ack[1]}/ after already acking "
                f"{last[key]} bytes; an ack says how much has been received so far, it can't shrink"
            )
            last[key] = ack[1]
        check_streams(relay, up, down, seed)


@pytest.mark.points(2)
def test_retransmissions_stop_once_everything_is_acked():
    """Once both streams are delivered and acked, no more data is sent, however long time runs."""
    for seed in (6, 7):
        relay, up, down = exchange(seed)
        relay.loss = relay.duplicate = relay.delay = 0.0  # a perfect network from now on
        relay.advance(3.0)  # any last retransmission gets through and is acked
        mark = len(relay.wire)
        for _ in range(6):
            relay.advance(3.0)
        late = [d for _, _, d in relay.wire[mark:] if decode_data(d)]
        assert not late, (
            f"seed {seed}: after both streams were delivered and acked, 18 s of ticks still sent "
            f"{len(late)} data datagrams: {show(late)}; expected none"
        )
        check_streams(relay, up, down, seed)


@pytest.mark.points(2)
def test_twenty_sessions_at_once_stay_separate():
    """Twenty concurrent sessions over the lossy network each deliver their own stream intact."""
    relay = Relay(8)
    sessions = [0, 1, 2**31 - 1, *range(1000, 1017)]
    for i, session in enumerate(sessions):
        relay.client.connect(session, SERVER)
        relay.client.send(session, payload(i, 1500))
    relay.run_until(
        lambda: relay.count("server", Connected) == dict.fromkeys(sessions, 1), "20 connects"
    )
    for i, session in enumerate(sessions):
        relay.server.send(session, payload(100 + i, 700))

    def done() -> bool:
        return all(
            len(relay.stream("server", s)) >= 1500 and len(relay.stream("client", s)) >= 700
            for s in sessions
        )

    relay.run_until(done, "20 sessions, 1500 bytes up and 700 down each")
    for i, session in enumerate(sessions):
        for side, want in (("server", payload(i, 1500)), ("client", payload(100 + i, 700))):
            got = relay.stream(side, session)
            assert got == want, (
                f"session {session}: the {side} received {len(got)} bytes that are not the "
                f"{len(want)} sent ({first_difference(got, want)})"
            )


_PIECES = st.sampled_from([b"/", b"\\", b"\\/", b"//", b"\\\\", b"/\\", b"x", b"\n", b"\x00"])
_NASTY = st.lists(_PIECES, max_size=900).map(b"".join)
_CHUNKS = st.lists(st.one_of(_NASTY, st.binary(max_size=2500)), min_size=1, max_size=4)


@pytest.mark.points(2)
@settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(chunks=_CHUNKS)
@example(chunks=[b""])
@example(chunks=[b"/"])
@example(chunks=[b"\\"])
@example(chunks=[b"x" * 983])  # exactly fills one datagram: /data/987654/0/ + 983 + / = 999
@example(chunks=[b"x" * 984])  # one byte more: two datagrams
@example(chunks=[b"x" * 982 + b"/"])  # the escape would straddle the limit: never split it
@example(chunks=[b"/" * 491 + b"x"])  # 983 bytes once escaped
@example(chunks=[b"\\" * 2500])
def test_escaping_round_trips_any_bytes(chunks):
    """Any bytes, full of "/" and "\\", arrive unchanged; every datagram is valid LRCP under 1000 bytes."""
    relay = Relay(0, loss=0.0, duplicate=0.0, delay=0.0)
    relay.client.connect(S, SERVER)
    for chunk in chunks:
        relay.client.send(S, chunk)
    sent = b"".join(chunks)
    relay.run_until(
        lambda: len(relay.stream("server", S)) >= len(sent), f"sending {len(sent)} bytes"
    )
    got = relay.stream("server", S)
    assert got == sent, called(f"send() of {short(chunks, 80)}; delivered", got, sent)
    for sender, _, datagram in relay.wire:
        assert len(datagram) < 1000, (
            f"the {sender} sent a datagram of {len(datagram)} bytes; LRCP messages are < 1000"
        )
        if datagram.startswith(b"/data/"):
            message = decode_data(datagram)
            assert message is not None, (
                f"the {sender} sent a malformed data message {short(datagram)}"
            )
            _, pos, data = message
            assert sent[pos : pos + len(data)] == data, (
                f"the {sender} sent {short(datagram)}, but bytes {pos}.. of the stream are "
                f"{short(sent[pos : pos + len(data)])}"
            )
