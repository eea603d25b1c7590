"""The HTTP endpoint: the response head, events as they are published (read by httpx-sse and
by the WHATWG parser), Last-Event-ID on reconnect, errors, clients leaving, close()."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from _helpers import (
    LOCALHOST,
    Dispatched,
    bounded,
    called,
    open_stream,
    receive_until,
    running,
    short,
    stalled_client,
    step,
)
from httpx_sse import aconnect_sse

from grader.spectools import WholeUpload, linger_holds

# The lesson's limit (the stub's MAX_HEAD), written here: specs are listed without learner code.
MAX_HEAD = 8192


def http() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(10.0))


@pytest.mark.points(3)
async def test_the_response_head_opens_an_event_stream() -> None:
    """GET /events answers 200 with Content-Type: text/event-stream, Cache-Control: no-store,
    Connection: close and no Content-Length (the body lasts as long as the connection)."""
    async with running() as srv:
        stream = await open_stream(srv.port)
        try:
            got = (
                stream.status,
                stream.headers.get("content-type", "").split(";")[0].strip().lower(),
                stream.headers.get("cache-control", "").lower(),
                stream.headers.get("connection", "").lower(),
                "content-length" in stream.headers,
            )
            want = (200, "text/event-stream", "no-store", "close", False)
            assert got == want, called(
                "GET /events: (status, content-type, cache-control, connection, "
                "has Content-Length)",
                got,
                want,
            )
        finally:
            stream.close()


@pytest.mark.points(4)
async def test_a_real_client_receives_events_as_they_are_published() -> None:
    """httpx-sse, a real SSE client, receives each event as it is published: data (several
    lines, a leading space, UTF-8), type and id."""
    async with running() as srv, http() as client:
        with step("GET /events with httpx-sse"):
            async with aconnect_sse(client, "GET", srv.url) as source:
                events = source.aiter_sse()
                await srv.gauge.reaches(1)
                sent = [("hello", None), ("two\nlines", "update"), (" caf\u00e9 \u2603", "chat")]
                got = []
                for data, kind in sent:
                    srv.hub.publish(data, event=kind)
                    event = await bounded(anext(events), 5.0, f"the event {data!r} at the client")
                    got.append((event.event, event.data, event.id))
        want = [
            ("message", "hello", "1"),
            ("update", "two\nlines", "2"),
            ("chat", " caf\u00e9 \u2603", "3"),
        ]
        assert got == want, called("3 publishes, read by httpx-sse as each arrives", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize("retry", [2500, 0], ids=["2500", "zero"])
async def test_the_stream_starts_with_the_retry_field(retry: int) -> None:
    """With retry set (0 included) the body starts with "retry: <ms>" and an empty line: the
    client's reconnection time (WHATWG HTML §9.2.6) is set before any event."""
    first = b"retry: %d\n\n" % retry
    async with running(retry=retry) as srv:
        stream = await open_stream(srv.port)
        try:
            srv.hub.publish("x")
            await stream.events(1, f"GET /events with retry={retry}")
        finally:
            stream.close()
    assert stream.raw.startswith(first), called(
        f"GET /events with retry={retry} (the body's first bytes)", stream.raw[:30], first
    )
    assert stream.parser.retries == [retry], called(
        "the retry values a browser reads", stream.parser.retries, [retry]
    )


@pytest.mark.points(4)
async def test_reconnecting_with_last_event_id_resumes_without_gaps_or_repeats() -> None:
    """A client that reconnects with the Last-Event-ID it last saw gets exactly the events it
    missed, then the live ones (WHATWG HTML §9.2.4)."""
    async with running(replay=10) as srv:
        first = await open_stream(srv.port)
        for n in range(1, 4):
            srv.hub.publish(f"e{n}")
        await first.events(3, "the first connection")
        seen = first.parser.last_event_id
        first.close()
        await srv.gauge.reaches(0)
        srv.hub.publish("e4")
        srv.hub.publish("e5")
        again = await open_stream(srv.port, seen)
        try:
            await again.events(2, f"the reconnection with Last-Event-ID: {seen}")
            srv.hub.publish("e6")
            got = await again.events(3, f"the reconnection with Last-Event-ID: {seen}")
        finally:
            again.close()
    assert seen == "3", called("the last event id a browser holds after 3 events", seen, "3")
    want = [Dispatched("message", f"e{n}", str(n)) for n in (4, 5, 6)]
    assert got == want, called(
        f"reconnect with Last-Event-ID: {seen} after 2 missed events, then one publish", got, want
    )


