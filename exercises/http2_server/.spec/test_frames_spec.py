"""What the sans-IO connection must accept and answer: the preface, SETTINGS, PING, padding,
priority, CONTINUATION, trailers, resets, GOAWAY (h2spec's "accept" cases, RFC 9113)."""

from __future__ import annotations

import pytest
from _helpers import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GET,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    POST,
    PREFACE,
    PRIORITY,
    PRIORITY_FLAG,
    RST_STREAM,
    SETTINGS,
    Client,
    ErrorCode,
    data_frame,
    frame,
    oracle_hpack,
    rst_stream,
    settings,
    window_update,
)
from http2_server import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from hypothesis import example, given
from hypothesis import strategies as st

from grader.spectools import called, short, step


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def test_server_preface_is_settings() -> None:
    """The server's first frame is a SETTINGS frame, sent before the client says anything (RFC 9113 §3.4; h2spec-3.5-1)."""
    client = Client()
    assert (
        client.frames and client.frames[0].type == SETTINGS and not client.frames[0].flags & ACK
    ), called(
        "H2Connection() then data_to_send()", client.frames, "a SETTINGS frame (without ACK) first"
    )


def test_server_settings_advertise_its_limits() -> None:
    """The server's SETTINGS carry its MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE and MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2): a limit the client is never told about cannot be enforced fairly."""
    client = Client(
        {"max_concurrent_streams": 7, "initial_window_size": 1000, "max_header_list_size": 8000}
    )
    first = client.frames[0] if client.frames else None
    payload = first.payload if first is not None else b""
    got = {
        int.from_bytes(payload[i : i + 2], "big"): int.from_bytes(payload[i + 2 : i + 6], "big")
        for i in range(0, len(payload) - 5, 6)
    }
    want = {3: 7, 4: 1000, 6: 8000}
    assert {k: got.get(k) for k in want} == want, called(
        "H2Connection(max_concurrent_streams=7, initial_window_size=1000, max_header_list_size=8000)",
        got,
        want,
    )


def test_settings_are_acknowledged() -> None:
    """Every SETTINGS frame from the client is answered with an empty SETTINGS ACK (RFC 9113 §6.5.3; h2spec-6.5.3-2)."""
    client = Client()
    client.send(PREFACE + settings((3, 10)), "the preface and SETTINGS(MAX_CONCURRENT_STREAMS=10)")
    client.send(settings((1, 0), (0x99, 1)), "SETTINGS(HEADER_TABLE_SIZE=0, unknown id 0x99=1)")
    acks = [f for f in client.of(SETTINGS) if f.flags & ACK]
    assert (
        len(acks) == 2
        and all(f.payload == b"" and f.stream_id == 0 for f in acks)
        and client.error is None
    ), (
        f"Sent two SETTINGS frames (the second with an unknown setting, h2spec-6.5-4): {client.said()}; "
        "expected two empty SETTINGS ACK frames on stream 0"
    )


def test_settings_ack_from_client_is_not_answered() -> None:
    """A SETTINGS ACK from the client is not itself acknowledged (RFC 9113 §6.5.3)."""
    client = Client()
    client.handshake()
    acks = [f for f in client.of(SETTINGS) if f.flags & ACK]
    assert len(acks) == 1, (
        f"Sent SETTINGS and a SETTINGS ACK: {client.said()}; expected exactly one SETTINGS ACK back"
    )


def test_ping_is_answered() -> None:
    """A PING is answered with a PING ACK carrying the identical 8 bytes (RFC 9113 §6.7; h2spec-6.7-1)."""
    client = Client()
    client.handshake()
    client.send(frame(PING, 0, 0, b"h2spec!!"), "PING(b'h2spec!!')")
    pings = client.of(PING)
    assert [(f.flags & ACK, f.payload) for f in pings] == [(ACK, b"h2spec!!")], (
        f"Sent PING(b'h2spec!!'): {client.said()}; expected one PING with ACK and payload b'h2spec!!'"
    )


def test_ping_ack_is_not_answered() -> None:
    """A PING that is itself an ACK gets no answer (RFC 9113 §6.7: "MUST NOT respond to PING frames containing this flag"; h2spec-6.7-2)."""
    client = Client()
    client.handshake()
    client.send(frame(PING, ACK, 0, b"\0" * 8), "PING with ACK")
    assert not client.of(PING) and client.error is None, (
        f"Sent a PING ACK: {client.said()}; expected no answer"
    )


