"""The asyncio h2c server, driven by a real HTTP/2 client (the ``h2`` library) over TCP on
127.0.0.1, port 0. h2 enforces the protocol from its side: a frame the server should not
have sent (DATA beyond a window, a malformed header block) fails the spec."""

from __future__ import annotations

import asyncio
import hashlib

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from http2_server import H2Server, Request, Response

from grader.spectools import (
    CountingLoop,
    bounded,
    called,
    reset_mid_request,
    step,
    tcp_server,
)


class H2Client:
    """An h2 client connection over a real socket, with the received events per stream."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: int | None
    ) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.auto_ack = True
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.headers: dict[int, list] = {}
        self.bodies: dict[int, bytearray] = {}
        self.trailers: dict[int, list] = {}
        self.ended: dict[int, asyncio.Event] = {}
        self.resets: dict[int, int] = {}
        self.interleaving: list[int] = []
        self._window_opened = asyncio.Event()
        self.flush()

    def flush(self) -> None:
        if data := self.conn.data_to_send():
            self.writer.write(data)

    def request(
        self,
        path: str,
        body: bytes = b"",
        *,
        method: str = "GET",
        trailers=None,
        pad: int = 0,
        chunk: int = 2**24,
        fields=(),
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            *fields,
        ]
        self.ended[stream_id] = asyncio.Event()
        self.bodies[stream_id] = bytearray()
        self.conn.send_headers(stream_id, headers, end_stream=not body and not trailers)
        self.flush()
        if body or trailers:
            asyncio.get_running_loop().create_task(
                self._upload(stream_id, body, trailers, pad, chunk)
            )
        return stream_id

    async def _upload(self, stream_id: int, body: bytes, trailers, pad: int, chunk: int) -> None:
        """Send the body as the server's windows allow, as any client must; with ``pad``, every
        DATA frame carries that many bytes of padding (which count against the windows too)."""
        view = memoryview(body)
        overhead = pad + 1 if pad else 0  # the Pad Length byte and the padding
        while view:
            window = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            size = min(window - overhead, chunk)
            if size <= 0:
                await self._window_opened.wait()
                self._window_opened.clear()
                continue
            if pad:
                self.conn.send_data(stream_id, bytes(view[:size]), pad_length=pad)
            else:
                self.conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
            self.flush()
            await self.writer.drain()
        if trailers:
            self.conn.send_headers(stream_id, trailers, end_stream=True)
        else:
            self.conn.end_stream(stream_id)
        self.flush()

    async def pump(self) -> None:
        """Read from the server until the socket closes, turning bytes into h2 events."""
        while data := await self.reader.read(65536):
            for event in self.conn.receive_data(data):
                self.on_event(event)
            self.flush()

    def on_event(self, event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            self.headers[event.stream_id] = event.headers
        elif isinstance(event, h2.events.DataReceived):
            self.bodies[event.stream_id] += event.data
            self.interleaving.append(event.stream_id)
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.trailers[event.stream_id] = event.headers
        elif isinstance(event, h2.events.StreamEnded):
            self.ended[event.stream_id].set()
        elif isinstance(event, h2.events.StreamReset):
            self.resets[event.stream_id] = event.error_code
            self.ended[event.stream_id].set()
        elif isinstance(event, h2.events.WindowUpdated):
            self._window_opened.set()

    def status(self, stream_id: int) -> int | None:
        return next((int(v) for n, v in self.headers.get(stream_id, []) if n == b":status"), None)


class Session:
    def __init__(self, app, window: int | None = None, **options) -> None:
        self.app, self.window, self.options = app, window, options

    async def __aenter__(self) -> H2Client:
        with step(f"H2Server(app, {self.options})"):
            server = H2Server(self.app, **self.options)
        self._server = tcp_server(server.handle)
        host, port = await self._server.__aenter__()
        reader, writer = await asyncio.open_connection(host, port)
        self.client = H2Client(reader, writer, self.window)
        self._pump = asyncio.get_running_loop().create_task(self.client.pump())
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        self.client.writer.close()
        self._pump.cancel()
        await asyncio.gather(self._pump, return_exceptions=True)
        await self._server.__aexit__(None, None, None)


async def wait_end(client: H2Client, stream_id: int, what: str, timeout: float = 8.0) -> None:
    await bounded(client.ended[stream_id].wait(), timeout, what)


async def hello(request: Request) -> Response:
    return Response(
        200,
        [("content-type", "text/plain"), ("x-path", request.path)],
        b"hello, " + request.method.encode(),
    )


@pytest.mark.points(2)
async def test_get() -> None:
    """A GET over h2c with prior knowledge is answered with the app's status, fields and body (RFC 9113 §3.3, §8.1)."""
    async with Session(hello) as client:
        stream_id = client.request("/greeting")
        await wait_end(client, stream_id, "the response to GET /greeting")
        got = (
            client.status(stream_id),
            dict(client.headers[stream_id]).get(b"x-path"),
            bytes(client.bodies[stream_id]),
        )
        want = (200, b"/greeting", b"hello, GET")
        assert got == want, called("GET /greeting through h2", got, want)


