"""Hidden specs for reliable_udp: retransmission, expiry and the client role, on a FakeClock."""

from __future__ import annotations

import math

import pytest
from _helpers import SERVER, START, Peer, called_on, data_msg, decode_data
from reliable_udp import Closed, Connected, DataReceived, LrcpEndpoint

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


@pytest.mark.points(2)
def test_a_forward_ack_restarts_the_retransmission_timer():
    """An ack that moves forward restarts the retransmission timer: the rest is resent retransmit_after after it."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.endpoint.send(S, b"hello world")
    peer.sent()
    peer.clock.advance(2.0)
    peer.replies(b"/ack/%d/5/" % S)  # an immediate resend of " world" is allowed here
    for delay in (1.0, 2.999):  # the send's own deadline (t=3) has passed: not the timer's now
        peer.clock.now = START + 2.0 + delay
        peer.endpoint.tick()
        early = peer.sent()
        assert early == [], called(
            f"tick() {at(peer.clock.now)}, after a send at t=0 and /ack/{S}/5/ at t=2",
            early,
            "nothing: the ack at t=2 restarted the timer, due at t=5",
        )
    resent = peer.advance(0.001)
    want = [b"/data/%d/5/ world/" % S]
    assert resent == want, called(
        f"tick() {at(peer.clock.now)}, 3 s after /ack/{S}/5/", resent, want
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("history", ["just connected", "data both ways, all acked"])
def test_a_quiet_peer_that_owes_nothing_is_never_expired(history):
    """A session whose peer owes no ack stays open however long the peer is silent (LRCP expires only unacked data)."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    if history != "just connected":
        peer.replies(data_msg(S, 0, b"ping"))
        peer.endpoint.send(S, b"pong")
        peer.sent()
        peer.replies(b"/ack/%d/4/" % S)
        peer.events()
    deadline = peer.endpoint.next_deadline()
    assert deadline is None, called(
        f"next_deadline() on a session {history}, nothing owed", deadline, None
    )
    for _ in range(60):  # an hour of silence, a tick a minute
        out = peer.advance(60.0)
        events = peer.events()
        assert out == [] and events == [], called(
            f"tick() {at(peer.clock.now)} on a session {history}, the peer silent",
            (out, events),
            ([], []),
        )
    position = 4 if history != "just connected" else 0
    got = peer.replies(data_msg(S, position, b"!"))
    want = [b"/ack/%d/%d/" % (S, position + 1)]
    assert got == want, called_on(
        data_msg(S, position, b"!") + b" after an hour of silence", got, want
    )


@pytest.mark.points(3)
def test_unacked_data_expires_after_expire_after_of_silence():
    """Data unacked while the peer stays silent for expire_after (from the send) closes the session once."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.advance(100.0)  # idle first: the expiry clock starts at the send, not at the connect
    sent_at = peer.clock.now
    peer.endpoint.send(S, b"anyone?")
    peer.sent()
    peer.clock.now = sent_at + 59.999
    peer.endpoint.tick()
    peer.sent()  # a retransmission is due too: the peer may still answer it
    events = peer.events()
    assert events == [], called(
        f"tick() {at(peer.clock.now)}, 59.999 s after unacked data was sent", events, []
    )
    peer.clock.now = sent_at + 60.0
    peer.endpoint.tick()
    events = peer.events()
    assert events == [Closed(S)], called(
        f"tick() {at(peer.clock.now)}, 60 s after unacked data was sent", events, [Closed(S)]
    )
    peer.sent()
    out = peer.advance(120.0)
    events = peer.events()
    assert out == [] and events == [], called(
        "tick() 120 s after the session expired", (out, events), "([], []): Closed once, no resends"
    )
    out = peer.replies(data_msg(S, 0, b"late"))
    assert out == [b"/close/%d/" % S], called_on(
        data_msg(S, 0, b"late") + b" after expiry", out, [b"/close/%d/" % S]
    )


@pytest.mark.points(2)
def test_hearing_from_the_peer_restarts_the_expiry_clock():
    """Any valid message from the peer restarts the expiry clock: a peer that answers is not gone."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    peer.open(S)
    peer.endpoint.send(S, b"0123456789")
    peer.sent()
    peer.advance(50.0)
    peer.replies(b"/ack/%d/5/" % S)  # at t=50: half of it acked, the rest still owed
    peer.clock.now = START + 50.0 + 59.999
    peer.endpoint.tick()
    events = peer.events()
    assert events == [], called(
        f"tick() {at(peer.clock.now)}: send at t=0, /ack/{S}/5/ at t=50, expire_after=60",
        events,
        "[] (the ack at t=50 restarted the clock: expiry at t=110)",
    )
    peer.clock.now = START + 110.0
    peer.endpoint.tick()
    events = peer.events()
    assert events == [Closed(S)], called(
        f"tick() {at(peer.clock.now)}, 60 s after the peer's last message, 5 bytes unacked",
        events,
        [Closed(S)],
    )


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


def _deadline_no_session(peer: Peer) -> tuple[str, float | None]:
    return "with no session", None


def _deadline_idle(peer: Peer) -> tuple[str, float | None]:
    peer.open(S)
    return "after a connect from the peer at t=0 (nothing owed: no timer)", None


def _deadline_retransmit(peer: Peer) -> tuple[str, float | None]:
    peer.open(S)
    peer.clock.advance(10.0)
    peer.endpoint.send(S, b"x")
    return "after a send at t=10 (retransmission at 13, expiry at 70)", START + 13.0


