"""Flow control (RFC 9113 §5.2, §6.9) and the rapid-reset defence (CVE-2023-44487).

The specs own the client's windows: they count the DATA bytes the server sends per stream and
on the connection against the WINDOW_UPDATEs they send, and never let the server off.
"""

from __future__ import annotations

import pytest
from _helpers import (
    DATA,
    END_STREAM,
    GET,
    GOAWAY,
    POST,
    PREFACE,
    RST_STREAM,
    WINDOW_UPDATE,
    Client,
    ErrorCode,
    connection_error,
    data_frame,
    rst_stream,
    settings,
    stream_error,
    window_update,
)
from http2_server import DataReceived, RequestReceived

from grader.spectools import FakeClock, called, step


def respond(client: Client, stream_id: int, body: bytes, *, end_stream: bool = True) -> None:
    with step(
        f"conn.send_headers({stream_id}, ...); conn.send_data({stream_id}, <{len(body)} bytes>)"
    ):
        client.conn.send_headers(stream_id, [(b":status", b"200")])
        client.conn.send_data(stream_id, body, end_stream=end_stream)
    client.read()


def sent(client: Client, stream_id: int) -> int:
    return sum(len(f.payload) for f in client.of(DATA, stream_id))


@pytest.mark.points(2)
def test_initial_window_of_one_byte() -> None:
    """With SETTINGS_INITIAL_WINDOW_SIZE = 1 the server sends one byte of DATA, then exactly what each WINDOW_UPDATE allows (RFC 9113 §6.9.1: "MUST NOT send a flow-controlled frame with a length that exceeds the space available"; h2spec-6.9.1-1)."""
    client = Client()
    client.handshake((4, 1))
    client.open(1)
    respond(client, 1, b"0123456789")
    assert sent(client, 1) == 1, called(
        "conn.send_data(1, 10 bytes) with a 1-byte window", client.of(DATA, 1), "1 byte of DATA"
    )
    client.send(window_update(1, 4), "WINDOW_UPDATE(1, +4)")
    assert sent(client, 1) == 5, called(
        "WINDOW_UPDATE(1, +4)", client.of(DATA, 1), "4 more bytes (5 in all)"
    )
    client.send(window_update(1, 100), "WINDOW_UPDATE(1, +100)")
    data = client.of(DATA, 1)
    assert client.body(1) == b"0123456789" and data[-1].flags & END_STREAM, called(
        "WINDOW_UPDATE(1, +100)", data, "the rest of the body, END_STREAM on the last frame"
    )


END_WITHOUT_WINDOW = {
    "an empty DATA frame with END_STREAM": lambda c: c.conn.send_data(1, b"", end_stream=True),
    "trailers after an empty body": lambda c: c.conn.send_trailers(1, [(b"x-status", b"done")]),
}


@pytest.mark.parametrize("end", END_WITHOUT_WINDOW.values(), ids=END_WITHOUT_WINDOW.keys())
def test_ending_a_stream_needs_no_window(end) -> None:
    """A stream ends even when its window is 0: an empty DATA frame with END_STREAM costs no window, and trailers are a header block, not flow-controlled at all (RFC 9113 §6.9: only DATA is, and only its payload counts)."""
    client = Client()
    client.handshake((4, 0))  # the client's INITIAL_WINDOW_SIZE: 0
    client.open(1)
    with step("conn.send_headers(1, [(b':status', b'200')]), then the case's end of stream"):
        client.conn.send_headers(1, [(b":status", b"200")])
        end(client)
    client.read()
    ends = [f for f in client.frames if f.stream_id == 1 and f.flags & END_STREAM]
    assert ends and client.body(1) == b"", called(
        "a response ended into a stream window of 0",
        client.frames,
        "a frame with END_STREAM on stream 1, no DATA bytes",
    )