@pytest.mark.points(3)
async def test_concurrent_streams() -> None:
    """Twenty requests on one connection are all in the app at the same time: one slow request does not hold up the others (RFC 9113 §5: multiplexing)."""
    arrived: set[str] = set()
    all_in = asyncio.Event()

    async def gather_app(request: Request) -> Response:
        arrived.add(request.path)
        if len(arrived) == 20:
            all_in.set()
        await all_in.wait()
        return Response(200, [], request.path.encode())

    async with Session(gather_app) as client:
        streams = {client.request(f"/r{i}"): f"/r{i}" for i in range(20)}
        for stream_id in streams:
            await wait_end(
                client,
                stream_id,
                f"the response on stream {stream_id} ({len(arrived)} of 20 requests reached the app)",
            )
        bodies = {stream_id: bytes(client.bodies[stream_id]).decode() for stream_id in streams}
        assert bodies == streams, called("20 concurrent GETs", bodies, streams)


@pytest.mark.points(3)
async def test_upload_through_small_window() -> None:
    """A 1 MiB request body goes through a 16 KiB stream window: the server opens the windows again as it reads (RFC 9113 §6.9)."""
    body = bytes(range(256)) * 4096

    async def digest(request: Request) -> Response:
        return Response(200, [], hashlib.sha256(request.body).hexdigest().encode())

    async with Session(digest, initial_window_size=16384) as client:
        stream_id = client.request("/upload", body, method="POST")
        await wait_end(client, stream_id, "the response to a 1 MiB POST", 15.0)
        got = bytes(client.bodies[stream_id]).decode()
        assert got == hashlib.sha256(body).hexdigest(), called(
            "POST of 1 MiB with initial_window_size=16384", got, "its SHA-256"
        )


@pytest.mark.points(3)
async def test_padded_upload_gives_its_window_back() -> None:
    """A padded upload far larger than the windows completes: padding counts against flow control, so the server gives back each DATA frame's flow_controlled_length, padding included, not just its data (RFC 9113 §6.1, §6.9).

    400 frames of 1,000 data bytes and 255 bytes of padding: a server that gives back only the
    data bytes leaks 256 bytes of window a frame, and the 65,535-byte windows run dry after
    about 255 frames.
    """
    body = bytes(range(256)) * 1_563  # 400,128 bytes

    async def app(request: Request) -> Response:
        return Response(200, [], hashlib.sha256(request.body).hexdigest().encode())

    async with Session(app) as client:
        stream_id = client.request("/padded", body, method="POST", pad=255, chunk=1_000)
        await wait_end(
            client,
            stream_id,
            "the response to a 400 KB upload in DATA frames of 1,000 bytes + 255 bytes of padding",
            timeout=15.0,
        )
        got = bytes(client.bodies[stream_id]).decode()
        want = hashlib.sha256(body).hexdigest()
        assert got == want, called("sha256 of the padded upload, as the app saw it", got, want)


async def test_download_through_small_window() -> None:
    """A 1 MiB response reaches a client whose window is 16 KiB: the server waits for WINDOW_UPDATEs and never overruns it (RFC 9113 §6.9.1; h2 would fail the connection otherwise)."""
    body = bytes(range(256)) * 4096

    async def big(request: Request) -> Response:
        return Response(200, [], body)

    async with Session(big, window=16384) as client:
        await asyncio.sleep(0)
        stream_id = client.request("/big")
        await wait_end(client, stream_id, "a 1 MiB response through a 16 KiB window", 15.0)
        got = bytes(client.bodies[stream_id])
        assert got == body and stream_id not in client.resets, called(
            "GET /big", f"{len(got)} bytes", f"{len(body)} bytes"
        )


