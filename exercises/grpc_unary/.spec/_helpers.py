"""Helpers for the grpc_unary specs: a protobuf oracle built at run time, a running server, a
grpcio client, and a raw HTTP/2 client (h2) that shows every frame the server sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_unary import GrpcServer, RpcError, StatusCode, server_streaming, unary
from protowire import Field, MessageType, decode, encode

from grader.spectools import LOCALHOST, bounded, short, tcp_server

# How long a spec waits for something the server should do at once: far above what it takes
# on an idle machine (milliseconds), so that a runner loaded 20x still gets there.
WAIT = 10.0

# --- one schema, two implementations -----------------------------------------------------
#
# Each row: (name, number, type, repeated, packed, nested message name). The same rows build
# the learner's MessageType and, through a FileDescriptorProto, protobuf's own message class
# (no protoc, no generated code). "Wide" adds fields the learner's schema does not know, of
# every wire type, so protobuf's bytes carry unknown fields.

POINT_ROWS = [("x", 1, "int32"), ("y", 2, "sint32"), ("label", 3, "string")]
SAMPLE_ROWS: list[tuple[str, int, str, bool, bool, str | None]] = [
    ("i32", 1, "int32", False, True, None),
    ("i64", 2, "int64", False, True, None),
    ("u32", 3, "uint32", False, True, None),
    ("u64", 4, "uint64", False, True, None),
    ("s32", 5, "sint32", False, True, None),
    ("s64", 6, "sint64", False, True, None),
    ("flag", 7, "bool", False, True, None),
    ("text", 8, "string", False, True, None),
    ("blob", 9, "bytes", False, True, None),
    ("color", 10, "enum", False, True, None),
    ("point", 11, "message", False, True, "Point"),
    ("packed_ints", 12, "int32", True, True, None),
    ("unpacked", 13, "sint64", True, False, None),
    ("tags", 14, "string", True, True, None),
    ("points", 15, "message", True, True, "Point"),
    ("colors", 16, "enum", True, True, None),
    ("far", 536870911, "uint32", False, True, None),  # the largest field number: a 5-byte tag
]
WIDE_EXTRA = [
    ("w_fixed32", 20, "fixed32"),
    ("w_double", 21, "double"),
    ("w_fixed64", 22, "fixed64"),
    ("w_float", 23, "float"),
    ("w_varint", 24, "int64"),
    ("w_string", 25, "string"),
    ("w_point", 26, "Point"),
]

_T = descriptor_pb2.FieldDescriptorProto
_PB_TYPES = {
    "int32": _T.TYPE_INT32,
    "int64": _T.TYPE_INT64,
    "uint32": _T.TYPE_UINT32,
    "uint64": _T.TYPE_UINT64,
    "sint32": _T.TYPE_SINT32,
    "sint64": _T.TYPE_SINT64,
    "bool": _T.TYPE_BOOL,
    "string": _T.TYPE_STRING,
    "bytes": _T.TYPE_BYTES,
    "fixed32": _T.TYPE_FIXED32,
    "fixed64": _T.TYPE_FIXED64,
    "double": _T.TYPE_DOUBLE,
    "float": _T.TYPE_FLOAT,
}


def _add_field(message, name, number, kind, repeated=False, packed=True) -> None:
    f = message.field.add(name=name, number=number)
    f.label = _T.LABEL_REPEATED if repeated else _T.LABEL_OPTIONAL
    if kind == "enum":
        f.type, f.type_name = _T.TYPE_ENUM, ".kata.Color"
    elif kind in ("message", "Point"):
        f.type, f.type_name = _T.TYPE_MESSAGE, ".kata.Point"
    else:
        f.type = _PB_TYPES[kind]
    if repeated and not packed:
        f.options.packed = False


def _build_protobuf() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="kata_grpc_unary.proto", package="kata", syntax="proto3"
    )
    color = fdp.enum_type.add(name="Color")
    for number, name in enumerate(["RED", "GREEN", "BLUE"]):
        color.value.add(name=name, number=number)
    point = fdp.message_type.add(name="Point")
    for name, number, kind in POINT_ROWS:
        _add_field(point, name, number, kind)
    sample = fdp.message_type.add(name="Sample")
    wide = fdp.message_type.add(name="Wide")
    for name, number, kind, repeated, packed, _ in SAMPLE_ROWS:
        _add_field(sample, name, number, kind, repeated, packed)
        _add_field(wide, name, number, kind, repeated, packed)
    for name, number, kind in WIDE_EXTRA:
        _add_field(wide, name, number, kind)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"kata.{name}"))
        for name in ("Point", "Sample", "Wide")
    }


PB = _build_protobuf()


def learner_schema() -> tuple[MessageType, MessageType]:
    """(Point, Sample) as the learner's MessageType objects."""
    point = MessageType("Point", tuple(Field(n, name, kind) for name, n, kind in POINT_ROWS))
    fields = []
    for name, number, kind, repeated, packed, nested in SAMPLE_ROWS:
        message = point if nested else None
        fields.append(Field(number, name, kind, repeated=repeated, packed=packed, message=message))
    return point, MessageType("Sample", tuple(fields))