@pytest.mark.points(3)
async def test_a_too_old_last_event_id_gets_a_reset_event() -> None:
    """A Last-Event-ID older than the replay buffer gets one "reset" event with empty data
    and the newest id, then the live events."""
    async with running(replay=2) as srv:
        for n in range(1, 6):
            srv.hub.publish(f"e{n}")
        stream = await open_stream(srv.port, "1")
        try:
            await stream.events(1, "GET /events with Last-Event-ID: 1")
            srv.hub.publish("e6")
            got = await stream.events(2, "GET /events with Last-Event-ID: 1")
        finally:
            stream.close()
    want = [Dispatched("reset", "", "5"), Dispatched("message", "e6", "6")]
    assert got == want, called(
        "GET /events with Last-Event-ID: 1 (ids 4 and 5 buffered), then one publish", got, want
    )


@pytest.mark.points(1)
async def test_last_event_id_field_name_is_case_insensitive_and_value_trimmed() -> None:
    """The Last-Event-ID field is found whatever the case of its name, with the SP and HTAB
    around its value trimmed."""
    async with running() as srv:
        for n in range(1, 4):
            srv.hub.publish(f"e{n}")
        request = b"GET /events?topic=x HTTP/1.1\r\nHost: spec\r\nlast-event-ID: \t 2 \t\r\n\r\n"
        stream = await open_stream(srv.port, request=request)
        try:
            got = await stream.events(1, "GET /events with last-event-ID: \\t 2 \\t")
        finally:
            stream.close()
    want = [Dispatched("message", "e3", "3")]
    assert got == want, called("GET /events?topic=x with 'last-event-ID: \\t 2 \\t'", got, want)


@pytest.mark.points(1)
async def test_last_event_id_is_trimmed_of_sp_and_htab_only() -> None:
    """A Last-Event-ID value is trimmed of SP and HTAB only (RFC 9110 §5.6.3): "2" followed
    by a no-break space (0xA0) is not one of the hub's ids and gets a reset."""
    async with running() as srv:
        for n in range(1, 4):
            srv.hub.publish(f"e{n}")
        request = b"GET /events HTTP/1.1\r\nHost: spec\r\nLast-Event-ID: 2\xa0\r\n\r\n"
        stream = await open_stream(srv.port, request=request)
        try:
            got = await stream.events(1, "GET /events with Last-Event-ID: 2\\xa0")
        finally:
            stream.close()
    want = [Dispatched("reset", "", "3")]
    assert got == want, called(
        "GET /events with 'Last-Event-ID: 2\\xa0' (str.strip() would trim the 0xA0)", got, want
    )


@pytest.mark.points(1)
async def test_an_http_1_0_request_opens_a_stream() -> None:
    """A request line ending in HTTP/1.0 opens a stream like one ending in HTTP/1.1."""
    async with running() as srv:
        request = b"GET /events HTTP/1.0\r\n\r\n"
        stream = await open_stream(srv.port, request=request)
        try:
            srv.hub.publish("hello")
            got = (stream.status, await stream.events(1, "GET /events HTTP/1.0"))
        finally:
            stream.close()
    want = (200, [Dispatched("message", "hello", "1")])
    assert got == want, called("GET /events HTTP/1.0, then one publish", got, want)


