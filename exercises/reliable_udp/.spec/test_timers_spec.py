"""Hidden specs for reliable_udp: retransmission, expiry and the client role, on a FakeClock."""

from __future__ import annotations

import math

import pytest
from _helpers import SERVER, START, Peer, called_on, data_msg, decode_data
from reliable_udp import Closed, Connected, DataReceived

from grader.spectools import called, short

S = 4242


def at(t: float) -> str:
    return f"at t={t - START:g} s"


@pytest.mark.points(3)
def test_unacked_data_is_retransmitted_until_acked():
    """Unacked data is resent after retransmit_after (not before), again every interval, never once acked."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.endpoint.send(S, b"hello")
    first = peer.sent()
    want = [b"/data/%d/0/hello/" % S]
    assert first == want, called(f"send({S}, b'hello')", first, want)
    early = peer.advance(2.75)
    assert early == [], called(f"tick() {at(peer.clock.now)}, 2.75 s after the send", early, [])
    for _ in range(3):
        again = peer.advance(0.25)
        assert again == want, called(
            f"tick() {at(peer.clock.now)}, with no ack for 3 s", again, want
        )
        quiet = peer.advance(2.75)
        assert quiet == [], called(f"tick() {at(peer.clock.now)}", quiet, [])
    expect_none = peer.replies(b"/ack/%d/5/" % S)
    assert expect_none == [], called_on(b"/ack/%d/5/" % S, expect_none, [])
    for _ in range(5):
        after = peer.advance(3.0)
        assert after == [], called(
            f"tick() {at(peer.clock.now)}, after everything was acked", after, "no retransmission"
        )


@pytest.mark.points(2)
def test_retransmission_resends_only_what_was_not_acked():
    """After /ack/S/LENGTH/, retransmissions start at position LENGTH."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.endpoint.send(S, b"hello world")
    peer.sent()
    peer.clock.advance(1.0)
    peer.replies(b"/ack/%d/5/" % S)
    resent = peer.sent() + peer.advance(3.0)
    messages = [decode_data(d) for d in resent]
    joined = b"".join(m[2] for m in messages if m)
    ok = resent and all(m and m[1] >= 5 for m in messages) and joined == b" world"
    assert ok, called(
        f"send({S}, b'hello world'), /ack/{S}/5/, then 3 s without an ack; retransmitted",
        resent,
        [b"/data/%d/5/ world/" % S],
    )


@pytest.mark.points(3)
def test_an_idle_peer_expires():
    """A session that hears nothing from its peer for expire_after closes: Closed(S), state dropped."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.advance(50.0)
    peer.replies(data_msg(S, 0, b"still here"))  # hearing from the peer restarts the clock
    peer.events()
    peer.advance(59.5)
    events = peer.events()
    assert Closed(S) not in events, called(
        f"tick() {at(peer.clock.now)}, 59.5 s after the peer's last message", events, []
    )
    peer.advance(0.5)
    events = peer.events()
    assert events == [Closed(S)], called(
        f"tick() {at(peer.clock.now)}, 60 s after the peer's last message", events, [Closed(S)]
    )
    out = peer.replies(data_msg(S, 10, b"!"))
    assert out == [b"/close/%d/" % S], called_on(
        data_msg(S, 10, b"!") + b" after expiry", out, [b"/close/%d/" % S]
    )
    peer.advance(120.0)
    assert peer.events() == [], "an expired session must be reported Closed once, not again"


@pytest.mark.points(1)
def test_a_peer_that_never_acks_expires_too():
    """Retransmissions don't keep a session alive: unacked for expire_after, it closes and they stop."""
    peer = Peer(retransmit_after=1.0, expire_after=10.0)
    peer.open(S)
    peer.endpoint.send(S, b"anyone?")
    peer.sent()
    for _ in range(10):
        peer.advance(1.0)
    events = peer.events()
    assert events == [Closed(S)], called(
        "tick() for 10 s with data never acked (expire_after=10)", events, [Closed(S)]
    )
    later = peer.advance(1.0) + peer.advance(5.0)
    assert later == [], called("tick() after the session expired", later, "no more retransmissions")