@pytest.mark.parametrize(
    "extra",
    [
        frame(0x16, 0xFF, 0, b"what is this"),
        frame(0x20, 0, 1, b""),
        frame(PING, 0xFE, 0, b"unknown!"),
    ],
    ids=[
        "h2spec-4.1-1 unknown frame type",
        "h2spec-5.5-1 unknown type on a stream",
        "h2spec-4.1-2 undefined flags",
    ],
)
def test_unknown_types_and_flags_are_ignored(extra: bytes) -> None:
    """Frames of unknown types are ignored and undefined flags are too (RFC 9113 §4.1, §5.5): the connection carries on."""
    client = Client()
    client.handshake()
    client.send(extra, f"the frame {extra[:9].hex()}...")
    client.send(frame(PING, 0, 0, b"still ok"), "PING(b'still ok')")
    pongs = [f.payload for f in client.of(PING) if f.flags & ACK]
    assert client.error is None and pongs[-1:] == [b"still ok"], (
        f"Sent {extra[:9].hex()}..., then PING: {client.said()}; expected the PING answered and no error"
    )


def test_reserved_bit_is_ignored() -> None:
    """The reserved bit of the stream identifier is ignored on receipt (RFC 9113 §4.1; h2spec-4.1-3)."""
    client = Client()
    client.handshake()
    raw = bytearray(client.headers(1))
    raw[5] |= 0x80
    events = client.send(bytes(raw), "HEADERS on stream 1 with the reserved bit set")
    opened = [e.stream_id for e in events if isinstance(e, RequestReceived)]
    assert opened == [1] and client.error is None, called(
        "conn.receive_data(HEADERS with stream id 0x80000001)",
        events,
        "RequestReceived on stream 1",
    )


@pytest.mark.points(2)
def test_request_events() -> None:
    """A request with a body gives RequestReceived, DataReceived for each DATA frame, then StreamEnded (RFC 9113 §8.1)."""
    client = Client()
    client.handshake()
    events = client.open(1, POST, end_stream=False)
    events += client.send(data_frame(1, b"hello "), "DATA(b'hello ')")
    events += client.send(data_frame(1, b"world", end_stream=True), "DATA(b'world', END_STREAM)")
    want = [
        RequestReceived(1, POST),
        DataReceived(1, b"hello ", 6),
        DataReceived(1, b"world", 5),
        StreamEnded(1),
    ]
    assert events == want, called(
        "conn.receive_data() with HEADERS, DATA, DATA+END_STREAM", events, want
    )


def test_data_of_max_frame_size() -> None:
    """A DATA frame of exactly 16,384 bytes (the default SETTINGS_MAX_FRAME_SIZE) is accepted (RFC 9113 §4.2; h2spec-4.2-1)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(data_frame(1, b"x" * 16384, end_stream=True), "DATA of 16384 bytes")
    got = [(type(e).__name__, len(getattr(e, "data", b""))) for e in events]
    assert got == [("DataReceived", 16384), ("StreamEnded", 0)] and client.error is None, called(
        "conn.receive_data(DATA of 16384 bytes)", got, "DataReceived of 16384 bytes, StreamEnded"
    )


@pytest.mark.parametrize("pad", [0, 1, 200], ids=["pad 0", "pad 1", "pad 200"])
def test_padded_data(pad: int) -> None:
    """Padding is stripped from DATA, and counted in flow_controlled_length (RFC 9113 §6.1, §6.9.1: the whole frame payload counts)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(
        data_frame(1, b"body", pad=pad), f"DATA(b'body') with {pad} bytes of padding"
    )
    want = [DataReceived(1, b"body", 4 + 1 + pad)]
    assert events == want, called(f"conn.receive_data(DATA b'body', padded {pad})", events, want)


def test_content_length_counts_data_not_padding() -> None:
    """content-length is compared with the data of the DATA frames, not their padding: a padded body of exactly content-length bytes is served (RFC 9113 §8.1.1)."""
    client = Client()
    client.handshake()
    headers = [*POST, (b"content-length", b"4")]
    events = client.open(1, headers, end_stream=False)
    events += client.send(
        data_frame(1, b"body", end_stream=True, pad=10),
        "DATA(b'body', 10 bytes of padding, END_STREAM)",
    )
    want = [RequestReceived(1, headers), DataReceived(1, b"body", 15), StreamEnded(1)]
    assert events == want and not client.of(RST_STREAM), called(
        "conn.receive_data(HEADERS content-length: 4, then DATA b'body' padded with 10 bytes)",
        f"{events}; the server sent {short(client.frames, 200)}",
        want,
    )