def pb_to_dict(message: Any, rows: list[tuple] | None = None) -> dict[str, Any]:
    """A protobuf message as the dict the learner's decode returns (every field present)."""
    rows = rows if rows is not None else SAMPLE_ROWS
    out: dict[str, Any] = {}
    for row in rows:
        name, kind = row[0], row[2]
        repeated = len(row) > 3 and row[3]
        value = getattr(message, name)
        if kind == "message":
            if repeated:
                out[name] = [pb_to_dict(item, POINT_ROWS) for item in value]
            else:
                has = message.HasField(name)
                out[name] = pb_to_dict(value, POINT_ROWS) if has else None
        elif repeated:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def dict_to_pb(cls: Any, value: dict[str, Any]) -> Any:
    """A protobuf message of ``cls`` holding ``value`` (a dict in the learner's shape)."""
    message = cls()
    for name, item in value.items():
        if item is None:
            continue
        if name in ("point", "w_point"):
            getattr(message, name).CopyFrom(dict_to_pb(PB["Point"], item))
        elif name == "points":
            for point in item:
                getattr(message, name).append(dict_to_pb(PB["Point"], point))
        elif isinstance(item, list):
            getattr(message, name).extend(item)
        else:
            setattr(message, name, item)
    return message


# --- a running server, a grpcio client -----------------------------------------------------

GREETER = MessageType("HelloRequest", (Field(1, "name", "string"), Field(2, "count", "int32")))
REPLY = MessageType("HelloReply", (Field(1, "message", "string"), Field(2, "index", "int32")))


