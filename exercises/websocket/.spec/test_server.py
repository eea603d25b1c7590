"""Hidden specs for serve() and WebSocket over real sockets on 127.0.0.1: the websockets client
library talks to the learner's server, and raw clients send the bytes a library never would.

Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import websockets
from _helpers import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    RawClient,
    close_frame,
    echo,
    frame,
    running,
    upgrade_request,
)
from websocket import ConnectionClosed as WsConnectionClosed
from websocket import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from grader.spectools import LOCALHOST, CountingLoop, bounded, called, loop_reports, short, step


def url(port: int, path: str = "/echo") -> str:
    return f"ws://{LOCALHOST}:{port}{path}"


async def talk(port: int, session, what: str, timeout: float = 10.0, **options):
    """Run ``session(client)`` on a websockets client connected to the server, bounded."""

    async def go():
        async with websockets.connect(
            url(port), open_timeout=5, close_timeout=5, **options
        ) as client:
            return await session(client)

    try:
        return await bounded(go(), timeout, what)
    except AssertionError:
        raise
    except NotImplementedError:
        raise
    except Exception as error:
        raise AssertionError(f"{what}: the websockets client raised {short(error, 200)}") from None


@pytest.mark.points(3)
async def test_echo_with_the_websockets_client():
    """The websockets client connects and gets text and binary messages echoed, as sent."""
    async with running() as port:

        async def session(client):
            got = []
            for message in ["hello", "h\u00e9llo \u2603", "", b"\x00\x01\xff", b""]:
                await client.send(message)
                got.append(await client.recv())
            return got

        got = await talk(port, session, "five echoes")
    want = ["hello", "h\u00e9llo \u2603", "", b"\x00\x01\xff", b""]
    assert got == want, called("websockets client: send then recv, five messages", got, want)


@pytest.mark.points(2)
async def test_one_mib_message_round_trip():
    """A 1 MiB binary message (the default max_message_size, at the limit) is echoed whole."""
    payload = bytes(range(256)) * 4096
    async with running() as port:

        async def session(client):
            await client.send(payload)
            return await client.recv()

        got = await talk(port, session, "a 1 MiB echo", 20.0, max_size=None)
    assert got == payload, called(
        "send(1 MiB) then recv()", f"{len(got)} bytes", "the same 1,048,576 bytes"
    )


@pytest.mark.points(2)
async def test_message_over_the_limit_closes_with_1009():
    """A message over max_message_size closes the connection with 1009 (RFC 6455 §7.4.1)."""
    async with running(max_message_size=1000, max_frame_size=1000) as port:

        async def session(client):
            await client.send(b"x" * 1000)
            first = await client.recv()
            await client.send(b"x" * 1001)
            with contextlib.suppress(ConnectionClosed):
                await client.recv()
            return len(first), client.close_code

        got = await talk(port, session, "a message over the limit")
    assert got == (1000, 1009), called(
        "send(1000 bytes), then send(1001 bytes) with max 1000", got, (1000, 1009)
    )


@pytest.mark.points(2)
async def test_fragmented_send_is_one_message():
    """A message the client sends in fragments comes back as one message (RFC 6455 §5.4)."""
    async with running() as port:

        async def session(client):
            await client.send(["frag", "men", "ted \u2603"])
            text = await client.recv()
            await client.send([b"\x01", b"\x02\x03"])
            return text, await client.recv()

        got = await talk(port, session, "fragmented sends")
    assert got == ("fragmented \u2603", b"\x01\x02\x03"), called(
        'send(["frag", "men", "ted \u2603"]), send([b"\\x01", b"\\x02\\x03"])',
        got,
        ("fragmented \u2603", b"\x01\x02\x03"),
    )


@pytest.mark.points(2)
async def test_ping_round_trip():
    """A client Ping gets its Pong while the handler waits in recv() (RFC 6455 §5.5.2)."""
    async with running() as port:

        async def session(client):
            waiter = await client.ping(b"heartbeat")
            await bounded(waiter, 5.0, "the Pong for the client's Ping")
            return True

        assert await talk(port, session, "a ping round trip")


@pytest.mark.points(2)
async def test_client_close_is_answered():
    """A client close(4000) gets the closing handshake: the server's Close carries the code back (RFC 6455 §7.1.2)."""
    closed = asyncio.get_running_loop().create_future()

    async def handler(websocket):
        try:
            await websocket.recv()
        except Exception as error:
            closed.set_result(getattr(error, "code", repr(error)))

    async with running(handler) as port:

        async def session(client):
            await client.close(4000, "bye")
            return client.close_code, client.close_reason

        got = await talk(port, session, "the closing handshake")
        seen = await bounded(closed, 5.0, "the handler's recv() to raise ConnectionClosed")
    assert got[0] == 4000, called("client.close(4000); the server's Close code", got[0], 4000)
    assert seen == 4000, called(
        "websocket.recv() after the client's Close(4000): error.code", seen, 4000
    )