@pytest.mark.points(2)
async def test_interleaved_responses() -> None:
    """Two large responses share the connection: their DATA frames interleave instead of one waiting for the other (RFC 9113 §5)."""

    async def big(request: Request) -> Response:
        return Response(200, [], request.path.encode() * 100_000)

    async with Session(big, window=16384) as client:
        first, second = client.request("/a"), client.request("/b")
        await wait_end(client, first, "the response on /a", 15.0)
        await wait_end(client, second, "the response on /b", 15.0)
        order = client.interleaving
        last_first = max(i for i, s in enumerate(order) if s == first)
        first_second = min(i for i, s in enumerate(order) if s == second)
        assert first_second < last_first, called(
            "two 200 KB responses", f"DATA frames on streams {order[:12]}...", "interleaved"
        )
        assert (
            bytes(client.bodies[first]) == b"/a" * 100_000
            and bytes(client.bodies[second]) == b"/b" * 100_000
        ), "two 200 KB responses: the bodies arrived mixed up or short"


async def test_trailers_both_ways() -> None:
    """Request trailers reach the app, and response trailers reach the client (RFC 9113 §8.1)."""
    seen: list = []

    async def app(request: Request) -> Response:
        seen.append((request.body, request.trailers))
        return Response(200, [], b"ok", trailers=[("x-status", "done")])

    async with Session(app) as client:
        stream_id = client.request("/t", b"payload", method="POST", trailers=[("x-sum", "42")])
        await wait_end(client, stream_id, "the response to a POST with trailers")
        assert seen == [(b"payload", [("x-sum", "42")])], called(
            "POST with trailers x-sum: 42", seen, [(b"payload", [("x-sum", "42")])]
        )
        got = client.trailers.get(stream_id)
        assert got == [(b"x-status", b"done")], called(
            "Response(trailers=[('x-status', 'done')])", got, [(b"x-status", b"done")]
        )


