"""Hidden specs for the sans-IO Connection: frames built by hand are fed in, events and the bytes
in data_to_send() come out (parsed by the websockets library)."""

from __future__ import annotations

import pytest
from _helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Run,
    chops,
    close_frame,
    connection,
    frame,
    parse_frames,
    run,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websocket import CloseReceived, Failed, Message, Ping, Pong, State

from grader.spectools import called, short, step

PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = 1002, 1007, 1009


def check_fails(pieces, code: int, what: str, **limits) -> Run:
    """Feeding ``pieces`` fails the connection: a Failed(code) event, one Close(code) written,
    state CLOSED, and no message or pong after the failure."""
    result = run(pieces, echo=False, **limits)
    fails = result.failures()
    assert fails and fails[0].code == code, called(
        f"receive_data({what})", result.events, f"Failed({code}, ...)"
    )
    frames = result.frames()
    assert [out.close_code for out in frames if out.opcode == CLOSE] == [code] and frames[
        -1
    ].opcode == CLOSE, called(
        f"receive_data({what}); data_to_send()", frames, f"a Close frame with code {code}, last"
    )
    state = result.connection.state
    assert state is State.CLOSED, called(
        f"receive_data({what}); connection.state", state, State.CLOSED
    )
    return result


# --- messages --------------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_text_and_binary_messages():
    """A masked text frame gives Message(str); a binary frame gives Message(bytes) (RFC 6455 §5.6)."""
    result = run([frame(TEXT, "h\u00e9llo"), frame(BINARY, b"\x00\xff")], echo=False)
    want = [Message("h\u00e9llo"), Message(b"\x00\xff")]
    assert result.events == want, called(
        "receive_data(text frame, binary frame)", result.events, want
    )


@pytest.mark.points(2)
def test_rfc_masked_hello():
    """The RFC's masked frame 81 85 37 fa 21 3d 7f 9f 4d 51 58 is the text message "Hello" (RFC 6455 §5.7)."""
    result = run([bytes.fromhex("818537fa213d7f9f4d5158")], echo=False)
    assert result.events == [Message("Hello")], called(
        "receive_data(81 85 37 fa 21 3d 7f 9f 4d 51 58)", result.events, [Message("Hello")]
    )


@pytest.mark.points(2)
def test_fragments_make_one_message():
    """Text fragments joined by continuation frames make one message; nothing comes out before
    the FIN frame (RFC 6455 §5.4)."""
    result = Run(connection())
    early = result.feed(frame(TEXT, "Hel", fin=False) + frame(CONT, "lo, ", fin=False))
    assert early == [], called("receive_data(two fragments without FIN)", early, [])
    last = result.feed(frame(CONT, "world"))
    assert last == [Message("Hello, world")], called(
        "receive_data(the FIN fragment)", last, [Message("Hello, world")]
    )


@pytest.mark.points(2)
def test_control_frames_between_fragments():
    """A Ping between fragments is answered at once, and the message still completes (RFC 6455 §5.4, §5.5)."""
    result = run(
        [frame(BINARY, b"ab", fin=False), frame(PING, b"?"), frame(CONT, b"cd")], echo=False
    )
    want = [Ping(b"?"), Message(b"abcd")]
    assert result.events == want, called(
        "receive_data(fragment, ping, fragment)", result.events, want
    )
    frames = result.frames()
    assert [(f.opcode, f.data) for f in frames] == [(PONG, b"?")], called(
        "data_to_send()", frames, "one Pong b'?'"
    )