def test_padding_filling_the_frame() -> None:
    """A padded DATA frame whose padding fills all but the Pad Length byte is valid and empty (RFC 9113 §6.1: only padding >= the payload length is an error)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(
        frame(DATA, PADDED, 1, b"\x04\0\0\0\0"), "DATA: Pad Length 4, 4 bytes of padding"
    )
    want = [DataReceived(1, b"", 5)]
    assert events == want and client.error is None, called(
        "conn.receive_data(DATA: all padding)", events, want
    )


def test_padded_headers_with_priority() -> None:
    """HEADERS with PADDED and PRIORITY: the priority fields are skipped and the padding stripped (RFC 9113 §6.2)."""
    client = Client()
    client.handshake()
    block = client.block(GET)
    payload = b"\x03" + b"\x80\0\0\x00\x20" + block + b"\0\0\0"
    events = client.send(
        frame(HEADERS, END_HEADERS | END_STREAM | PADDED | PRIORITY_FLAG, 1, payload),
        "HEADERS with PADDED (3) and PRIORITY (exclusive, on stream 0, weight 33)",
    )
    want = [RequestReceived(1, GET), StreamEnded(1)]
    assert events == want, called("conn.receive_data(padded HEADERS with priority)", events, want)


def test_priority_frames_are_ignored() -> None:
    """PRIORITY frames are parsed and ignored, on idle and open streams alike: they open nothing (RFC 9113 §5.3.2, §6.3)."""
    client = Client()
    client.handshake()
    events = client.send(frame(PRIORITY, 0, 3, b"\0\0\0\x01\x10"), "PRIORITY on idle stream 3")
    events += client.open(1)
    events += client.send(frame(PRIORITY, 0, 1, b"\0\0\0\x03\x10"), "PRIORITY on stream 1")
    events += client.open(3)
    assert kinds(events) == ["RequestReceived", "StreamEnded"] * 2 and client.error is None, (
        f"Sent PRIORITY on idle stream 3, opened 1, PRIORITY on 1, opened 3: events {kinds(events)}; "
        f"{client.said()}; expected two requests and no error"
    )


def test_te_trailers_is_allowed() -> None:
    """A request carrying te: trailers, the one TE value HTTP/2 allows (gRPC clients send it), is served like any other (RFC 9113 §8.2.2)."""
    client = Client()
    client.handshake()
    headers = [*GET, (b"te", b"trailers")]
    events = client.open(1, headers)
    want = [RequestReceived(1, headers), StreamEnded(1)]
    assert events == want and client.error is None, called(
        "conn.receive_data(HEADERS of a GET with te: trailers)", events, want
    )


def test_continuation_frames() -> None:
    """A header block split over HEADERS and several CONTINUATION frames is one request (RFC 9113 §6.10; h2spec-6.10-1)."""
    client = Client()
    client.handshake()
    headers = [*GET, *((f"x-field-{i}".encode(), b"v" * 40) for i in range(30))]
    block = client.block(headers)
    parts = [block[:10], block[10:500], block[500:900], block[900:]]
    events = client.send(frame(HEADERS, END_STREAM, 1, parts[0]), "HEADERS (no END_HEADERS)")
    assert events == [], called("conn.receive_data(HEADERS without END_HEADERS)", events, [])
    events += client.send(frame(CONTINUATION, 0, 1, parts[1]), "CONTINUATION")
    events += client.send(frame(CONTINUATION, 0, 1, parts[2]), "CONTINUATION")
    events += client.send(
        frame(CONTINUATION, END_HEADERS, 1, parts[3]), "CONTINUATION with END_HEADERS"
    )
    want = [RequestReceived(1, headers), StreamEnded(1)]
    assert events == want, called("conn.receive_data(HEADERS + 3 CONTINUATION)", events, want)


def test_trailers() -> None:
    """A second header block with END_STREAM is the request's trailers (RFC 9113 §8.1)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    client.send(data_frame(1, b"abc"), "DATA")
    events = client.open(1, [(b"x-checksum", b"900150983cd24fb0")], end_stream=True)
    want = [TrailersReceived(1, [(b"x-checksum", b"900150983cd24fb0")]), StreamEnded(1)]
    assert events == want, called("conn.receive_data(trailers with END_STREAM)", events, want)


