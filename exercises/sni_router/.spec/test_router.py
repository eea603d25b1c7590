"""SniRouter end to end: real TLS clients (httpx, asyncio with ssl) reach the backend named in
their SNI through the router and verify its certificate; the router replays the hello byte for
byte, splices both ways with half-close, and closes what it cannot route."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct

import httpx
import pytest
from _helpers import (
    Recorder,
    build_hello,
    python_hello,
    read_all,
    records,
    running_router,
    sni_ext,
    tls_backends,
    unwrap,
)

from grader.spectools import (
    LOCALHOST,
    bounded,
    called,
    loop_reports,
    refused_port,
    step,
    tcp_server,
)

NAMES = ("a.example.test", "b.example.test")


async def fetch(port: int, name: str, ca, what: str) -> httpx.Response:
    """GET / through the router with SNI ``name``, verifying the certificate against ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    ca.configure_trust(context)
    async with httpx.AsyncClient(verify=context) as client:
        with step(what):
            return await bounded(
                client.get(
                    f"https://{LOCALHOST}:{port}/",
                    headers={"Host": name},
                    extensions={"sni_hostname": name},
                ),
                20,
                what,
            )


@pytest.mark.points(5)
async def test_httpx_reaches_backend_by_sni() -> None:
    """An httpx client reaches the backend its SNI names through the router and verifies that
    backend's certificate end to end (the router holds no key)."""
    async with tls_backends(*NAMES) as (ca, backends):
        routes = {name: (LOCALHOST, b.port) for name, b in backends.items()}
        async with running_router(routes) as (_, port):
            got = []
            for name in (*NAMES, NAMES[0]):
                response = await fetch(port, name, ca, f"GET https://{name}/ through the router")
                got.append((response.status_code, response.text))
    want = [(200, n) for n in (*NAMES, NAMES[0])]
    assert got == want, called(f"GET / through the router with SNI {[*NAMES, NAMES[0]]}", got, want)
    counts = {n: b.connections for n, b in backends.items()}
    assert counts == {NAMES[0]: 2, NAMES[1]: 1}, called(
        "backend connections after 3 requests", counts, {NAMES[0]: 2, NAMES[1]: 1}
    )


async def test_concurrent_clients() -> None:
    """Ten clients at once, half to each backend, each reach the right one."""
    async with tls_backends(*NAMES) as (ca, backends):
        routes = {name: (LOCALHOST, b.port) for name, b in backends.items()}
        async with running_router(routes) as (_, port):
            names = [NAMES[i % 2] for i in range(10)]
            responses = await asyncio.gather(
                *(fetch(port, n, ca, f"10 concurrent GETs through the router ({n})") for n in names)
            )
    got = [r.text for r in responses]
    assert got == names, called("10 concurrent GETs through the router, bodies", got, names)


async def test_route_names_case_insensitive() -> None:
    """Routes match the server name case-insensitively: a route for 'A.Example.TEST' serves a
    client asking for a.example.test (RFC 4343)."""
    async with tls_backends(NAMES[0]) as (ca, backends):
        routes = {"A.Example.TEST": (LOCALHOST, backends[NAMES[0]].port)}
        async with running_router(routes) as (_, port):
            response = await fetch(
                port, NAMES[0], ca, "GET https://a.example.test/ with route 'A.Example.TEST'"
            )
    got = (response.status_code, response.text)
    assert got == (200, NAMES[0]), called(
        "GET https://a.example.test/ with a route for 'A.Example.TEST'", got, (200, NAMES[0])
    )