@pytest.mark.points(2)
def test_connection_window_limits_all_streams() -> None:
    """DATA on all streams together never exceeds the connection window, 65,535 bytes until WINDOW_UPDATE on stream 0 (RFC 9113 §6.9, §6.9.2: SETTINGS do not change the connection window)."""
    client = Client()
    client.handshake((4, 1_000_000))
    client.open(1)
    client.open(3)
    respond(client, 1, b"a" * 50_000)
    respond(client, 3, b"b" * 50_000)
    total = sent(client, 1) + sent(client, 3)
    assert total == 65_535, called(
        "send_data of 50,000 bytes on streams 1 and 3", total, "65535 bytes of DATA in all"
    )
    client.send(window_update(0, 10_000), "WINDOW_UPDATE(0, +10000)")
    total = sent(client, 1) + sent(client, 3)
    assert total == 75_535, called("WINDOW_UPDATE(0, +10000)", total, "75535 bytes of DATA in all")
    client.send(window_update(0, 1_000_000), "WINDOW_UPDATE(0, +1000000)")
    assert client.body(1) == b"a" * 50_000 and client.body(3) == b"b" * 50_000, called(
        "WINDOW_UPDATE(0, +1000000)", (sent(client, 1), sent(client, 3)), "both bodies whole"
    )


def test_data_frames_respect_max_frame_size() -> None:
    """DATA frames are no larger than the client's SETTINGS_MAX_FRAME_SIZE: 16,384 by default, more when it says so (RFC 9113 §4.2, §6.5.2)."""
    for max_frame, sizes in (
        (None, [16384, 16384, 16384, 16383]),
        (20000, [20000, 20000, 20000, 5535]),
    ):
        client = Client()
        client.handshake(*([(5, max_frame)] if max_frame else []))
        client.open(1)
        respond(client, 1, b"x" * 65_535)
        got = [len(f.payload) for f in client.of(DATA, 1)]
        assert got == sizes, called(
            f"send_data(1, 65535 bytes) with MAX_FRAME_SIZE {max_frame or 16384}", got, sizes
        )


def test_initial_window_change_moves_open_streams() -> None:
    """A new SETTINGS_INITIAL_WINDOW_SIZE changes the window of every open stream by the difference (RFC 9113 §6.9.2; h2spec-6.9.2-1)."""
    client = Client()
    client.handshake((4, 100))
    client.open(1)
    respond(client, 1, b"x" * 1000)
    assert sent(client, 1) == 100, called(
        "send_data(1, 1000 bytes) with a 100-byte window", sent(client, 1), 100
    )
    client.send(settings((4, 300)), "SETTINGS(INITIAL_WINDOW_SIZE=300)")
    assert sent(client, 1) == 300, called(
        "SETTINGS(INITIAL_WINDOW_SIZE 100 -> 300)", sent(client, 1), "300 bytes in all"
    )


def test_negative_window() -> None:
    """A smaller SETTINGS_INITIAL_WINDOW_SIZE can make a stream window negative; the server waits until WINDOW_UPDATEs bring it above zero (RFC 9113 §6.9.2; h2spec-6.9.2-2)."""
    client = Client()
    client.handshake((4, 100))
    client.open(1)
    respond(client, 1, b"x" * 1000)
    client.send(settings((4, 50)), "SETTINGS(INITIAL_WINDOW_SIZE=50): the window is now -50")
    client.send(window_update(1, 30), "WINDOW_UPDATE(1, +30): -20")
    assert sent(client, 1) == 100, called(
        "WINDOW_UPDATE(1, +30) on a window of -50", sent(client, 1), "still 100 bytes"
    )
    client.send(window_update(1, 30), "WINDOW_UPDATE(1, +30): +10")
    assert sent(client, 1) == 110, called(
        "WINDOW_UPDATE(1, +30) on a window of -20", sent(client, 1), "110 bytes in all"
    )


def test_settings_processed_in_order() -> None:
    """Values in one SETTINGS frame are processed in order: the last INITIAL_WINDOW_SIZE wins (RFC 9113 §6.5.3; h2spec-6.5.3-1)."""
    client = Client()
    client.handshake((4, 100), (4, 1), (4, 7))
    client.open(1)
    respond(client, 1, b"x" * 1000)
    assert sent(client, 1) == 7, called(
        "SETTINGS(INITIAL_WINDOW_SIZE=100, 1, 7) then 1000 bytes", sent(client, 1), 7
    )


