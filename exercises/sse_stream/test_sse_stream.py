"""Examples of what the event stream must do. Run: nox -s try -- sse_stream"""

from __future__ import annotations

import asyncio

try:
    from sse_stream import Event, Hub, SSEServer, encode
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Event, Hub, SSEServer, encode from sse_stream.py"
    ) from err


def test_encode_one_event() -> None:
    got = encode(Event("hello\nworld", event="greeting", id="7"))
    want = b"id: 7\nevent: greeting\ndata: hello\ndata: world\n\n"
    assert got == want, f"encode(...): {got!r}; expected {want!r}"


def test_resume_from_last_event_id() -> None:
    hub = Hub(replay=3)
    for text in ["a", "b", "c", "d"]:
        hub.publish(text)  # ids "1" to "4"; the buffer keeps 2, 3, 4
    missed = [event.data for event in hub.subscribe("2").backlog]
    assert missed == ["c", "d"], f"subscribe('2').backlog: {missed}; expected ['c', 'd']"
    reset = hub.subscribe("0").backlog
    want = [Event("", event="reset", id="4")]
    assert reset == want, f"subscribe('0').backlog (too old): {reset}; expected {want}"


async def test_a_stream_over_http() -> None:
    hub = Hub()
    server = SSEServer(hub)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: example\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert head.startswith(b"HTTP/1.1 200 "), f"status line: {head[:40]!r}; expected 200"
        assert b"text/event-stream" in head.lower(), f"head: {head!r}; no text/event-stream"
        hub.publish("first")
        body = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5.0)
        assert body == b"id: 1\ndata: first\n\n", f"the first event: {body!r}"
        writer.close()
    finally:
        await server.close()
