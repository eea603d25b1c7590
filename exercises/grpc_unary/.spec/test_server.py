"""Hidden specs for GrpcServer: a real grpcio client calls it, and a raw h2 client looks at
every frame it sends (grpc/grpc doc/PROTOCOL-HTTP2.md, doc/statuscodes.md).

The grpcio channel uses generic ``unary_unary`` / ``unary_stream`` callables with protobuf
message classes built at run time, so no code generation is involved.
"""

from __future__ import annotations

import asyncio

import grpc
import h2.errors
import h2.events
import pytest
from _helpers import (
    WAIT,
    Exchange,
    Probe,
    RawClient,
    call,
    grpc_headers,
    prefixed,
    raw_call,
    raw_client,
    replies,
    reply_from,
    request_to_bytes,
    running,
    service,
)
from grpc_unary import GrpcServer

from grader.spectools import (
    CountingLoop,
    FakeClock,
    FakeSleep,
    bounded,
    called,
    reset_mid_request,
    short,
)

HELLO = "/kata.Greeter/SayHello"
WAIT_PATH = "/kata.Greeter/Wait"


def body(**request) -> bytes:
    return prefixed(request_to_bytes(request))


# --- with a real grpcio client --------------------------------------------------------------


@pytest.mark.points(4)
async def test_a_grpcio_client_gets_its_unary_reply():
    """A grpcio client's unary call reaches the handler with the decoded request and gets the
    handler's reply back."""
    async with running() as (port, probe):
        out = await call(port, HELLO, {"name": "Ada", "count": 3})
    want = [{"message": "Hello, Ada!", "index": 3}]
    assert out.code == grpc.StatusCode.OK and out.replies == want, called(
        "SayHello(name='Ada', count=3) with grpcio", out.describe(), f"OK with {want}"
    )
    assert probe.requests == [{"name": "Ada", "count": 3}], called(
        "SayHello(name='Ada', count=3); the handler's request", probe.requests, "that request"
    )


@pytest.mark.points(2)
async def test_a_default_request_arrives_as_an_empty_message():
    """A request with every field at its default is an empty message: the handler still gets
    it, with the defaults, and an empty reply goes back fine."""
    async with running() as (port, probe):
        out = await call(port, HELLO, {})
    want = [{"message": "Hello, !", "index": 0}]
    assert out.code == grpc.StatusCode.OK and out.replies == want, called(
        "SayHello() with grpcio", out.describe(), f"OK with {want}"
    )


