"""The spec helpers every kata shares (grader.spectools): each does what its docstring says."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import socket
import types

import pytest

from grader.spectools import (
    INTERIM,
    LOCALHOST,
    BigPeer,
    ContinuingOrigin,
    CountingLoop,
    FakeClock,
    LingeringClient,
    LoopReports,
    SkippingLoop,
    StalledSink,
    WholeUpload,
    answer_with,
    bounded,
    called,
    linger_holds,
    loop_reports,
    memory_held,
    raw_origin,
    read_digest,
    refused_port,
    reset_mid_request,
    response_heads,
    running_h11_origin,
    send_whole_then_read,
    short,
    slow_reader,
    spy_compare_digest,
    spy_on,
    step,
    tcp_server,
    transports_on_port,
)


def test_called_says_what_was_called_returned_and_expected():
    assert called("f(1)", 2, 3) == "Called f(1); returned 2; expected 3"
    assert called("f(1)", 2, 3, show_expected=False) == "Called f(1); returned 2"


def test_short_cuts_long_values_and_says_so():
    assert short("x" * 10) == repr("x" * 10)
    cut = short("x" * 500, limit=20)
    assert len(cut) == 20 and cut.endswith("...")


def test_step_words_an_unexpected_exception_and_lets_the_specs_own_through():
    with (
        pytest.raises(AssertionError, match=r"^Called f\(7\); raised ValueError: bad$"),
        step("f(7)"),
    ):
        raise ValueError("bad")
    with pytest.raises(NotImplementedError), step("f(7)"):
        raise NotImplementedError  # how the grader tells an untouched stub
    with pytest.raises(AssertionError, match="^own$"), step("f(7)"):
        raise AssertionError("own")


def test_fake_clock_moves_only_forward_and_by_hand():
    clock = FakeClock(10)
    assert clock() == 10 and clock.advance(2.5) == 12.5 and clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_bounded_fails_with_a_readable_message():
    assert await bounded(asyncio.sleep(0, "ok"), 1) == "ok"
    with pytest.raises(AssertionError, match="waited 0.01 s for the echo; it never came"):
        await bounded(asyncio.Event().wait(), 0.01, "the echo")


def test_spy_compare_digest_sees_every_way_to_the_function(monkeypatch):
    learner = types.ModuleType("learner")
    learner.cd = hmac.compare_digest  # from hmac import compare_digest as cd
    calls = spy_compare_digest(monkeypatch, learner)
    assert hmac.compare_digest(b"a", b"a") is True
    assert secrets.compare_digest("a", "b") is False
    assert learner.cd(b"x", b"y") is False
    assert calls == [(b"a", b"a"), ("a", "b"), (b"x", b"y")]


def test_spy_on_records_what_it_is_told_and_answers_like_the_real_function(monkeypatch):
    holder = types.SimpleNamespace(f=lambda a, b=0: a + b)
    real = holder.f
    calls = spy_on(monkeypatch, real, [(holder, "f")], record=lambda a, b=0: a)
    assert holder.f(2, b=3) == 5 and calls == [2]
    monkeypatch.undo()
    assert holder.f is real


def test_counting_loop_counts_wakeups_and_none_while_parked():
    loop = CountingLoop()
    try:

        async def parked(event: asyncio.Event) -> None:
            await event.wait()

        event = asyncio.Event()
        task = loop.create_task(parked(event))
        loop.run_until_complete(asyncio.sleep(0))
        before = loop.wakeups
        loop.run_until_complete(asyncio.sleep(0.01))  # a parked task is not woken
        idle = loop.wakeups - before
        loop.call_soon(event.set)
        loop.run_until_complete(task)
        assert loop.wakeups > before + idle, "waking the task counted nothing"
        assert idle <= 3, f"{idle} wake-ups while the only task was parked"
    finally:
        loop.close()


async def test_bounded_lets_the_awaitables_own_timeout_error_through():
    async def times_out():
        raise TimeoutError("per-try timeout")

    with pytest.raises(TimeoutError, match="per-try timeout"):
        await bounded(times_out(), 1, "the answer")


async def test_bounded_cancels_what_it_gave_up_on():
    started = asyncio.Event()
    cancelled = []

    async def forever():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(AssertionError, match="waited 0.05 s for the echo"):
        await bounded(forever(), 0.05, "the echo")
    assert started.is_set() and cancelled == [True]


async def test_h11_origin_answers_records_and_counts():
    async with running_h11_origin(answer_with(b"hi")) as origin:
        reader, writer = await asyncio.open_connection(LOCALHOST, origin.port)
        writer.write(b"POST /p HTTP/1.1\r\nHost: o\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nab")
        answer = await bounded(reader.read(-1), 5, "the origin's answer")
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhi")
    assert b"content-length: 2" in answer.lower()
    assert origin.connections == 1 and origin.arrived.is_set() and not origin.errors
    assert (origin.last.method, origin.last.target, origin.requests[0][1]) == (
        b"POST",
        b"/p",
        b"ab",
    )
    assert origin.header("x-a") == ["1"] and origin.raw.endswith(b"ab")


async def test_h11_origin_notes_what_h11_refuses_and_sends_no_content_for_head():
    async with running_h11_origin() as origin:
        reader, writer = await asyncio.open_connection(LOCALHOST, origin.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: o\r\nContent-Length: x\r\n\r\n")
        await bounded(reader.read(-1), 5, "the origin's close")
        writer.close()
        reader, writer = await asyncio.open_connection(LOCALHOST, origin.port)
        writer.write(b"HEAD / HTTP/1.1\r\nHost: o\r\n\r\n")
        answer = await bounded(reader.read(-1), 5, "the origin's answer to HEAD")
        writer.close()
    assert origin.connections == 2 and len(origin.errors) == 1 and len(origin.requests) == 1
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\n")


async def test_big_peer_stalls_on_a_reader_that_stops_and_finishes_for_one_that_reads():
    size = 8 * len(BigPeer.PIECE)
    with pytest.raises(ValueError):
        BigPeer(size + 1)
    peer = BigPeer(4 * 1024 * 1024)
    async with tcp_server(peer.handle) as (_, port):
        reader, writer = await slow_reader(port)
        await bounded(peer.settled(), 10, "the peer to stall")
        assert 0 < peer.sent < peer.size and peer.blocked, (peer.sent, peer.blocked)
        received, digest = await read_digest(reader, peer.size, "the bytes", timeout=10)
        writer.close()
    assert (received, digest) == (peer.size, peer.digest())


async def test_big_peer_runs_before_and_after_around_its_writes():
    steps = []

    async def before(reader, writer):
        steps.append(await reader.readexactly(3))

    done = asyncio.Event()

    async def after(reader, writer):
        writer.write_eof()
        steps.append(await reader.read(-1))
        done.set()

    peer = BigPeer(len(BigPeer.PIECE), before=before, after=after)
    async with tcp_server(peer.handle) as (_, port):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.write(b"abc")
        received, digest = await read_digest(reader, 2 * peer.size, "the bytes", timeout=10)
        writer.write(b"end")
        writer.write_eof()
        await bounded(done.wait(), 5, "the peer's after() to see EOF")
        writer.close()
    assert (received, digest == peer.digest()) == (peer.size, True)
    assert steps == [b"abc", b"end"]


async def test_stalled_sink_reads_nothing_until_released_then_the_whole_body():
    size = 4 * 1024 * 1024
    sink = StalledSink(size)
    client = BigPeer(size, prefix=b"PUT / HTTP/1.1\r\n\r\n")
    async with tcp_server(sink.handle) as (_, port):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        upload = asyncio.create_task(client.handle(reader, writer))
        await bounded(client.settled(), 10, "the upload to stall")
        assert client.sent < size and not sink.body.done(), (client.sent, sink.body)
        sink.release()
        await bounded(upload, 10, "the rest of the upload")
        assert await bounded(sink.body, 10, "the body") == (size, client.digest())
        assert await bounded(reader.read(-1), 10, "the answer") == sink.answer
        writer.close()


async def test_refused_port_refuses_and_no_one_else_can_take_it():
    with refused_port() as port:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(LOCALHOST, port)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind((LOCALHOST, port))  # held: not free for another server meanwhile


async def test_transports_on_port_are_the_servers_open_ends_only():
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async with tcp_server(hold) as (_, port):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            for _ in range(10):  # turns until the server has accepted
                found = transports_on_port(port)
                if found:
                    break
                await asyncio.sleep(0)
            ends = [t.get_extra_info("peername") for t in found]
            assert ends == [writer.get_extra_info("sockname")], ends  # not the client's own
        finally:
            writer.close()
            await writer.wait_closed()
        for _ in range(10):
            if not transports_on_port(port):
                break
            await asyncio.sleep(0)
        assert transports_on_port(port) == [], "a closed transport is not listed"


async def test_memory_held_is_the_peak_above_the_start():
    async def hold(n):
        block = bytearray(n)
        await asyncio.sleep(0)
        del block

    held = await memory_held(hold(8 * 1024 * 1024), 5, "the allocation")
    assert 8 * 1024 * 1024 <= held < 9 * 1024 * 1024, held
    with pytest.raises(AssertionError, match="waited 0.01 s for nothing"):
        await memory_held(asyncio.Event().wait(), 0.01, "nothing")


REFUSAL = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"


async def _refuses_then_lingers(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(REFUSAL)
    writer.write_eof()
    while await reader.read(65536):
        pass
    writer.close()


async def _refuses_then_closes(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(REFUSAL)
    writer.close()


async def test_send_whole_then_read_gets_the_answer_of_a_server_that_reads_on_and_the_reset_of_one_that_does_not():
    head, piece = b"POST / HTTP/1.1\r\nContent-Length: 33554432\r\n\r\n", b"x" * 65536
    async with tcp_server(_refuses_then_lingers) as (_, port):
        assert await send_whole_then_read(port, head, piece, 512) == (REFUSAL, None)
    async with tcp_server(_refuses_then_closes) as (_, port):
        received, error = await send_whole_then_read(port, head, piece, 512)
    assert isinstance(error, ConnectionError), (received, error)


async def test_loop_reports_hears_nothing_from_a_quiet_block_and_puts_the_handler_back():
    loop = asyncio.get_running_loop()
    mine = lambda _loop, _context: None  # noqa: E731
    loop.set_exception_handler(mine)
    try:
        async with loop_reports() as reports:
            await asyncio.sleep(0)
        assert not reports and reports.lines() == []
        assert loop.get_exception_handler() is mine
    finally:
        loop.set_exception_handler(None)


async def test_loop_reports_quotes_a_failing_callback_and_a_task_exception_never_retrieved():
    def boom() -> None:
        raise RuntimeError("boom")

    async def fails() -> None:
        raise ValueError("lost")

    async with loop_reports() as reports:
        asyncio.get_running_loop().call_soon(boom)
        asyncio.ensure_future(fails())  # nobody keeps it or awaits it: reported when collected
    lines = reports.lines()
    assert len(reports) == 2, lines
    assert any(line.startswith("RuntimeError: boom in: Exception in callback") for line in lines), (
        lines
    )
    assert "ValueError: lost in: Task exception was never retrieved" in lines, lines
    message = reports.message("server.close()", "hint")
    assert message.startswith("Called server.close(); the event loop reported 2 error(s): ")
    assert "'ValueError: lost in: Task exception was never retrieved'" in message
    assert message.endswith("; expected none (hint)")


async def test_loop_reports_hears_a_report_that_comes_some_turns_after_the_block():
    def later(n: int) -> None:
        if n:
            asyncio.get_running_loop().call_soon(later, n - 1)
        else:
            asyncio.get_running_loop().call_exception_handler({"message": "late"})

    async with loop_reports(turns=10) as reports:
        later(5)
    assert reports.lines() == ["late"]
    async with loop_reports(turns=2) as reports:
        later(50)  # past every turn it listens for: counted, not timed
    assert not reports
    for _ in range(60):
        await asyncio.sleep(0)  # let the chain end


async def test_loop_reports_hears_a_transport_nobody_closed():
    async with (
        tcp_server(lambda reader, writer: reader.read()) as (host, port),
        loop_reports() as reports,
    ):
        _, writer = await asyncio.open_connection(host, port)
        writer.transport.pause_reading()
        del writer  # dropped, never closed: its transport and socket warn when collected
    assert any("unclosed" in line for line in reports.lines()), reports.lines()
    assert all(line.startswith("ResourceWarning: ") for line in reports.lines()), reports.lines()


async def test_loop_reports_lets_the_bodys_exception_through():
    loop = asyncio.get_running_loop()
    with pytest.raises(NotImplementedError):
        async with loop_reports():
            raise NotImplementedError
    assert loop.get_exception_handler() is None


def test_loop_reports_lines_are_cut_and_repeats_counted():
    reports = LoopReports()
    reports.contexts += [{"message": "x" * 300, "exception": KeyError("k")}] * 2
    reports.contexts.append({"message": "once"})
    reports.warnings.append("unclosed transport <_SelectorSocketTransport fd=7>")
    lines = reports.lines()
    assert len(reports) == 4 and len(lines) == 3, lines
    assert lines[0].startswith("KeyError: 'k' in: xxx") and lines[0].endswith("... (x2)"), lines
    assert len(lines[0]) == 160 + len(" (x2)"), lines
    assert lines[1:] == [
        "once",
        "ResourceWarning: unclosed transport <_SelectorSocketTransport fd=7>",
    ]


async def test_loop_reports_does_not_blame_the_block_for_garbage_made_before_it():
    async def fails() -> None:
        raise ValueError("earlier")

    class Cycle:
        pass

    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        task = asyncio.ensure_future(fails())
        await asyncio.sleep(0)
        cycle = Cycle()
        cycle.self, cycle.task = cycle, task  # only the collector frees it
        del task, cycle
        async with loop_reports() as reports:
            await asyncio.sleep(0)
        assert not reports, reports.lines()
        assert [c["message"] for c in seen] == ["Task exception was never retrieved"], seen
    finally:
        loop.set_exception_handler(None)


def test_response_heads_keeps_every_interim_head_then_the_final_one_and_its_body():
    raw = INTERIM + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n Connection : close\r\n\r\nfinal"
    heads, rest = response_heads(raw)
    assert [(h.status_line, h.status) for h in heads] == [
        ("HTTP/1.1 100 Continue", 100),
        ("HTTP/1.1 103 Early Hints", 103),
        ("HTTP/1.1 200 OK", 200),
    ], heads
    assert heads[1].values("LINK") == ["</style.css>; rel=preload"], heads[1]
    assert heads[2].fields == (("content-length", "5"), ("connection", "close")), heads[2]
    assert rest == b"final", rest
    # The first head that is not a 1xx ends the heads, even one that looks like a response.
    heads, rest = response_heads(b"HTTP/1.1 xyz\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
    assert [h.status for h in heads] == [0] and rest == b"HTTP/1.1 200 OK\r\n\r\n", heads
    assert response_heads(b"hello") == ([], b"hello")


async def _exchange(port: int, request: bytes, *, half_close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        writer.write(request)
        if half_close:
            writer.write_eof()
        return await bounded(reader.read(), 5, "the origin's answer and its close")
    finally:
        writer.close()


async def test_raw_origin_writes_its_answer_after_the_head_and_holds_on_request():
    final = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with tcp_server(raw_origin(INTERIM + final)) as (_, port):
        # Without hold it answers and closes though the client never ends its side.
        got = await _exchange(port, b"GET / HTTP/1.1\r\n\r\n", half_close=False)
    assert got == INTERIM + final, got
    ended = asyncio.Event()
    held = raw_origin(final, hold=True)

    async def watched(reader, writer):
        await held(reader, writer)
        ended.set()

    async with tcp_server(watched) as (_, port):
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            assert await bounded(reader.readexactly(len(final)), 5, "the answer") == final
            for _ in range(20):
                await asyncio.sleep(0)
            assert not ended.is_set(), "a holding origin returned before the client closed"
            writer.write_eof()
            await bounded(ended.wait(), 5, "the origin to return after the client's EOF")
        finally:
            writer.close()


async def test_continuing_origin_says_continue_when_expected_reads_the_body_and_keeps_it():
    origin = ContinuingOrigin()
    async with tcp_server(origin.handle) as (_, port):
        plain = await _exchange(port, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        expecting = await _exchange(
            port, b"POST / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhi"
        )
    stored = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nstored!"
    assert (plain, expecting) == (stored, b"HTTP/1.1 100 Continue\r\n\r\n" + stored)
    assert origin.bodies == [b"abc", b"hi"], origin.requests
    assert origin.requests[0][0] == "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
    always = ContinuingOrigin(b"HTTP/1.1 201 Created\r\n\r\n", always=True)
    async with tcp_server(always.handle) as (_, port):
        got = await _exchange(port, b"PUT / HTTP/1.1\r\nContent-Length: 1\r\n\r\nz")
    assert got == b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\n", got


async def test_whole_upload_frames_its_body_and_fails_with_a_readable_reset():
    upload = WholeUpload("POST /up HTTP/1.1", "h")
    assert upload.head == b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 33554432\r\n\r\n"
    assert (upload.piece, upload.tail) == (b"x" * 65536, b"")
    chunked = WholeUpload("POST /up HTTP/1.1", "h", chunked=True, pieces=2)
    assert chunked.framing == "Transfer-Encoding: chunked"
    body = chunked.piece * chunked.pieces + chunked.tail
    assert body == (b"10000\r\n" + b"x" * 65536 + b"\r\n") * 2 + b"0\r\n\r\n"
    async with tcp_server(_refuses_then_lingers) as (_, port):
        assert await upload.answer(port, "the upload", 413) == REFUSAL
    async with tcp_server(_refuses_then_closes) as (_, port):
        with pytest.raises(AssertionError) as failed:
            await upload.answer(port, "the upload", 413)
    message = str(failed.value)
    assert message.startswith('Called the upload; returned "the connection was reset: '), message
    assert message.endswith("; expected 'HTTP/1.1 413 ...'"), message


async def _reset_reports(handle) -> LoopReports:
    arrived = asyncio.Event()

    async def wrapped(reader, writer):
        arrived.set()
        await handle(reader, writer)

    async def begin(reader, writer):
        writer.write(b"ping")
        await bounded(arrived.wait(), 5, "the connection to be served")

    return await reset_mid_request(wrapped, begin, "the handler to return", 5)


async def test_reset_mid_request_hears_nothing_from_a_quiet_handler_and_quotes_a_loud_one():
    async def quiet(reader, writer):
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    async def loud(reader, writer):
        while await reader.read(65536):
            pass
        raise RuntimeError("the reset escaped")  # the reset may come as EOF or as an error

    assert not await _reset_reports(quiet)
    reports = await _reset_reports(loud)
    errors = [type(c.get("exception")) for c in reports.contexts]
    assert errors and set(errors) <= {ConnectionResetError, RuntimeError}, reports.lines()


async def test_reset_mid_request_fails_readably_when_the_handler_never_returns():
    release = asyncio.Event()

    async def stuck(reader, writer):
        await release.wait()

    async def begin(reader, writer):
        pass

    try:
        with pytest.raises(AssertionError, match="waited 0.2 s for the handler to return"):
            await reset_mid_request(stuck, begin, "the handler to return", 0.2)
    finally:
        release.set()
        await asyncio.sleep(0)


async def _serve_until_cancelled(started: asyncio.Event, tasks: list) -> asyncio.Server:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())
        started.set()
        try:
            await reader.read()  # the client never sends: only cancel() ends this
        finally:
            writer.close()

    return await asyncio.start_server(handler, LOCALHOST, 0)


async def test_loop_reports_names_a_start_server_connection_task_that_ended_cancelled():
    # Whatever this Python's asyncio logs for it (3.11.7 does, 3.13 does not), the cancelled
    # connection task is reported; a cancelled task of the block's own is not.
    loop = asyncio.get_running_loop()
    started, tasks = asyncio.Event(), []
    server = await _serve_until_cancelled(started, tasks)
    try:
        async with loop_reports() as reports:
            _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
            await bounded(started.wait(), 5.0, "the connection task to start")
            own = asyncio.ensure_future(asyncio.sleep(3600))
            own.cancel()
            tasks[0].cancel()  # ends in CancelledError: nothing awaits it but asyncio
            await asyncio.wait([own, tasks[0]])
            writer.close()
        assert loop.get_task_factory() is None
    finally:
        server.close()
    assert reports.handlers == [
        "CancelledError ended _serve_until_cancelled.<locals>.handler(), a start_server "
        "connection task (Python 3.11.7 logs it, 3.13 does not)"
    ], reports.lines()
    assert reports.handlers[0] in reports.lines(), reports.lines()


async def test_loop_reports_names_a_failed_connection_task_once_and_not_one_that_ended_well_or_runs_on():
    ended = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(1)
        try:
            if first == b"x":
                raise ValueError("boom")
            if first == b"w":
                await reader.read()  # runs on past the block: not a report of its own
        finally:
            writer.close()
            ended.set()

    server = await asyncio.start_server(handler, LOCALHOST, 0)
    address = server.sockets[0].getsockname()[:2]
    writers = []
    try:
        async with loop_reports() as reports:
            for first in (b"o", b"x", b"w"):
                reader, writer = await asyncio.open_connection(*address)
                writers.append(writer)
                ended.clear()
                writer.write(first)
                if first != b"w":
                    await bounded(ended.wait(), 5.0, "the connection task to end")
                    await bounded(reader.read(), 5.0, "the connection to close")
    finally:
        for writer in writers:
            writer.close()
        server.close()
    lines = reports.lines()
    # 3.11.7 and later log the failure ('Unhandled exception in client_connected_cb'), earlier
    # versions do not: either way it is one line, never two.
    assert len(lines) == 1 and lines[0].startswith("ValueError: boom "), lines


def test_skipping_loop_moves_asyncio_timers_and_keeps_what_its_servers_accept():
    loop = SkippingLoop()

    async def main() -> None:
        slept = asyncio.ensure_future(asyncio.sleep(3600))
        assert not await loop.turns_until(slept.done, 50), "an hour passed in 50 turns"
        loop.skip(3600)
        assert await loop.turns_until(slept.done, 50), "skip(3600) did not end sleep(3600)"
        with pytest.raises(ValueError):
            loop.skip(-1)
        async with tcp_server(lambda reader, writer: reader.read()) as (_, port):
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            try:
                await bounded(loop.turns_until(lambda: bool(loop.accepted)), 5, "the accept")
                server_side = loop.accepted_from(writer)
                assert server_side.get_extra_info("sockname")[1] == port
                assert not server_side.is_closing()
            finally:
                writer.close()
            assert await loop.turns_until(server_side.is_closing), "the server never closed"
        stranger = types.SimpleNamespace(get_extra_info=lambda name: (LOCALHOST, 1))
        with pytest.raises(AssertionError, match="no server on this loop accepted"):
            loop.accepted_from(stranger)

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        runner.run(main())


async def _linger_5_and_30(reader, writer):
    """A server that refuses at once, then closes in stages: 5 s without a byte, 30 s in all."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(REFUSAL)
    writer.write_eof()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while await asyncio.wait_for(reader.read(65536), 5):
                pass
    writer.close()