ERRORS = [
    (b"GET /other HTTP/1.1\r\nHost: s\r\n\r\n", 404, "other_path"),
    (b"GET /events/x HTTP/1.1\r\nHost: s\r\n\r\n", 404, "sub_path"),
    (b"POST /events HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\n\r\n", 405, "post"),
    (b"GET /events\r\nHost: s\r\n\r\n", 400, "no_version"),
    (b"GET /events HTTP/2.0\r\nHost: s\r\n\r\n", 400, "bad_version"),
    (b"GET  /events HTTP/1.1\r\nHost: s\r\n\r\n", 400, "two_spaces"),
    (b"GET /events HTTP/1.1\r\nHost s\r\n\r\n", 400, "field_without_colon"),
    (b"GET /events HTTP/1.1\r\nHost : s\r\n\r\n", 400, "space_before_colon"),
    (b"GET /events HTTP/1.1\r\nHost\t: s\r\n\r\n", 400, "tab_before_colon"),
    (b"GET /events HTTP/1.1\r\nHost: s\r\n x: y\r\n\r\n", 400, "space_before_name"),
    (b"GET /events HTTP/1.1\r\nHost: s\r\n: y\r\n\r\n", 400, "empty_field_name"),
    (b"GET events HTTP/1.1\r\nHost: s\r\n\r\n", 400, "target_without_slash"),
    (b"get /events HTTP/1.1\r\nHost: s\r\n\r\n", 405, "lower_case_method"),
]


async def _answer(port: int, request: bytes, what: str) -> tuple[int, dict[str, str], bytes]:
    stream = await open_stream(port, request=request, read_head=False)
    try:
        await stream.read_head(what)
        await stream.to_end(what)
    finally:
        stream.close()
    return stream.status, stream.headers, stream.raw


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("request_bytes", "status"), [(a, b) for a, b, _ in ERRORS], ids=[c for _, _, c in ERRORS]
)
async def test_requests_that_are_not_a_stream_get_an_error_and_the_close(
    request_bytes: bytes, status: int
) -> None:
    """Another path gets 404, another method 405 with Allow: GET, a malformed request line or
    header line 400; then the server closes the connection."""
    async with running() as srv:
        what = short(request_bytes, 60)
        got, headers, _ = await _answer(srv.port, request_bytes, what)
        assert got == status, called(f"sending {what}", got, status)
        if status == 405:
            allow = headers.get("allow", "")
            assert allow.replace(" ", "") == "GET", called(f"sending {what}: Allow", allow, "GET")
        assert srv.hub.subscribers == 0, called(
            f"hub.subscribers after {what}", srv.hub.subscribers, 0
        )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "request_bytes",
    [ERRORS[0][0], ERRORS[2][0], ERRORS[3][0]],
    ids=["404", "405", "400"],
)
async def test_error_responses_carry_content_length_zero_and_connection_close(
    request_bytes: bytes,
) -> None:
    """An error response carries Content-Length: 0 and Connection: close (and no body): the
    client then knows where it ends without waiting for the close."""
    async with running() as srv:
        what = short(request_bytes, 60)
        _, headers, raw = await _answer(srv.port, request_bytes, what)
    got = (headers.get("content-length"), headers.get("connection", "").lower(), raw)
    want = ("0", "close", b"")
    assert got == want, called(f"sending {what}: (Content-Length, Connection, body)", got, want)


# 32 MiB sent whole before reading: far more than the socket buffers between us.
REFUSED_UPLOADS = {
    "post": (WholeUpload("POST /events HTTP/1.1", "s"), 405),
    "chunked_elsewhere": (WholeUpload("POST /upload HTTP/1.1", "s", chunked=True), 404),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", list(REFUSED_UPLOADS))
async def test_a_client_still_sending_a_body_gets_the_error_answer(case: str) -> None:
    """A client still sending a request body when the server answers 404 or 405 gets to read
    that answer: the server half-closes and reads on before it closes (RFC 9112 §9.6).

    What urllib, http.client and requests do with a body: send it all, then read. A server that
    closes with the body unread makes the kernel answer the rest with a reset, and the client
    fails with 'Connection reset by peer' or 'Broken pipe' instead of reading the answer."""
    upload, status = REFUSED_UPLOADS[case]
    what = (
        f"{upload.request_line} with {upload.framing} and a 32 MiB body, sent whole before reading"
    )
    async with running() as srv:
        raw = await upload.answer(srv.port, what, status)
    status_line = raw.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 %d " % status), called(
        f"{what} (the status line the client read)", status_line, f"HTTP/1.1 {status} ..."
    )


