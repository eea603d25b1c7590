"""Hidden specs for reliable_udp: the LRCP messages, one endpoint, the spec as its peer.

Datagrams are written and read with the independent encoder/decoder in _helpers.py.
"""

from __future__ import annotations

import pytest
from _helpers import CLIENT, STRANGER, Peer, called_on, data_msg, decode_data, escape, stream_of
from reliable_udp import Closed, Connected, DataReceived

from grader.spectools import called, short, step

S = 1234567


def expect(peer: Peer, datagram: bytes, want: list[bytes], events: list | None = None) -> None:
    got = peer.replies(datagram)
    assert got == want, called_on(datagram, got, want)
    if events is not None:
        seen = peer.events()
        assert seen == events, called_on(datagram, seen, events, what="events()")


def expect_silence(peer: Peer, datagram: bytes, why: str) -> None:
    got = peer.feed(datagram)
    events = peer.events()
    assert got == [] and events == [], (
        f"Delivered {short(datagram)} ({why}); the endpoint sent {short(got)} and reported "
        f"{short(events)}; an illegal packet must be silently ignored"
    )


# --- sessions -------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_connect_opens_a_session():
    """/connect/S/ opens session S: the peer gets /ack/S/0/ and the application a Connected(S)."""
    peer = Peer()
    out = peer.feed(b"/connect/%d/" % S)
    want = [(b"/ack/%d/0/" % S, CLIENT)]
    assert out == want, called_on(b"/connect/%d/" % S, out, want, what="datagrams_to_send()")
    events = peer.events()
    assert events == [Connected(S)], called_on(
        b"/connect/%d/" % S, events, [Connected(S)], "events()"
    )
    assert peer.events() == [] and peer.sent() == [], (
        "Called events() and datagrams_to_send() a second time; they must be empty (each call "
        "hands over what is new and clears it)"
    )


@pytest.mark.points(1)
def test_duplicate_connect_is_acked_again_without_a_new_session():
    """A repeated /connect/ is acked again with the current length; Connected comes only once."""
    peer = Peer()
    peer.open(S)
    expect(peer, b"/connect/%d/" % S, [b"/ack/%d/0/" % S], [])
    expect(peer, data_msg(S, 0, b"hello"), [b"/ack/%d/5/" % S], [DataReceived(S, b"hello")])
    # A late copy of the connect: acking 0 now would move the ack backwards.
    expect(peer, b"/connect/%d/" % S, [b"/ack/%d/5/" % S], [])


@pytest.mark.points(3)
def test_data_in_order_is_acked_and_delivered():
    """In-order data is acked with the total length received and delivered as DataReceived."""
    peer = Peer()
    peer.open(S)
    expect(peer, b"/data/%d/0/hello\n/" % S, [b"/ack/%d/6/" % S], [DataReceived(S, b"hello\n")])
    expect(
        peer,
        b"/data/%d/6/Hello, world!\n/" % S,
        [b"/ack/%d/20/" % S],
        [DataReceived(S, b"Hello, world!\n")],
    )
    # an empty data message is legal: nothing new, the same ack
    expect(peer, b"/data/%d/20//" % S, [b"/ack/%d/20/" % S], [])


@pytest.mark.points(2)
def test_escaped_bytes_count_once():
    """In DATA, "\\/" and "\\\\" are one byte each: unescaped before delivery and in the ack."""
    peer = Peer()
    peer.open(S)
    expect(peer, b"/data/%d/0/\\//" % S, [b"/ack/%d/1/" % S], [DataReceived(S, b"/")])
    expect(
        peer,
        b"/data/%d/1/foo\\/bar\\\\baz/" % S,
        [b"/ack/%d/12/" % S],
        [DataReceived(S, b"foo/bar\\baz")],
    )
    expect(peer, b"/data/%d/12/\\\\\\//" % S, [b"/ack/%d/14/" % S], [DataReceived(S, b"\\/")])


@pytest.mark.points(3)
def test_duplicate_data_is_acked_but_delivered_once():
    """Data already received is acked again (with the full length) but never delivered twice."""
    peer = Peer()
    peer.open(S)
    expect(peer, data_msg(S, 0, b"hello"), [b"/ack/%d/5/" % S], [DataReceived(S, b"hello")])
    expect(peer, data_msg(S, 0, b"hello"), [b"/ack/%d/5/" % S], [])  # an exact duplicate
    expect(peer, data_msg(S, 0, b"he"), [b"/ack/%d/5/" % S], [])  # an old fragment
    # overlapping: only the bytes after 5 are new
    expect(peer, data_msg(S, 3, b"lo world"), [b"/ack/%d/11/" % S], [DataReceived(S, b" world")])
    expect(peer, data_msg(S, 6, b"wor"), [b"/ack/%d/11/" % S], [])