def test_interleaving() -> None:
    """When a window opens, the bodies queued on several streams share it: DATA frames of both streams go out before either ends (streams are multiplexed, RFC 9113 §5)."""
    client = Client()
    client.handshake((4, 1_000_000))
    client.open(1)
    client.open(3)
    respond(client, 1, b"a" * 65_535 + b"a" * 40_000)  # stream 1 takes the whole connection window
    respond(client, 3, b"b" * 40_000)
    before = len(client.frames)
    client.send(window_update(0, 200_000), "WINDOW_UPDATE(0, +200000)")
    order = [f.stream_id for f in client.frames[before:] if f.type == DATA]
    first_end = next(
        (
            i
            for i, f in enumerate(client.frames[before:])
            if f.type == DATA and f.flags & END_STREAM
        ),
        None,
    )
    data_before_end = {f.stream_id for f in client.frames[before:][:first_end] if f.type == DATA}
    assert data_before_end == {1, 3}, called(
        "WINDOW_UPDATE(0) with 40,000 bytes queued on stream 1 and 40,000 on stream 3",
        order,
        "both streams' DATA before either ends",
    )


def test_acknowledging_nothing_sends_nothing() -> None:
    """acknowledge_received_data(stream, 0), which an empty DATA frame leads to, sends no WINDOW_UPDATE: an increment of 0 is a PROTOCOL_ERROR for the client (RFC 9113 §6.9)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(data_frame(1, b""), "an empty DATA frame on stream 1 (no END_STREAM)")
    with step("conn.acknowledge_received_data(1, 0)"):
        client.conn.acknowledge_received_data(1, 0)
    new = client.read()
    assert events == [DataReceived(1, b"", 0)] and new == [], called(
        "conn.acknowledge_received_data(1, 0) after an empty DATA frame on open stream 1",
        f"events {events}, then the server sent {new}",
        "DataReceived(1, b'', 0), then no frame at all",
    )


def test_acknowledged_data_opens_windows() -> None:
    """acknowledge_received_data(stream, n) sends WINDOW_UPDATE of n for the stream and for the connection (RFC 9113 §6.9)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(data_frame(1, b"x" * 1000, pad=9), "DATA of 1000 bytes, padded 9")
    size = [e.flow_controlled_length for e in events if isinstance(e, DataReceived)]
    assert size == [1010], called(
        "conn.receive_data(DATA 1000 bytes, padded 9)", events, "flow_controlled_length 1010"
    )
    with step("conn.acknowledge_received_data(1, 1010)"):
        client.conn.acknowledge_received_data(1, 1010)
    client.read()
    updates = sorted(
        (f.stream_id, int.from_bytes(f.payload, "big")) for f in client.of(WINDOW_UPDATE)
    )
    assert updates == [(0, 1010), (1, 1010)], called(
        "conn.acknowledge_received_data(1, 1010)", updates, [(0, 1010), (1, 1010)]
    )


@pytest.mark.parametrize(
    "size, ok", [(100, True), (101, False)], ids=["at the window", "one byte over"]
)
def test_stream_receive_window(size: int, ok: bool) -> None:
    """The client may send up to the server's advertised INITIAL_WINDOW_SIZE on a stream; one byte more is a FLOW_CONTROL_ERROR (RFC 9113 §6.9.1)."""
    client = Client({"initial_window_size": 100})
    client.handshake()
    client.open(1, POST, end_stream=False)
    events = client.send(data_frame(1, b"x" * size), f"DATA of {size} bytes on a 100-byte window")
    if ok:
        assert [type(e) for e in events] == [DataReceived] and client.error is None, called(
            f"conn.receive_data(DATA of {size} bytes) with initial_window_size=100",
            events,
            "DataReceived",
        )
    else:
        stream_error(
            client,
            1,
            (ErrorCode.FLOW_CONTROL_ERROR,),
            f"Sent {size} bytes on a 100-byte window",
            connection_ok=True,
        )