def _head_of(size: int) -> bytes:
    start = b"GET /events HTTP/1.1\r\nHost: s\r\nX-Pad: "
    pad = size - len(start) - 4
    return start + b"p" * pad + b"\r\n\r\n"


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("size", "status"),
    [(MAX_HEAD - 1, 200), (MAX_HEAD, 200), (MAX_HEAD + 1, 431), (MAX_HEAD + 4, 431)],
    ids=["one_under", "at_the_limit", "one_over", "four_over"],
)
async def test_request_head_limit(size: int, status: int) -> None:
    """A request head of up to MAX_HEAD bytes (its empty line included) opens a stream; a
    longer one gets 431."""
    async with running() as srv:
        stream = await open_stream(srv.port, request=_head_of(size), read_head=False)
        try:
            await stream.read_head(f"a request head of {size} bytes")
        finally:
            stream.close()
        assert stream.status == status, called(
            f"a request head of {size} bytes (MAX_HEAD = {MAX_HEAD})", stream.status, status
        )


@pytest.mark.points(3)
async def test_a_client_that_leaves_ends_its_stream_and_subscription() -> None:
    """When a client closes its connection the server ends that stream and its subscription
    at once; the other streams carry on."""
    async with running() as srv:
        leaving, staying = await open_stream(srv.port), await open_stream(srv.port)
        try:
            await srv.gauge.reaches(2)
            leaving.close()
            await srv.gauge.reaches(1)
            state = (srv.server.streams, srv.hub.subscribers)
            assert state == (1, 1), called(
                "one of two clients closes: (server.streams, hub.subscribers)", state, (1, 1)
            )
            srv.hub.publish("still here")
            got = await staying.events(1, "the stream that stayed")
        finally:
            staying.close()
    want = [Dispatched("message", "still here", "1")]
    assert got == want, called("publish after the other client left", got, want)


@pytest.mark.points(3)
async def test_close_ends_every_stream_and_leaves_no_task() -> None:
    """close() ends every stream (the clients see the end), stops listening, closes every
    subscription and leaves no task of the server behind; a second close() is harmless."""
    async with running() as srv:
        streams = [await open_stream(srv.port) for _ in range(3)]
        await srv.gauge.reaches(3)
        with step("await server.close()"):
            await bounded(srv.server.close(), 5.0, "server.close()")
        for index, stream in enumerate(streams):
            await stream.to_end(f"stream #{index + 1} after server.close()")
            stream.close()
        state = (srv.server.streams, srv.hub.subscribers)
        assert state == (0, 0), called(
            "server.close(): (server.streams, hub.subscribers)", state, (0, 0)
        )
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not others, called("asyncio.all_tasks() after server.close()", others, "none")
        with step("a second server.close()"):
            await bounded(srv.server.close(), 5.0, "a second server.close()")
        with socket.socket() as probe:
            probe.settimeout(2.0)
            refused = probe.connect_ex((LOCALHOST, srv.port)) != 0
        assert refused, called(
            f"connecting to port {srv.port} after close()", "accepted", "refused"
        )


@pytest.mark.points(2)
async def test_close_ends_a_stream_whose_client_stopped_reading() -> None:
    """close() ends a stream whose client stopped reading at once, with megabytes still
    unsent: it aborts the connection instead of waiting to flush them."""
    async with running() as srv:
        stalled = await stalled_client(srv.port)
        try:
            await srv.gauge.reaches(1)
            srv.hub.publish("x" * (16 << 20))  # far more than the kernel buffers hold
            await receive_until(stalled, b"data: x", "the client that then stops reading")
            with step("await server.close() with a client that stopped reading"):
                await bounded(srv.server.close(), 5.0, "server.close()")
            state = (srv.server.streams, srv.hub.subscribers)
        finally:
            stalled.close()
    assert state == (0, 0), called(
        "server.close() with a stalled client: (server.streams, hub.subscribers)", state, (0, 0)
    )