def test_window_update_reserved_bit_is_ignored() -> None:
    """The reserved bit before a WINDOW_UPDATE's 31-bit increment is ignored: 0x80000001 grows a window by 1, on a stream and on the connection (RFC 9113 §6.9)."""
    client = Client()
    client.handshake((0x4, 1))  # the client's INITIAL_WINDOW_SIZE: 1 byte per stream
    client.open(1)
    with step("send_headers(1, 200), send_data(1, b'abc', end_stream=True) into a 1-byte window"):
        client.conn.send_headers(1, [(b":status", b"200")])
        client.conn.send_data(1, b"abc", end_stream=True)
    client.read()
    client.send(window_update(0, 0x8000_0001), "WINDOW_UPDATE(0, reserved bit + 1)")
    client.send(window_update(1, 0x8000_0001), "WINDOW_UPDATE(1, reserved bit + 1)")
    got = (client.body(1), client.error, client.of(RST_STREAM, 1))
    want = (b"ab", None, [])
    assert got == want, called(
        "a 1-byte stream window, then WINDOW_UPDATE 0x80000001 on stream 0 and on stream 1; "
        "(body bytes sent, connection error, RST_STREAM)",
        got,
        want,
    )


def test_client_reset() -> None:
    """RST_STREAM from the client ends the stream: StreamReset(remote=True) with its code, unknown codes included (RFC 9113 §6.4, §7; h2spec-7-2)."""
    client = Client()
    client.handshake()
    client.open(1, end_stream=False)
    client.open(3, end_stream=False)
    events = client.send(rst_stream(1, ErrorCode.CANCEL), "RST_STREAM(1, CANCEL)")
    events += client.send(rst_stream(3, 0xFF), "RST_STREAM(3, 0xff)")
    want = [StreamReset(1, ErrorCode.CANCEL, True), StreamReset(3, 0xFF, True)]
    assert events == want and client.error is None, called(
        "conn.receive_data(RST_STREAM x2)", events, want
    )
    with step("conn.send_headers(1, ...) after the client reset stream 1"):
        try:
            client.conn.send_headers(1, [(b":status", b"200")])
        except ValueError:
            pass
        else:
            raise AssertionError(
                "Called conn.send_headers(1) after RST_STREAM(1); returned; expected ValueError"
            )


def _ended_on_headers(c: Client) -> None:
    c.conn.send_headers(1, [(b":status", b"204")], end_stream=True)


def _ended_behind_the_window(c: Client) -> None:
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"abc", end_stream=True)  # a 1-byte window: 2 bytes still queued


def _trailers_behind_the_window(c: Client) -> None:
    c.conn.send_headers(1, [(b":status", b"200")])
    c.conn.send_data(1, b"abc")
    c.conn.send_trailers(1, [(b"x-status", b"done")])  # queued behind the body