@pytest.mark.points(2)
async def test_handler_close_code_reaches_the_client():
    """websocket.close(4002, "done") in the handler reaches the client with that code and reason."""

    async def handler(websocket):
        await websocket.recv()
        await websocket.close(4002, "done")

    async with running(handler) as port:

        async def session(client):
            await client.send("hi")
            with contextlib.suppress(ConnectionClosed):
                await client.recv()
            return client.close_code, client.close_reason

        got = await talk(port, session, "a close from the handler")
    assert got == (4002, "done"), called(
        'handler: websocket.close(4002, "done"); client sees', got, (4002, "done")
    )


@pytest.mark.points(1)
async def test_handler_return_closes_with_1000():
    """When the handler returns, the server closes the connection with 1000."""

    async def handler(websocket):
        await websocket.send("bye")

    async with running(handler) as port:

        async def session(client):
            first = await client.recv()
            with contextlib.suppress(ConnectionClosed):
                await client.recv()
            return first, client.close_code

        got = await talk(port, session, "a handler that returns")
    assert got == ("bye", 1000), called(
        "a handler that sends 'bye' and returns; client sees", got, ("bye", 1000)
    )


@pytest.mark.points(1)
async def test_handler_crash_closes_with_1011():
    """A handler that raises closes the connection with 1011 (internal error, RFC 6455 §7.4.1)."""

    async def handler(websocket):
        await websocket.recv()
        raise RuntimeError("boom")

    async with running(handler) as port:

        async def session(client):
            await client.send("go")
            with contextlib.suppress(ConnectionClosed):
                await client.recv()
            return client.close_code

        got = await talk(port, session, "a crashing handler")
    assert got == 1011, called("a handler that raises; client.close_code", got, 1011)


@pytest.mark.points(1)
async def test_handler_sees_the_path():
    """websocket.path is the request target of the handshake."""

    async def handler(websocket):
        await websocket.send(websocket.path)

    async with running(handler) as port:

        async def go():
            async with websockets.connect(url(port, "/rooms/7?x=1"), open_timeout=5) as client:
                return await client.recv()

        got = await bounded(go(), 10.0, "the path echoed")
    assert got == "/rooms/7?x=1", called(
        "websocket.path for ws://.../rooms/7?x=1", got, "/rooms/7?x=1"
    )


@pytest.mark.points(2)
async def test_origin_allow_list_over_the_wire():
    """With allowed_origins, the websockets client from a listed origin connects and one from
    another origin gets 403 (RFC 6455 §4.2.2, §10.2)."""
    async with running(allowed_origins=["https://app.example"]) as port:

        async def session(client):
            await client.send("ok")
            return await client.recv()

        good = await talk(port, session, "a listed origin", origin="https://app.example")

        async def refused():
            try:
                async with websockets.connect(
                    url(port), origin="https://evil.example", open_timeout=5
                ):
                    return 101
            except InvalidStatus as error:
                return error.response.status_code

        try:
            status = await bounded(refused(), 10.0, "the handshake from an unlisted origin")
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"the websockets client raised {short(error)}") from None
    assert good == "ok", called("connect from https://app.example, send('ok')", good, "ok")
    assert status == 403, called("connect from https://evil.example: HTTP status", status, 403)


