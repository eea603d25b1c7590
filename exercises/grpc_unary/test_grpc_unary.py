"""Visible examples for the grpc_unary kata. Run them with `nox -s try -- grpc_unary`.

They use the standard library and h2 only: the protobuf bytes and the HTTP/2 client are
written out here, so you can read exactly what goes over the wire. The hidden specs go much
further (protobuf itself and a real grpcio client as oracles, deadlines, flow control, every
status code).
"""

from __future__ import annotations

import asyncio

import h2.config
import h2.connection
import h2.events

try:
    from protowire import Field, MessageType, decode, encode, encode_varint
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Field, MessageType, decode, encode and encode_varint "
        "from protowire.py"
    ) from err
try:
    from grpc_unary import GrpcServer, encode_length_prefixed, percent_encode, unary
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import GrpcServer, encode_length_prefixed, percent_encode "
        "and unary from grpc_unary.py"
    ) from err

Int32Value = MessageType("Int32Value", (Field(1, "value", "int32"),))
HelloRequest = MessageType("HelloRequest", (Field(1, "name", "string"),))
HelloReply = MessageType("HelloReply", (Field(1, "message", "string"),))


def test_varint_150_is_two_bytes():
    got = encode_varint(150)
    assert got == b"\x96\x01", (
        f"Called encode_varint(150); returned {got!r}; expected b'\\x96\\x01'"
    )


def test_int32_value_150_as_protobuf_writes_it():
    got = encode(Int32Value, {"value": 150})
    assert got.hex() == "089601", f"Called encode(Int32Value, 150); returned {got.hex()}"


def test_negative_int32_takes_ten_bytes():
    got = encode(Int32Value, {"value": -1})
    want = "08ffffffffffffffffff01"
    assert got.hex() == want, (
        f"Called encode(Int32Value, -1); returned {got.hex()}; expected {want}"
    )


def test_decode_fills_in_defaults():
    got = decode(Int32Value, b"")
    assert got == {"value": 0}, f"Called decode(Int32Value, b''); returned {got!r}"


def test_length_prefixed_message():
    got = encode_length_prefixed(b"\x08\x96\x01")
    want = b"\x00\x00\x00\x00\x03\x08\x96\x01"
    assert got == want, f"Called encode_length_prefixed(...); returned {got!r}; expected {want!r}"


def test_grpc_message_percent_encoding():
    got = percent_encode("100% ünï")
    assert got == "100%25 %C3%BCn%C3%AF", f"Called percent_encode('100% ünï'); returned {got!r}"


async def say_hello(request, context):
    return {"message": f"Hello, {request['name']}!"}


async def one_call(port: int, path: str, request: bytes) -> tuple[list[dict], bytes]:
    """Send one gRPC call with a hand-driven h2 client; return the header blocks and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
    ]
    conn.send_headers(1, headers)
    conn.send_data(1, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True)
    writer.write(conn.data_to_send())
    blocks, body, done = [], b"", False
    try:
        while not done:
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    blocks.append(dict(event.headers))
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    done = True
            writer.write(conn.data_to_send())
    finally:
        writer.close()
    return blocks, body


async def test_a_unary_call_over_http2():
    server = GrpcServer({"/demo.Greeter/SayHello": unary(HelloRequest, HelloReply, say_hello)})
    listener = await asyncio.start_server(server.handle_connection, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        blocks, body = await one_call(port, "/demo.Greeter/SayHello", b"\x0a\x03Ada")
    finally:
        listener.close()
    assert len(blocks) == 2, f"Expected response headers then trailers; got {blocks}"
    assert blocks[0][":status"] == "200", f"Response headers: {blocks[0]}"
    assert blocks[1].get("grpc-status") == "0", f"Trailers: {blocks[1]}"
    reply = decode(HelloReply, body[5:])
    assert reply == {"message": "Hello, Ada!"}, f"Reply: {reply!r}"


async def test_an_unknown_method_is_unimplemented():
    server = GrpcServer({"/demo.Greeter/SayHello": unary(HelloRequest, HelloReply, say_hello)})
    listener = await asyncio.start_server(server.handle_connection, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        blocks, body = await one_call(port, "/demo.Greeter/Nope", b"")
    finally:
        listener.close()
    assert [b.get("grpc-status") for b in blocks] == ["12"], (
        f"Expected one Trailers-Only block with grpc-status 12 (UNIMPLEMENTED); got {blocks}"
    )