async def test_app_error_is_500() -> None:
    """An app that raises gives that stream a 500, and the connection keeps serving."""

    async def app(request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("boom")
        return Response(200, [], b"fine")

    async with Session(app) as client:
        bad = client.request("/boom")
        await wait_end(client, bad, "the response to /boom")
        good = client.request("/fine")
        await wait_end(client, good, "the response to /fine after /boom")
        got = (client.status(bad), client.status(good), bytes(client.bodies[good]))
        assert got == (500, 200, b"fine"), called(
            "GET /boom (raises), then GET /fine", got, (500, 200, b"fine")
        )


async def test_app_field_names_are_sent_lowercase() -> None:
    """Field names the app writes in any case (Content-Type) go out lowercase, in the headers and in the trailers: HTTP/2 field names are lowercase (RFC 9113 §8.2.1).

    h2, like every conforming client, treats a response with an uppercase name as malformed.
    """

    async def app(request: Request) -> Response:
        return Response(
            200,
            [("Content-Type", "text/plain"), ("X-Path", request.path)],
            b"ok",
            trailers=[("X-Status", "done")],
        )

    async with Session(app) as client:
        stream_id = client.request("/mixed")
        await wait_end(
            client,
            stream_id,
            "the response to GET /mixed (the app named its fields Content-Type, X-Path, X-Status)",
        )
        got = (
            client.resets.get(stream_id),
            dict(client.headers.get(stream_id, [])).get(b"x-path"),
            client.trailers.get(stream_id),
        )
        want = (None, b"/mixed", [(b"x-status", b"done")])
        assert got == want, called(
            "GET /mixed, app fields Content-Type, X-Path and trailer X-Status; (reset, x-path, trailers)",
            got,
            want,
        )


async def test_app_connection_specific_fields_are_dropped() -> None:
    """Connection-specific fields the app writes (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE) are left out of the response and its trailers, and the rest is served: an HTTP/2 message must not carry them (RFC 9113 §8.2.2).

    Apps written for HTTP/1.1 set them out of habit; h2, like every conforming client, treats a
    response that carries one as malformed. H2Connection refuses to send them (ValueError), so the
    server must drop them before it calls send_headers and send_trailers.
    """
    hop = [
        ("Connection", "close"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("TE", "trailers"),
    ]

    async def app(request: Request) -> Response:
        return Response(
            200,
            [*hop, ("X-Kept", "1")],
            b"ok",
            trailers=[("Connection", "close"), ("X-Status", "done")],
        )

    async with Session(app) as client:
        stream_id = client.request("/hop")
        await wait_end(
            client, stream_id, "the response to GET /hop (the app set Connection, Keep-Alive, ...)"
        )
        names = {n for n, _ in client.headers.get(stream_id, [])}
        got = (
            client.resets.get(stream_id),
            client.status(stream_id),
            sorted(n.decode() for n in names if n.decode().lower() in {h.lower() for h, _ in hop}),
            b"x-kept" in names,
            bytes(client.bodies[stream_id]),
            client.trailers.get(stream_id),
        )
        want = (None, 200, [], True, b"ok", [(b"x-status", b"done")])
        assert got == want, called(
            "GET /hop, app headers Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, "
            "Upgrade, TE, X-Kept and trailers Connection, X-Status; "
            "(reset, status, connection-specific names sent, x-kept sent, body, trailers)",
            got,
            want,
        )


async def test_head_response_has_no_body() -> None:
    """A response to HEAD has the headers the app gave (content-length included) and no body: END_STREAM on its HEADERS, even when the app returned one (RFC 9110 §9.3.2, §6.4.1).

    curl --http2-prior-knowledge -I treats DATA on a HEAD response as a PROTOCOL_ERROR; an app
    written once for GET and HEAD returns the GET body for both.
    """

    async def app(request: Request) -> Response:
        body = b"hello, " + request.method.encode()
        return Response(200, [("content-length", str(len(body)))], body, trailers=[("x-t", "1")])

    async with Session(app) as client:
        stream_id = client.request("/page", method="HEAD")
        await wait_end(client, stream_id, "the response to HEAD /page")
        headers = dict(client.headers.get(stream_id, []))
        got = (
            client.resets.get(stream_id),
            client.status(stream_id),
            headers.get(b"content-length"),
            bytes(client.bodies[stream_id]),
            client.trailers.get(stream_id),
        )
        want = (None, 200, b"11", b"", None)
        assert got == want, called(
            "HEAD /page, the app returned 11 bytes of body, content-length: 11 and a trailer; "
            "(reset, status, content-length, body, trailers)",
            got,
            want,
        )


@pytest.mark.parametrize("status", [204, 304])
async def test_no_content_statuses_have_no_body(status: int) -> None:
    """A 204 or 304 response goes out without a body even when the app returned one: those statuses never have content (RFC 9110 §6.4.1, §15.3.5, §15.4.5)."""

    async def app(request: Request) -> Response:
        return Response(status, [("x-kept", "1")], b"stray body")

    async with Session(app) as client:
        stream_id = client.request("/nothing")
        await wait_end(client, stream_id, f"the {status} response to GET /nothing")
        got = (
            client.resets.get(stream_id),
            client.status(stream_id),
            dict(client.headers.get(stream_id, [])).get(b"x-kept"),
            bytes(client.bodies[stream_id]),
        )
        want = (None, status, b"1", b"")
        assert got == want, called(
            f"GET /nothing, the app returned Response({status}, body=b'stray body'); "
            "(reset, status, x-kept, body)",
            got,
            want,
        )


async def test_field_bytes_beyond_ascii_reach_the_app() -> None:
    """A request field value with bytes 0x80-0xff (obs-text, legal in HTTP) reaches the app decoded as latin-1, one character per byte, and the request is served (RFC 9110 §5.5).

    Decoding as UTF-8 fails on such a value (b"caf\\xe9" is not UTF-8) and takes the whole
    connection down with it.
    """

    async def app(request: Request) -> Response:
        return Response(200, [], (request.header("x-name") or "").encode("latin-1"))

    async with Session(app) as client:
        stream_id = client.request("/obs", fields=[(b"x-name", b"caf\xe9")])
        await wait_end(client, stream_id, "the response to GET /obs with x-name: b'caf\\xe9'")
        got = (client.status(stream_id), bytes(client.bodies[stream_id]))
        want = (200, b"caf\xe9")
        assert got == want, called(
            "GET /obs with x-name: b'caf\\xe9', app answering request.header('x-name') "
            "encoded as latin-1; (status, body)",
            got,
            want,
        )


async def test_connection_error_sends_goaway_then_closes() -> None:
    """On a connection error the server writes its GOAWAY with the error code, then closes the TCP connection (RFC 9113 §5.4.1).

    The client sends a PING on stream 1 (a PROTOCOL_ERROR, §6.7). h2 reads what the server
    wrote before the connection closed.
    """
    with step("H2Server(hello)"):
        server = H2Server(hello)
    async with tcp_server(server.handle) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            conn = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding=None)
            )
            conn.initiate_connection()
            ping_on_stream_1 = b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8
            writer.write(conn.data_to_send() + ping_on_stream_1)
            received = bytearray()

            async def read_to_the_end() -> None:
                try:
                    while chunk := await reader.read(65536):
                        received.extend(chunk)
                except ConnectionError:
                    pass

            await bounded(
                read_to_the_end(),
                8.0,
                "the server to close the connection after a PING on stream 1 (a connection error)",
            )
        finally:
            writer.close()
    events = conn.receive_data(bytes(received))
    got = [
        (type(e).__name__, e.error_code)
        for e in events
        if isinstance(e, h2.events.ConnectionTerminated)
    ]
    want = [("ConnectionTerminated", h2.errors.ErrorCodes.PROTOCOL_ERROR)]
    assert got == want, called(
        "the preface, SETTINGS, then PING on stream 1; what the server wrote before it closed",
        got or f"{len(received)} bytes and no GOAWAY",
        "GOAWAY(PROTOCOL_ERROR), then the connection closed",
    )