def req_bytes(value: dict[str, Any]) -> bytes:
    """A HelloRequest serialized by the spec's own encoder (the learner's encode is tested
    elsewhere)."""
    out = b""
    if value.get("name"):
        raw = value["name"].encode()
        out += b"\x0a" + _varint(len(raw)) + raw
    if value.get("count"):
        out += b"\x10" + _varint(value["count"] & (2**64 - 1))
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@dataclass
class Probe:
    """What the spec's handlers saw: calls, contexts, cancellations; events the spec controls."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    cancelled: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    was_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def service(probe: Probe) -> dict[str, Any]:
    """The methods every server spec serves."""

    async def say_hello(request, context):
        probe.requests.append(request)
        probe.contexts.append(context)
        return {"message": f"Hello, {request['name']}!", "index": request["count"]}

    async def echo_size(request, context):
        return {"message": str(len(request["name"])), "index": len(request["name"])}

    async def fail(request, context):
        raise RpcError(StatusCode(request["count"]), request["name"])

    async def crash(request, context):
        raise KeyError("a secret internal detail")

    async def wait(request, context):
        probe.contexts.append(context)
        probe.started.set()
        try:
            await probe.release.wait()
        except asyncio.CancelledError:
            probe.cancelled += 1
            probe.was_cancelled.set()
            raise
        return {"message": "released"}

    async def count_up(request, context):
        for index in range(request["count"]):
            yield {"message": request["name"] * (index + 1), "index": index}

    async def stream_then_fail(request, context):
        yield {"message": "first", "index": 0}
        raise RpcError(StatusCode.ABORTED, "stopped after one")

    async def stream_then_wait(request, context):
        yield {"message": "first", "index": 0}
        probe.started.set()
        try:
            await probe.release.wait()
        except asyncio.CancelledError:
            probe.cancelled += 1
            probe.was_cancelled.set()
            raise
        yield {"message": "second", "index": 1}

    return {
        "/kata.Greeter/SayHello": unary(GREETER, REPLY, say_hello),
        "/kata.Greeter/EchoSize": unary(GREETER, REPLY, echo_size),
        "/kata.Greeter/Fail": unary(GREETER, REPLY, fail),
        "/kata.Greeter/Crash": unary(GREETER, REPLY, crash),
        "/kata.Greeter/Wait": unary(GREETER, REPLY, wait),
        "/kata.Greeter/CountUp": server_streaming(GREETER, REPLY, count_up),
        "/kata.Greeter/StreamThenFail": server_streaming(GREETER, REPLY, stream_then_fail),
        "/kata.Greeter/StreamThenWait": server_streaming(GREETER, REPLY, stream_then_wait),
    }


@contextlib.asynccontextmanager
async def running(probe: Probe | None = None, **options: Any) -> AsyncIterator[tuple[int, Probe]]:
    """A GrpcServer with :func:`service` on 127.0.0.1, port 0; yields (port, probe)."""
    probe = probe or Probe()
    server = GrpcServer(service(probe), **options)
    async with tcp_server(server.handle_connection) as (_, port):
        yield port, probe


def reply_from(data: bytes) -> dict[str, Any]:
    """A HelloReply decoded by protobuf (the oracle), as a dict."""
    cls = _reply_class()
    message = cls.FromString(data)
    return {"message": message.message, "index": message.index}


def replies(body: bytes) -> list[dict[str, Any]]:
    """Every Length-Prefixed-Message of a response body, decoded by protobuf."""
    out, pos = [], 0
    while pos + 5 <= len(body):
        length = int.from_bytes(body[pos + 1 : pos + 5], "big")
        out.append(reply_from(body[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


def _reply_class() -> Any:
    if "HelloReply" not in PB:
        fdp = descriptor_pb2.FileDescriptorProto(
            name="kata_greeter.proto", package="kata", syntax="proto3"
        )
        for name, rows in (
            ("HelloRequest", [("name", 1, "string"), ("count", 2, "int32")]),
            ("HelloReply", [("message", 1, "string"), ("index", 2, "int32")]),
        ):
            message = fdp.message_type.add(name=name)
            for field_name, number, kind in rows:
                _add_field(message, field_name, number, kind)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        for name in ("HelloRequest", "HelloReply"):
            PB[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"kata.{name}"))
    return PB["HelloReply"]


def request_to_bytes(value: dict[str, Any]) -> bytes:
    """A HelloRequest serialized by protobuf (the oracle)."""
    _reply_class()
    return PB["HelloRequest"](**value).SerializeToString()


@dataclass
class Outcome:
    """The end of a grpcio call: responses, status code, details."""

    replies: list[dict[str, Any]]
    code: grpc.StatusCode
    details: str | None

    def describe(self) -> str:
        return (
            f"status {self.code.name}, details {short(self.details)}, replies {short(self.replies)}"
        )


async def call(
    port: int,
    path: str,
    request: dict[str, Any],
    *,
    streaming: bool = False,
    timeout: float = WAIT,
    metadata: list[tuple[str, str]] | None = None,
) -> Outcome:
    """One call with a real grpcio client (in a thread; the channel is closed afterwards)."""

    def run() -> Outcome:
        with grpc.insecure_channel(f"{LOCALHOST}:{port}") as channel:
            kind = channel.unary_stream if streaming else channel.unary_unary
            stub = kind(path, request_serializer=request_to_bytes, response_deserializer=reply_from)
            replies: list[dict[str, Any]] = []
            try:
                result = stub(request, timeout=timeout, metadata=metadata)
                if streaming:
                    for reply in result:
                        replies.append(reply)
                else:
                    replies.append(result)
                return Outcome(replies, grpc.StatusCode.OK, None)
            except grpc.RpcError as error:
                return Outcome(replies, error.code(), error.details())

    return await bounded(asyncio.to_thread(run), timeout + 10, f"the grpcio call to {path}")


# --- a raw HTTP/2 client -----------------------------------------------------------------


@dataclass
class Exchange:
    """Everything the server sent on one stream, in order."""

    events: list[Any]

    @property
    def headers(self) -> list[dict[str, str]]:
        """Each HEADERS block (response headers, then trailers), as a dict."""
        kinds = (h2.events.ResponseReceived, h2.events.TrailersReceived)
        return [dict(e.headers) for e in self.events if isinstance(e, kinds)]

    @property
    def body(self) -> bytes:
        return b"".join(e.data for e in self.events if isinstance(e, h2.events.DataReceived))

    @property
    def reset(self) -> bool:
        return any(isinstance(e, h2.events.StreamReset) for e in self.events)

    @property
    def status(self) -> str | None:
        """grpc-status from the last HEADERS block that carries it."""
        for block in reversed(self.headers):
            if "grpc-status" in block:
                return block["grpc-status"]
        return None

    def frames(self) -> str:
        names = []
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived | h2.events.TrailersReceived):
                end = " +END_STREAM" if e.stream_ended is not None else ""
                names.append(f"HEADERS {dict(e.headers)}{end}")
            elif isinstance(e, h2.events.DataReceived):
                names.append(f"DATA({len(e.data)})")
            elif isinstance(e, h2.events.StreamReset):
                names.append(f"RST_STREAM({e.error_code!s})")
        return "[" + ", ".join(names) + "]"


def grpc_headers(path: str, **extra: str) -> list[tuple[str, str]]:
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
    ]
    return headers + [(name.replace("_", "-"), value) for name, value in extra.items()]


def prefixed(message: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(message).to_bytes(4, "big") + message


class RawClient:
    """A hand-driven HTTP/2 client connection (h2, client side)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.streams: dict[int, list[Any]] = {}
        self.ended: dict[int, asyncio.Event] = {}
        self.any_event = asyncio.Event()
        self.auto_ack = True

    def flush(self) -> None:
        self.writer.write(self.conn.data_to_send())

    def start(self, headers: list[tuple[str, str]], end_stream: bool = False) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.streams[stream_id] = []
        self.ended[stream_id] = asyncio.Event()
        self.flush()
        return stream_id

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.conn.send_data(stream_id, data, end_stream=end_stream)
        self.flush()

    def end(self, stream_id: int) -> None:
        self.conn.end_stream(stream_id)
        self.flush()

    async def pump(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                for event in self.ended.values():
                    event.set()
                return
            for event in self.conn.receive_data(data):
                stream_id = getattr(event, "stream_id", None)
                if stream_id in self.streams:
                    self.streams[stream_id].append(event)
                if isinstance(event, h2.events.DataReceived) and self.auto_ack:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                ends = isinstance(event, h2.events.StreamEnded | h2.events.StreamReset)
                if ends and stream_id in self.ended:
                    self.ended[stream_id].set()
            self.any_event.set()
            self.flush()

    async def finish(self, stream_id: int, what: str, timeout: float = WAIT) -> Exchange:
        """Wait (bounded) until the server ends or resets the stream."""
        await bounded(self.ended[stream_id].wait(), timeout, f"the server to end {what}")
        return Exchange(self.streams[stream_id])

    async def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = WAIT):
        while not condition():
            self.any_event.clear()
            await bounded(self.any_event.wait(), timeout, what)


@contextlib.asynccontextmanager
async def raw_client(port: int, **settings: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    client = RawClient(reader, writer)
    client.conn.initiate_connection()
    if settings:
        client.conn.update_settings(settings)
    client.flush()
    pump = asyncio.ensure_future(client.pump())
    try:
        yield client
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def raw_call(port: int, path: str, body: bytes, what: str, **headers: str) -> Exchange:
    """One call on a fresh connection: the headers, the body in one DATA frame with END_STREAM."""
    async with raw_client(port) as client:
        stream_id = client.start(grpc_headers(path, **headers))
        client.send(stream_id, body, end_stream=True)
        return await client.finish(stream_id, what)


__all__ = [
    "GREETER",
    "WAIT",
    "PB",
    "REPLY",
    "Exchange",
    "Outcome",
    "Probe",
    "RawClient",
    "call",
    "decode",
    "dict_to_pb",
    "encode",
    "grpc_headers",
    "learner_schema",
    "pb_to_dict",
    "prefixed",
    "raw_call",
    "raw_client",
    "replies",
    "reply_from",
    "req_bytes",
    "request_to_bytes",
    "running",
]