@pytest.mark.points(2)
def test_next_deadline_is_the_earliest_timer():
    """next_deadline() is None with no session, else the earliest retransmission or expiry time."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    got = peer.endpoint.next_deadline()
    assert got is None, called("next_deadline() with no session", got, None)

    def check(want: float, when: str) -> None:
        got = peer.endpoint.next_deadline()
        ok = got is not None and math.isclose(got, want, abs_tol=1e-6)
        assert ok, called(f"next_deadline() {when}", got, want)

    peer.open(S)
    check(START + 60.0, "after a connect at t=0 (expiry at 60)")
    peer.clock.advance(10.0)
    peer.endpoint.send(S, b"x")
    check(START + 13.0, "after a send at t=10 (retransmission at 13)")
    peer.clock.advance(1.0)
    peer.replies(b"/ack/%d/1/" % S)
    check(START + 71.0, "after the ack at t=11 (nothing to resend; expiry at 71)")
    peer.advance(60.0)
    got = peer.endpoint.next_deadline()
    assert got is None, called("next_deadline() once the only session expired", got, None)


@pytest.mark.points(2)
def test_client_connects_and_retransmits_its_connect():
    """connect(S, addr) sends /connect/S/ until acked; data sent meanwhile waits for the ack."""
    peer = Peer(addr=SERVER, retransmit_after=3.0, expire_after=60.0)
    peer.endpoint.connect(S, SERVER)
    out = peer.endpoint.datagrams_to_send()
    want = [(b"/connect/%d/" % S, SERVER)]
    assert out == want, called(f"connect({S}, {SERVER})", out, want)
    peer.endpoint.send(S, b"early")
    held = peer.sent()
    assert held == [], called(f"send({S}, b'early') before the connect was acked", held, [])
    again = peer.advance(3.0)
    assert again == [b"/connect/%d/" % S], called(
        "tick() 3 s after an unanswered connect", again, [b"/connect/%d/" % S]
    )
    out = peer.replies(b"/ack/%d/0/" % S)
    events = peer.events()
    assert events == [Connected(S)], called_on(
        b"/ack/%d/0/" % S, events, [Connected(S)], "events()"
    )
    assert out == [b"/data/%d/0/early/" % S], called_on(
        b"/ack/%d/0/ (the connect's ack)" % S, out, [b"/data/%d/0/early/" % S]
    )
    out = peer.replies(b"/ack/%d/0/" % S)  # a duplicate ack of the connect: no second Connected
    events = peer.events()
    assert events == [] and out == [], called_on(b"/ack/%d/0/ again" % S, (out, events), ([], []))
    peer.replies(b"/data/%d/0/hi/" % S)
    events = peer.events()
    assert events == [DataReceived(S, b"hi")], called_on(
        b"/data/%d/0/hi/" % S, events, [DataReceived(S, b"hi")]
    )


@pytest.mark.points(1)
def test_client_connect_checks_the_session_number():
    """connect() refuses a session outside [0, 2**31) or already open, with ValueError."""
    peer = Peer(addr=SERVER)
    peer.endpoint.connect(7, SERVER)
    for session in (-1, 2**31, 7):
        try:
            peer.endpoint.connect(session, SERVER)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the learner
            raise AssertionError(
                called(f"connect({session}, ...)", short(exc), "ValueError")
            ) from None
        raise AssertionError(called(f"connect({session}, ...)", None, "ValueError"))


@pytest.mark.points(1)
def test_an_unanswered_connect_gives_up_at_expiry():
    """A connect that is never answered stops being resent after expire_after and reports Closed."""
    peer = Peer(addr=SERVER, retransmit_after=1.0, expire_after=5.0)
    peer.endpoint.connect(S, SERVER)
    sent = len(peer.sent())
    for _ in range(5):
        sent += len(peer.advance(1.0))
    events = peer.events()
    assert events == [Closed(S)], called(
        "connect() then 5 s of silence (expire_after=5)", events, [Closed(S)]
    )
    assert 3 <= sent <= 6, called(
        "connect() then 5 s of silence, connect messages sent", sent, "3 to 6"
    )
    later = peer.advance(1.0) + peer.advance(10.0)
    assert later == [], called("tick() after giving up", later, [])