async def test_client_reset_cancels_the_app() -> None:
    """RST_STREAM from the client cancels the request's app task (RFC 9113 §6.4: the stream is closed; its work is wasted)."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    async with Session(slow) as client:
        stream_id = client.request("/slow")
        await bounded(started.wait(), 8.0, "the app to start on /slow")
        client.conn.reset_stream(stream_id)
        client.flush()
        await bounded(cancelled.wait(), 8.0, "the app task to be cancelled after RST_STREAM")


async def test_closing_the_connection_cancels_its_apps() -> None:
    """When the client closes the TCP connection, the app tasks still running for its requests are cancelled: nobody is left to read their answers.

    A server that forgets them keeps every abandoned request's work (and memory) alive.
    """
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    async with Session(slow) as client:
        client.request("/slow")
        await bounded(started.wait(), 8.0, "the app to start on /slow")
        client.writer.close()
        await bounded(
            cancelled.wait(),
            8.0,
            "the app task to be cancelled after the client closed the connection",
        )


async def _wakeups_over(loop: CountingLoop, seconds: float) -> int:
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_then_open(loop: CountingLoop, connections: int, window: float) -> tuple[int, int]:
    """Wake-ups over ``window`` with nothing open, then with ``connections`` idle HTTP/2
    connections that have each served one request."""
    idle = await _wakeups_over(loop, window)
    with step("H2Server(hello)"):
        server = H2Server(hello)
    clients, pumps = [], []
    async with tcp_server(server.handle) as (host, port):
        try:
            for _ in range(connections):
                reader, writer = await asyncio.open_connection(host, port)
                client = H2Client(reader, writer, None)
                clients.append(client)
                pumps.append(asyncio.get_running_loop().create_task(client.pump()))
                stream_id = client.request("/hello")
                await wait_end(client, stream_id, "the response to GET /hello")
            opened = await _wakeups_over(loop, window)
        finally:
            for client in clients:
                client.writer.close()
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
    return idle, opened


def test_idle_connections_cost_no_wakeups() -> None:
    """Ten idle HTTP/2 connections cost (almost) no event-loop wake-ups: the server waits on its sockets instead of polling them."""
    connections, window = 10, 0.3
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, opened = runner.run(_idle_then_open(loop, connections, window))
    limit = 2 * idle + 20
    assert opened <= limit, called(
        f"event-loop wake-ups over {window} s with {connections} idle connections (with none open: {idle})",
        opened,
        f"at most {limit}",
    )


@pytest.mark.points(1)
async def test_a_client_reset_mid_request_leaves_the_event_loop_nothing_to_report() -> None:
    """When a client resets its connection while a request is in the app, handle() ends and
    leaves no error for the event loop to report: the reset is not an error of the server.

    handle() is served by asyncio.start_server itself here, so an exception it lets out is
    reported by the loop ("Unhandled exception in client_connected_cb"), as is a request task
    that failed unseen or a transport nobody closed.
    """
    entered, never = asyncio.Event(), asyncio.Event()

    async def waits(request: Request) -> Response:
        entered.set()
        await never.wait()  # the response never comes: the reset arrives first
        return Response(200, [], b"")

    with step("H2Server(app)"):
        server = H2Server(waits)

    async def begin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = H2Client(reader, writer, None)
        client.request("/slow")
        await bounded(entered.wait(), 8.0, "the request to reach the app")

    reports = await reset_mid_request(
        server.handle, begin, "server.handle() to return after the client's reset", 8.0
    )
    assert not reports, reports.message(
        "server.handle() with a request in the app when the client resets the connection",
        "a reset (ConnectionResetError) ends the connection quietly: catch ConnectionError "
        "around the reads and writes, cancel and await the connection's request tasks",
    )