async def open_tls(port: int, server_hostname: str | None, ca) -> tuple[str | None, str]:
    """A TLS handshake through the router with asyncio; returns (error, body)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    if not server_hostname or server_hostname[0].isdigit():
        context.check_hostname = False  # no name to check; the chain is still verified
    try:
        reader, writer = await asyncio.open_connection(
            LOCALHOST, port, ssl=context, server_hostname=server_hostname or ""
        )
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return type(exc).__name__, ""
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await read_all(reader, "the backend's answer through the router")
    writer.close()
    return None, data.split(b"\r\n\r\n", 1)[-1].decode()


ROUTING = [
    ("unknown-name-to-default", "c.example.test", True, "default.example.test"),
    ("no-sni-to-default", "", True, "default.example.test"),
    ("ip-address-to-default", "127.0.0.1", True, "default.example.test"),
    ("unknown-name-no-default", "c.example.test", False, None),
    ("no-sni-no-default", "", False, None),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("server_hostname", "with_default", "want"),
    [c[1:] for c in ROUTING],
    ids=[c[0] for c in ROUTING],
)
async def test_default_backend(server_hostname: str, with_default: bool, want: str | None) -> None:
    """A hello whose name is absent or unknown goes to the default backend; without a default
    the connection is closed and no backend is contacted."""
    async with tls_backends(NAMES[0], "default.example.test") as (ca, backends):
        routes = {NAMES[0]: (LOCALHOST, backends[NAMES[0]].port)}
        default = (LOCALHOST, backends["default.example.test"].port) if with_default else None
        async with running_router(routes, default) as (_, port):
            error, body = await bounded(
                open_tls(port, server_hostname, ca), 20, "a TLS handshake through the router"
            )
    contacted = sum(b.connections for b in backends.values())
    got = (body if error is None else "closed", contacted)
    want_got = (want if want else "closed", 1 if want else 0)
    assert got == want_got, called(
        f"TLS with server_hostname {server_hostname!r} through a router "
        f"{'with' if with_default else 'without'} default: (answer, backend connections)",
        got,
        want_got,
    )


REPLAYS = [
    ("one-write", None, None),
    ("byte-by-byte", 1, None),
    ("split-records-byte-by-byte", 1, (2, 7, 100)),
    ("split-records-in-three-writes", 200, (300,)),
]


@pytest.mark.points(3)
@pytest.mark.parametrize(("piece", "sizes"), [c[1:] for c in REPLAYS], ids=[c[0] for c in REPLAYS])
async def test_hello_replayed_byte_for_byte(piece: int | None, sizes) -> None:
    """The backend receives the client's bytes exactly as sent, the hello first, however the
    hello was split across records and TCP writes."""
    hello = python_hello("rec.example.test", ["h2"])
    if sizes is not None:
        hello = records(unwrap(hello), sizes)
    recorder = Recorder()
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({"rec.example.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        step_size = piece or len(hello)
        for i in range(0, len(hello), step_size):
            writer.write(hello[i : i + step_size])
            await writer.drain()
        writer.write(b"\x17\x03\x03\x00\x04data")
        writer.write_eof()
        await bounded(recorder.eof.wait(), 20, "the backend to see the client's EOF")
        writer.close()
    got = bytes(recorder.received[0]) if recorder.received else None
    want = hello + b"\x17\x03\x03\x00\x04data"
    assert got == want, called(
        f"the backend's received bytes ({len(got) if got else 0}) after a {len(hello)}-byte hello and 9 bytes",
        got[:40] if got else got,
        "the same bytes the client sent",
    )


@pytest.mark.points(2)
async def test_splice_both_ways_with_half_close() -> None:
    """Bytes flow both ways, and a client's EOF (half-close) reaches the backend while the
    backend's answer still reaches the client."""
    recorder = Recorder(echo=True)
    hello = build_hello(sni_ext("echo.test"))
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({"echo.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello + b"ping" * 1000)
        writer.write_eof()
        got = await read_all(reader, "the echo and 'bye' after the client's half-close")
        writer.close()
    want = hello + b"ping" * 1000 + b"bye"
    assert got == want, called(
        "hello + 4000 bytes, then write_eof(), to an echo backend: bytes back (length)",
        len(got),
        len(want),
    )


@pytest.mark.points(1)
async def test_close_leaves_the_event_loop_nothing_to_report() -> None:
    """close() with one client spliced to its backend and one half-way through its ClientHello
    leaves no error for the event loop to report: a connection task it cancels ends without
    raising.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    recorder = Recorder(echo=True)
    hello = build_hello(sni_ext("echo.test"))
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({"echo.test": (LOCALHOST, backend_port)}) as (router, port),
        loop_reports() as reports,
    ):
        spliced = await asyncio.open_connection(LOCALHOST, port)
        spliced[1].write(hello)
        await bounded(recorder.connected.wait(), 10, "the hello to reach the backend")
        half = await asyncio.open_connection(LOCALHOST, port)
        half[1].write(hello[: len(hello) // 2])  # half a hello: the router reads on
        await half[1].drain()
        with step("router.close() with a spliced client and one half-way through its hello"):
            await bounded(router.close(), 10, "router.close()")
        for reader, writer in (spliced, half):
            await read_all(reader, "the connection to close after router.close()")
            writer.close()
    assert not reports, reports.message(
        "router.close() with a client spliced to its backend and one half-way through its hello",
        "a connection task cancelled by close() should end quietly: catch CancelledError in "
        "the handler, close both sides, and return",
    )


BAD = [
    ("http-request", b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ("alert", b"\x15\x03\x01\x00\x02\x02\x28"),
    ("oversized-hello-header", b"\x16\x03\x01\x00\x04\x01\x01\x00\x00"),
    ("oversized-record", b"\x16\x03\x01\x40\x01"),
    ("bad-server-name", build_hello(sni_ext("a.test", "b.test"))),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("data", [c[1] for c in BAD], ids=[c[0] for c in BAD])
async def test_bad_hello_closed(data: bytes) -> None:
    """A malformed or oversized hello is closed at once (long before hello_timeout) without
    contacting a backend, and the router keeps serving the next client."""
    recorder = Recorder()
    async with tcp_server(recorder.handle) as (_, backend_port):
        routes = {"a.test": (LOCALHOST, backend_port)}
        async with running_router(routes, (LOCALHOST, backend_port), hello_timeout=120) as (
            _,
            port,
        ):
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            writer.write(data)
            got = await read_all(reader, f"the router to close after {data[:20]!r}", 20)
            writer.close()
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            writer.write(build_hello(sni_ext("a.test")))
            await bounded(
                recorder.connected.wait(), 20, "a good hello after a bad one to reach the backend"
            )
            writer.close()
    assert (got, len(recorder.received)) == (b"", 1), called(
        f"a client sending {data[:20]!r}: (bytes back, backend connections after one more good client)",
        (got, len(recorder.received)),
        (b"", 1),
    )


async def test_hello_timeout() -> None:
    """A client that sends half a hello and stalls is closed after hello_timeout, and no
    backend is contacted."""
    recorder = Recorder()
    hello = python_hello("slow.test")
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({}, (LOCALHOST, backend_port), hello_timeout=0.3) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello[: len(hello) // 2])
        got = await read_all(reader, "the router to close a stalled hello (hello_timeout=0.3)", 20)
        writer.close()
    assert (got, len(recorder.received)) == (b"", 0), called(
        "half a hello then silence (hello_timeout=0.3): (bytes back, backend connections)",
        (got, len(recorder.received)),
        (b"", 0),
    )


async def test_unreachable_backend_closes_client() -> None:
    """When the chosen backend refuses the connection, the client's connection is closed."""
    with refused_port() as dead_port:
        async with running_router({"dead.test": (LOCALHOST, dead_port)}) as (_, port):
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            writer.write(build_hello(sni_ext("dead.test")))
            got = await read_all(reader, "the router to close when the backend refuses", 20)
            writer.close()
    assert got == b"", called("a hello routed to a closed port: bytes back", got, b"")


async def test_close_ends_connections() -> None:
    """close() stops listening and ends open spliced connections: the client sees EOF."""
    recorder = Recorder(echo=True)
    async with tcp_server(recorder.handle) as (_, backend_port):
        from sni_router import SniRouter

        router = SniRouter({"c.test": (LOCALHOST, backend_port)})
        port = await bounded(router.start(LOCALHOST, 0), 10, "router.start('127.0.0.1', 0)")
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        hello = build_hello(sni_ext("c.test"))
        writer.write(hello)
        echoed = await bounded(reader.readexactly(len(hello)), 20, "the echo of the hello")
        with step("await router.close()"):
            await bounded(router.close(), 10, "router.close() with a connection open")
        rest = await read_all(reader, "EOF after router.close()", 10)
        writer.close()
        try:
            await asyncio.open_connection(LOCALHOST, port)
            refused = False
        except OSError:
            refused = True
    got = (echoed == hello, rest, refused)
    assert got == (True, b"", True), called(
        "router.close() with a connection open: (echo seen, bytes after close, new connect refused)",
        got,
        (True, b"", True),
    )


async def test_hello_deadline_covers_the_whole_hello() -> None:
    """hello_timeout bounds the whole hello, not each read: a client that trickles its hello
    a byte at a time is closed once the deadline passes, and no backend is contacted.

    The client paces its writes (20 ms a byte, about 10 s for the hello); the router, with
    hello_timeout=0.5, must close long before the last byte.
    """
    recorder = Recorder()
    hello = python_hello("trickle.test")
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({}, (LOCALHOST, backend_port), hello_timeout=0.5) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        closed = asyncio.ensure_future(read_all(reader, "EOF from the router", 60))
        sent = 0
        try:
            while sent < len(hello) and not closed.done():
                writer.write(hello[sent : sent + 1])
                sent += 1
                await asyncio.sleep(0.02)
            got = await bounded(closed, 30, "the router to close a trickling hello")
        finally:
            closed.cancel()
            writer.close()
    result = (got, sent < len(hello), len(recorder.received))
    assert result == (b"", True, 0), called(
        f"a hello trickled 1 byte / 20 ms (hello_timeout=0.5): (bytes back, closed before the "
        f"last of {len(hello)} bytes, backend connections)",
        result,
        (b"", True, 0),
    )


@pytest.mark.parametrize(
    ("limit", "routed"), [(300, False), (600, True)], ids=["hello-over-limit", "hello-under-limit"]
)
async def test_router_applies_max_hello_size(limit: int, routed: bool) -> None:
    """The router refuses a hello larger than its max_hello_size (closed, no backend) and
    routes one within it."""
    recorder = Recorder()
    hello = python_hello("limit.test")  # 517 bytes: a 512-byte handshake message
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router(
            {"limit.test": (LOCALHOST, backend_port)}, max_hello_size=limit, hello_timeout=120
        ) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello)
        writer.write_eof()
        got = await read_all(reader, f"the router's answer (max_hello_size={limit})", 20)
        if routed:
            await bounded(recorder.eof.wait(), 20, "the hello to reach the backend")
        writer.close()
    result = (got, len(recorder.received))
    want = (b"", 1 if routed else 0)
    assert result == want, called(
        f"a 512-byte ClientHello to a router with max_hello_size={limit}: "
        "(bytes back, backend connections)",
        result,
        want,
    )


async def test_eof_mid_hello_closes() -> None:
    """A client that half-closes after part of a hello is closed, and no backend is
    contacted."""
    recorder = Recorder()
    hello = python_hello("eof.test")
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({}, (LOCALHOST, backend_port), hello_timeout=120) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello[:100])
        writer.write_eof()
        got = await read_all(reader, "the router to close after EOF mid-hello", 20)
        writer.close()
    result = (got, len(recorder.received))
    assert result == (b"", 0), called(
        "100 bytes of a hello, then EOF: (bytes back, backend connections)", result, (b"", 0)
    )


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a FIN."""
    sock = writer.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_client_reset_closes_backend() -> None:
    """When the client resets its connection mid-splice, the router closes the backend
    connection too (the backend sees EOF)."""
    recorder = Recorder(echo=True)
    hello = build_hello(sni_ext("reset.test"))
    async with (
        tcp_server(recorder.handle) as (_, backend_port),
        running_router({"reset.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello)
        await bounded(reader.readexactly(len(hello)), 20, "the echo of the hello")
        reset(writer)
        await bounded(
            recorder.eof.wait(), 20, "the backend to see its connection closed after a client RST"
        )
    got = bytes(recorder.received[0])
    assert got == hello, called(
        "a client RST mid-splice: the bytes the backend got before its EOF", got[:40], hello[:40]
    )


async def test_backend_reset_closes_client() -> None:
    """When the backend resets its connection mid-splice, the router closes the client's
    connection too."""
    hello = build_hello(sni_ext("reset.test"))
    accepted: asyncio.Queue = asyncio.Queue()

    async def keep(reader, writer):
        await reader.readexactly(len(hello))
        await accepted.put(writer)
        await reader.read(-1)

    async with (
        tcp_server(keep) as (_, backend_port),
        running_router({"reset.test": (LOCALHOST, backend_port)}) as (_, port),
    ):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(hello)
        backend_writer = await bounded(accepted.get(), 20, "the hello to reach the backend")
        reset(backend_writer)
        got = await read_all(reader, "the router to close the client after a backend RST", 20)
        writer.close()
    assert got == b"", called("a backend RST mid-splice: bytes the client got", got, b"")


async def test_close_before_start() -> None:
    """close() on a router that was never started returns without error."""
    from sni_router import SniRouter

    router = SniRouter({})
    with step("SniRouter({}).close() before start()"):
        got = await bounded(router.close(), 10, "close() before start()")
    assert got is None, called("SniRouter({}).close() before start()", got, None)