@pytest.mark.points(3)
def test_data_beyond_a_gap_is_not_accepted():
    """Data starting after what was received is not delivered; the current ack is repeated."""
    peer = Peer()
    peer.open(S)
    expect(peer, b"/data/%d/5/world/" % S, [b"/ack/%d/0/" % S], [])
    expect(peer, data_msg(S, 0, b"hello"), [b"/ack/%d/5/" % S], [DataReceived(S, b"hello")])
    expect(peer, data_msg(S, 9, b"gap"), [b"/ack/%d/5/" % S], [])
    # the "world" that came early was not kept: only its retransmission is delivered
    expect(peer, data_msg(S, 5, b"world"), [b"/ack/%d/10/" % S], [DataReceived(S, b"world")])


@pytest.mark.points(1)
def test_unknown_session_gets_close():
    """Data or an ack for a session that isn't open is answered with /close/SESSION/ only."""
    peer = Peer()
    peer.open(S)
    for datagram in (b"/data/77/0/hi/", b"/ack/77/0/", b"/ack/77/3/"):
        expect(peer, datagram, [b"/close/77/"], [])


@pytest.mark.points(1)
def test_a_close_from_the_peer_ends_the_session():
    """/close/S/ is answered with /close/S/ and Closed(S), and the session's state is gone."""
    peer = Peer()
    peer.open(S)
    expect(peer, b"/close/%d/" % S, [b"/close/%d/" % S], [Closed(S)])
    expect(peer, data_msg(S, 0, b"late"), [b"/close/%d/" % S], [])  # the state is gone


@pytest.mark.points(1)
def test_close_by_the_application_sends_close():
    """close(S) on an open session sends /close/S/ to the peer and reports Closed(S)."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.close(S)
    out, events = peer.sent(), peer.events()
    assert out == [b"/close/%d/" % S] and events == [Closed(S)], called(
        f"close({S}) on an open session; datagrams and events were",
        (out, events),
        ([b"/close/%d/" % S], [Closed(S)]),
    )


@pytest.mark.points(1)
def test_close_of_a_session_that_is_not_open_does_nothing():
    """close(S) for a session that is not open sends nothing, reports nothing, raises nothing."""
    peer = Peer()
    peer.open(S)
    with step("close(424242) on a session that is not open"):
        peer.endpoint.close(424242)
    out, events = peer.sent(), peer.events()
    assert out == [] and events == [], called(
        "close(424242) on a session that is not open", (out, events), ([], [])
    )


@pytest.mark.points(1)
def test_close_for_an_unknown_session_is_not_answered():
    """A /close/ for a session that isn't open gets no reply (else two peers bounce closes forever)."""
    peer = Peer()
    expect_silence(peer, b"/close/55/", "a close for a session that is not open")


@pytest.mark.points(1)
def test_messages_from_another_address_are_ignored():
    """A session belongs to the address that opened it: messages for it from elsewhere are ignored."""
    peer = Peer()
    peer.open(S)
    for datagram in (data_msg(S, 0, b"spoof"), b"/close/%d/" % S, b"/connect/%d/" % S):
        out = peer.feed(datagram, STRANGER)
        events = peer.events()
        assert out == [] and events == [], (
            f"Delivered {short(datagram)} from {STRANGER}, not the session's peer {CLIENT}; the "
            f"endpoint sent {short(out)} and reported {short(events)}; expected nothing"
        )
    expect(peer, data_msg(S, 0, b"real"), [b"/ack/%d/4/" % S], [DataReceived(S, b"real")])


# --- validation -----------------------------------------------------------------------------