# (what happened to stream 1, how, the call that must raise ValueError)
NOT_SENDABLE = {
    "send_data after send_headers(end_stream=True)": (
        _ended_on_headers, "send_data(1, b'more')", lambda c: c.conn.send_data(1, b"more"),
    ),
    "send_data after send_data(end_stream=True), body still queued": (
        _ended_behind_the_window, "send_data(1, b'more')", lambda c: c.conn.send_data(1, b"more"),
    ),
    "send_trailers after send_data(end_stream=True), body still queued": (
        _ended_behind_the_window,
        "send_trailers(1, [(b'x-late', b'1')])",
        lambda c: c.conn.send_trailers(1, [(b"x-late", b"1")]),
    ),
    "send_data after send_trailers, body still queued": (
        _trailers_behind_the_window, "send_data(1, b'more')", lambda c: c.conn.send_data(1, b"more"),
    ),
    "send_data after reset_stream": (
        lambda c: c.conn.reset_stream(1), "send_data(1, b'more')", lambda c: c.conn.send_data(1, b"more"),
    ),
    "send_headers on a stream the client never opened": (
        lambda c: None, "send_headers(3, ...)", lambda c: c.conn.send_headers(3, [(b":status", b"200")]),
    ),
    # A response begins with HEADERS (RFC 9113 §8.1): a body or trailers before it has no status.
    "send_data before send_headers": (
        lambda c: None, "send_data(1, b'body')", lambda c: c.conn.send_data(1, b"body"),
    ),
    "send_data(end_stream=True) before send_headers": (
        lambda c: None, "send_data(1, b'', end_stream=True)", lambda c: c.conn.send_data(1, b"", end_stream=True),
    ),
    "send_trailers before send_headers": (
        lambda c: None, "send_trailers(1, [(b'x-status', b'done')])",
        lambda c: c.conn.send_trailers(1, [(b"x-status", b"done")]),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("name", "case"), NOT_SENDABLE.items(), ids=NOT_SENDABLE.keys())
def test_sending_on_a_stream_not_open_for_sending_raises(name, case) -> None:
    """send_headers, send_data and send_trailers raise ValueError on a stream the application has already ended (even while its body waits for window), reset, or never had; send_data and send_trailers also before send_headers.

    "Ended" is the application's call, not the frame on the wire: a body held back by flow
    control must not grow after its end_stream=True.
    """
    setup, what, call = case
    client = Client()
    client.handshake((0x4, 1))  # the client's INITIAL_WINDOW_SIZE: 1 byte per stream
    client.open(1, POST, end_stream=False)
    with step("stream 1 brought to the case's state"):
        setup(client)
    with step(f"conn.{what}"):
        try:
            call(client)
        except ValueError:
            return
    raise AssertionError(
        f"Called conn.{what} ({name}, window of 1 byte): returned; expected ValueError"
    )


# RFC 9113 §8.2.2: fields of one HTTP/1.1 hop make any HTTP/2 message malformed; TE is allowed
# in a request only, so a response carries no TE at all.
CONNECTION_FIELDS = [
    (b"connection", b"close"),
    (b"keep-alive", b"timeout=5"),
    (b"proxy-connection", b"keep-alive"),
    (b"transfer-encoding", b"chunked"),
    (b"upgrade", b"websocket"),
    (b"te", b"trailers"),
]
OUTBOUND = {
    "send_headers": lambda c, f: c.conn.send_headers(1, [(b":status", b"200"), f]),
    "send_trailers": lambda c, f: (
        c.conn.send_headers(1, [(b":status", b"200")]),
        c.conn.send_trailers(1, [(b"x-status", b"done"), f]),
    ),
}


@pytest.mark.parametrize("field", CONNECTION_FIELDS, ids=[n.decode() for n, _ in CONNECTION_FIELDS])
@pytest.mark.parametrize("call", OUTBOUND, ids=OUTBOUND.keys())
def test_connection_specific_fields_are_not_sent(call: str, field: tuple[bytes, bytes]) -> None:
    """send_headers and send_trailers raise ValueError for a connection-specific field (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, and te, which only a request may carry) and send nothing: every HTTP/2 client treats such a response as malformed (RFC 9113 §8.2.2).

    The lesson's "no connection-specific fields" rule holds for every field section, both ways.
    """
    client = Client()
    client.handshake()
    client.open(1)
    client.read()
    sent = len(client.frames)
    what = f"conn.{call}(1, [..., {field!r}])"
    with step(what):
        try:
            OUTBOUND[call](client, field)
        except ValueError:
            raised = True
        else:
            raised = False
    client.read()
    blocks = client.response_headers(1)
    leaked = [block for block in blocks if field in block]
    assert raised and not leaked, (
        f"Called {what}: {'raised ValueError' if raised else 'returned'}; "
        f"the server sent {short(client.frames[sent:], 300)}; expected ValueError and no header "
        f"block carrying {field[0].decode()}"
    )


def test_trailers_carry_no_pseudo_headers() -> None:
    """send_trailers raises ValueError for a pseudo-header field: trailers never carry one (RFC 9113 §8.1)."""
    client = Client()
    client.handshake()
    client.open(1)
    with step("conn.send_headers(1, [(b':status', b'200')])"):
        client.conn.send_headers(1, [(b":status", b"200")])
    with step("conn.send_trailers(1, [(b':status', b'500')])"):
        try:
            client.conn.send_trailers(1, [(b":status", b"500")])
        except ValueError:
            return
    client.read()
    raise AssertionError(
        "Called conn.send_trailers(1, [(b':status', b'500')]) after send_headers: returned; "
        f"the server sent {short(client.frames, 300)}; expected ValueError"
    )


def test_client_goaway() -> None:
    """GOAWAY from the client, with any error code, is reported as ConnectionTerminated (RFC 9113 §6.8, §7; h2spec-7-1)."""
    client = Client()
    client.handshake()
    events = client.send(
        frame(GOAWAY, 0, 0, b"\0\0\0\x00" + b"\0\0\0\xff" + b"bye"), "GOAWAY(0, 0xff, b'bye')"
    )
    want = [ConnectionTerminated(0xFF, 0, b"bye")]
    assert events == want and client.error is None, called(
        "conn.receive_data(GOAWAY)", events, want
    )


def test_goaway_last_stream_id() -> None:
    """The GOAWAY of a connection error names the highest stream the client opened (RFC 9113 §6.8)."""
    client = Client()
    client.handshake()
    client.open(1)
    client.open(7, end_stream=False)
    client.send(frame(PING, 0, 3, b"\0" * 8), "PING on stream 3 (a connection error)")
    goaways = client.of(GOAWAY)
    last = [int.from_bytes(f.payload[:4], "big") for f in goaways]
    assert last == [7], (
        f"Opened streams 1 and 7, then a connection error: {client.said()}; expected GOAWAY with last stream id 7"
    )


def test_input_after_connection_error_is_ignored() -> None:
    """After a connection error the connection is over: later input gives no events and no frames (RFC 9113 §5.4.1)."""
    client = Client()
    client.handshake()
    client.send(frame(PING, 0, 1, b"\0" * 8), "PING on stream 1")
    assert client.error is not None, (
        f"Sent PING on stream 1: {client.said()}; expected a connection error"
    )
    before = len(client.frames)
    client.error = None
    events = client.send(
        client.headers(1) + frame(PING, 0, 0, b"\0" * 8), "HEADERS and PING after the GOAWAY"
    )
    assert events == [] and len(client.frames) == before, called(
        "conn.receive_data(HEADERS, PING) after a connection error",
        (events, client.frames[before:]),
        ([], []),
    )


def test_graceful_close() -> None:
    """close() sends GOAWAY(NO_ERROR) naming the last stream; streams opened later are ignored but their header blocks still decoded (RFC 9113 §6.8)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.close()"):
        client.conn.close()
    client.read()
    goaways = [(int.from_bytes(f.payload[:4], "big"), f.code) for f in client.of(GOAWAY)]
    assert goaways == [(1, ErrorCode.NO_ERROR)], called(
        "conn.close()", client.of(GOAWAY), "GOAWAY(last=1, NO_ERROR)"
    )
    ignored = client.open(3, [*GET, (b"x-trace", b"new-entry")])
    assert ignored == [] and not client.of(RST_STREAM, 3), called(
        "conn.receive_data(HEADERS on stream 3) after close()",
        ignored,
        "[] (ignored, no RST_STREAM)",
    )
    trailers = [(b"x-trace", b"new-entry")]  # the oracle encodes it as an index into its table
    events = client.open(1, trailers, end_stream=True)
    want = [TrailersReceived(1, trailers), StreamEnded(1)]
    assert events == want, called(
        "conn.receive_data(trailers on stream 1 after the ignored stream 3)", events, want
    )


def test_reset_stream() -> None:
    """reset_stream sends RST_STREAM with the code, and DATA the client had in flight for it is ignored (RFC 9113 §5.1, "closed")."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.reset_stream(1, ErrorCode.CANCEL)"):
        client.conn.reset_stream(1, ErrorCode.CANCEL)
    client.read()
    sent = [(f.stream_id, f.code) for f in client.of(RST_STREAM)]
    assert sent == [(1, ErrorCode.CANCEL)], called(
        "conn.reset_stream(1, CANCEL)", client.of(RST_STREAM), "RST_STREAM(1, CANCEL)"
    )
    events = client.send(data_frame(1, b"late", end_stream=True), "DATA in flight on stream 1")
    assert events == [] and len(client.of(RST_STREAM)) == 1 and client.error is None, called(
        "conn.receive_data(DATA on stream 1) after reset_stream(1)",
        (events, client.frames[-2:]),
        "[] and no new RST_STREAM",
    )


