"""Every response ends its stream, and a stream carries one response HEADERS.

The server half talks to a real HTTP/2 client, the ``h2`` library, over TCP on 127.0.0.1
(port 0); the sans-IO half drives the learner's H2Connection with raw frames (``_helpers``).
"""

from __future__ import annotations

import asyncio
import contextlib

import h2.config
import h2.connection
import h2.events
import pytest
from _helpers import DATA, END_STREAM, HEADERS, POST, Client, ErrorCode
from http2_server import H2Server, Request, Response

from grader.spectools import bounded, called, step, tcp_server


class _Peer:
    """An h2 client on a real socket that records, per stream, how the stream ended."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.status: dict[int, int] = {}
        self.body: dict[int, bytearray] = {}
        self.ended: dict[int, str] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.flush()

    def flush(self) -> None:
        if data := self.conn.data_to_send():
            self.writer.write(data)

    def get(self, path: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.done[stream_id] = asyncio.Event()
        self.body[stream_id] = bytearray()
        headers = [(":method", "GET"), (":scheme", "http"), (":path", path)]
        self.conn.send_headers(stream_id, [*headers, (":authority", "127.0.0.1")], end_stream=True)
        self.flush()
        return stream_id

    async def pump(self) -> None:
        while data := await self.reader.read(65536):
            for event in self.conn.receive_data(data):
                sid = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.ResponseReceived):
                    self.status[sid] = next(int(v) for n, v in event.headers if n == b":status")
                elif isinstance(event, h2.events.DataReceived):
                    self.body[sid] += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended[sid] = "END_STREAM"
                    self.done[sid].set()
                elif isinstance(event, h2.events.StreamReset):
                    self.ended[sid] = f"RST_STREAM({_name(event.error_code)})"
                    self.done[sid].set()
            self.flush()

    def outcome(self, stream_id: int) -> str:
        """'500', or 'RST_STREAM(<code>)' (after any status), or what little happened."""
        end = self.ended.get(stream_id)
        if end == "END_STREAM":
            return str(self.status.get(stream_id))
        if end is not None:
            return end
        status = self.status.get(stream_id)
        return f"status {status}, stream never ended" if status else "no answer at all"


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


# What the app returns, and how its stream may end. Nothing can have gone out for the first two
# (the response's HEADERS need its fields encoded): a 500. A str body or refused trailers may be
# caught before the HEADERS (a 500) or after them (RST_STREAM INTERNAL_ERROR).
RESET = "RST_STREAM(INTERNAL_ERROR)"
UNSENDABLE = {
    "None": (lambda: None, {"500"}),
    "a field value outside latin-1": (
        lambda: Response(200, [("x-greeting", "caf\u00e9 \u2615")], b"ok"),
        {"500"},
    ),
    "a str body": (lambda: Response(200, [], "hello"), {"500", RESET}),
    "trailers with a pseudo-header": (
        lambda: Response(200, [], b"partial", trailers=[(":status", "200")]),
        {"500", RESET},
    ),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", UNSENDABLE, ids=UNSENDABLE.keys())
async def test_an_unsendable_response_still_ends_its_stream(case: str) -> None:
    """When the app's response cannot be sent, its stream still ends: a 500 if the response's HEADERS have not gone out yet, else RST_STREAM INTERNAL_ERROR (RFC 9113 §5.4.2, §7); the connection keeps serving.

    A server that catches only the app's own exceptions lets the failure kill the request's task
    and leaves the client waiting for ever on a stream nobody will end.
    """
    make, allowed = UNSENDABLE[case]

    async def app(request: Request) -> Response:
        if request.path == "/bad":
            return make()  # type: ignore[return-value]
        return Response(200, [], b"fine")

    with step("H2Server(app)"):
        server = H2Server(app)
    async with tcp_server(server.handle) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        peer = _Peer(reader, writer)
        pump = asyncio.get_running_loop().create_task(peer.pump())
        try:
            bad = peer.get("/bad")
            with contextlib.suppress(AssertionError):  # reported below, with what the client saw
                await bounded(peer.done[bad].wait(), 8.0, "the stream of GET /bad to end")
            got = peer.outcome(bad)
            assert got in allowed, called(
                f"GET /bad, whose app returns {case}",
                got,
                " or ".join(sorted(allowed)) + ", and the stream ended",
            )
            good = peer.get("/fine")
            await bounded(peer.done[good].wait(), 8.0, "the response to GET /fine after /bad")
            got_good = (peer.outcome(good), bytes(peer.body[good]))
            assert got_good == ("200", b"fine"), called(
                "GET /fine on the same connection, after GET /bad", got_good, ("200", b"fine")
            )
        finally:
            writer.close()
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


def _headers_then(client: Client, what: str) -> None:
    client.conn.send_headers(1, [(b":status", b"200")])
    if what == "send_data":
        client.conn.send_data(1, b"abc")


@pytest.mark.parametrize("before", ["send_headers", "send_data"])
def test_second_send_headers_raises(before: str) -> None:
    """A second send_headers on a stream, before or after send_data, raises ValueError and sends nothing: after the response's HEADERS, the only header block allowed is the trailers, which end the stream (RFC 9113 §8.1).

    The stream stays usable: its body and trailers still go out afterwards.
    """
    calls = "send_headers(1, [(b':status', b'200')])" + (
        ", send_data(1, b'abc')" if before == "send_data" else ""
    )
    client = Client()
    client.handshake()
    client.open(1, POST, end_stream=False)
    with step(f"conn.{calls}"):
        _headers_then(client, before)
    client.read()
    sent = len(client.frames)
    second = "send_headers(1, [(b':status', b'201')])"
    with step(f"conn.{second} after {calls}"):
        try:
            client.conn.send_headers(1, [(b":status", b"201")])
        except ValueError:
            pass
        else:
            raise AssertionError(
                f"Called conn.{second} after {calls}: returned (and queued "
                f"{client.read() or 'nothing'}); expected ValueError"
            )
    late = client.read()
    assert not late, called(
        f"conn.{second} (which raised ValueError) after {calls}", late, "nothing sent"
    )
    with step("conn.send_data(1, b'def'), conn.send_trailers(1, [(b'x-sum', b'6')])"):
        client.conn.send_data(1, b"def")
        client.conn.send_trailers(1, [(b"x-sum", b"6")])
    client.read()
    blocks = client.response_headers(1)
    body = client.body(1)
    tail = client.frames[sent:]
    last = tail[-1] if tail else None
    want_body = b"abcdef" if before == "send_data" else b"def"
    got = (
        blocks,
        body,
        last is not None and last.type == HEADERS and bool(last.flags & END_STREAM),
    )
    want = ([[(b":status", b"200")], [(b"x-sum", b"6")]], want_body, True)
    assert got == want and not any(f.type == DATA and f.flags & END_STREAM for f in tail), called(
        f"{calls}, {second} (refused), then send_data(1, b'def') and send_trailers: "
        "(header blocks, body, ends on the trailers' HEADERS with END_STREAM)",
        got,
        want,
    )