async def _follow(port: int, total: int, every: int, label: str) -> tuple[list[str], int]:
    """Read until event `total`, reconnecting with the last id after every `every` events."""
    seen: list[str] = []
    last: str | None = None
    connections = 0
    while not seen or seen[-1] != str(total):
        stream = await open_stream(port, last)
        connections += 1
        remaining = total - (int(seen[-1]) if seen and seen[-1].isdigit() else 0)
        try:
            await stream.events(min(every, remaining), f"{label}, connection #{connections}", 10.0)
        finally:
            stream.close()
        seen += [event.last_event_id for event in stream.parser.events]
        last = stream.parser.last_event_id
    return seen, connections


@pytest.mark.points(3)
async def test_clients_that_keep_reconnecting_see_every_event_once() -> None:
    """Clients that drop their connection every few events and reconnect with Last-Event-ID,
    while events are published, see every event exactly once and in order."""
    total, clients = 40, 4
    async with running(replay=100) as srv:

        async def publisher() -> None:
            for n in range(1, total + 1):
                srv.hub.publish(f"e{n}")
                await asyncio.sleep(0)  # let the clients read and reconnect in between

        followers = [
            asyncio.create_task(_follow(srv.port, total, 3 + index, f"client #{index + 1}"))
            for index in range(clients)
        ]
        await srv.gauge.reaches(clients)
        await publisher()
        results = await bounded(
            asyncio.gather(*followers), 30.0, f"{clients} reconnecting clients to see event {total}"
        )
    want = [str(n) for n in range(1, total + 1)]
    for index, (seen, connections) in enumerate(results):
        assert seen == want, called(
            f"client #{index + 1} reconnecting every {3 + index} events "
            f"({connections} connections): the ids it saw",
            seen,
            want,
        )


# A lingering close must end: the server reads on after its answer, but not forever. The specs
# run on a loop whose clock they move (spectools.SkippingLoop), so the 5 s and 30 s bounds are
# checked in no real time; what happened is seen from the server's side of the connection.
LINGERING = b"POST /events HTTP/1.1\r\nHost: s\r\nContent-Length: 33554432\r\n\r\n"
LINGERING_WHAT = "POST /events with Content-Length: 33554432"


def _held(*moves: tuple[float, float | None]) -> tuple[bool, ...]:
    return linger_holds(running, LINGERING, LINGERING_WHAT, *moves)


def test_a_lingering_close_ends_5_s_after_the_last_byte() -> None:
    """A client answered with an error that sends nothing more is dropped once 5 s pass without
    a byte (nginx's lingering_timeout): the server half-closes and reads on, but not forever.

    The clock is the event loop's: the spec moves it 2 s (the server must still be reading),
    then 4 s more (6 s without a byte: the server must have closed)."""
    got = _held((2, None), (4, None))
    want = (True, False)
    assert got == want, called(
        f"{LINGERING_WHAT}, answered 405; then the client sends nothing and keeps its end open "
        "(does the server still hold the connection after 2 s, after 6 s of silence?)",
        got,
        want,
    )


def test_a_lingering_close_ends_30_s_after_it_began() -> None:
    """A client answered with an error that keeps sending its body is dropped 30 s after the
    answer at most (nginx's lingering_time), though it never pauses 5 s: a trickle cannot hold
    a connection.

    The clock is the event loop's: the spec moves it 2 s at a time, sending a byte of body
    after each step; the server must still be reading after 20 s and have closed by 32 s."""
    got = _held((20, 2), (12, 2))
    want = (True, False)
    assert got == want, called(
        f"{LINGERING_WHAT}, answered 405; then the client sends a byte every 2 s "
        "(does the server still hold the connection after 20 s, after 32 s?)",
        got,
        want,
    )