@contextlib.asynccontextmanager
async def _served(handler):
    async with tcp_server(handler) as (_, port):
        yield types.SimpleNamespace(port=port)


def _held(handler, *moves) -> tuple[bool, ...]:
    request = b"POST / HTTP/1.1\r\n\r\n"
    return linger_holds(lambda: _served(handler), request, "POST /", *moves)


def test_linger_holds_sees_a_bounded_linger_end_and_an_endless_one_go_on():
    assert _held(_linger_5_and_30, (2, None), (4, None)) == (True, False)
    assert _held(_linger_5_and_30, (20, 2), (12, 2)) == (True, False)
    assert _held(_refuses_then_lingers, (2, None), (4, None)) == (True, True)
    assert _held(_refuses_then_lingers, (20, 2), (12, 2)) == (True, True)


def test_lingering_client_keeps_the_answer_head_and_counts_the_bytes_it_sends():
    async def main():
        async with tcp_server(_refuses_then_lingers) as (_, port):
            client = await LingeringClient.refused(port, b"POST / HTTP/1.1\r\n\r\n", "POST /")
            try:
                held = await client.held_after(6, every=2)
                return held, client.head, client.sent
            finally:
                client.close()

    with asyncio.Runner(loop_factory=SkippingLoop) as runner:
        assert runner.run(main()) == (True, REFUSAL, 3)


async def test_lingering_client_wants_a_skipping_loop():
    with pytest.raises(TypeError, match="SkippingLoop"):
        await LingeringClient.refused(1, b"", "nothing")