def test_trailers_in_flight_after_reset_are_ignored() -> None:
    """Trailers the client had in flight on a stream the server reset are ignored, not a connection error, and their header block still goes through the HPACK decoder (RFC 9113 §5.1, "closed"; §4.3).

    The client may have queued its trailers before the RST_STREAM reached it: "An endpoint MUST
    ignore frames that it receives on closed streams after it has sent a RST_STREAM frame."
    """
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.reset_stream(1, ErrorCode.CANCEL)"):
        client.conn.reset_stream(1, ErrorCode.CANCEL)
    traced = [(b"x-trace", b"abc123")]  # the oracle encoder indexes it: stream 3 refers back
    events = client.send(client.headers(1, traced), "trailers HEADERS(1, END_STREAM) in flight")
    events += client.open(3, [*GET, *traced])
    want = [RequestReceived(3, [*GET, *traced]), StreamEnded(3)]
    assert events == want and client.error is None, called(
        "conn.receive_data(trailers on stream 1 after reset_stream(1), then a GET on stream 3 "
        "whose block refers back to them)",
        f"{events}; {client.said()}",
        want,
    )


@pytest.mark.points(2)
def test_response_frames() -> None:
    """A response is HEADERS (the oracle decodes it), DATA, and END_STREAM on the last frame; the stream then closes (RFC 9113 §8.1)."""
    client = Client()
    client.handshake()
    client.open(1)
    with step("conn.send_headers(1, ...); conn.send_data(1, b'hi', end_stream=True)"):
        client.conn.send_headers(1, [(b":status", b"200"), (b"content-type", b"text/plain")])
        client.conn.send_data(1, b"hi", end_stream=True)
    client.read()
    blocks = client.response_headers(1)
    assert blocks == [[(b":status", b"200"), (b"content-type", b"text/plain")]], called(
        "conn.send_headers(1, [(':status', '200'), ('content-type', 'text/plain')])",
        blocks,
        "that header block",
    )
    data = client.of(DATA, 1)
    assert client.body(1) == b"hi" and data[-1].flags & END_STREAM, called(
        "conn.send_data(1, b'hi', end_stream=True)", data, "DATA b'hi' ending with END_STREAM"
    )
    with step("conn.open_streams"):
        open_streams = client.conn.open_streams
    assert open_streams == 0, called("conn.open_streams after the exchange", open_streams, 0)