@pytest.mark.points(1)
async def test_plain_http_request_gets_426():
    """A plain HTTP GET (no upgrade) to the server gets 426 Upgrade Required (RFC 9110 §15.5.22)."""
    async with running() as port:

        async def get():
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(f"http://{LOCALHOST}:{port}/echo")

        try:
            response = await bounded(get(), 10.0, "an HTTP GET")
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"httpx GET raised {short(error)}") from None
    assert response.status_code == 426, called("httpx GET /echo", response.status_code, 426)


# --- raw bytes over TCP --------------------------------------------------------------------------


@pytest.mark.points(2)
async def test_protocol_error_over_tcp_sends_1002_then_closes():
    """An unmasked client frame gets a Close with 1002, then the server closes the TCP connection
    (RFC 6455 §5.1, §7.1.1, §7.1.7)."""
    async with running() as port:
        client = await RawClient.open(port)
        client.send(frame(TEXT, b"ok"))
        await client.read_frames(1)
        client.send(frame(TEXT, b"bad", mask=None))
        frames = await client.read_until_closed()
        client.close()
    got = [(f.opcode, f.data if f.opcode != CLOSE else f.close_code) for f in frames]
    assert got == [(TEXT, b"ok"), (CLOSE, 1002)], called(
        "send(text 'ok', unmasked text); read until EOF",
        frames,
        "echo 'ok', then Close 1002, then EOF",
    )


@pytest.mark.points(2)
async def test_frames_right_behind_the_handshake_are_read():
    """Frames sent in the same packet as the handshake are not lost."""
    async with running() as port:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 5.0, "a connection"
        )
        writer.write(upgrade_request() + frame(TEXT, b"early") + frame(PING, b"p"))
        head = await bounded(reader.readuntil(b"\r\n\r\n"), 5.0, "the 101 response")
        client = RawClient(reader, writer)
        frames = await client.read_frames(2)
        client.send(close_frame(1000))
        await client.read_until_closed()
        client.close()
    assert head.startswith(b"HTTP/1.1 101"), called(
        "handshake + frames in one write: status line", head[:40], b"HTTP/1.1 101"
    )
    got = sorted((f.opcode, f.data) for f in frames[:2])
    assert got == [(TEXT, b"early"), (PONG, b"p")], called(
        "frames sent with the handshake: replies", frames, "echo 'early' and Pong 'p'"
    )


@pytest.mark.points(2)
async def test_server_frames_are_never_masked():
    """Every frame the server writes is unmasked (RFC 6455 §5.1): the spec parses them with mask=False."""
    async with running() as port:
        client = await RawClient.open(port)
        client.send(frame(BINARY, b"\x00" * 300))
        await client.read_frames(1)
        client.send(frame(PING, b"x") + close_frame(1000))
        frames = await client.read_until_closed()
        client.close()
    got = [f.opcode for f in frames]
    assert got == [BINARY, PONG, CLOSE], called(
        "binary, ping, close: opcodes of the replies", frames, [BINARY, PONG, CLOSE]
    )


@pytest.mark.points(2)
async def test_server_closes_tcp_after_the_closing_handshake():
    """After answering the client's Close, the server closes the TCP connection (RFC 6455 §7.1.1)."""
    async with running() as port:
        client = await RawClient.open(port)
        client.send(close_frame(1000, "bye"))
        frames = await client.read_until_closed(5.0)
        client.close()
    assert [f.close_code for f in frames] == [1000], called(
        "send(Close 1000); read until EOF", frames, "one Close 1000, then EOF"
    )


def padded_request(total: int) -> bytes:
    """A valid upgrade request of exactly ``total`` bytes through its blank line."""
    base = upgrade_request(X_Pad="")
    return upgrade_request(X_Pad="p" * (total - len(base)))


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("size", "status"),
    [(8191, b"101"), (8192, b"101"), (8193, b"431")],
    ids=["limit-minus-1", "at-limit-8192", "limit-plus-1"],
)
async def test_request_head_limit(size, status):
    """A request head of up to 8192 bytes (through the blank line) is accepted; one byte more
    gets 431 Request Header Fields Too Large (RFC 6585 §5)."""
    request = padded_request(size)
    assert len(request) == size, f"spec error: built {len(request)} bytes, wanted {size}"
    async with running() as port:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 5.0, "a connection"
        )
        writer.write(request)
        data = await bounded(reader.read(12), 5.0, f"an answer to a {size}-byte request head")
        writer.close()
    assert data.startswith(b"HTTP/1.1 " + status), called(
        f"an upgrade request of {size} bytes: status line", data, b"HTTP/1.1 " + status
    )


