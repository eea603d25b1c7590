"""Hidden specs for TcpProxy: piping, half-close, retries on dead backends, in-flight slots."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import struct
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from _helpers import (
    Spy,
    blackhole,
    echo,
    farm,
    hold,
    open_client,
    read_all,
    running,
)
from load_balancer import Backend, LeastConnections, RoundRobin, TcpProxy

from grader.spectools import LOCALHOST, FakeClock, bounded, called, loop_reports, refused_port


async def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload`` and half-close while reading the answer to EOF (no deadlock on big data)."""
    reader, writer = await open_client(port)

    async def send() -> None:
        try:
            for start in range(0, len(payload), 50_000):
                writer.write(payload[start : start + 50_000])
                await writer.drain()
            writer.write_eof()
        except OSError:
            pass  # the proxy closed this client early; the answer read to EOF shows it

    try:
        _, answer = await asyncio.gather(send(), read_all(reader, "the proxied answer"))
    finally:
        writer.close()
    return answer


def abort_with_reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a TCP RST instead of a FIN (SO_LINGER on, timeout 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# -- piping -------------------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_bytes_are_piped_exactly_both_ways():
    """The proxy copies every byte both ways, as it arrives, unchanged."""
    rng = random.Random(40)
    async with farm({"a": echo}) as (_, backends):
        proxy = TcpProxy(RoundRobin(backends, clock=FakeClock()))
        async with running(proxy) as port:
            # Interactive: each chunk must come back before the client sends the next or EOF.
            reader, writer = await open_client(port)
            try:
                for size in (1, 17, 4096):
                    chunk = rng.randbytes(size)
                    writer.write(chunk)
                    got = await bounded(
                        reader.readexactly(size), 5.0, f"the echo of {size} bytes before any EOF"
                    )
                    assert got == chunk, called(f"echo of {size} random bytes", got, chunk)
            finally:
                writer.close()
            for size in (0, 1, 65_537, 300_000):
                payload = rng.randbytes(size)
                got = await exchange(port, payload)
                assert got == payload, called(
                    f"send {size} random bytes, half-close, read to EOF",
                    f"{len(got)} bytes, sha256 {hashlib.sha256(got).hexdigest()[:12]}",
                    f"{size} bytes, sha256 {hashlib.sha256(payload).hexdigest()[:12]}",
                )


@pytest.mark.points(3)
async def test_a_client_half_close_still_gets_the_answer():
    """After the client half-closes, the backend's answer still reaches it (half-close is kept)."""

    async def digest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # to EOF: the backend answers only after the client's EOF
        writer.write(b"%d bytes, sha256 " % len(request) + hashlib.sha256(request).digest())
        await writer.drain()

    payload = random.Random(7).randbytes(100_000)
    want = b"%d bytes, sha256 " % len(payload) + hashlib.sha256(payload).digest()
    async with farm({"a": digest}) as (_, backends):
        proxy = TcpProxy(RoundRobin(backends, clock=FakeClock()))
        async with running(proxy) as port:
            got = await exchange(port, payload)
    assert got == want, called(
        "send 100000 bytes, half-close, read the backend's answer to EOF", got, want
    )


@pytest.mark.points(2)
async def test_a_backend_half_close_still_gets_the_request():
    """After the backend half-closes, what the client sends still reaches the backend."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def banner_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, I will not say more\n")
        writer.write_eof()  # the backend is done talking, not done listening
        data = await reader.read()
        if not received.done():
            received.set_result(data)

    payload = random.Random(8).randbytes(20_000)
    async with farm({"a": banner_first}) as (_, backends):
        proxy = TcpProxy(RoundRobin(backends, clock=FakeClock()))
        async with running(proxy) as port:
            reader, writer = await open_client(port)
            try:
                banner = await read_all(reader, "the backend's banner and its EOF")
                assert banner == b"hello, I will not say more\n", called(
                    "read to EOF from the proxy", banner, b"hello, I will not say more\n"
                )
                try:
                    writer.write(payload)
                    await writer.drain()
                    writer.write_eof()
                except OSError:
                    pass  # the proxy already closed our side; the check below reports it
                got = await bounded(received, 5.0, "the backend to read the request to EOF")
            finally:
                writer.close()
    assert got == payload, called(
        "after the backend's EOF, the client sends 20000 bytes and half-closes; the backend reads",
        f"{len(got)} bytes",
        f"{len(payload)} bytes, identical",
    )


@pytest.mark.points(2)
async def test_many_clients_at_once_are_each_served_exactly():
    """Twenty clients at once all get their own bytes back, spread round robin over the backends."""
    rng = random.Random(20)
    payloads = [rng.randbytes(rng.randrange(1, 30_000)) for _ in range(20)]
    async with farm({"a": echo, "b": echo}) as (backends_farm, backends):
        proxy = TcpProxy(RoundRobin(backends, clock=FakeClock()))
        async with running(proxy) as port:
            answers = await asyncio.gather(*(exchange(port, p) for p in payloads))
            wrong = [i for i, (a, p) in enumerate(zip(answers, payloads, strict=True)) if a != p]
            assert not wrong, called(
                "20 concurrent echo exchanges; clients with wrong bytes", wrong, []
            )
            spread = Counter(backends_farm.accepted.get_nowait() for _ in range(20))
    assert spread == {"a": 10, "b": 10}, called(
        "20 connections through RoundRobin([a, b]); connections per backend",
        dict(spread),
        {"a": 10, "b": 10},
    )


# -- connect failures ---------------------------------------------------------------------------


@pytest.fixture
def dead_port() -> Iterator[Callable[[], int]]:
    """Call it for a port nobody listens on, held for the whole spec (spectools.refused_port):
    connecting is refused, and no other process can take the port meanwhile (a port found free
    and closed again can be another spec's server a moment later on a busy machine)."""
    with contextlib.ExitStack() as held:
        yield lambda: held.enter_context(refused_port())


@pytest.mark.points(3)
async def test_a_dead_backend_is_skipped_and_the_client_served(dead_port):
    """When connecting to a backend fails, the proxy reports it and serves the client from the next one."""
    async with farm({"live": echo}) as (_, (live,)):
        dead = Backend("dead", LOCALHOST, dead_port())
        spy = Spy(RoundRobin([dead, live], max_fails=1, fail_timeout=30.0, clock=FakeClock()))
        proxy = TcpProxy(spy)
        async with running(proxy) as port:
            got = await exchange(port, b"ping")
            assert got == b"ping", called("echo b'ping' with the first backend dead", got, b"ping")
            got = await exchange(port, b"pong")
            assert got == b"pong", called("a second client, same proxy", got, b"pong")
    assert spy.count("failure", "dead") == 1, called(
        "report_failure(dead) count (dead is ejected after its first failure)",
        spy.count("failure", "dead"),
        1,
    )
    assert spy.count("success", "live") == 2, called(
        "report_success(live) count after two served clients", spy.count("success", "live"), 2
    )
    assert not spy.is_available(dead), called("picker.is_available(dead)", True, False)


@pytest.mark.points(2)
async def test_a_retry_never_goes_back_to_a_backend_that_failed(dead_port):
    """On a retry the proxy excludes the backends that already failed for this client."""
    async with farm({"live": echo}) as (the_farm, (live,)):
        dead = Backend("dead", LOCALHOST, dead_port())
        # max_fails=5: "dead" stays eligible, so only the exclusion keeps a retry off it.
        picker = LeastConnections([dead, live], max_fails=5, fail_timeout=30.0, clock=FakeClock())
        spy = Spy(picker)
        proxy = TcpProxy(spy, max_attempts=3)
        async with running(proxy) as port:
            held_reader, held_writer = await open_client(port)  # tie -> dead, fails -> live
            try:
                held_writer.write(b"x")
                got = await bounded(held_reader.readexactly(1), 5.0, "the first client's echo")
                assert got == b"x", called("echo b'x' through the proxy", got, b"x")
                # Now live has 1 in flight and dead 0: least connections prefers dead.
                got = await exchange(port, b"second")
                assert got == b"second", called(
                    "a second client while the first stays connected (live: 1 in flight, "
                    "dead: 0, max_attempts=3)",
                    got,
                    b"second",
                )
            finally:
                held_writer.close()
    assert spy.count("failure", "dead") == 2, called(
        "report_failure(dead) count: once per client", spy.count("failure", "dead"), 2
    )


@pytest.mark.points(1)
async def test_the_proxy_gives_up_after_max_attempts(dead_port):
    """The proxy tries at most max_attempts backends for a client, then closes that client."""
    async with farm({"live": echo}) as (_, (live,)):
        deads = [Backend(f"dead{i}", LOCALHOST, dead_port()) for i in range(3)]
        spy = Spy(RoundRobin([*deads, live], max_fails=1, fail_timeout=30.0, clock=FakeClock()))
        proxy = TcpProxy(spy, max_attempts=2)
        async with running(proxy) as port:
            got = await exchange(port, b"first")
            assert got == b"", called("a client whose 2 attempts both fail: read to EOF", got, b"")
            failures = spy.count("failure")
            assert failures == 2, called("report_failure() count with max_attempts=2", failures, 2)
            got = await exchange(port, b"second")
            assert got == b"second", called(
                "the next client (dead2 then live): echo", got, b"second"
            )
    leaked = [b.name for b in [*deads, live] if spy.in_flight(b)]
    assert not leaked, called("backends still in flight after both clients", leaked, [])


@pytest.mark.points(1)
async def test_a_client_is_closed_when_no_backend_is_available(dead_port):
    """When the picker has no backend to give, the proxy closes the client and keeps serving."""
    dead = Backend("dead", LOCALHOST, dead_port())
    clock = FakeClock()
    spy = Spy(RoundRobin([dead], max_fails=1, fail_timeout=10.0, clock=clock))
    proxy = TcpProxy(spy, max_attempts=3)
    async with running(proxy) as port:
        for attempt in ("first", "second"):
            got = await exchange(port, b"anyone?")
            assert got == b"", called(f"{attempt} client, only backend dead: read to EOF", got, b"")
    picks = spy.count("pick")
    assert picks == 1, called("pick() count: one try, then the dead backend is ejected", picks, 1)


@pytest.mark.points(1)
async def test_a_connect_that_hangs_times_out_and_moves_on():
    """A connect that does not complete within connect_timeout counts as a failure."""
    async with farm({"live": echo}) as (_, (live,)):
        with blackhole() as hole_port:
            hole = Backend("hole", LOCALHOST, hole_port)
            spy = Spy(RoundRobin([hole, live], max_fails=1, fail_timeout=30.0, clock=FakeClock()))
            # 1 s: long enough that a busy machine never times out the live backend's connect.
            proxy = TcpProxy(spy, connect_timeout=1.0)
            async with running(proxy) as port:
                got = await exchange(port, b"ping")
    assert got == b"ping", called("echo with the first backend never answering SYNs", got, b"ping")
    assert spy.count("failure", "hole") == 1, called(
        "report_failure(hole) count", spy.count("failure", "hole"), 1
    )


# -- in-flight slots ----------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_least_connections_through_the_proxy_follows_open_connections():
    """Through the proxy, LeastConnections sends new clients to the backends with the fewest open ones."""
    async with farm({"a": hold, "b": hold, "c": hold}) as (the_farm, backends):
        spy = Spy(LeastConnections(backends, clock=FakeClock()))
        proxy = TcpProxy(spy)
        async with running(proxy) as port:
            clients: list[tuple[str, asyncio.StreamWriter]] = []
            try:
                for _ in range(6):
                    _, writer = await open_client(port)
                    clients.append((await the_farm.next_accepted(), writer))
                first = " ".join(name for name, _ in clients)
                assert first == "a b c a b c", called("six clients held open", first, "a b c a b c")
                # Close both clients on a and one on b: open now a=0, b=1, c=2.
                for index in (0, 1, 3):
                    clients[index][1].close()
                await spy.until(
                    lambda: spy.count("release") == 3, "the proxy to release 3 closed sessions"
                )
                later = []
                for _ in range(3):
                    _, writer = await open_client(port)
                    clients.append(("?", writer))
                    later.append(await the_farm.next_accepted())
                got = " ".join(later)
                assert got == "a b a", called(
                    "three new clients with a=0, b=1, c=2 open (ties go round robin)", got, "a b a"
                )
                assert the_farm.live == {"a": 2, "b": 2, "c": 2}, called(
                    "open connections per backend", the_farm.live, {"a": 2, "b": 2, "c": 2}
                )
            finally:
                for _, writer in clients:
                    writer.close()


@pytest.mark.points(2)
async def test_every_session_releases_its_slot_however_it_ends():
    """Each session releases its in-flight slot: after a clean close, a client reset, a backend reset."""

    async def reset_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        abort_with_reset(writer)

    async with farm({"a": hold, "r": reset_after_hello}) as (the_farm, backends):
        a, r = backends
        spy = Spy(RoundRobin(backends, clock=FakeClock()))
        proxy = TcpProxy(spy)
        async with running(proxy) as port:
            # 1. to a: the client half-closes, the backend follows.
            got = await exchange(port, b"bye")
            assert got == b"", called(
                "a client to a silent backend half-closes; read to EOF", got, b""
            )
            await spy.until(lambda: spy.count("release", "a") == 1, "the release of session 1")
            # 2. to r: the backend resets the connection.
            reader, writer = await open_client(port)
            writer.write(b"hello")
            await read_all(reader, "the proxy to close the client after the backend's reset")
            writer.close()
            await spy.until(lambda: spy.count("release", "r") == 1, "the release of session 2")
            # 3. to a: the client resets the connection while the backend keeps waiting.
            reader, writer = await open_client(port)
            await the_farm.next_accepted()
            await the_farm.next_accepted()
            name = await the_farm.next_accepted()
            assert name == "a", called("the third client's backend", name, "a")
            abort_with_reset(writer)
            await spy.until(lambda: spy.count("release", "a") == 2, "the release of session 3")
            finished = [
                await bounded(the_farm.finished.get(), 5.0, "the backend sessions to end")
                for _ in range(3)
            ]
            assert sorted(finished) == ["a", "a", "r"], called(
                "backend sessions ended after three clients", sorted(finished), ["a", "a", "r"]
            )
    got = (spy.count("pick"), spy.count("release"), spy.in_flight(a), spy.in_flight(r))
    assert got == (3, 3, 0, 0), called(
        "(picks, releases, in_flight(a), in_flight(r))", got, (3, 3, 0, 0)
    )


@pytest.mark.points(2)
async def test_close_ends_live_sessions_and_stops_listening():
    """close() stops accepting, ends live sessions on both sides and releases their slots; a second close() is harmless."""
    async with farm({"a": hold}) as (the_farm, (a,)):
        spy = Spy(RoundRobin([a], clock=FakeClock()))
        proxy = TcpProxy(spy)
        port = await bounded(proxy.start(LOCALHOST, 0), 5.0, "TcpProxy.start() to return")
        reader, writer = await open_client(port)
        try:
            await the_farm.next_accepted()
            await bounded(proxy.close(), 5.0, "TcpProxy.close() with a session open to return")
            in_flight = spy.in_flight(a)
            assert in_flight == 0, called("in_flight(a) once close() has returned", in_flight, 0)
            got = await read_all(reader, "the client to see its connection closed")
            assert got == b"", called("read to EOF from the client after close()", got, b"")
            ended = await bounded(the_farm.finished.get(), 5.0, "the backend side to be closed")
            assert ended == "a", called("the backend session that ended", ended, "a")
        finally:
            writer.close()
        with pytest.raises(OSError):
            _, late = await asyncio.open_connection(LOCALHOST, port)
            late.close()
            raise AssertionError(
                called("connect to the proxy after close()", "connected", "refused")
            )
        await bounded(proxy.close(), 5.0, "a second TcpProxy.close() to return")


@pytest.mark.points(1)
async def test_close_leaves_the_event_loop_nothing_to_report():
    """close() with a live session (client and backend both idle) leaves no error for the event
    loop to report: a session task it cancels ends without raising.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    async with farm({"a": hold}) as (the_farm, (a,)):
        proxy = TcpProxy(RoundRobin([a], clock=FakeClock()))
        port = await bounded(proxy.start(LOCALHOST, 0), 5.0, "TcpProxy.start() to return")
        async with loop_reports() as reports:
            reader, writer = await open_client(port)
            try:
                await the_farm.next_accepted()
                await bounded(proxy.close(), 5.0, "TcpProxy.close() with a session open")
                await read_all(reader, "the client to see its connection closed")
            finally:
                writer.close()
    assert not reports, reports.message(
        "TcpProxy.close() with a live session",
        "a session cancelled by close() should end quietly: catch CancelledError in the "
        "connection handler, close both sides, and return",
    )


@pytest.mark.points(2)
async def test_close_while_a_connect_hangs_releases_the_slot():
    """close() during a connect that has not completed yet releases that backend's slot and leaves no task behind."""
    with blackhole() as hole_port:
        hole = Backend("hole", LOCALHOST, hole_port)
        spy = Spy(RoundRobin([hole], clock=FakeClock()))
        proxy = TcpProxy(spy, connect_timeout=30.0)
        before = {task for task in asyncio.all_tasks() if not task.done()}
        port = await bounded(proxy.start(LOCALHOST, 0), 5.0, "TcpProxy.start() to return")
        reader, writer = await open_client(port)
        try:
            await spy.until(lambda: spy.count("pick") == 1, "the proxy to pick a backend")
            await bounded(proxy.close(), 5.0, "TcpProxy.close() with a connect pending to return")
            in_flight = spy.in_flight(hole)
            assert in_flight == 0, called(
                "TcpProxy.close() while the connect to hole hung; then in_flight(hole)",
                in_flight,
                0,
            )
            left = [
                task
                for task in asyncio.all_tasks()
                if not task.done() and task not in before and task is not asyncio.current_task()
            ]
            assert not left, called(
                "TcpProxy.close() while a connect hung; then the proxy's unfinished tasks",
                [task.get_coro().__qualname__ for task in left],
                [],
            )
        finally:
            writer.close()


FIREHOSE = 48 << 20  # bytes a backend tries to push at a client that never reads
PROXY_MEMORY = 8 << 20  # what a proxy with back-pressure holds is far less (a few chunks)
STALL = 1.0  # seconds without one more chunk leaving the backend: the chain has stopped


@pytest.mark.points(2)
async def test_a_client_that_never_reads_stops_the_backend():
    """While a client does not read, the proxy stops reading from its backend (drain()): its memory stays bounded."""
    # Counted, not timed: tracemalloc measures the memory the process holds, kernel buffers not
    # included. A proxy without back-pressure reads everything the backend sends and keeps it.
    chunk = b"\xab" * 65536
    sent = [0]
    moved = asyncio.Event()

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            for _ in range(FIREHOSE // len(chunk)):
                writer.write(chunk)
                await writer.drain()
                sent[0] += len(chunk)
                moved.set()

    async with farm({"a": firehose}) as (_, backends):
        proxy = TcpProxy(RoundRobin(backends, clock=FakeClock()))
        async with running(proxy) as port:
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                _, writer = await open_client(port)  # and never read from it
                held = 0
                try:
                    while sent[0] < FIREHOSE and held <= PROXY_MEMORY:
                        moved.clear()
                        try:
                            await asyncio.wait_for(moved.wait(), STALL)
                        except TimeoutError:
                            break  # nothing moved for STALL seconds: the backend is held back
                        held = tracemalloc.get_traced_memory()[0] - base
                finally:
                    writer.close()
            finally:
                tracemalloc.stop()
    assert held <= PROXY_MEMORY, (
        f"Called a backend that writes {FIREHOSE >> 20} MiB (awaiting drain()) through the "
        f"proxy to a client that never reads; the backend got {sent[0] >> 20} MiB out and the "
        f"process held {held >> 20} MiB more than before; expected at most "
        f"{PROXY_MEMORY >> 20} MiB: the proxy must await drain() after each write, so a slow "
        "reader slows the sender instead of filling the proxy's memory"
    )