def test_large_response_headers_use_continuation() -> None:
    """A response header block larger than the client's max frame size is split into HEADERS and CONTINUATION frames (RFC 9113 §4.3, §6.10)."""
    client = Client()
    client.handshake()
    client.open(1)
    big = [
        (b":status", b"200"),
        *((f"x-big-{i}".encode(), bytes(range(33, 127)) * 3) for i in range(80)),
    ]
    with step("conn.send_headers(1, <80 fields of 282 bytes>, end_stream=True)"):
        client.conn.send_headers(1, big, end_stream=True)
    client.read()
    frames = [f for f in client.frames if f.stream_id == 1]
    shape = [(f.type, f.flags & END_HEADERS) for f in frames]
    ok = (
        len(frames) >= 2
        and frames[0].type == HEADERS
        and all(f.type == CONTINUATION for f in frames[1:])
        and all(len(f.payload) <= 16384 for f in frames)
        and [f.flags & END_HEADERS for f in frames] == [0] * (len(frames) - 1) + [END_HEADERS]
    )
    assert ok and client.response_headers(1) == [big], called(
        "conn.send_headers(1, a header block over 16 KiB)",
        shape,
        "HEADERS, then CONTINUATION frames, END_HEADERS on the last",
    )


def test_response_trailers() -> None:
    """send_trailers ends the stream with a header block after the body (RFC 9113 §8.1)."""
    client = Client()
    client.handshake()
    client.open(1)
    with step("send_headers, send_data(b'body'), send_trailers([(b'grpc-status', b'0')])"):
        client.conn.send_headers(1, [(b":status", b"200")])
        client.conn.send_data(1, b"body")
        client.conn.send_trailers(1, [(b"grpc-status", b"0")])
    client.read()
    frames = [(f.type, f.flags & END_STREAM) for f in client.frames if f.stream_id == 1]
    want = [(HEADERS, 0), (DATA, 0), (HEADERS, END_STREAM)]
    assert frames == want and client.response_headers(1)[-1] == [(b"grpc-status", b"0")], called(
        "a response with trailers",
        client.frames,
        "HEADERS, DATA, HEADERS with END_STREAM (the trailers)",
    )


def test_header_table_size_setting() -> None:
    """The response encoder respects the client's SETTINGS_HEADER_TABLE_SIZE = 0: every block decodes with a zero-size table (RFC 9113 §6.5.2; RFC 7541 §4.2)."""
    client = Client()
    client.handshake((1, 0))
    client.decoder.max_allowed_table_size = 0
    client.decoder.header_table_size = 0
    for stream_id in (1, 3):
        client.open(stream_id)
        with step(
            f"conn.send_headers({stream_id}, [(b':status', b'200'), (b'x-custom', b'value')], end_stream=True)"
        ):
            client.conn.send_headers(
                stream_id, [(b":status", b"200"), (b"x-custom", b"value")], end_stream=True
            )
        client.read()
    with step("decoding the server's header blocks with a 0-byte table"):
        got = [client.response_headers(1), client.response_headers(3)]
    want = [[[(b":status", b"200"), (b"x-custom", b"value")]]] * 2
    assert got == want, called("two responses after SETTINGS_HEADER_TABLE_SIZE=0", got, want)


def test_window_update_on_closed_stream_is_ignored() -> None:
    """WINDOW_UPDATE on a stream that has closed is not an error (RFC 9113 §6.9: it can cross the END_STREAM in flight)."""
    client = Client()
    client.handshake()
    client.open(1)
    with step("conn.send_headers(1, [(b':status', b'204')], end_stream=True)"):
        client.conn.send_headers(1, [(b":status", b"204")], end_stream=True)
    client.read()
    client.send(window_update(1, 1000), "WINDOW_UPDATE(1, +1000) after stream 1 closed")
    assert client.error is None and not client.of(RST_STREAM), (
        f"Sent WINDOW_UPDATE on closed stream 1: {client.said()}; expected it ignored"
    )