def _deadline_partial_ack(peer: Peer) -> tuple[str, float | None]:
    peer.open(S)
    peer.clock.advance(10.0)
    peer.endpoint.send(S, b"xy")
    peer.clock.advance(1.0)
    peer.replies(b"/ack/%d/1/" % S)
    return "after a send at t=10 and a partial ack at t=11 (retransmission at 14)", START + 14.0


def _deadline_all_acked(peer: Peer) -> tuple[str, float | None]:
    peer.open(S)
    peer.clock.advance(10.0)
    peer.endpoint.send(S, b"x")
    peer.clock.advance(1.0)
    peer.replies(b"/ack/%d/1/" % S)
    return "after a send at t=10 and its ack at t=11 (nothing owed: no timer)", None


def _deadline_expiry_first(peer: Peer) -> tuple[str, float | None]:
    peer.endpoint = LrcpEndpoint(clock=peer.clock, retransmit_after=100.0, expire_after=60.0)
    peer.open(S)
    peer.endpoint.send(S, b"x")
    return "after a send at t=0, retransmit_after=100, expire_after=60", START + 60.0


def _deadline_connecting(peer: Peer) -> tuple[str, float | None]:
    peer.endpoint.connect(S, peer.addr)
    return "after connect() at t=0 (the connect is resent at 3)", START + 3.0


def _deadline_expired(peer: Peer) -> tuple[str, float | None]:
    peer.open(S)
    peer.endpoint.send(S, b"x")
    peer.advance(60.0)
    return "once the only session expired", None


DEADLINES = {
    "no session": _deadline_no_session,
    "idle session": _deadline_idle,
    "retransmission due first": _deadline_retransmit,
    "partial ack restarts the timer": _deadline_partial_ack,
    "everything acked": _deadline_all_acked,
    "expiry due first": _deadline_expiry_first,
    "connecting": _deadline_connecting,
    "expired session": _deadline_expired,
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(DEADLINES.values()), ids=list(DEADLINES))
def test_next_deadline_is_the_earliest_running_timer(case):
    """next_deadline() is the earliest retransmission or expiry time, or None when no timer runs."""
    peer = Peer(retransmit_after=3.0, expire_after=60.0)
    when, want = case(peer)
    got = peer.endpoint.next_deadline()
    ok = got is None if want is None else got is not None and math.isclose(got, want, abs_tol=1e-6)
    shown = None if want is None else f"t={want - START:g}"
    got_shown = got if got is None else f"t={got - START:g}"
    assert ok, called(f"next_deadline() {when}", got_shown, shown)


def _connecting() -> Peer:
    peer = Peer(addr=SERVER, retransmit_after=3.0, expire_after=60.0)
    peer.endpoint.connect(S, SERVER)
    return peer


@pytest.mark.points(1)
def test_connect_sends_connect_to_the_address():
    """connect(S, addr) puts /connect/S/ on the wire, addressed to addr."""
    peer = _connecting()
    out = peer.endpoint.datagrams_to_send()
    want = [(b"/connect/%d/" % S, SERVER)]
    assert out == want, called(f"connect({S}, {SERVER})", out, want)


@pytest.mark.points(1)
def test_an_unanswered_connect_is_resent_every_retransmit_after():
    """An unanswered /connect/ is resent retransmit_after seconds later (not before), and again after that."""
    peer = _connecting()
    peer.sent()
    early = peer.advance(2.999)
    assert early == [], called("tick() 2.999 s after an unanswered connect", early, [])
    for _ in range(2):
        again = peer.advance(0.001)
        assert again == [b"/connect/%d/" % S], called(
            f"tick() {at(peer.clock.now)}, the connect still unanswered",
            again,
            [b"/connect/%d/" % S],
        )
        peer.advance(2.999)


@pytest.mark.points(1)
def test_data_sent_while_connecting_waits_for_the_ack():
    """Bytes given to send() before the connect is acked stay off the wire, then go out on the ack."""
    peer = _connecting()
    peer.sent()
    peer.endpoint.send(S, b"early")
    held = peer.sent()
    assert held == [], called(f"send({S}, b'early') before the connect was acked", held, [])
    out = peer.replies(b"/ack/%d/0/" % S)
    assert out == [b"/data/%d/0/early/" % S], called_on(
        b"/ack/%d/0/ (the connect's ack)" % S, out, [b"/data/%d/0/early/" % S]
    )


@pytest.mark.points(1)
def test_the_connects_ack_reports_connected_once():
    """The peer's ack of the connect reports Connected(S); a duplicate of that ack reports nothing."""
    peer = _connecting()
    peer.sent()
    peer.replies(b"/ack/%d/0/" % S)
    events = peer.events()
    assert events == [Connected(S)], called_on(
        b"/ack/%d/0/" % S, events, [Connected(S)], "events()"
    )
    out = peer.replies(b"/ack/%d/0/" % S)
    events = peer.events()
    assert events == [] and out == [], called_on(b"/ack/%d/0/ again" % S, (out, events), ([], []))


@pytest.mark.points(1)
def test_data_from_the_peer_also_answers_the_connect():
    """Data from the peer answers our connect too: Connected(S), then the data, then no more connects."""
    peer = _connecting()
    peer.sent()
    out = peer.replies(b"/data/%d/0/hi/" % S)
    events = peer.events()
    want = [Connected(S), DataReceived(S, b"hi")]
    assert events == want, called_on(b"/data/%d/0/hi/" % S, events, want, "events()")
    assert out == [b"/ack/%d/2/" % S], called_on(b"/data/%d/0/hi/" % S, out, [b"/ack/%d/2/" % S])
    later = peer.advance(3.0)
    assert later == [], called("tick() 3 s after the connect was answered", later, [])


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