STATUSES = {
    "INVALID_ARGUMENT, plain": (3, "name must not be empty"),
    "NOT_FOUND, UTF-8 and %": (5, "no user “ünïcødé” (100% sure)"),
    "PERMISSION_DENIED, newline": (7, "line one\nline two"),
    "FAILED_PRECONDITION, no message": (9, ""),
    "UNAUTHENTICATED": (16, "token expired"),
    "ABORTED, a literal %41": (10, "code %41 is not an A"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("code, message", list(STATUSES.values()), ids=list(STATUSES))
async def test_rpc_error_reaches_the_client_with_its_details(code, message):
    """RpcError(code, message) from a handler reaches the client as that status, the message
    intact through grpc-message's percent-encoding (PROTOCOL-HTTP2.md, Responses)."""
    async with running() as (port, _):
        out = await call(port, "/kata.Greeter/Fail", {"name": message, "count": code})
    want = grpc.StatusCode[StatusName[code]]
    assert out.code == want and (out.details or "") == message, called(
        f"Fail raising RpcError({StatusName[code]}, {message!r})",
        out.describe(),
        f"{want.name} with details {message!r}",
    )


StatusName = {3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 7: "PERMISSION_DENIED"}
StatusName |= {9: "FAILED_PRECONDITION", 10: "ABORTED", 16: "UNAUTHENTICATED"}


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "path",
    ["/kata.Greeter/NoSuchMethod", "/kata.Nobody/SayHello", "/kata.greeter/sayhello"],
    ids=["unknown method", "unknown service", "wrong case"],
)
async def test_an_unknown_method_is_unimplemented(path):
    """A call to a path the server does not serve ends with UNIMPLEMENTED; paths are
    case-sensitive (doc/statuscodes.md; PROTOCOL-HTTP2.md, Path)."""
    async with running() as (port, _):
        out = await call(port, path, {"name": "x"})
    assert out.code == grpc.StatusCode.UNIMPLEMENTED, called(
        f"{path} with grpcio", out.describe(), "UNIMPLEMENTED"
    )


@pytest.mark.points(2)
async def test_a_crashing_handler_is_unknown_and_leaks_nothing():
    """A handler that raises something other than RpcError ends the call with UNKNOWN, and the
    exception's text does not reach the client (doc/statuscodes.md)."""
    async with running() as (port, _):
        out = await call(port, "/kata.Greeter/Crash", {"name": "x"})
    ok = out.code == grpc.StatusCode.UNKNOWN and "secret" not in (out.details or "")
    assert ok, called(
        "Crash (raises KeyError('a secret internal detail'))",
        out.describe(),
        "UNKNOWN, details without the exception's text",
    )


@pytest.mark.points(3)
@pytest.mark.parametrize("count", [0, 1, 5], ids=["none", "one", "five"])
async def test_server_streaming_sends_every_reply_in_order(count):
    """A server-streaming method sends each yielded reply, in order, then status OK."""
    async with running() as (port, _):
        out = await call(
            port, "/kata.Greeter/CountUp", {"name": "ab", "count": count}, streaming=True
        )
    want = [{"message": "ab" * (i + 1), "index": i} for i in range(count)]
    assert out.code == grpc.StatusCode.OK and out.replies == want, called(
        f"CountUp(name='ab', count={count}) with grpcio", out.describe(), f"OK with {short(want)}"
    )


@pytest.mark.points(2)
async def test_a_stream_can_fail_after_its_first_reply():
    """A streaming handler that raises RpcError after a reply: the client gets the reply, then
    the status, in the trailers."""
    async with running() as (port, _):
        out = await call(port, "/kata.Greeter/StreamThenFail", {}, streaming=True)
    ok = out.code == grpc.StatusCode.ABORTED and out.details == "stopped after one"
    ok = ok and out.replies == [{"message": "first", "index": 0}]
    assert ok, called(
        "StreamThenFail with grpcio", out.describe(), "one reply, then ABORTED 'stopped after one'"
    )


@pytest.mark.points(3)
async def test_a_request_larger_than_the_flow_control_window_arrives():
    """A 1 MiB request arrives whole: the server returns flow-control credit as it reads
    (RFC 9113 §5.2), or the client stalls after 64 KiB."""
    size = 1 << 20
    async with running() as (port, _):
        out = await call(port, "/kata.Greeter/EchoSize", {"name": "x" * size}, timeout=10)
    want = [{"message": str(size), "index": size}]
    assert out.code == grpc.StatusCode.OK and out.replies == want, called(
        "EchoSize with a 1 MiB name", out.describe(), f"OK with {want}"
    )


@pytest.mark.points(3)
async def test_a_deadline_the_handler_overruns_cancels_it():
    """When a grpcio client's deadline passes, the call ends with DEADLINE_EXCEEDED and the
    handler still running is cancelled (PROTOCOL-HTTP2.md, Client Cancellation)."""
    # A deadline that passes before the request even reaches the handler (a very busy
    # machine) proves nothing about cancellation: then the call is repeated with more time.
    for timeout in (0.5, 2.0, 5.0):
        async with running() as (port, probe):
            out = await call(port, WAIT_PATH, {"name": "x"}, timeout=timeout)
            if probe.started.is_set():
                await bounded(
                    probe.was_cancelled.wait(), WAIT, "the overrunning handler to be cancelled"
                )
                break
    assert out.code == grpc.StatusCode.DEADLINE_EXCEEDED, called(
        f"Wait (never returns) with a {timeout} s deadline", out.describe(), "DEADLINE_EXCEEDED"
    )
    assert probe.started.is_set(), called(
        f"Wait with a {timeout} s deadline", "the handler never started", "a started handler"
    )


@pytest.mark.points(1)
async def test_custom_metadata_reaches_the_handler():
    """Custom request metadata reaches the handler in context.metadata; pseudo-headers and
    grpc-* headers do not."""
    async with running() as (port, probe):
        out = await call(port, HELLO, {"name": "m"}, metadata=[("x-trace-id", "abc-123")])
    assert out.code == grpc.StatusCode.OK, called("SayHello with metadata", out.describe(), "OK")
    metadata = probe.contexts[0].metadata
    ok = metadata.get("x-trace-id") == "abc-123"
    ok = ok and not any(name.startswith((":", "grpc-")) for name in metadata)
    assert ok, called(
        "SayHello with metadata x-trace-id: abc-123; context.metadata",
        metadata,
        "x-trace-id: abc-123 and no :pseudo or grpc-* names",
    )


# --- frame by frame, with a raw HTTP/2 client -----------------------------------------------


@pytest.mark.points(3)
async def test_a_reply_is_headers_then_data_then_trailers():
    """A unary reply is HEADERS (:status 200, content-type application/grpc), DATA with one
    length-prefixed message, then trailers with grpc-status 0 and END_STREAM
    (PROTOCOL-HTTP2.md, Responses: status is sent in trailers even when OK)."""
    async with running() as (port, _):
        ex = await raw_call(port, HELLO, body(name="Ada", count=1), "SayHello")
    blocks = ex.headers
    ok = len(blocks) == 2 and blocks[0].get(":status") == "200"
    ok = ok and blocks[0].get("content-type", "").startswith("application/grpc")
    ok = ok and "grpc-status" not in blocks[0] and blocks[1].get("grpc-status") == "0"
    data = ex.body
    ok = ok and data[:1] == b"\x00" and int.from_bytes(data[1:5], "big") == len(data) - 5
    ok = ok and reply_from(data[5:]) == {"message": "Hello, Ada!", "index": 1}
    assert ok, called("SayHello over raw HTTP/2", ex.frames(), "HEADERS, DATA, trailers")


@pytest.mark.points(3)
async def test_an_immediate_error_is_trailers_only():
    """An error before any reply is one HEADERS frame with END_STREAM holding :status 200,
    content-type and grpc-status (PROTOCOL-HTTP2.md, Trailers-Only)."""
    async with running() as (port, _):
        ex = await raw_call(port, "/kata.Greeter/Nope", body(name="x"), "an unknown method")
    blocks = ex.headers
    ok = len(blocks) == 1 and blocks[0].get(":status") == "200"
    ok = ok and blocks[0].get("content-type", "").startswith("application/grpc")
    ok = ok and blocks[0].get("grpc-status") == "12" and ex.body == b""
    assert ok, called("/kata.Greeter/Nope over raw HTTP/2", ex.frames(), "one HEADERS frame")


@pytest.mark.points(2)
async def test_grpc_message_is_percent_encoded_on_the_wire():
    """The grpc-message trailer carries the status message UTF-8 and percent-encoded; an empty
    message sends no grpc-message, whose grammar needs one character at least
    (PROTOCOL-HTTP2.md, Status-Message)."""
    message = "ünï 100%\tdone"
    want = "%C3%BCn%C3%AF 100%25%09done"
    async with running() as (port, _):
        ex = await raw_call(port, "/kata.Greeter/Fail", body(name=message, count=5), "Fail")
        plain = await raw_call(port, "/kata.Greeter/Fail", body(count=5), "Fail")
    got = [block.get("grpc-message") for block in ex.headers if "grpc-status" in block]
    assert got == [want], called(
        f"Fail raising RpcError(NOT_FOUND, {message!r})", ex.frames(), want
    )
    got = [block.get("grpc-message") for block in plain.headers if "grpc-status" in block]
    assert got == [None], called(
        "Fail raising RpcError(NOT_FOUND, '')", plain.frames(), "no grpc-message"
    )


@pytest.mark.points(2)
async def test_a_request_cut_into_one_byte_frames_is_read():
    """A request whose message arrives one byte per DATA frame is served like any other
    (PROTOCOL-HTTP2.md, Data Frames)."""
    data = body(name="split", count=7)
    async with running() as (port, _), raw_client(port) as client:
        stream_id = client.start(grpc_headers(HELLO))
        for i in range(len(data)):
            client.send(stream_id, data[i : i + 1])
        client.end(stream_id)
        ex = await client.finish(stream_id, "SayHello sent byte by byte")
    ok = ex.status == "0" and reply_from(ex.body[5:]) == {"message": "Hello, split!", "index": 7}
    assert ok, called("SayHello with one DATA frame per byte", ex.frames(), "grpc-status 0")


@pytest.mark.points(2)
async def test_a_non_grpc_content_type_gets_415():
    """A request whose content-type does not begin with application/grpc gets HTTP 415
    (PROTOCOL-HTTP2.md, Requests: servers SHOULD respond with 415)."""
    headers = [
        (k, "application/json" if k == "content-type" else v) for k, v in grpc_headers(HELLO)
    ]
    async with running() as (port, _), raw_client(port) as client:
        stream_id = client.start(headers)
        client.send(stream_id, b"{}", end_stream=True)
        ex = await client.finish(stream_id, "a JSON request")
    got = ex.headers[0].get(":status") if ex.headers else None
    assert got == "415", called("SayHello with content-type: application/json", ex.frames(), 415)


@pytest.mark.points(1)
async def test_a_request_without_content_type_gets_415():
    """A request with no content-type at all gets HTTP 415 too: it does not begin with
    application/grpc (PROTOCOL-HTTP2.md, Requests)."""
    headers = [(k, v) for k, v in grpc_headers(HELLO) if k != "content-type"]
    async with running() as (port, _), raw_client(port) as client:
        stream_id = client.start(headers)
        client.send(stream_id, prefixed(b"\x0a\x01a"), end_stream=True)
        ex = await client.finish(stream_id, "a request without content-type")
    got = ex.headers[0].get(":status") if ex.headers else None
    assert got == "415", called("SayHello without content-type", ex.frames(), 415)


CARDINALITY = {
    "no message": b"",
    "two messages": prefixed(b"\x0a\x01a") + prefixed(b"\x0a\x01b"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("data", list(CARDINALITY.values()), ids=list(CARDINALITY))
async def test_a_unary_call_needs_exactly_one_request(data):
    """A unary call with zero or two request messages ends with UNIMPLEMENTED
    (doc/statuscodes.md: request cardinality violation)."""
    async with running() as (port, probe):
        ex = await raw_call(port, HELLO, data, "a call with the wrong number of messages")
    ok = ex.status == "12" and probe.requests == []
    assert ok, called(
        f"SayHello with body {data!r}", ex.frames(), "grpc-status 12, no handler call"
    )


PROBLEMS = {
    "an unparsable request": (prefixed(b"\x0a\x05ab"), {}, "13"),
    "a request ending inside a message": (b"\x00\x00\x00\x00\x09\x0a", {}, "13"),
    "a compressed flag": (prefixed(b"\x0a\x01a", flag=1), {}, "13"),
    "a malformed grpc-timeout": (body(name="x"), {"grpc_timeout": "1.5S"}, "13"),
    "gzip compression": (body(name="x"), {"grpc_encoding": "gzip"}, "12"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("data, headers, status", list(PROBLEMS.values()), ids=list(PROBLEMS))
async def test_a_broken_request_gets_the_status_grpc_prescribes(data, headers, status):
    """Unparsable or truncated messages, an unexpected compressed flag or a malformed timeout
    are INTERNAL; an unsupported grpc-encoding is UNIMPLEMENTED (doc/statuscodes.md)."""
    async with running() as (port, probe):
        ex = await raw_call(port, HELLO, data, "a broken request", **headers)
    ok = ex.status == status and probe.requests == []
    assert ok, called(
        f"SayHello with body {short(data)} and {headers}", ex.frames(), f"grpc-status {status}"
    )


@pytest.mark.points(1)
async def test_an_unsupported_encoding_is_answered_with_the_accepted_ones():
    """UNIMPLEMENTED for an unsupported grpc-encoding carries a grpc-accept-encoding that names
    what the server takes and not the encoding it refused (grpc/grpc doc/compression.md)."""
    async with running() as (port, _):
        ex = await raw_call(port, HELLO, body(name="x"), "a gzip request", grpc_encoding="gzip")
    accepted = [
        block["grpc-accept-encoding"] for block in ex.headers if "grpc-accept-encoding" in block
    ]
    ok = ex.status == "12" and len(accepted) == 1 and "identity" in accepted[0]
    ok = ok and "gzip" not in accepted[0]
    assert ok, called("SayHello with grpc-encoding: gzip", ex.frames(), "grpc-accept-encoding")


@pytest.mark.points(1)
async def test_identity_encoding_is_served():
    """grpc-encoding: identity (no compression) is served like a request without grpc-encoding
    (grpc/grpc doc/compression.md)."""
    async with running() as (port, _):
        ex = await raw_call(
            port, HELLO, body(name="x"), "an identity request", grpc_encoding="identity"
        )
    assert ex.status == "0", called("SayHello with grpc-encoding: identity", ex.frames(), "OK")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "size, status", [(999, "0"), (1000, "0"), (1001, "8")], ids=["limit-1", "limit", "limit+1"]
)
async def test_the_receive_limit_holds_at_the_limit(size, status):
    """A request message of max_receive_message_length bytes is served; one byte more is
    RESOURCE_EXHAUSTED (doc/statuscodes.md)."""
    name_length = size - 3  # tag, a two-byte length, the name
    message = request_to_bytes({"name": "n" * name_length})
    assert len(message) == size, f"spec self-check: a {len(message)}-byte request, not {size}"
    async with running(max_receive_message_length=1000) as (port, _):
        ex = await raw_call(port, "/kata.Greeter/EchoSize", prefixed(message), f"{size} bytes")
    assert ex.status == status, called(
        f"EchoSize with a {size}-byte message, limit 1000", ex.frames(), f"grpc-status {status}"
    )


@pytest.mark.points(2)
async def test_an_oversized_request_is_refused_before_it_is_sent():
    """A prefix declaring more than the limit is answered with RESOURCE_EXHAUSTED at once,
    before the client ends the stream."""
    async with running(max_receive_message_length=1000) as (port, _), raw_client(port) as client:
        stream_id = client.start(grpc_headers(HELLO))
        client.send(stream_id, b"\x00" + (10**6).to_bytes(4, "big") + b"abc")
        ex = await client.finish(stream_id, "a call announcing 1 MB (stream still open)")
    assert ex.status == "8", called("a prefix declaring 1,000,000 bytes", ex.frames(), "status 8")


@pytest.mark.points(1)
async def test_an_early_answer_resets_the_unfinished_request():
    """When the server answers before the client has ended its request, RST_STREAM(NO_ERROR)
    follows the trailers so the client stops sending (PROTOCOL-HTTP2.md, Early Server
    Closure; RFC 9113 §8.1)."""
    async with running() as (port, _), raw_client(port) as client:
        stream_id = client.start(grpc_headers("/kata.Greeter/Nope"))
        client.send(stream_id, body(name="x"))  # and no END_STREAM
        ex = await client.finish(stream_id, "an unknown method whose request is still open")
        events = client.streams[stream_id]
        await client.wait_for(
            lambda: any(isinstance(e, h2.events.StreamReset) for e in events),
            "RST_STREAM after the trailers",
            timeout=5.0,
        )
    codes = [e.error_code for e in events if isinstance(e, h2.events.StreamReset)]
    ok = ex.status == "12" and codes == [h2.errors.ErrorCodes.NO_ERROR]
    assert ok, called("an unknown method, request not ended", ex.frames(), "RST_STREAM(NO_ERROR)")


@pytest.mark.points(1)
async def test_a_content_type_with_a_suffix_is_grpc():
    """content-type application/grpc+proto is a gRPC request like application/grpc
    (PROTOCOL-HTTP2.md, Requests: Content-Type)."""
    headers = grpc_headers(HELLO)
    headers = [(k, "application/grpc+proto" if k == "content-type" else v) for k, v in headers]
    async with running() as (port, _), raw_client(port) as client:
        stream_id = client.start(headers)
        client.send(stream_id, body(name="plus"), end_stream=True)
        ex = await client.finish(stream_id, "a call with content-type application/grpc+proto")
    ok = ex.status == "0" and replies(ex.body) == [{"message": "Hello, plus!", "index": 0}]
    assert ok, called("SayHello with application/grpc+proto", ex.frames(), "grpc-status 0")


@pytest.mark.points(3)
async def test_replies_wait_for_the_clients_flow_control_window():
    """The server sends no more DATA than the client's window allows, and the rest once the
    client returns credit (RFC 9113 §5.2, §6.9)."""
    request = {"name": "x" * 10000, "count": 12}  # 12 replies, 780 KB in all
    want = [{"message": "x" * 10000 * (i + 1), "index": i} for i in range(12)]
    async with running() as (port, _), raw_client(port) as client:
        client.auto_ack = False
        stream_id = client.start(grpc_headers("/kata.Greeter/CountUp"))
        client.send(stream_id, body(**request), end_stream=True)

        def received() -> int:
            return len(Exchange(client.streams[stream_id]).body)

        await client.wait_for(
            lambda: received() >= 65535 or client.ended[stream_id].is_set(),
            "the server to fill the client's 65,535-byte window",
        )
        early = Exchange(list(client.streams[stream_id]))
        assert received() == 65535 and early.status is None, called(
            "CountUp sending 780 KB to a client that returns no credit",
            early.frames()[:300],
            "exactly 65535 bytes of DATA, then a pause",
        )
        client.auto_ack = True
        client.conn.increment_flow_control_window(2**20)
        client.conn.increment_flow_control_window(2**20, stream_id)
        client.flush()
        ex = await client.finish(stream_id, "the rest of the replies")
    got = replies(ex.body)
    ok = ex.status == "0" and got == want
    assert ok, called(
        "CountUp after the client opened its window",
        f"{ex.frames()[:200]} with {len(got)} replies",
        "grpc-status 0 and all 12 replies",
    )


async def _wakeups_over(loop: CountingLoop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


@pytest.mark.points(2)
def test_a_reply_blocked_on_the_window_costs_no_wakeups():
    """A reply blocked on the client's flow-control window waits for WINDOW_UPDATE without
    polling: the event loop stays (almost) idle meanwhile."""
    loop = CountingLoop()
    window = 0.2

    async def scenario() -> tuple[int, int, str | None]:
        async with running() as (port, _), raw_client(port) as client:
            idle = await _wakeups_over(loop, window)
            client.auto_ack = False
            stream_id = client.start(grpc_headers("/kata.Greeter/CountUp"))
            client.send(stream_id, body(name="x" * 10000, count=12), end_stream=True)
            await client.wait_for(
                lambda: (
                    len(Exchange(client.streams[stream_id]).body) >= 65535
                    or client.ended[stream_id].is_set()
                ),
                "the server to fill the client's 65,535-byte window",
            )
            blocked = await _wakeups_over(loop, window)
            client.auto_ack = True
            client.conn.increment_flow_control_window(2**20)
            client.conn.increment_flow_control_window(2**20, stream_id)
            client.flush()
            ex = await client.finish(stream_id, "the rest of the replies")
        return idle, blocked, ex.status

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, blocked, status = runner.run(scenario())
    limit = 2 * idle + 20
    assert blocked <= limit, called(
        f"event-loop wake-ups over {window} s while a reply waits for the client's window "
        f"(with nothing to do: {idle})",
        blocked,
        f"at most {limit}",
    )
    assert status == "0", called("CountUp once the window opened", status, "grpc-status 0")


# --- deadlines on an injected clock ----------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "timeout, seconds", [("1500m", 1.5), ("2S", 2.0), ("3M", 180.0)], ids=["1500m", "2S", "3M"]
)
async def test_the_deadline_comes_from_grpc_timeout(timeout, seconds):
    """grpc-timeout sets the call's deadline: context.deadline is the clock's time plus the
    timeout and context.time_remaining() counts down on the injected clock."""
    clock = FakeClock(500.0)
    async with running(clock=clock, sleep=FakeSleep()) as (port, probe):
        ex = await raw_call(port, HELLO, body(name="t"), "SayHello", grpc_timeout=timeout)
    assert ex.status == "0", called(f"SayHello with grpc-timeout {timeout}", ex.frames(), "OK")
    context = probe.contexts[0]
    got = (context.deadline, context.time_remaining())
    assert got == pytest.approx((500.0 + seconds, seconds)), called(
        f"SayHello with grpc-timeout {timeout} at clock 500; (deadline, time_remaining())",
        got,
        (500.0 + seconds, seconds),
    )
    clock.advance(seconds / 4)
    left = context.time_remaining()
    assert left == pytest.approx(seconds * 3 / 4), called(
        f"context.time_remaining() after the clock moved {seconds / 4} s", left, seconds * 3 / 4
    )


@pytest.mark.points(1)
async def test_time_remaining_stops_at_zero():
    """context.time_remaining() never goes below 0: once the deadline has passed it is 0."""
    clock = FakeClock(500.0)
    async with running(clock=clock, sleep=FakeSleep()) as (port, probe):
        ex = await raw_call(port, HELLO, body(name="t"), "SayHello", grpc_timeout="2S")
    assert ex.status == "0", called("SayHello with grpc-timeout 2S", ex.frames(), "OK")
    context = probe.contexts[0]
    clock.advance(5.0)
    left = context.time_remaining()
    assert left == 0, called(
        "context.time_remaining() 3 s past the deadline of a call with grpc-timeout 2S", left, 0.0
    )


@pytest.mark.points(1)
async def test_without_grpc_timeout_there_is_no_deadline():
    """Without grpc-timeout the call has no deadline: context.deadline and time_remaining() are
    None and the server sets no timer (PROTOCOL-HTTP2.md: assume an infinite timeout)."""
    sleep = FakeSleep()
    async with running(sleep=sleep) as (port, probe):
        ex = await raw_call(port, HELLO, body(name="t"), "SayHello")
    context = probe.contexts[0]
    got = (ex.status, context.deadline, context.time_remaining(), sleep.delays)
    assert got == ("0", None, None, []), called(
        "SayHello without grpc-timeout; (status, deadline, time_remaining(), sleeps)",
        got,
        ("0", None, None, []),
    )


@pytest.mark.points(3)
async def test_the_server_ends_an_overrunning_call_with_deadline_exceeded():
    """When grpc-timeout runs out before the handler returns, the server cancels the handler
    and answers DEADLINE_EXCEEDED itself (grpc-status 4) (doc/statuscodes.md)."""
    sleep = FakeSleep()
    async with running(sleep=sleep) as (port, probe), raw_client(port) as client:
        stream_id = client.start(grpc_headers(WAIT_PATH, grpc_timeout="250m"))
        client.send(stream_id, body(name="w"), end_stream=True)
        await bounded(probe.started.wait(), WAIT, "the Wait handler to start")
        await bounded(sleep.asked.wait(), WAIT, "the server to wait out its deadline")
        assert sleep.delays == [pytest.approx(0.25)], called(
            "Wait with grpc-timeout 250m; the server's sleep()", sleep.delays, [0.25]
        )
        sleep.fire()
        ex = await client.finish(stream_id, "Wait after its deadline")
        await bounded(probe.was_cancelled.wait(), WAIT, "the overrunning handler to be cancelled")
    assert ex.status == "4", called("Wait past its 250 ms deadline", ex.frames(), "grpc-status 4")


@pytest.mark.points(2)
async def test_a_deadline_in_mid_stream_ends_with_trailers():
    """A streaming call whose deadline passes after its first reply ends with that reply, then
    trailers with grpc-status 4."""
    sleep = FakeSleep()
    path = "/kata.Greeter/StreamThenWait"
    async with running(sleep=sleep) as (port, probe), raw_client(port) as client:
        stream_id = client.start(grpc_headers(path, grpc_timeout="1S"))
        client.send(stream_id, body(), end_stream=True)
        await bounded(probe.started.wait(), WAIT, "the first reply")
        await bounded(sleep.asked.wait(), WAIT, "the server to wait out its deadline")
        sleep.fire()
        ex = await client.finish(stream_id, "StreamThenWait after its deadline")
    blocks = ex.headers
    ok = len(blocks) == 2 and blocks[0].get(":status") == "200" and ex.status == "4"
    ok = ok and reply_from(ex.body[5:]) == {"message": "first", "index": 0}
    assert ok, called("StreamThenWait past its deadline", ex.frames(), "HEADERS, DATA, status 4")


# --- cancellation and cleanup ----------------------------------------------------------------


@pytest.mark.points(2)
async def test_a_client_reset_cancels_the_handler():
    """RST_STREAM(CANCEL) from the client cancels the running handler (PROTOCOL-HTTP2.md,
    Client Cancellation)."""
    async with running() as (port, probe), raw_client(port) as client:
        stream_id = client.start(grpc_headers(WAIT_PATH))
        client.send(stream_id, body(name="w"), end_stream=True)
        await bounded(probe.started.wait(), WAIT, "the Wait handler to start")
        client.conn.reset_stream(stream_id, 8)
        client.flush()
        await bounded(
            probe.was_cancelled.wait(), WAIT, "the handler to be cancelled after RST_STREAM"
        )


@pytest.mark.points(2)
async def test_a_closed_connection_cancels_its_handlers():
    """When the client's connection closes, the handlers of its calls are cancelled."""
    async with running() as (port, probe):
        async with raw_client(port) as client:
            stream_id = client.start(grpc_headers(WAIT_PATH))
            client.send(stream_id, body(name="w"), end_stream=True)
            await bounded(probe.started.wait(), WAIT, "the Wait handler to start")
        await bounded(probe.was_cancelled.wait(), WAIT, "the handler to be cancelled on close")


@pytest.mark.points(2)
async def test_calls_on_one_connection_run_concurrently():
    """Two calls on one connection run at the same time: a slow handler does not hold up the
    connection."""
    async with running() as (port, probe), raw_client(port) as client:
        first = client.start(grpc_headers(WAIT_PATH))
        client.send(first, body(name="w"), end_stream=True)
        await bounded(probe.started.wait(), WAIT, "the Wait handler to start")
        second = client.start(grpc_headers(HELLO))
        client.send(second, body(name="quick"), end_stream=True)
        ex = await client.finish(second, "SayHello while Wait is still running")
        assert ex.status == "0", called("SayHello while Wait runs", ex.frames(), "grpc-status 0")
        probe.release.set()
        ex = await client.finish(first, "Wait once released")
    assert ex.status == "0", called("Wait once released", ex.frames(), "grpc-status 0")


@pytest.mark.points(1)
async def test_a_client_reset_mid_call_leaves_the_event_loop_nothing_to_report():
    """When a client resets its connection while a call waits in its handler,
    handle_connection() ends and leaves no error for the event loop to report: the reset is
    not an error of the server.

    handle_connection() is served by asyncio.start_server itself here, so an exception it lets
    out is reported by the loop ("Unhandled exception in client_connected_cb"), as is a call
    task that failed unseen or a transport nobody closed.
    """
    probe = Probe()
    server = GrpcServer(service(probe))

    async def begin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = RawClient(reader, writer)
        client.conn.initiate_connection()
        client.flush()
        stream_id = client.start(grpc_headers(WAIT_PATH))
        client.send(stream_id, body(), end_stream=True)
        await bounded(probe.started.wait(), WAIT, "the call to reach its handler")

    reports = await reset_mid_request(
        server.handle_connection,
        begin,
        "handle_connection() to return after the reset",
        WAIT,
    )
    assert not reports, reports.message(
        "handle_connection() with a call in its handler when the client resets the connection",
        "a reset (ConnectionResetError) ends the connection quietly: catch ConnectionError "
        "around the reads and writes, cancel and await the connection's call tasks",
    )