@pytest.mark.points(1)
async def test_endless_head_is_refused():
    """A head that never ends (20 KB without a blank line) gets 431 instead of being buffered forever."""
    async with running() as port:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 5.0, "a connection"
        )
        writer.write(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 20000)
        data = await bounded(reader.read(12), 5.0, "an answer to a 20 KB header line")
        writer.close()
    assert data.startswith(b"HTTP/1.1 431"), called(
        "send a 20 KB header line", data, b"HTTP/1.1 431"
    )


WIRE_ERRORS = {
    "unmasked": (frame(TEXT, b"x", mask=None), 1002),
    "RSV1": (frame(TEXT, b"x", rsv=4), 1002),
    "opcode-3": (frame(3, b""), 1002),
    "ping-126-bytes": (frame(PING, b"p" * 126), 1002),
    "fragmented-ping": (frame(PING, b"p", fin=False), 1002),
    "lone-continuation": (frame(0, b"x"), 1002),
    "16-bit-length-for-5-bytes": (frame(BINARY, b"12345", length_form=16), 1002),
    "close-code-1005": (close_frame(1005), 1002),
    "invalid-utf8": (frame(TEXT, b"\xff"), 1007),
    "frame-over-max": (frame(BINARY, b"", length=1 << 40), 1009),
}


@pytest.mark.points(1)
@pytest.mark.parametrize(("data", "code"), list(WIRE_ERRORS.values()), ids=list(WIRE_ERRORS))
async def test_protocol_errors_over_tcp(data, code, request):
    """Over TCP, a broken frame gets one Close frame with its code (1002, 1007, 1009), then the
    server closes the connection (RFC 6455 §7.1.7)."""
    async with running() as port:
        client = await RawClient.open(port)
        client.send(data)
        frames = await client.read_until_closed()
        client.close()
    got = [f.close_code for f in frames if f.opcode == CLOSE]
    assert got == [code] and len(frames) == 1, called(
        f"send <{request.node.callspec.id}>; read until EOF", frames, f"Close {code}, then EOF"
    )


@pytest.mark.points(1)
async def test_refused_upgrade_is_reported_to_the_client():
    """The websockets client gets the refusal status: 426 for Sec-WebSocket-Version 8 (RFC 6455 §4.4)."""
    async with running() as port:
        reader, writer = await bounded(
            asyncio.open_connection(LOCALHOST, port), 5.0, "a connection"
        )
        writer.write(upgrade_request(Sec_WebSocket_Version="8"))
        head = await bounded(reader.readuntil(b"\r\n\r\n"), 5.0, "the refusal")
        writer.close()
    assert head.startswith(b"HTTP/1.1 426") and b"sec-websocket-version: 13" in head.lower(), (
        called(
            "upgrade with Sec-WebSocket-Version: 8",
            short(head, 200),
            "HTTP/1.1 426 with Sec-WebSocket-Version: 13",
        )
    )


@pytest.mark.points(2)
async def test_server_close_says_going_away():
    """server.close() stops listening and closes each open connection with 1001, going away
    (RFC 6455 §7.4.1), even while its handler waits in recv()."""
    with step('serve(echo, host="127.0.0.1", port=0)'):
        server = await bounded(serve(echo, host=LOCALHOST, port=0), 5.0, "serve(...) to start")
    port = server.port
    try:
        client = await bounded(
            websockets.connect(url(port), open_timeout=5, close_timeout=5), 10.0, "a client"
        )
        await client.send("ping")
        first = await bounded(client.recv(), 5.0, "the echo")
        with step("server.close() with one open connection"):
            await bounded(server.close(), 10.0, "server.close() with one open connection")
        await bounded(client.wait_closed(), 10.0, "the client's connection to close")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close(), 3.0)
    assert (first, client.close_code) == ("ping", 1001), called(
        "echo, then server.close(): the client's close code", client.close_code, 1001
    )
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 3.0)
    except OSError:
        return
    writer.close()
    raise AssertionError(
        called(f"connect to port {port} after server.close()", "connected", "connection refused")
    )