@pytest.mark.points(2)
@settings(max_examples=30)
@given(
    messages=st.lists(st.tuples(st.booleans(), st.binary(max_size=40)), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
@example(messages=[(True, b"a")], cuts=[1])
@example(messages=[(False, b"x" * 200)], cuts=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
@example(messages=[(False, b"y" * 65536), (True, b"")], cuts=[1, 3, 9, 11, 13, 65549])
def test_any_chunking_gives_the_same_messages(messages, cuts):
    """The same stream cut at any byte boundaries gives the same messages: a frame split across
    reads is buffered until it is whole (RFC 6455 §5.2)."""
    # Text messages are the hex of the bytes (with a multi-byte character): valid UTF-8.
    sent = [f"\u00e9{data.hex()}" if is_text else data for is_text, data in messages]
    stream = b"".join(frame(TEXT if isinstance(m, str) else BINARY, m) for m in sent)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    conn = connection()
    events = []
    with step(f"connection.receive_data() of {len(sent)} messages cut at {points}"):
        for a, b in zip(points, points[1:], strict=False):
            events += conn.receive_data(stream[a:b])
    want = [Message(m) for m in sent]
    assert events == want, called(
        f"receive_data() of {len(sent)} messages cut at {points}", events, want
    )


@pytest.mark.points(2)
def test_each_length_form_is_read():
    """Payload lengths in the 7-, 16- and 64-bit forms are all read, at 125, 126, 65535 and 65536 bytes (RFC 6455 §5.2)."""
    sizes = [125, 126, 65535, 65536]
    result = run([frame(BINARY, b"z" * n) for n in sizes], echo=False)
    got = [len(e.data) for e in result.events if isinstance(e, Message)]
    assert got == sizes, called(
        "receive_data() of binary frames of 125, 126, 65535, 65536 bytes: sizes", got, sizes
    )


@pytest.mark.points(2)
def test_send_writes_unmasked_frames():
    """connection.send writes one unmasked frame: TEXT for str, BINARY for bytes (RFC 6455 §5.1, §5.6)."""
    conn = connection()
    with step('connection.send("h\u00e9"); send(b"\\x01"); data_to_send()'):
        conn.send("h\u00e9")
        conn.send(b"\x01")
        data = conn.data_to_send()
    frames = parse_frames(data, "data_to_send() after two sends")
    got = [(f.opcode, f.data) for f in frames]
    want = [(TEXT, "h\u00e9".encode()), (BINARY, b"\x01")]
    assert got == want, called('send("h\u00e9"), send(b"\\x01"); data_to_send()', got, want)
    with step("connection.data_to_send() a second time"):
        again = conn.data_to_send()
    assert again == b"", called("data_to_send() with nothing new queued", again, b"")


# --- pings --------------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_ping_is_answered_with_the_same_payload():
    """A Ping is answered with a Pong carrying the same payload (RFC 6455 §5.5.2, §5.5.3)."""
    result = run([frame(PING, b"are you there?")], echo=False)
    frames = result.frames()
    assert [(f.opcode, f.data) for f in frames] == [(PONG, b"are you there?")], called(
        "receive_data(Ping 'are you there?'); data_to_send()", frames, "Pong 'are you there?'"
    )
    assert result.events == [Ping(b"are you there?")], called(
        "receive_data(Ping)", result.events, [Ping(b"are you there?")]
    )


@pytest.mark.points(1)
def test_ping_payload_limit():
    """connection.ping() takes up to 125 bytes of payload and raises ValueError for 126, so it
    never writes an invalid control frame (RFC 6455 §5.5)."""
    conn = connection()
    with step("connection.ping(b'p' * 125)"):
        conn.ping(b"p" * 125)
    frames = parse_frames(conn.data_to_send(), "data_to_send() after ping(125 bytes)")
    assert [(f.opcode, len(f.data)) for f in frames] == [(PING, 125)], called(
        "ping(125 bytes); data_to_send()", frames, "one Ping of 125 bytes"
    )
    try:
        conn.ping(b"p" * 126)
    except ValueError:
        pass
    except NotImplementedError:
        raise
    except Exception as error:
        raise AssertionError(called("ping(126 bytes)", f"raised {error!r}", "ValueError")) from None
    else:
        raise AssertionError(called("ping(126 bytes)", "no exception", "ValueError"))
    leftover = conn.data_to_send()
    assert leftover == b"", called("data_to_send() after the refused ping", leftover, b"")


@pytest.mark.points(1)
def test_pong_is_reported_not_answered():
    """A Pong is reported as an event and never answered (RFC 6455 §5.5.3)."""
    result = run([frame(PONG, b"beat")], echo=False)
    assert result.events == [Pong(b"beat")] and result.written == b"", called(
        "receive_data(Pong 'beat'): events, data_to_send()",
        (result.events, bytes(result.written)),
        ([Pong(b"beat")], b""),
    )


@pytest.mark.points(1)
def test_server_ping():
    """connection.ping(payload) writes an unmasked Ping with that payload (RFC 6455 §5.5.2)."""
    conn = connection()
    with step('connection.ping(b"hb")'):
        conn.ping(b"hb")
    frames = parse_frames(conn.data_to_send(), "data_to_send() after ping")
    assert [(f.opcode, f.data) for f in frames] == [(PING, b"hb")], called(
        'ping(b"hb"); data_to_send()', frames, "Ping b'hb'"
    )


# --- protocol errors: 1002 ---------------------------------------------------------------------------

PROTOCOL_ERRORS = {
    "unmasked client frame": [frame(TEXT, b"hi", mask=None)],
    "RSV1 set": [frame(TEXT, b"hi", rsv=4)],
    "RSV2 set": [frame(BINARY, b"hi", rsv=2)],
    "RSV3 set on a ping": [frame(PING, b"", rsv=1)],
    "opcode 3": [frame(3, b"")],
    "opcode 7": [frame(7, b"x")],
    "opcode 11": [frame(11, b"")],
    "opcode 15": [frame(15, b"x")],
    "ping of 126 bytes": [frame(PING, b"p" * 126)],
    "close of 126 bytes": [close_frame(1000, "r" * 124)],
    "fragmented ping": [frame(PING, b"a", fin=False)],
    "continuation with nothing to continue": [frame(CONT, b"x")],
    "text inside a fragmented message": [frame(TEXT, b"a", fin=False), frame(TEXT, b"b")],
    "binary inside a fragmented message": [frame(BINARY, b"a", fin=False), frame(BINARY, b"b")],
    "16-bit length for 5 bytes": [frame(BINARY, b"12345", length_form=16)],
    "16-bit length for 125 bytes": [frame(BINARY, b"x" * 125, length_form=16)],
    "64-bit length for 126 bytes": [frame(BINARY, b"x" * 126, length_form=64)],
    "64-bit length for 65535 bytes": [frame(BINARY, b"x" * 65535, length_form=64)],
    "64-bit length with the top bit set": [frame(BINARY, b"", length_form=64, length=1 << 63)],
    "close with a 1-byte body": [frame(CLOSE, b"\x03")],
    "close code 1005": [close_frame(1005)],
    "close code 1006": [close_frame(1006)],
    "close code 1015": [close_frame(1015)],
    "close code 999": [close_frame(999)],
    "close code 2999": [close_frame(2999)],
    "close code 5000": [close_frame(5000)],
}


@pytest.mark.points(1)
@pytest.mark.parametrize("pieces", list(PROTOCOL_ERRORS.values()), ids=list(PROTOCOL_ERRORS))
def test_protocol_error_fails_with_1002(pieces, request):
    """A frame that breaks the framing rules fails the connection: a Close with 1002, then
    nothing more (RFC 6455 §5.1-§5.5, §7.1.7, §7.4.1)."""
    check_fails(pieces, PROTOCOL_ERROR, f"<{request.node.callspec.id}>")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "size", [65535, 65536], ids=["16-bit-form-at-its-max", "64-bit-form-at-its-min"]
)
def test_minimal_lengths_at_each_boundary_are_accepted(size):
    """The shortest length form is accepted at the boundaries: 65535 in 16 bits, 65536 in 64 bits (RFC 6455 §5.2)."""
    result = run([frame(BINARY, b"q" * size)], echo=False)
    assert [type(e).__name__ for e in result.events] == ["Message"], called(
        f"receive_data(binary frame of {size} bytes in the shortest form)",
        result.events,
        "one Message",
    )


@pytest.mark.points(1)
def test_frames_after_the_error_are_ignored():
    """After a failure, later bytes give no events and write nothing (RFC 6455 §7.1.7)."""
    result = run(
        [frame(TEXT, b"ok"), frame(3, b""), frame(PING, b"late"), frame(TEXT, b"late")], echo=False
    )
    assert (
        result.events[0] == Message("ok")
        and isinstance(result.events[1], Failed)
        and len(result.events) == 2
    ), called(
        "receive_data(text, opcode 3, ping, text)",
        result.events,
        "[Message('ok'), Failed(1002, ...)]",
    )
    more = result.feed(frame(PING, b"again"))
    assert more == [] and [f.opcode for f in result.frames()] == [CLOSE], called(
        "receive_data(ping) after the failure; data_to_send()",
        (more, result.frames()),
        "([], one Close only)",
    )


# --- UTF-8: 1007 ----------------------------------------------------------------------------------


UTF8_ERRORS = {
    "lone continuation byte": [frame(TEXT, b"a\x80b")],
    "surrogate": [frame(TEXT, b"\xed\xa0\x80")],
    "overlong slash": [frame(TEXT, b"\xc0\xaf")],
    "above U+10FFFF": [frame(TEXT, b"\xf4\x90\x80\x80")],
    "truncated at the end": [frame(TEXT, b"ok\xe2\x82")],
    "truncated across fragments": [frame(TEXT, b"\xe2\x82", fin=False), frame(CONT, b"")],
    "invalid in the second fragment": [frame(TEXT, b"ab", fin=False), frame(CONT, b"\xff")],
}


@pytest.mark.points(1)
@pytest.mark.parametrize("pieces", list(UTF8_ERRORS.values()), ids=list(UTF8_ERRORS))
def test_invalid_utf8_text_fails_with_1007(pieces, request):
    """A text message that is not valid UTF-8 fails the connection with 1007 (RFC 6455 §8.1, §7.4.1)."""
    check_fails(pieces, INVALID_DATA, f"<{request.node.callspec.id}>")


@pytest.mark.points(1)
def test_utf8_split_across_fragments_is_valid():
    """A code point split across fragments is valid: UTF-8 is checked on the whole message (RFC 6455 §5.6, §8.1)."""
    euro = "\u20ac".encode()
    result = run(
        [
            frame(TEXT, euro[:1], fin=False),
            frame(CONT, euro[1:2], fin=False),
            frame(CONT, euro[2:]),
        ],
        echo=False,
    )
    assert result.events == [Message("\u20ac")], called(
        "receive_data(\u20ac split in three fragments)", result.events, [Message("\u20ac")]
    )


@pytest.mark.points(1)
def test_binary_messages_are_not_utf8_checked():
    """Binary messages may hold any bytes (RFC 6455 §5.6)."""
    result = run([frame(BINARY, b"\xff\xfe\xc0\xaf")], echo=False)
    assert result.events == [Message(b"\xff\xfe\xc0\xaf")], called(
        "receive_data(binary \\xff\\xfe\\xc0\\xaf)", result.events, [Message(b"\xff\xfe\xc0\xaf")]
    )


@pytest.mark.points(1)
def test_close_reason_must_be_utf8():
    """A Close reason that is not UTF-8 fails the connection with 1007 (RFC 6455 §5.5.1, §8.1)."""
    check_fails([close_frame(1000, b"\xff")], INVALID_DATA, "Close(1000, b'\\xff')")


# --- limits: 1009 -----------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize("size", [999, 1000], ids=["limit-minus-1", "at-limit"])
def test_frame_at_or_under_max_frame_size_is_accepted(size):
    """A frame of max_frame_size bytes (or one less) is accepted."""
    result = run(
        [frame(BINARY, b"f" * size)], echo=False, max_frame_size=1000, max_message_size=10_000
    )
    assert result.events == [Message(b"f" * size)], called(
        f"Connection(max_frame_size=1000).receive_data(frame of {size} bytes)",
        result.events,
        "one Message",
    )


@pytest.mark.points(2)
def test_frame_over_max_frame_size_fails_with_1009():
    """A frame one byte over max_frame_size fails the connection with 1009 (RFC 6455 §7.4.1)."""
    check_fails(
        [frame(BINARY, b"f" * 1001)],
        TOO_BIG,
        "frame of 1001 bytes, max_frame_size=1000",
        max_frame_size=1000,
        max_message_size=10_000,
    )


@pytest.mark.points(2)
def test_oversized_frame_is_refused_from_its_header():
    """A frame announcing more than max_frame_size fails with 1009 as soon as its header arrives,
    before any payload: the connection never buffers toward it."""
    header = frame(BINARY, b"", length=1 << 40)
    result = Run(connection(max_frame_size=1000, max_message_size=1 << 50))
    result.feed(header, what="receive_data(header of a 2^40-byte binary frame)")
    fails = result.failures()
    assert fails and fails[0].code == TOO_BIG, called(
        "Connection(max_frame_size=1000).receive_data(header announcing 2^40 bytes, no payload)",
        result.events,
        "Failed(1009, ...)",
    )


@pytest.mark.points(1)
def test_oversized_message_is_refused_from_the_fragment_header():
    """A continuation whose header takes the message over max_message_size fails with 1009
    before its payload arrives."""
    result = Run(connection(max_frame_size=1 << 50, max_message_size=1000))
    result.feed(frame(BINARY, b"a" * 600, fin=False), what="receive_data(600-byte fragment)")
    result.feed(
        frame(CONT, b"", length=1 << 30), what="receive_data(header of a 2^30-byte continuation)"
    )
    fails = result.failures()
    assert fails and fails[0].code == TOO_BIG, called(
        "Connection(max_message_size=1000): 600-byte fragment, then the header of a 2^30-byte "
        "continuation",
        result.events,
        "Failed(1009, ...)",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("total", [299, 300], ids=["limit-minus-1", "at-limit"])
def test_message_at_or_under_max_message_size_is_accepted(total):
    """A fragmented message of max_message_size bytes (or one less) is accepted."""
    pieces = [
        frame(BINARY, b"m" * 100, fin=False),
        frame(CONT, b"m" * 100, fin=False),
        frame(CONT, b"m" * (total - 200)),
    ]
    result = run(pieces, echo=False, max_frame_size=1000, max_message_size=300)
    assert result.events == [Message(b"m" * total)], called(
        f"Connection(max_message_size=300).receive_data(message of {total} bytes in 3 fragments)",
        result.events,
        "one Message",
    )


@pytest.mark.points(2)
def test_message_over_max_message_size_fails_with_1009():
    """A fragmented message one byte over max_message_size fails with 1009, though each frame is small (RFC 6455 §7.4.1)."""
    pieces = [
        frame(BINARY, b"m" * 100, fin=False),
        frame(CONT, b"m" * 100, fin=False),
        frame(CONT, b"m" * 101),
    ]
    check_fails(
        pieces,
        TOO_BIG,
        "3 fragments of 301 bytes in all, max_message_size=300",
        max_frame_size=1000,
        max_message_size=300,
    )


@pytest.mark.points(1)
def test_message_size_restarts_with_each_message():
    """max_message_size counts one message: many messages under the limit add up to more than it."""
    pieces = [frame(BINARY, b"r" * 300) for _ in range(4)]
    result = run(pieces, echo=False, max_frame_size=1000, max_message_size=300)
    assert len(result.events) == 4 and not result.failures(), called(
        "Connection(max_message_size=300).receive_data(4 messages of 300 bytes)",
        result.events,
        "4 Messages",
    )


@pytest.mark.points(1)
def test_buffer_holds_at_most_one_frame():
    """Whole frames are consumed as they arrive: a stream of many small frames fed byte by byte
    leaves no backlog (each message comes out as soon as its last byte is fed)."""
    result = Run(connection())
    stream = b"".join(frame(BINARY, bytes([i])) for i in range(50))
    counts = []
    for i, piece in enumerate(chops(stream, 1)):
        result.feed(piece, what=f"receive_data(byte {i} of 50 one-byte frames)")
        counts.append(len(result.events))
    want = [(i + 1) // 7 for i in range(len(stream))]
    assert counts == want, called(
        "events after each byte of 50 seven-byte frames", short(counts, 80), short(want, 80)
    )


# --- the closing handshake -----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_close_is_answered_with_the_same_code():
    """A Close from the client gets a Close with the same code; the state becomes CLOSED
    (RFC 6455 §5.5.1, §7.1.2)."""
    result = run([close_frame(4001, "bye")], echo=False)
    assert result.events == [CloseReceived(4001, "bye")], called(
        "receive_data(Close 4001 'bye')", result.events, [CloseReceived(4001, "bye")]
    )
    frames = result.frames()
    assert [f.close_code for f in frames] == [4001] and frames[0].opcode == CLOSE, called(
        "receive_data(Close 4001); data_to_send()", frames, "one Close with code 4001"
    )
    assert result.connection.state is State.CLOSED, called(
        "connection.state", result.connection.state, State.CLOSED
    )


@pytest.mark.points(1)
def test_empty_close_reports_1005():
    """A Close without a body is reported with code 1005 (no status) and answered with a Close
    that holds no 1005 on the wire (RFC 6455 §7.1.5, §7.4.1)."""
    result = run([close_frame()], echo=False)
    assert result.events == [CloseReceived(1005, "")], called(
        "receive_data(empty Close)", result.events, [CloseReceived(1005, "")]
    )
    frames = result.frames()
    assert len(frames) == 1 and frames[0].close_code in (None, 1000), called(
        "receive_data(empty Close); data_to_send()", frames, "one Close, empty or with 1000"
    )


@pytest.mark.parametrize(
    "reason", ["x" * 200, "\u00e9" * 100, "x" + "\u20ac" * 60], ids=["ascii", "2-byte", "3-byte"]
)
def test_a_long_close_reason_is_cut_to_a_valid_control_frame(reason):
    """close(code, reason) with a reason over 123 bytes writes a Close of at most 125 bytes whose
    reason is the longest whole-character prefix of the given one that fits (RFC 6455 §5.5, §5.5.1)."""
    conn = connection()
    with step(f"connection.close(4000, <{len(reason.encode())}-byte reason>)"):
        conn.close(4000, reason)
    data = conn.data_to_send()
    encoded = reason.encode("utf-8")
    want_reason = encoded[:123].decode("utf-8", "ignore").encode("utf-8")
    want = bytes([0x88, 2 + len(want_reason)]) + (4000).to_bytes(2, "big") + want_reason
    assert data == want, called(
        f"close(4000, <{len(encoded)}-byte reason>); data_to_send()",
        short(data),
        f"one Close frame: 4000 and the first {len(want_reason)} bytes of the reason",
    )


@pytest.mark.points(2)
def test_server_initiated_close():
    """close(code, reason) writes a Close and moves to CLOSING; the client's Close then ends it
    (CLOSED) without a second Close from the server (RFC 6455 §7.1.2)."""
    conn = connection()
    with step('connection.close(4000, "done")'):
        conn.close(4000, "done")
    frames = parse_frames(conn.data_to_send(), "data_to_send() after close(4000)")
    assert [(f.close_code, f.data[2:]) for f in frames] == [(4000, b"done")], called(
        'close(4000, "done"); data_to_send()', frames, "Close(4000, 'done')"
    )
    assert conn.state is State.CLOSING, called(
        "connection.state after close()", conn.state, State.CLOSING
    )
    result = Run(conn)
    events = result.feed(frame(TEXT, b"in flight") + close_frame(4000))
    assert events[-1:] == [CloseReceived(4000, "")] and result.written == b"", called(
        "receive_data(text in flight, Close 4000) while CLOSING: events, data_to_send()",
        (events, bytes(result.written)),
        "CloseReceived(4000), nothing written",
    )
    assert conn.state is State.CLOSED, called(
        "connection.state after the client's Close", conn.state, State.CLOSED
    )


@pytest.mark.points(1)
def test_second_close_writes_nothing():
    """A second close() writes no second Close frame: one endpoint sends one Close (RFC 6455 §5.5.1)."""
    conn = connection()
    with step("connection.close(1000); connection.close(1001)"):
        conn.close(1000)
        conn.close(1001)
        data = conn.data_to_send()
    frames = parse_frames(data, "data_to_send() after two close() calls")
    assert [f.close_code for f in frames] == [1000], called(
        "close(1000); close(1001); data_to_send()", frames, "one Close with 1000"
    )


@pytest.mark.points(1)
def test_send_after_close_raises():
    """send() after the closing handshake started raises instead of writing a data frame after the Close (RFC 6455 §5.5.1)."""
    conn = connection()
    with step("connection.close()"):
        conn.close()
    try:
        conn.send("too late")
    except NotImplementedError:
        raise
    except Exception:
        return
    raise AssertionError(called('close(); send("too late")', "no exception", "an exception"))


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "code", [1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999], ids=lambda c: f"code-{c}"
)
def test_valid_close_codes_are_accepted(code):
    """Registered close codes and the 3000-4999 range are accepted and echoed (RFC 6455 §7.4, IANA registry)."""
    result = run([close_frame(code)], echo=False)
    assert result.events == [CloseReceived(code, "")], called(
        f"receive_data(Close {code})", result.events, [CloseReceived(code, "")]
    )


@pytest.mark.points(1)
def test_reason_of_123_bytes_is_the_maximum():
    """A Close with a code and a 123-byte reason (125 in all) is accepted (RFC 6455 §5.5)."""
    result = run([close_frame(1000, "x" * 123)], echo=False)
    assert result.events == [CloseReceived(1000, "x" * 123)], called(
        "receive_data(Close 1000 + 123-byte reason)", result.events, "CloseReceived(1000, 'xxx...')"
    )