MALFORMED = {
    "empty": b"",
    "a lone slash": b"/",
    "two slashes": b"//",
    "no leading slash": b"connect/5/",
    "no trailing slash": b"/connect/5",
    "an empty extra field": b"/connect/5//",
    "the type in capitals": b"/Connect/5/",
    "an unknown type": b"/hello/5/",
    "connect with two fields": b"/connect/5/6/",
    "ack without a length": b"/ack/%d/" % S,
    "ack with three fields": b"/ack/%d/3/4/" % S,
    "data without a payload field": b"/data/%d/3/" % S,
    "data with an unescaped slash (one field too many)": b"/data/%d/3/d/e/" % S,
    "data without its closing slash": b"/data/%d/3/d" % S,
    "close with an extra field": b"/close/%d/x/" % S,
    "a leading space": b" /connect/5/",
    "a trailing newline": b"/connect/5/\n",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("datagram", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_messages_are_ignored(datagram):
    """Messages without both slashes, of an unknown type, or with the wrong field count are ignored."""
    peer = Peer()
    peer.open(S)
    expect(peer, data_msg(S, 0, b"abc"), [b"/ack/%d/3/" % S], [DataReceived(S, b"abc")])
    expect_silence(peer, datagram, "not a well-formed LRCP message")
    expect(peer, data_msg(S, 3, b"d"), [b"/ack/%d/4/" % S], [DataReceived(S, b"d")])


BAD_NUMBERS = {
    "session -5": b"/connect/-5/",
    "session +5": b"/connect/+5/",
    "session with a leading space": b"/connect/ 5/",
    "session with a trailing space": b"/connect/5 /",
    "session 5.0": b"/connect/5.0/",
    "session 0x5": b"/connect/0x5/",
    "session 1_000": b"/connect/1_000/",
    "an Arabic-Indic digit three (int() takes it)": "/connect/\u0663/".encode(),
    "a fullwidth digit five (int() takes it)": "/connect/\uff15/".encode(),
    "an empty session": b"/connect//",
    "session 2**31": b"/connect/2147483648/",
    "a 23-digit session": b"/connect/99999999999999999999999/",
    "data at position -1": b"/data/%d/-1/x/" % S,
    "data at position 2**31": b"/data/%d/2147483648/x/" % S,
    "ack of 2**31": b"/ack/%d/2147483648/" % S,
    "ack of x": b"/ack/%d/x/" % S,
}


@pytest.mark.points(1)
@pytest.mark.parametrize("datagram", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
def test_numbers_must_be_plain_decimals_below_2_to_the_31(datagram):
    """Numeric fields are ASCII digits only, and smaller than 2147483648; anything else is ignored."""
    peer = Peer()
    peer.open(S)
    expect_silence(peer, datagram, "a field that is not a number below 2**31")


@pytest.mark.points(1)
@pytest.mark.parametrize("session", [2147483647, 0], ids=["2**31 - 1", "0"])
def test_session_numbers_at_the_limits_are_accepted(session):
    """Session numbers 0 and 2147483647 (2**31 - 1, the largest) are valid."""
    peer = Peer()
    expect(peer, b"/connect/%d/" % session, [b"/ack/%d/0/" % session], [Connected(session)])


def _data_of(total: int, session: int = S) -> bytes:
    header = b"/data/%d/0/" % session
    return header + b"x" * (total - len(header) - 1) + b"/"


@pytest.mark.points(1)
def test_a_999_byte_datagram_is_accepted():
    """A data message of 999 bytes, the largest LRCP allows, is delivered and acked."""
    peer = Peer()
    peer.open(S)
    fits = _data_of(999)
    n = len(fits) - len(b"/data/%d/0/" % S) - 1
    expect(peer, fits, [b"/ack/%d/%d/" % (S, n)], [DataReceived(S, b"x" * n)])


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [1000, 1001], ids=["1000 bytes", "1001 bytes"])
def test_datagrams_of_1000_bytes_or_more_are_ignored(size):
    """A datagram of 1000 bytes or more is not LRCP: it is ignored silently."""
    peer = Peer()
    peer.open(S)
    expect_silence(peer, _data_of(size), f"{size} bytes long")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "raw",
    [b"a\\nb", b"\\x", b"abc\\", b"\\\\\\"],
    ids=["backslash n", "backslash x", "a trailing backslash", "three backslashes"],
)
def test_data_with_a_bad_escape_is_ignored(raw):
    """DATA with a backslash escaping anything but / or \\ (or a lone trailing backslash) is ignored."""
    peer = Peer()
    peer.open(S)
    expect_silence(peer, b"/data/%d/0/%s/" % (S, raw), "DATA with a bad escape")
    expect(peer, data_msg(S, 0, b"\\n"), [b"/ack/%d/2/" % S], [DataReceived(S, b"\\n")])


# --- sending --------------------------------------------------------------------------------


@pytest.mark.points(1)
def test_send_puts_escaped_data_on_the_wire():
    """send(S, data) emits /data/S/POS/DATA/ with "/" and "\\" escaped, backslashes first."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.send(S, b"foo/bar\\baz")
    got = peer.sent()
    want = [b"/data/%d/0/foo\\/bar\\\\baz/" % S]
    assert got == want, called(f"send({S}, b'foo/bar\\\\baz')", got, want)


@pytest.mark.points(1)
def test_positions_count_unescaped_bytes():
    """POS of the next send counts the raw bytes sent before, not their escaped length."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.send(S, b"foo/bar\\baz")
    peer.sent()
    peer.endpoint.send(S, b"olleh\n")
    got = peer.sent()
    want = [b"/data/%d/11/olleh\n/" % S]
    assert got == want, called(f"send({S}, b'olleh\\n') after 11 raw bytes", got, want)


@pytest.mark.points(1)
def test_an_empty_send_sends_nothing():
    """send(S, b"") puts nothing on the wire."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.send(S, b"")
    got = peer.sent()
    assert got == [], called(f"send({S}, b'')", got, [])


@pytest.mark.points(1)
def test_send_on_a_session_that_is_not_open_raises_key_error():
    """send() for a session that is not open raises KeyError."""
    peer = Peer()
    peer.open(S)
    try:
        peer.endpoint.send(999, b"x")
    except KeyError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(called("send(999, b'x')", exc, "KeyError")) from None
    raise AssertionError(called("send(999, b'x') for a session that is not open", None, "KeyError"))


@pytest.mark.points(2)
def test_large_sends_are_chunked_under_1000_bytes():
    """Every datagram stays under 1000 bytes after escaping, and the chunks rebuild the stream."""
    peer = Peer()
    peer.open(S)
    data = b"/" * 3000 + b"x" * 3000 + bytes(range(256)) * 4 + b"\\" * 999
    peer.endpoint.send(S, data)
    out = peer.sent()
    big = [len(d) for d in out if len(d) >= 1000]
    assert not big, called(
        f"send({S}, {len(data)} bytes)", f"datagrams of {big[:5]} bytes", "all < 1000"
    )
    rebuilt, pos = b"", 0
    for datagram in out:
        message = decode_data(datagram)
        assert message is not None and message[0] == S and message[1] == pos, (
            f"Called send({S}, {len(data)} bytes); datagram {short(datagram, 80)} is not "
            f"/data/{S}/{pos}/.../ (chunks must follow each other)"
        )
        rebuilt += message[2]
        pos += len(message[2])
    assert rebuilt == data, called(
        f"send({S}, {len(data)} bytes): the chunks joined", short(rebuilt), short(data)
    )
    bound = len(escape(data)) // 400 + 2
    assert len(out) <= bound, called(
        f"send({S}, {len(data)} bytes)", f"{len(out)} datagrams", f"at most {bound} (fill them)"
    )


@pytest.mark.points(1)
def test_a_smaller_ack_than_before_is_ignored():
    """An ack below the highest so far is a late duplicate: ignored, not a misbehaviour."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.send(S, b"0123456789")
    peer.sent()
    # a partial ack: nothing, or (as LRCP suggests) an immediate resend of the bytes after 6
    got = peer.replies(b"/ack/%d/6/" % S)
    resent = [decode_data(d) for d in got]
    ok = all(m and m[0] == S and m[1] >= 6 for m in resent) and peer.events() == []
    assert ok, called_on(b"/ack/%d/6/" % S, got, "nothing, or /data/ from position 6 on")
    expect(peer, b"/ack/%d/2/" % S, [], [])
    expect(peer, b"/ack/%d/10/" % S, [], [])


@pytest.mark.points(1)
def test_an_ack_past_what_was_sent_closes_the_session():
    """An ack for more bytes than were ever sent closes the session: /close/S/ and Closed(S)."""
    peer = Peer()
    peer.open(S)
    peer.endpoint.send(S, b"0123456789")
    peer.sent()
    expect(peer, b"/ack/%d/10/" % S, [], [])  # exactly what was sent: fine
    expect(peer, b"/ack/%d/11/" % S, [b"/close/%d/" % S], [Closed(S)])
    expect(peer, b"/ack/%d/10/" % S, [b"/close/%d/" % S], [])  # closed: the session is gone