def test_response_before_request_ends() -> None:
    """The server may answer before the request body is complete: the stream is half-closed (local) and still takes the client's DATA (RFC 9113 §5.1, §8.1)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.send_headers(1, [(b':status', b'413')], end_stream=True) before the body ends"):
        client.conn.send_headers(1, [(b":status", b"413")], end_stream=True)
    events = client.send(data_frame(1, b"rest", end_stream=True), "DATA(b'rest', END_STREAM)")
    want = [DataReceived(1, b"rest", 4), StreamEnded(1)]
    assert events == want and client.error is None, called(
        "conn.receive_data(DATA on half-closed (local) stream 1)", events, want
    )
    with step("conn.open_streams"):
        open_streams = client.conn.open_streams
    assert open_streams == 0, called(
        "conn.open_streams once both sides ended stream 1", open_streams, 0
    )


LONG_HEADERS = [*POST, *((f"x-long-{i}".encode(), b"v" * 50) for i in range(10))]


def _conversation() -> bytes:
    """A client's side of a conversation (padding, CONTINUATION, PING, two streams). Header
    blocks come from a fresh oracle encoder, so the bytes are the same every time."""
    encoder = oracle_hpack.Encoder()
    block = encoder.encode(LONG_HEADERS)
    return (
        PREFACE
        + settings((4, 100_000))
        + frame(SETTINGS, ACK, 0)
        + frame(HEADERS, PADDED, 1, b"\x02" + block[:100] + b"\0\0")
        + frame(CONTINUATION, END_HEADERS, 1, block[100:])
        + data_frame(1, b"first", pad=3)
        + frame(PING, 0, 0, b"pingpong")
        + frame(HEADERS, END_HEADERS | END_STREAM, 3, encoder.encode(GET))
        + data_frame(1, b"second", end_stream=True)
    )


STREAM_LENGTH = len(_conversation())


@pytest.mark.points(3)
@given(cuts=st.sets(st.integers(1, STREAM_LENGTH - 1), max_size=12))
@example(cuts=set())
@example(cuts=set(range(1, STREAM_LENGTH)))
@example(cuts={24, 33, 42})
@example(cuts={len(PREFACE) + 3, len(PREFACE) + 9, len(PREFACE) + 15})
def test_any_split_of_the_byte_stream(cuts: set[int]) -> None:
    """However the client's bytes are split across reads (one byte at a time, mid-header, mid-frame), the same events come out (RFC 9113 §4.1: frames ride a byte stream).

    Examples: all at once, one byte at a time, cuts at the end of the preface and inside the
    first frame headers.
    """
    client = Client()
    stream = _conversation()
    want = [
        RequestReceived(1, LONG_HEADERS),
        DataReceived(1, b"first", 9),
        RequestReceived(3, GET),
        StreamEnded(3),
        DataReceived(1, b"second", 6),
        StreamEnded(1),
    ]
    points = sorted(cuts)
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    events: list = []
    for i, piece in enumerate(pieces):
        events += client.send(piece, f"piece {i + 1} of {len(pieces)}")
    pongs = [f.payload for f in client.of(PING) if f.flags & ACK]
    assert events == want and pongs == [b"pingpong"] and client.error is None, called(
        f"conn.receive_data() over {len(pieces)} pieces cut at {short(points, 80)}",
        events,
        want,
    )


SETTINGS_AT_LIMITS = {
    "MAX_FRAME_SIZE 16384 (the smallest)": (5, 16384),
    "MAX_FRAME_SIZE 2^24-1 (the largest)": (5, 2**24 - 1),
    "INITIAL_WINDOW_SIZE 2^31-1 (the largest)": (4, 2**31 - 1),
    "INITIAL_WINDOW_SIZE 0": (4, 0),
    "ENABLE_PUSH 0": (2, 0),
    "ENABLE_PUSH 1": (2, 1),
    "HEADER_TABLE_SIZE 0": (1, 0),
}


@pytest.mark.parametrize("setting", SETTINGS_AT_LIMITS.values(), ids=SETTINGS_AT_LIMITS.keys())
def test_settings_at_their_limits(setting: tuple[int, int]) -> None:
    """Every SETTINGS value inside its legal range is accepted, up to and including the range's ends (RFC 9113 §6.5.2)."""
    client = Client()
    client.handshake(setting)
    acks = [f for f in client.of(SETTINGS) if f.flags & ACK]
    assert client.error is None and len(acks) == 1, called(
        f"conn.receive_data(SETTINGS(0x{setting[0]:x}={setting[1]}))",
        client.said(),
        "one SETTINGS ACK and no error",
    )
