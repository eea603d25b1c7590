"""Protocol errors, frame by frame, through the sans-IO connection.

The inventory is h2spec's list of server test cases (github.com/summerwind/h2spec,
http2/*.go): each case id below is "h2spec-<section>-<n>", the n-th case of that group there,
numbered by RFC 7540's sections (RFC 9113 moved §3.5 to §3.4 and §8.1.2 to §8.2-§8.3; the
sections cited in the cases are RFC 9113's unless they say otherwise). Where h2spec accepts a stream error or a
connection error, so do these specs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    Client,
    ErrorCode,
    connection_error,
    data_frame,
    frame,
    rst_stream,
    settings,
    stream_error,
    window_update,
)
from http2_server import RequestReceived

from grader.spectools import called, step

E = ErrorCode
TRACED = [*GET, (b"x-trace", b"abc123")]  # the oracle encoder indexes it: later blocks refer back


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    run: Callable[[Client], None]
    codes: tuple[ErrorCode, ...]


def _open_then(
    *frames: Callable[[Client], bytes], end_stream: bool = False
) -> Callable[[Client], None]:
    """Open stream 1 (a GET with x-trace), then send each frame built from the client."""

    def run(client: Client) -> None:
        client.open(1, TRACED, end_stream=end_stream)
        for build in frames:
            client.send(build(client), "the frame under test")

    return run


def _send(*frames: Callable[[Client], bytes]) -> Callable[[Client], None]:
    def run(client: Client) -> None:
        for build in frames:
            client.send(build(client), "the frame under test")

    return run


def _headers_no_end(stream_id: int) -> Callable[[Client], bytes]:
    """HEADERS without END_HEADERS: a header block that CONTINUATION must finish."""
    return lambda c: frame(HEADERS, END_STREAM, stream_id, c.block(GET))


def _closed_stream(client: Client) -> None:
    """Stream 1 completes both ways: request with END_STREAM, response with END_STREAM."""
    client.open(1, TRACED)
    client.conn.send_headers(1, [(b":status", b"204")], end_stream=True)
    client.read()


def _padding_over_priority(block: bytes) -> bytes:
    """HEADERS with PADDED and PRIORITY whose padding covers the block and the priority fields."""
    payload = bytes([5 + len(block)]) + b"\0\0\0\0\x10" + block
    return frame(HEADERS, END_HEADERS | END_STREAM | PADDED | PRIORITY_FLAG, 1, payload)


CONNECTION_ERRORS = [
    Case("h2spec-3.5-2 first frame not SETTINGS", "PING as the first frame after the preface (§3.4)",
         lambda c: c.send(PREFACE + frame(PING, 0, 0, b"\0" * 8), "the preface then PING"), (E.PROTOCOL_ERROR,)),
    Case("h2spec-4.2-3 HEADERS over max frame size", "a 16,385-byte HEADERS frame (§4.2)",
         _send(lambda c: frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\0" * 16385)), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-4.3-1 invalid header block", "a header block indexing entry 70 of an empty table (§4.3)",
         _send(lambda c: frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xc6")), (E.COMPRESSION_ERROR,)),
    Case("h2spec-4.3-2 PRIORITY inside a header block", "HEADERS without END_HEADERS, then PRIORITY (§4.3)",
         _send(_headers_no_end(1), lambda c: frame(PRIORITY, 0, 1, b"\0\0\0\0\x10")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-4.3-3 HEADERS inside a header block", "HEADERS without END_HEADERS, then HEADERS on stream 3 (§4.3, §6.2)",
         _send(_headers_no_end(1), lambda c: c.headers(3)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1.1-1 even stream id", "HEADERS on stream 2 (§5.1.1)",
         _send(lambda c: c.headers(2)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1.1-2 stream id going down", "HEADERS on stream 5, then on stream 3 (§5.1.1)",
         _send(lambda c: c.headers(5), lambda c: c.headers(3)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1-1 idle DATA", "DATA on idle stream 1 (§5.1)",
         _send(lambda c: data_frame(1, b"x")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1-2 idle RST_STREAM", "RST_STREAM on idle stream 1 (§5.1, §6.4)",
         _send(lambda c: rst_stream(1)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1-3 idle WINDOW_UPDATE", "WINDOW_UPDATE on idle stream 1 (§5.1)",
         _send(lambda c: window_update(1, 100)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1-4 idle CONTINUATION", "CONTINUATION on idle stream 1 (§5.1, §6.10)",
         _send(lambda c: frame(CONTINUATION, END_HEADERS, 1, c.block(GET))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.1-7 half-closed (remote) CONTINUATION", "CONTINUATION on stream 1 after its END_STREAM (§5.1, §6.10)",
         _open_then(lambda c: frame(CONTINUATION, END_HEADERS, 1, c.block([(b"x-late", b"1")])), end_stream=True),
         (E.STREAM_CLOSED, E.PROTOCOL_ERROR)),
    Case("h2spec-5.1-10 closed: CONTINUATION after RST_STREAM", "RST_STREAM on stream 1, then CONTINUATION on it (§5.1, §6.10)",
         _open_then(lambda c: rst_stream(1), lambda c: frame(CONTINUATION, END_HEADERS, 1, c.block([(b"x-late", b"1")]))),
         (E.STREAM_CLOSED, E.PROTOCOL_ERROR)),
    Case("h2spec-5.1-12 closed HEADERS", "HEADERS on stream 1 after it closed both ways (§5.1)",
         lambda c: (_closed_stream(c), c.send(c.headers(1), "HEADERS on closed stream 1")), (E.STREAM_CLOSED,)),
    Case("h2spec-5.1-13 closed CONTINUATION", "CONTINUATION on stream 1 after it closed (§5.1, §6.10)",
         lambda c: (_closed_stream(c), c.send(frame(CONTINUATION, END_HEADERS, 1, c.block(GET)), "CONTINUATION")),
         (E.STREAM_CLOSED, E.PROTOCOL_ERROR)),
    Case("h2spec-5.5-2 extension frame inside a header block", "HEADERS without END_HEADERS, then a frame of unknown type 0x16 (§5.5)",
         _send(_headers_no_end(1), lambda c: frame(0x16, 0, 1, b"ext")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.1-1 DATA on stream 0", "DATA on stream 0 (§6.1)",
         _send(lambda c: data_frame(0, b"x")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.1-3 DATA pad length too long", "padded DATA whose Pad Length equals the payload length (§6.1)",
         _open_then(lambda c: frame(DATA, PADDED, 1, b"\x05abcd")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.2-1 PRIORITY after HEADERS without END_HEADERS", "HEADERS (no END_HEADERS), then PRIORITY on another stream (§6.2)",
         _send(_headers_no_end(1), lambda c: frame(PRIORITY, 0, 3, b"\0\0\0\0\x10")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.2-3 HEADERS on stream 0", "HEADERS on stream 0 (§6.2)",
         _send(lambda c: c.headers(0)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.2-4 HEADERS pad length too long", "padded HEADERS whose padding is longer than what follows (§6.2)",
         _send(lambda c: frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1, bytes([len(c.block(GET)) + 1]) + c.block(GET))),
         (E.PROTOCOL_ERROR,)),
    Case("HEADERS padding over the priority fields", "padded HEADERS with PRIORITY whose Pad Length also counts the 5 priority bytes (§6.2)",
         _send(lambda c: _padding_over_priority(c.block(GET))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.3-1 PRIORITY on stream 0", "PRIORITY on stream 0 (§6.3)",
         _send(lambda c: frame(PRIORITY, 0, 0, b"\0\0\0\1\x10")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.4-1 RST_STREAM on stream 0", "RST_STREAM on stream 0 (§6.4)",
         _send(lambda c: rst_stream(0)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.4-3 RST_STREAM of 3 bytes", "a 3-byte RST_STREAM on an open stream (§6.4)",
         _open_then(lambda c: frame(RST_STREAM, 0, 1, b"\0\0\x08")), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.5-1 SETTINGS ACK with a payload", "SETTINGS with ACK and 6 bytes (§6.5)",
         _send(lambda c: frame(SETTINGS, ACK, 0, b"\0\x03\0\0\0\x10")), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.5-2 SETTINGS on a stream", "SETTINGS on stream 1 (§6.5)",
         _send(lambda c: frame(SETTINGS, 0, 1, b"")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.5-3 SETTINGS of 3 bytes", "SETTINGS whose length is not a multiple of 6 (§6.5)",
         _send(lambda c: frame(SETTINGS, 0, 0, b"\0\x03\0")), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.5.2-1 ENABLE_PUSH 2", "SETTINGS_ENABLE_PUSH = 2 (§6.5.2)",
         _send(lambda c: settings((2, 2))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.5.2-2 INITIAL_WINDOW_SIZE 2^31", "SETTINGS_INITIAL_WINDOW_SIZE = 2^31 (§6.5.2)",
         _send(lambda c: settings((4, 2**31))), (E.FLOW_CONTROL_ERROR,)),
    Case("h2spec-6.5.2-3 MAX_FRAME_SIZE 16383", "SETTINGS_MAX_FRAME_SIZE = 16383 (§6.5.2)",
         _send(lambda c: settings((5, 16383))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.5.2-4 MAX_FRAME_SIZE 2^24", "SETTINGS_MAX_FRAME_SIZE = 2^24 (§6.5.2)",
         _send(lambda c: settings((5, 2**24))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.7-3 PING on a stream", "PING on stream 1 (§6.7)",
         _send(lambda c: frame(PING, 0, 1, b"\0" * 8)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.7-4 PING of 6 bytes", "a 6-byte PING (§6.7)",
         _send(lambda c: frame(PING, 0, 0, b"\0" * 6)), (E.FRAME_SIZE_ERROR,)),
    Case("PING of 9 bytes", "a 9-byte PING (§6.7)",
         _send(lambda c: frame(PING, 0, 0, b"\0" * 9)), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.8-1 GOAWAY on a stream", "GOAWAY on stream 1 (§6.8)",
         _send(lambda c: frame(GOAWAY, 0, 1, b"\0" * 8)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.9-1 WINDOW_UPDATE of 0 on the connection", "WINDOW_UPDATE(0, +0) (§6.9)",
         _send(lambda c: window_update(0, 0)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.9-3 WINDOW_UPDATE of 3 bytes", "a 3-byte WINDOW_UPDATE (§6.9)",
         _send(lambda c: frame(8, 0, 0, b"\0\0\x01")), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.9.1-2 connection window over 2^31-1", "WINDOW_UPDATE(0) to 2^31-1, then +1 (§6.9.1)",
         _send(lambda c: window_update(0, 2**31 - 1 - 65535), lambda c: window_update(0, 1)), (E.FLOW_CONTROL_ERROR,)),
    Case("h2spec-6.9.2-3 stream window over 2^31-1 by SETTINGS", "INITIAL_WINDOW_SIZE raised past 2^31-1 for an open stream's window (§6.9.2)",
         _open_then(lambda c: window_update(1, 2**31 - 1 - 65535), lambda c: settings((4, 65536))), (E.FLOW_CONTROL_ERROR,)),
    Case("h2spec-6.10-2 CONTINUATION then another frame", "HEADERS, CONTINUATION (no END_HEADERS), then DATA (§6.10)",
         _send(_headers_no_end(1), lambda c: frame(CONTINUATION, 0, 1, b""), lambda c: data_frame(1, b"x")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.10-3 CONTINUATION on stream 0", "HEADERS (no END_HEADERS), then CONTINUATION on stream 0 (§6.10)",
         _send(_headers_no_end(1), lambda c: frame(CONTINUATION, END_HEADERS, 0, b"")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.10-4 CONTINUATION after END_HEADERS", "HEADERS with END_HEADERS, then CONTINUATION (§6.10)",
         _send(lambda c: c.headers(1, end_stream=False), lambda c: frame(CONTINUATION, END_HEADERS, 1, c.block([(b"a", b"b")]))),
         (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.10-5 CONTINUATION after a finished CONTINUATION", "HEADERS, CONTINUATION with END_HEADERS, CONTINUATION (§6.10)",
         _send(_headers_no_end(1), lambda c: frame(CONTINUATION, END_HEADERS, 1, b""),
               lambda c: frame(CONTINUATION, END_HEADERS, 1, b"")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.10-6 CONTINUATION after DATA", "DATA on an open stream, then CONTINUATION (§6.10)",
         _open_then(lambda c: data_frame(1, b"x"), lambda c: frame(CONTINUATION, END_HEADERS, 1, b"")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-8.2-1 PUSH_PROMISE from the client", "PUSH_PROMISE (§8.4)",
         _open_then(lambda c: frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\x02" + c.block(GET))), (E.PROTOCOL_ERROR,)),
    Case("h2spec-4.2-2 DATA over max frame size", "the 9-byte header of a 16,385-byte DATA frame (§4.2)",
         _open_then(lambda c: frame(DATA, 0, 1, b"\0" * 16385)[:9]), (E.FRAME_SIZE_ERROR,)),
]  # fmt: skip


@pytest.mark.parametrize("case", CONNECTION_ERRORS, ids=[c.id for c in CONNECTION_ERRORS])
def test_connection_errors(case: Case) -> None:
    """Each protocol violation of h2spec's list is a connection error with the code RFC 9113 names: GOAWAY with it, and H2ConnectionError raised.

    RFC 9113 §5.4.1: "An endpoint that encounters a connection error SHOULD first send a GOAWAY
    frame"; the case's section names the MUST that makes it a connection error.
    """
    client = Client()
    if not case.id.startswith("h2spec-3.5"):
        client.handshake()
    case.run(client)
    code = case.codes[0]
    if len(case.codes) > 1 and client.error is not None:
        code = client.error.error_code if client.error.error_code in case.codes else code
    connection_error(client, code, f"Sent {case.what}")


def _still_serves(client: Client, stream_id: int) -> None:
    """After a stream error the connection carries on: a new request is read whole."""
    events = client.open(stream_id, TRACED)
    got = [e for e in events if isinstance(e, RequestReceived)]
    assert got and got[0].headers == TRACED and client.error is None, called(
        f"conn.receive_data(HEADERS on stream {stream_id}) after the stream error",
        events,
        f"RequestReceived({stream_id}, {TRACED!r}): the connection must carry on, its HPACK table in step",
    )


STREAM_ERRORS = [
    Case("h2spec-5.1-5 half-closed (remote) DATA", "DATA on stream 1 after its END_STREAM (§5.1)",
         _open_then(lambda c: data_frame(1, b"x"), end_stream=True), (E.STREAM_CLOSED,)),
    Case("h2spec-5.1-6 half-closed (remote) HEADERS", "HEADERS on stream 1 after its END_STREAM (§5.1)",
         _open_then(lambda c: c.headers(1, [(b"x-late", b"1")]), end_stream=True), (E.STREAM_CLOSED,)),
    Case("h2spec-5.1-8 closed: DATA after RST_STREAM", "RST_STREAM on stream 1, then DATA on it (§5.1)",
         _open_then(lambda c: rst_stream(1), lambda c: data_frame(1, b"x")), (E.STREAM_CLOSED,)),
    Case("h2spec-5.1-9 closed: HEADERS after RST_STREAM", "RST_STREAM on stream 1, then HEADERS on it (§5.1)",
         _open_then(lambda c: rst_stream(1), lambda c: c.headers(1, [(b"x-late", b"1")])), (E.STREAM_CLOSED,)),
    Case("h2spec-5.1-11 closed DATA", "DATA on stream 1 after it closed both ways (§5.1)",
         lambda c: (_closed_stream(c), c.send(data_frame(1, b"x"), "DATA on closed stream 1")), (E.STREAM_CLOSED,)),
    Case("h2spec-5.3.1-1 HEADERS depending on itself", "HEADERS on stream 1 with a priority that depends on stream 1 (RFC 7540 §5.3.1)",
         _send(lambda c: frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, b"\0\0\0\x01\x10" + c.block(TRACED))),
         (E.PROTOCOL_ERROR,)),
    Case("h2spec-5.3.1-2 PRIORITY depending on itself", "PRIORITY on stream 1 depending on stream 1 (RFC 7540 §5.3.1)",
         _open_then(lambda c: frame(PRIORITY, 0, 1, b"\0\0\0\x01\x10")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.3-2 PRIORITY of 4 bytes", "a 4-byte PRIORITY on an open stream (§6.3)",
         _open_then(lambda c: frame(PRIORITY, 0, 1, b"\0\0\0\x03")), (E.FRAME_SIZE_ERROR,)),
    Case("h2spec-6.9-2 WINDOW_UPDATE of 0 on a stream", "WINDOW_UPDATE(1, +0) (§6.9)",
         _open_then(lambda c: window_update(1, 0)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-6.9.1-3 stream window over 2^31-1", "WINDOW_UPDATE(1) to 2^31-1, then +1 (§6.9.1)",
         _open_then(lambda c: window_update(1, 2**31 - 1 - 65535), lambda c: window_update(1, 1)), (E.FLOW_CONTROL_ERROR,)),
    Case("h2spec-8.1-1 second HEADERS without END_STREAM", "a second header block on stream 1 without END_STREAM (§8.1)",
         _open_then(lambda c: c.headers(1, [(b"x-trailer", b"1")], end_stream=False)), (E.PROTOCOL_ERROR,)),
    Case("h2spec-8.1.2.1-3 pseudo-header in trailers", "trailers holding :method (§8.1, §8.3)",
         _open_then(lambda c: c.headers(1, [(b":method", b"GET")])), (E.PROTOCOL_ERROR,)),
    Case("h2spec-8.1.2.6-1 content-length > DATA", "content-length 5 then 4 bytes of DATA with END_STREAM (§8.1.1)",
         lambda c: (c.open(1, [*POST, (b"content-length", b"5")], end_stream=False),
                    c.send(data_frame(1, b"abcd", end_stream=True), "DATA")), (E.PROTOCOL_ERROR,)),
    Case("h2spec-8.1.2.6-2 content-length < sum of DATA", "content-length 5 then DATA of 3 and 3 bytes (§8.1.1)",
         lambda c: (c.open(1, [*POST, (b"content-length", b"5")], end_stream=False),
                    c.send(data_frame(1, b"abc"), "DATA"), c.send(data_frame(1, b"def", end_stream=True), "DATA")),
         (E.PROTOCOL_ERROR,)),
]  # fmt: skip

# Malformed request header blocks (§8.1.1: a stream error of type PROTOCOL_ERROR).
MALFORMED = {
    "h2spec-8.1.2-1 uppercase field name": [*GET, (b"X-Trace", b"1")],
    "h2spec-8.1.2.1-1 unknown pseudo-header": [*GET, (b":foo", b"bar")],
    "h2spec-8.1.2.1-2 response pseudo-header": [*GET, (b":status", b"200")],
    "h2spec-8.1.2.1-4 pseudo-header after a regular field": [*GET[:3], (b"x-a", b"1"), GET[3]],
    "h2spec-8.1.2.2-1 connection-specific field": [*GET, (b"connection", b"keep-alive")],
    "h2spec-8.1.2.2-2 TE other than trailers": [*GET, (b"te", b"trailers, deflate")],
    "transfer-encoding": [*GET, (b"transfer-encoding", b"chunked")],
    "h2spec-8.1.2.3-1 empty :path": [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"")],
    "h2spec-8.1.2.3-2 no :method": GET[1:],
    "h2spec-8.1.2.3-3 no :scheme": [GET[0], *GET[2:]],
    "h2spec-8.1.2.3-4 no :path": [*GET[:2], GET[3]],
    "h2spec-8.1.2.3-5 two :method": [GET[0], *GET],
    "h2spec-8.1.2.3-6 two :scheme": [GET[1], *GET],
    "h2spec-8.1.2.3-7 two :path": [GET[2], *GET],
    "two :authority": [*GET, GET[3]],
    "CR LF in a value": [*GET, (b"x-a", b"1\r\nx-b: 2")],
    "NUL in a value": [*GET, (b"x-a", b"1\x002")],
    # RFC 9113 §8.2.1's other field checks: no byte 0x7f-0xff and no colon in a regular name,
    # no whitespace at either end of a value (each at the edge of its range).
    "byte 0x7f in a field name": [*GET, (b"x-a\x7f", b"1")],
    "non-ASCII field name (byte 0x80)": [*GET, (b"x-\x80", b"1")],
    "UTF-8 field name": [*GET, ("x-café".encode(), b"1")],
    "byte 0xff in a field name": [*GET, (b"x-\xff", b"1")],
    "colon in a regular field name": [*GET, (b"x:a", b"1")],
    "value starting with a space": [*GET, (b"x-a", b" 1")],
    "value ending with a tab": [*GET, (b"x-a", b"1\t")],
    "content-length not a number": [*GET, (b"content-length", b"0x10")],
    "two different content-lengths": [*GET, (b"content-length", b"0"), (b"content-length", b"1")],
    # RFC 9110 §8.6: Content-Length = 1*DIGIT. Python's int() also takes a sign, underscores
    # and any Unicode decimal digit; str.isdigit() says yes to Arabic-Indic zero too.
    "content-length with a sign": [*GET, (b"content-length", b"+0")],
    "content-length with an underscore": [*GET, (b"content-length", b"0_0")],
    "content-length in Arabic-Indic digits": [*GET, (b"content-length", "\u0660".encode())],
}


def test_client_max_frame_size_does_not_raise_ours() -> None:
    """A client's SETTINGS_MAX_FRAME_SIZE limits the frames the server sends, not the ones it takes: after the client announces 65,536, a 16,385-byte frame from it is still a connection error FRAME_SIZE_ERROR (RFC 9113 §4.2, §6.5.2).

    Each side's setting is what that side is willing to receive; this server never raises its
    own from the default 16,384.
    """
    client = Client()
    client.handshake((0x5, 65_536))  # SETTINGS_MAX_FRAME_SIZE from the client
    client.open(1, POST, end_stream=False)
    client.send(
        frame(DATA, 0, 1, b"\0" * 16_385)[:9], "the 9-byte header of a 16,385-byte DATA frame"
    )
    connection_error(
        client,
        E.FRAME_SIZE_ERROR,
        "The client announced SETTINGS_MAX_FRAME_SIZE 65,536, then sent a 16,385-byte DATA frame",
    )


@pytest.mark.parametrize("case", STREAM_ERRORS, ids=[c.id for c in STREAM_ERRORS])
def test_stream_errors(case: Case) -> None:
    """Each stream-level violation of h2spec's list resets that stream (RST_STREAM with the code RFC 9113 names), and the connection carries on.

    RFC 9113 §5.4.2; the case's section names the requirement. h2spec also accepts a connection
    error with the same code, and so does this spec for the cases where the RFC allows it
    (§5.1 "closed" and "half-closed"), but the connection must then be over.
    """
    client = Client()
    client.handshake()
    case.run(client)
    either = case.id.startswith(("h2spec-5.1-", "h2spec-6.9.1"))
    stream_error(client, 1, case.codes, f"Sent {case.what}", connection_ok=either)
    if client.error is None:
        _still_serves(client, 5)


@pytest.mark.parametrize("headers", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests(headers: list[tuple[bytes, bytes]]) -> None:
    """A malformed request header block resets its stream with PROTOCOL_ERROR (RFC 9113 §8.1.1, §8.2, §8.3), and the next request is served.

    The connection's HPACK table must still take the block in: the next request refers back to
    entries the malformed block added.
    """
    client = Client()
    client.handshake()
    client.send(client.headers(1, [*headers, (b"x-trace", b"abc123")]), f"HEADERS {headers!r}")
    stream_error(client, 1, (E.PROTOCOL_ERROR,), f"Sent a request with header block {headers!r}")
    _still_serves(client, 3)


# Trailers are a field section like any other: §8.2's rules hold in them too.
BAD_TRAILERS = {
    "uppercase field name": [(b"X-Checksum", b"1")],
    "CR LF in a value": [(b"x-checksum", b"1\r\nx-b: 2")],
    "NUL in a value": [(b"x-checksum", b"1\x002")],
    # §8.2.2 holds in every field section: a hop-by-hop field is no better after the body.
    "connection": [(b"x-checksum", b"1"), (b"connection", b"close")],
    "keep-alive": [(b"x-checksum", b"1"), (b"keep-alive", b"timeout=5")],
    "proxy-connection": [(b"x-checksum", b"1"), (b"proxy-connection", b"keep-alive")],
    "transfer-encoding": [(b"x-checksum", b"1"), (b"transfer-encoding", b"chunked")],
    "upgrade": [(b"x-checksum", b"1"), (b"upgrade", b"websocket")],
    "te other than trailers": [(b"x-checksum", b"1"), (b"te", b"gzip")],
}


@pytest.mark.parametrize("trailers", BAD_TRAILERS.values(), ids=BAD_TRAILERS.keys())
def test_malformed_trailers(trailers: list[tuple[bytes, bytes]]) -> None:
    """Trailers obey the same field rules as the request's headers (valid names and values; no connection-specific field, te only as trailers): breaking one resets the stream with PROTOCOL_ERROR (RFC 9113 §8.1.1, §8.2.1, §8.2.2).

    h2spec checks trailers for pseudo-headers only; a server that validates the first header
    block and not the second passes it.
    """
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    client.send(data_frame(1, b"abc"), "DATA(1, b'abc')")
    client.send(client.headers(1, trailers), f"trailers {trailers!r} with END_STREAM")
    stream_error(client, 1, (E.PROTOCOL_ERROR,), f"Sent a request body, then trailers {trailers!r}")
    _still_serves(client, 3)


# A request whose body falls short of its content-length, ended each way a request can end (§8.1).
SHORT_BODIES = {
    "HEADERS with END_STREAM and content-length 5": lambda c: c.send(
        c.headers(1, [*POST, (b"content-length", b"5")]), "HEADERS(1, content-length 5, END_STREAM)"
    ),
    "3 bytes of DATA, then trailers with END_STREAM": lambda c: (
        c.open(1, [*POST, (b"content-length", b"5")], end_stream=False),
        c.send(data_frame(1, b"abc"), "DATA(1, b'abc')"),
        c.send(c.headers(1, [(b"x-checksum", b"1")]), "trailers HEADERS(1, END_STREAM)"),
    ),
    "3 bytes of DATA, then an empty DATA with END_STREAM": lambda c: (
        c.open(1, [*POST, (b"content-length", b"5")], end_stream=False),
        c.send(data_frame(1, b"abc"), "DATA(1, b'abc')"),
        c.send(data_frame(1, b"", end_stream=True), "DATA(1, b'', END_STREAM)"),
    ),
}


@pytest.mark.parametrize("send", SHORT_BODIES.values(), ids=SHORT_BODIES.keys())
def test_content_length_checked_however_the_request_ends(send: Callable[[Client], None]) -> None:
    """A request that ends with less body than its content-length is malformed whether DATA, HEADERS or trailers carry its END_STREAM: RST_STREAM PROTOCOL_ERROR (RFC 9113 §8.1.1).

    h2spec's 8.1.2.6 cases end the stream on DATA only; a server that checks content-length in
    its DATA handler alone passes them.
    """
    client = Client()
    client.handshake()
    send(client)
    stream_error(
        client,
        1,
        (E.PROTOCOL_ERROR,),
        "Sent a request declaring content-length 5 that ended with less",
    )
    _still_serves(client, 3)


def test_invalid_preface() -> None:
    """A client that does not start with the HTTP/2 preface gets a PROTOCOL_ERROR connection error (RFC 9113 §3.4), as soon as a byte differs."""
    client = Client()
    client.send(b"GET / HTTP/1.1\r\n", "b'GET / HTTP/1.1\\r\\n' (an HTTP/1.1 request, 16 bytes)")
    assert client.error is not None and client.error.error_code == E.PROTOCOL_ERROR, called(
        "conn.receive_data(b'GET / HTTP/1.1\\r\\n')",
        client.error,
        "H2ConnectionError(PROTOCOL_ERROR)",
    )


def test_preface_split_across_reads() -> None:
    """The client preface may arrive a byte at a time (RFC 9113 §3.4: it is a byte stream)."""
    client = Client()
    for i, byte in enumerate(PREFACE + settings()):
        client.send(bytes([byte]), f"byte {i} of the preface and SETTINGS")
    acks = [f for f in client.of(SETTINGS) if f.flags & ACK]
    assert client.error is None and len(acks) == 1, called(
        "conn.receive_data() with the preface and SETTINGS one byte at a time",
        client.frames,
        "one SETTINGS ACK",
    )


def test_max_concurrent_streams() -> None:
    """A stream beyond SETTINGS_MAX_CONCURRENT_STREAMS is refused (RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR, RFC 9113 §5.1.2); at the limit all are served.

    h2spec-5.1.2-1. The stream that is refused is the one over the limit, not one already open.
    """
    client = Client({"max_concurrent_streams": 2})
    client.handshake()
    client.open(1, end_stream=False)
    client.open(3, TRACED, end_stream=False)
    assert not client.of(RST_STREAM) and client.error is None, (
        f"Opened 2 streams with max_concurrent_streams=2: {client.said()}; expected both accepted"
    )
    client.open(5, [*GET, (b"x-refused", b"yes")], end_stream=False)  # adds a table entry
    stream_error(
        client,
        5,
        (E.REFUSED_STREAM, E.PROTOCOL_ERROR),
        "Opened a 3rd stream with max_concurrent_streams=2",
    )
    assert not client.of(RST_STREAM, 1) and not client.of(RST_STREAM, 3), (
        f"Opened a 3rd stream with max_concurrent_streams=2: {client.said()}; expected only stream 5 reset"
    )
    client.send(rst_stream(1), "RST_STREAM on stream 1 (now one stream is open)")
    _still_serves(client, 7)


def test_half_closed_streams_count_as_concurrent() -> None:
    """Half-closed streams count against SETTINGS_MAX_CONCURRENT_STREAMS, both kinds: a request the server has not answered yet, and a response sent in full to a request still arriving (RFC 9113 §5.1.2).

    A server that counts only "open" streams lets a client park any number of complete requests
    on a slow app, the very load the limit is there to bound.
    """
    client = Client({"max_concurrent_streams": 2})
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step("conn.send_headers(1, [(b':status', b'204')], end_stream=True): half-closed (local)"):
        client.conn.send_headers(1, [(b":status", b"204")], end_stream=True)
    client.open(3, TRACED)  # END_STREAM, no answer yet: half-closed (remote)
    client.open(5, [*GET, (b"x-refused", b"yes")])
    stream_error(
        client,
        5,
        (E.REFUSED_STREAM, E.PROTOCOL_ERROR),
        "With max_concurrent_streams=2, stream 1 half-closed (local) and stream 3 half-closed "
        "(remote), opened stream 5",
    )


def test_closed_streams_do_not_count_as_concurrent() -> None:
    """Streams that have closed both ways no longer count against SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2)."""
    client = Client({"max_concurrent_streams": 1})
    client.handshake()
    for stream_id in (1, 3, 5):
        client.open(stream_id, TRACED)
        with step(f"conn.send_headers({stream_id}, [(b':status', b'204')], end_stream=True)"):
            client.conn.send_headers(stream_id, [(b":status", b"204")], end_stream=True)
    assert not client.of(RST_STREAM) and client.error is None, (
        f"Opened three streams one after the other, each answered before the next: {client.said()}; expected none refused"
    )


@pytest.mark.parametrize(
    "extra, calm", [(0, False), (1, True)], ids=["at the limit", "one byte over"]
)
def test_continuation_flood(extra: int, calm: bool) -> None:
    """A header block still open after max_header_list_size buffered bytes is a connection error ENHANCE_YOUR_CALM: the CONTINUATION flood must not grow a buffer without bound.

    This kata's policy (RFC 9113 §10.5.1 lets a server close a connection over a field block it
    will not handle): the limit counts the compressed bytes of one block, HEADERS and
    CONTINUATION together, before END_HEADERS arrives.
    """
    client = Client({"max_header_list_size": 1000})
    client.handshake()
    client.send(
        frame(HEADERS, END_STREAM, 1, b"\0" * 400), "HEADERS of 400 bytes without END_HEADERS"
    )
    client.send(frame(CONTINUATION, 0, 1, b"\0" * 300), "CONTINUATION of 300 bytes")
    client.send(
        frame(CONTINUATION, 0, 1, b"\0" * (300 + extra)), f"CONTINUATION of {300 + extra} bytes"
    )
    if calm:
        connection_error(
            client,
            E.ENHANCE_YOUR_CALM,
            "Sent an unfinished header block of 1001 bytes (max_header_list_size=1000)",
        )
    else:
        assert client.error is None, (
            f"Sent an unfinished header block of 1000 bytes (max_header_list_size=1000): {client.said()}; expected no error yet"
        )