@pytest.mark.parametrize("stream_id", [0, 1], ids=["the connection window", "a stream window"])
def test_a_window_may_reach_its_maximum(stream_id: int) -> None:
    """A WINDOW_UPDATE that brings a window to exactly 2^31-1 is accepted; only one past it is a FLOW_CONTROL_ERROR (RFC 9113 §6.9.1: "MUST NOT ... exceed 2^31-1")."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    increment = 2**31 - 1 - 65_535
    client.send(window_update(stream_id, increment), f"WINDOW_UPDATE({stream_id}, +{increment})")
    assert client.error is None and not client.of(RST_STREAM) and not client.of(GOAWAY), (
        f"Brought window {stream_id} from 65,535 to exactly 2^31-1: {client.said()}; "
        "expected no error (2^31-1 is the largest legal window)"
    )


def test_window_applies_once_acknowledged() -> None:
    """The server's smaller INITIAL_WINDOW_SIZE binds the client only after its SETTINGS ACK: before, the default 65,535 bytes hold (RFC 9113 §6.5.3, §6.9.2)."""
    client = Client({"initial_window_size": 100})
    client.send(PREFACE + settings(), "the preface and SETTINGS, no ACK yet")
    client.open(1, POST, end_stream=False)
    events = client.send(data_frame(1, b"x" * 1000), "DATA of 1000 bytes before the ACK")
    assert (
        [type(e) for e in events] == [DataReceived]
        and not client.of(RST_STREAM)
        and client.error is None
    ), called(
        "conn.receive_data(1000 bytes of DATA) before acknowledging initial_window_size=100",
        client.said(),
        "DataReceived",
    )


