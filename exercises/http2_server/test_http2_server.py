"""Visible examples for the http2_server kata. Run them with `nox -s try -- http2_server`.

They build frames by hand (standard library only) and compress header blocks with your own
hpack_codec.py from the hpack kata, so you can read exactly what goes over the wire. The hidden
specs go much further: h2spec's list of protocol errors, flow control counted byte by byte,
the rapid-reset defence, and a real HTTP/2 client (the h2 library) over TCP.
"""

from __future__ import annotations

import asyncio

try:
    from hpack_codec import Decoder, Encoder
except ImportError as err:
    raise ImportError(
        "MISSING MODULE --> this kata uses hpack_codec.py from the hpack kata"
    ) from err

try:
    from http2_server import (
        ErrorCode,
        H2Connection,
        H2ConnectionError,
        H2Server,
        Request,
        RequestReceived,
        Response,
        StreamEnded,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import H2Connection, H2Server and the events from http2_server.py"
    ) from err

PREFACE = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what every HTTP/2 client sends first (RFC 9113 §3.4)
)
DATA, HEADERS, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x4, 0x6, 0x7
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"example")]


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame: 3-byte length, type, flags, 4-byte stream id, payload (RFC 9113 §4.1)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes([frame_type, flags])
        + stream_id.to_bytes(4, "big")
        + payload
    )


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Split bytes into (type, flags, stream id, payload)."""
    out = []
    while data:
        length = int.from_bytes(data[:3], "big")
        out.append((data[3], data[4], int.from_bytes(data[5:9], "big"), data[9 : 9 + length]))
        data = data[9 + length :]
    return out


def handshake(conn: H2Connection) -> list:
    """The client preface, an empty SETTINGS, and the ACK of the server's SETTINGS."""
    return conn.receive_data(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))


def test_server_speaks_first_with_settings():
    conn = H2Connection()
    first = frames(conn.data_to_send())
    assert first[0][0] == SETTINGS and first[0][1] == 0


def test_settings_are_acknowledged():
    conn = H2Connection()
    conn.data_to_send()
    handshake(conn)
    assert frames(conn.data_to_send()) == [(SETTINGS, ACK, 0, b"")]


def test_a_get_request_and_its_response():
    conn = H2Connection()
    handshake(conn)
    block = Encoder().encode(GET)
    events = conn.receive_data(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    assert events == [RequestReceived(1, GET), StreamEnded(1)]

    conn.data_to_send()
    conn.send_headers(1, [(b":status", b"200")])
    conn.send_data(1, b"hello", end_stream=True)
    out = frames(conn.data_to_send())
    assert [(t, f & END_STREAM, s) for t, f, s, _ in out] == [
        (HEADERS, 0, 1),
        (DATA, END_STREAM, 1),
    ]
    assert Decoder().decode(out[0][3]) == [(b":status", b"200")]
    assert out[1][3] == b"hello"


def test_ping_is_answered():
    conn = H2Connection()
    handshake(conn)
    conn.data_to_send()
    conn.receive_data(frame(PING, 0, 0, b"12345678"))
    assert frames(conn.data_to_send()) == [(PING, ACK, 0, b"12345678")]


def test_ping_on_a_stream_is_a_connection_error():
    conn = H2Connection()
    handshake(conn)
    conn.data_to_send()
    try:
        conn.receive_data(frame(PING, 0, 1, b"12345678"))
    except H2ConnectionError as error:
        assert error.error_code == ErrorCode.PROTOCOL_ERROR
    else:
        raise AssertionError("PING on stream 1 must be a connection error (RFC 9113 §6.7)")
    goaway = frames(conn.data_to_send())
    assert goaway[-1][0] == GOAWAY
    assert int.from_bytes(goaway[-1][3][4:8], "big") == ErrorCode.PROTOCOL_ERROR


def test_window_of_one_byte():
    conn = H2Connection()
    conn.receive_data(
        PREFACE + frame(SETTINGS, 0, 0, (4).to_bytes(2, "big") + (1).to_bytes(4, "big"))
    )
    conn.receive_data(frame(HEADERS, END_HEADERS | END_STREAM, 1, Encoder().encode(GET)))
    conn.data_to_send()
    conn.send_headers(1, [(b":status", b"200")])
    conn.send_data(1, b"hello", end_stream=True)
    data = [payload for t, _, _, payload in frames(conn.data_to_send()) if t == DATA]
    assert data == [b"h"]  # the client's window is 1 byte


async def test_the_server_over_tcp():
    async def app(request: Request) -> Response:
        return Response(
            200, [("content-type", "text/plain")], f"you asked for {request.path}".encode()
        )

    server = await asyncio.start_server(H2Server(app).handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
    block = Encoder().encode([*GET[:2], (b":path", b"/hello"), GET[3]])
    writer.write(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    received = b""
    while not any(t == DATA and f & END_STREAM for t, f, _, _ in frames(received)):
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        assert chunk, "the server closed the connection before the response ended"
        received += chunk
    out = [(t, payload) for t, _, stream_id, payload in frames(received) if stream_id == 1]
    status = dict(Decoder().decode(next(p for t, p in out if t == HEADERS)))[b":status"]
    body = b"".join(p for t, p in out if t == DATA)
    writer.close()
    server.close()
    assert status == b"200"
    assert body == b"you asked for /hello"