@pytest.mark.points(1)
async def test_server_close_leaves_the_event_loop_nothing_to_report():
    """server.close() with one client open (its handler waiting in recv()) and one half-way
    through its upgrade request leaves no error for the event loop to report.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    with step('serve(echo, host="127.0.0.1", port=0)'):
        server = await bounded(serve(echo, host=LOCALHOST, port=0), 5.0, "serve(...) to start")
    port = server.port
    try:
        async with loop_reports() as reports:
            client = await bounded(
                websockets.connect(url(port), open_timeout=5, close_timeout=5), 10.0, "a client"
            )
            await client.send("ping")
            await bounded(client.recv(), 5.0, "the echo")
            reader, writer = await bounded(
                asyncio.open_connection(LOCALHOST, port), 5.0, "a TCP connection"
            )
            writer.write(upgrade_request()[:30])  # half a request head: the server reads on
            await writer.drain()
            with step("server.close() with one open connection and one half-way upgrade"):
                await bounded(server.close(), 10.0, "server.close()")
            await bounded(client.wait_closed(), 10.0, "the client's connection to close")
            writer.close()
            with contextlib.suppress(ConnectionError):
                await bounded(reader.read(), 5.0, "the half-way connection to close")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close(), 3.0)
    assert not reports, reports.message(
        "server.close() with one client open and one half-way through its upgrade request",
        "a connection handler should end normally when the server closes: if close() cancels "
        "handlers, catch CancelledError in the handler and return",
    )


async def _wakeups_over(loop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_then_open(loop, connections: int, window: float) -> tuple[int, int]:
    with step('serve(echo, host="127.0.0.1", port=0)'):
        server = await bounded(serve(echo, host=LOCALHOST, port=0), 5.0, "serve(...) to start")
    clients = []
    try:
        idle = await _wakeups_over(loop, window)
        for _ in range(connections):
            client = await RawClient.open(server.port)
            clients.append(client)
            client.send(frame(TEXT, b"hi"))
            await client.read_frames(1)
        kept = await _wakeups_over(loop, window)
    finally:
        for client in clients:
            client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close(), 5.0)
    return idle, kept


@pytest.mark.points(2)
def test_idle_connections_cost_no_wakeups():
    """20 open, idle WebSocket connections cost (almost) no event-loop wake-ups: the server
    waits on the sockets instead of polling them."""
    connections, window = 20, 0.3
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, kept = runner.run(_idle_then_open(loop, connections, window))
    limit = 2 * idle + 20
    assert kept <= limit, called(
        f"event-loop wake-ups over {window} s with {connections} idle connections "
        f"(with none open: {idle})",
        kept,
        f"at most {limit}",
    )


@pytest.mark.points(1)
async def test_closed_websocket_reports_its_code_and_refuses_to_send():
    """After the client closes with 4003, the handler's websocket.close_code is 4003 and
    websocket.send() raises ConnectionClosed instead of writing after the Close (RFC 6455 §5.5.1)."""
    seen = asyncio.get_running_loop().create_future()

    async def handler(websocket):
        async for _ in websocket:
            pass
        code = websocket.close_code
        try:
            await websocket.send("too late")
        except WsConnectionClosed as error:
            seen.set_result((code, f"ConnectionClosed({error.code})"))
        except Exception as error:
            seen.set_result((code, f"raised {error!r}"))
        else:
            seen.set_result((code, "sent"))

    async with running(handler) as port:

        async def session(client):
            await client.close(4003)
            return client.close_code

        await talk(port, session, "a client that closes with 4003")
        got = await bounded(seen, 5.0, "the handler to try send() after the close")
    assert got[0] == 4003 and got[1].startswith("ConnectionClosed("), called(
        "after the client's Close 4003: (websocket.close_code, websocket.send('too late'))",
        got,
        (4003, "ConnectionClosed(...)"),
    )