@pytest.mark.parametrize(
    "second, ok", [(25_535, True), (25_536, False)], ids=["at the window", "one byte over"]
)
def test_connection_receive_window(second: int, ok: bool) -> None:
    """DATA on all streams together may fill the 65,535-byte connection window; one byte more is a connection FLOW_CONTROL_ERROR (RFC 9113 §6.9.1)."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    client.open(3, POST, end_stream=False)
    for start in range(0, 40_000, 16_000):
        client.send(data_frame(1, b"x" * min(16_000, 40_000 - start)), "DATA on stream 1")
    for start in range(0, second, 16_000):
        client.send(data_frame(3, b"y" * min(16_000, second - start)), "DATA on stream 3")
    if ok:
        assert client.error is None and not client.of(RST_STREAM), (
            f"Sent 40,000 + {second} bytes of DATA: {client.said()}; expected no error (65,535 bytes fit)"
        )
    else:
        connection_error(
            client,
            ErrorCode.FLOW_CONTROL_ERROR,
            f"Sent 40,000 + {second} bytes of DATA (65,536 in all)",
        )


# --- rapid reset ---------------------------------------------------------------------------------


def reset_streams(client: Client, first: int, count: int) -> int:
    """Open and immediately reset ``count`` streams; return the next free stream id."""
    stream_id = first
    for _ in range(count):
        client.send(
            client.headers(stream_id, GET) + rst_stream(stream_id),
            f"HEADERS + RST_STREAM on stream {stream_id}",
        )
        stream_id += 2
    return stream_id


@pytest.mark.points(2)
@pytest.mark.parametrize("count, calm", [(10, False), (11, True)], ids=["at the limit", "one over"])
def test_rapid_reset(count: int, calm: bool) -> None:
    """More than max_resets streams reset by the client within reset_interval is answered with GOAWAY ENHANCE_YOUR_CALM (CVE-2023-44487, RFC 9113 §10.5)."""
    clock = FakeClock()
    client = Client({"max_resets": 10, "reset_interval": 30.0, "clock": clock})
    client.handshake()
    for i in range(count):
        reset_streams(client, 1 + 2 * i, 1)
        clock.advance(1.0)
    if calm:
        connection_error(
            client,
            ErrorCode.ENHANCE_YOUR_CALM,
            f"Opened and reset {count} streams in {count} s (max_resets=10 per 30 s)",
        )
        last = int.from_bytes(client.of(GOAWAY)[-1].payload[:4], "big")
        assert last == 2 * count - 1, called(
            "the GOAWAY of the rapid-reset defence", last, 2 * count - 1
        )
    else:
        assert client.error is None and not client.of(GOAWAY), (
            f"Opened and reset {count} streams with max_resets=10: {client.said()}; expected no GOAWAY"
        )


@pytest.mark.parametrize(
    "pause, calm",
    [(29.0, True), (30.0, False)],
    ids=["within the interval", "a full interval later"],
)
def test_rapid_reset_interval(pause: float, calm: bool) -> None:
    """Resets are counted per reset_interval of the injected clock: a full interval later, the count starts again."""
    clock = FakeClock()
    client = Client({"max_resets": 10, "reset_interval": 30.0, "clock": clock})
    client.handshake()
    next_id = reset_streams(client, 1, 10)
    clock.advance(pause)
    reset_streams(client, next_id, 1)
    if calm:
        connection_error(
            client,
            ErrorCode.ENHANCE_YOUR_CALM,
            f"Reset 10 streams, waited {pause} s (interval 30 s), reset one more",
        )
    else:
        assert client.error is None, (
            f"Reset 10 streams, waited {pause} s (interval 30 s), reset one more: {client.said()}; expected no error"
        )


def test_resets_of_finished_streams_do_not_count() -> None:
    """Streams the client resets after they were answered cost the server nothing and do not count toward max_resets."""
    clock = FakeClock()
    client = Client({"max_resets": 2, "reset_interval": 30.0, "clock": clock})
    client.handshake()
    for stream_id in range(1, 12, 2):
        client.open(stream_id, GET)
        with step(f"conn.send_headers({stream_id}, [(b':status', b'204')], end_stream=True)"):
            client.conn.send_headers(stream_id, [(b":status", b"204")], end_stream=True)
        client.send(rst_stream(stream_id), f"RST_STREAM on finished stream {stream_id}")
    events = client.open(13, GET)
    assert client.error is None and any(isinstance(e, RequestReceived) for e in events), (
        f"Reset 6 streams after their responses (max_resets=2): {client.said()}; expected no error"
    )


def test_server_resets_do_not_count() -> None:
    """Only the client's resets count toward max_resets: streams the server resets itself (reset_stream, a refused or malformed request) cost the client's budget nothing.

    The defence is against a client that cancels its own requests (CVE-2023-44487); a
    server that counts its own RST_STREAMs would turn away a client it refused.
    """
    clock = FakeClock()
    client = Client({"max_resets": 2, "reset_interval": 30.0, "clock": clock})
    client.handshake()
    for stream_id in (1, 3, 5):
        client.open(stream_id, GET)
        with step(f"conn.reset_stream({stream_id}, ErrorCode.CANCEL)"):
            client.conn.reset_stream(stream_id, ErrorCode.CANCEL)
    for stream_id in (7, 9, 11):
        client.open(stream_id, [*GET, (b"connection", b"close")])  # malformed: a stream error
    events = client.open(13, GET)
    assert client.error is None and any(isinstance(e, RequestReceived) for e in events), (
        f"The server reset 3 streams and refused 3 malformed requests (max_resets=2): "
        f"{client.said()}; expected no error and stream 13 served"
    )


def test_discarded_data_returns_connection_window() -> None:
    """DATA the server discards (on a stream it reset) still counts against the connection window, and the server gives that window back (RFC 9113 §6.9: "MUST always account for its contribution against the connection flow-control window")."""
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.reset_stream(1, ErrorCode.CANCEL)"):
        client.conn.reset_stream(1, ErrorCode.CANCEL)
    for _ in range(4):  # 60,000 bytes the client had in flight: ignored
        client.send(data_frame(1, b"x" * 15_000), "DATA of 15000 bytes on reset stream 1")
    returned = sum(int.from_bytes(f.payload, "big") for f in client.of(WINDOW_UPDATE, 0))
    assert returned == 60_000, called(
        "60,000 bytes of DATA on a stream the server reset",
        returned,
        "WINDOW_UPDATE(0) of 60000 in all",
    )
    client.open(3, POST, end_stream=False)
    client.send(data_frame(3, b"y" * 15_000), "DATA of 15000 bytes on new stream 3")
    assert client.error is None, (
        f"Sent DATA on stream 3 after the discarded bytes: {client.said()}; expected it accepted"
    )


def _respond_and_end(client: Client, stream_id: int) -> None:
    with step(f"conn.send_headers({stream_id}, [(b':status', b'204')], end_stream=True)"):
        client.conn.send_headers(stream_id, [(b":status", b"204")], end_stream=True)
    client.read()


# (what, the client's options, how stream 1 gets where its next DATA is refused, the codes the
# refusal may carry, whether a connection error is allowed in place of the stream error)
REFUSED_DATA = {
    "DATA after the request's END_STREAM": (
        {}, lambda c: c.open(1, POST), (ErrorCode.STREAM_CLOSED,), True,
    ),
    "DATA on a stream closed both ways": (
        {}, lambda c: (c.open(1, GET), _respond_and_end(c, 1)), (ErrorCode.STREAM_CLOSED,), True,
    ),
    "DATA on a stream the client reset": (
        {},
        lambda c: (c.open(1, POST, end_stream=False), c.send(rst_stream(1), "RST_STREAM(1)")),
        (ErrorCode.STREAM_CLOSED,),
        True,
    ),
    "DATA beyond content-length 10": (
        {},
        lambda c: c.open(1, [*POST, (b"content-length", b"10")], end_stream=False),
        (ErrorCode.PROTOCOL_ERROR,),
        False,
    ),
    "DATA over a 100-byte stream window": (
        {"initial_window_size": 100},
        lambda c: c.open(1, POST, end_stream=False),
        (ErrorCode.FLOW_CONTROL_ERROR,),
        True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED_DATA.values(), ids=REFUSED_DATA.keys())
def test_refused_data_returns_connection_window(case) -> None:
    """DATA the server refuses with a stream error still counted against the connection window, and the server gives that window back with WINDOW_UPDATE on stream 0 (RFC 9113 §6.9: "even if the frame is in error").

    Every way a DATA frame can be refused, not only DATA on a stream the server reset: a server
    that returns the window on one path and not the others stalls for good once the refused
    bytes add up to 64 KiB. A connection error, where the RFC allows one, ends the matter.
    """
    options, setup, codes, connection_ok = case
    client = Client(options)
    client.handshake()
    setup(client)
    before = len(client.of(WINDOW_UPDATE, 0))
    client.send(data_frame(1, b"x" * 1000), "DATA of 1000 bytes on stream 1")
    stream_error(client, 1, codes, f"Sent {client.log[-1]}", connection_ok=connection_ok)
    if client.error is not None:
        return
    returned = sum(int.from_bytes(f.payload, "big") for f in client.of(WINDOW_UPDATE, 0)[before:])
    assert returned == 1000, called(
        f"{'; '.join(client.log[-3:])}: refused with RST_STREAM",
        returned,
        "WINDOW_UPDATE(0) of 1000 in all: the refused bytes given back to the connection window",
    )


def test_trailers_wait_for_the_body() -> None:
    """Trailers queued behind a body that flow control holds back go out only after its last byte (RFC 9113 §8.1: the trailer block ends the stream)."""
    client = Client()
    client.handshake((4, 2))
    client.open(1)
    with step(
        "send_headers(1), send_data(1, b'abcde'), send_trailers(1, [(b'x-sum', b'5')]) on a 2-byte window"
    ):
        client.conn.send_headers(1, [(b":status", b"200")])
        client.conn.send_data(1, b"abcde")
        client.conn.send_trailers(1, [(b"x-sum", b"5")])
    client.read()
    shape = [(f.type, len(f.payload)) for f in client.frames if f.stream_id == 1]
    assert sent(client, 1) == 2 and len(client.response_headers(1)) == 1, called(
        "a 5-byte body and trailers on a 2-byte window",
        shape,
        "2 bytes of DATA and no trailers yet",
    )
    client.send(window_update(1, 10), "WINDOW_UPDATE(1, +10)")
    frames = [(f.type, f.flags & END_STREAM) for f in client.frames if f.stream_id == 1]
    assert (
        client.body(1) == b"abcde"
        and frames[-1] == (1, END_STREAM)
        and client.response_headers(1)[-1] == [(b"x-sum", b"5")]
    ), called(
        "WINDOW_UPDATE(1, +10)", frames, "the rest of the body, then the trailers with END_STREAM"
    )
