"""Hidden specs for HttpServer over real sockets on 127.0.0.1: real clients (http.client, httpx),
pipelining, limits and smuggling defences, keep-alive and closing, the request deadline.

Responses are read with h11 as the client; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket

import h11
import httpx
import pytest
from _helpers import (
    Client,
    Recorder,
    exchange,
    replies,
    request_bytes,
    running,
    what,
)
from http1_server import HttpServer, Response

from grader.spectools import LOCALHOST, CountingLoop, bounded, called, loop_reports, short, step


def blocking_session(port: int) -> tuple[list[int], list[tuple[int, bytes, str | None]]]:
    """Four requests on one http.client.HTTPConnection; the local port used for each."""
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=3)
    ports, results = [], []
    try:
        for method, path, body in [
            ("GET", "/hello", None),
            ("POST", "/echo", b"payload one"),
            ("PUT", "/echo?x=1", b""),
            ("GET", "/pieces", None),
        ]:
            conn.request(method, path, body=body, headers={"X-Tag": f"{method} {path}"})
            assert conn.sock is not None, f"http.client has no socket after sending {method} {path}"
            ports.append(conn.sock.getsockname()[1])
            response = conn.getresponse()
            results.append((response.status, response.read(), response.getheader("Connection")))
    finally:
        conn.close()
    return ports, results


@pytest.mark.points(3)
async def test_http_client_keeps_one_connection():
    """http.client sends four requests over ONE keep-alive connection and gets each right answer."""
    recorder = Recorder()
    async with running(recorder) as port:
        try:
            ports, results = await bounded(
                asyncio.to_thread(blocking_session, port), 10.0, "four http.client requests"
            )
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(
                f"http.client raised {short(error)} talking to the server"
            ) from None
    statuses = [status for status, _, _ in results]
    assert statuses == [200, 200, 200, 200], called(
        "http.client: four requests -> statuses", statuses
    )
    bodies = [body for _, body, _ in results]
    assert bodies[0] == b"hello" and bodies[3] == b"chunked reply", called(
        "http.client: bodies of GET /hello and GET /pieces",
        (bodies[0], bodies[3]),
        (b"hello", b"chunked reply"),
    )
    echoed = [r.body for r in recorder.seen[1:3]]
    assert echoed == [b"payload one", b""], called(
        "bodies the /echo handler got", echoed, [b"payload one", b""]
    )
    assert len(set(ports)) == 1, (
        f"http.client used local ports {ports} for four requests; expected one connection kept "
        "alive (the server closed it after a response)"
    )


@pytest.mark.points(2)
async def test_httpx_async_client():
    """httpx.AsyncClient gets correct answers: JSON, a chunked upload, a chunked reply, 404, 405."""
    recorder = Recorder()

    async def upload():
        yield b"chunk-one "
        yield b"chunk-two"

    async with running(recorder) as port:

        async def session():
            base = f"http://{LOCALHOST}:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=3.0) as client:
                return [
                    await client.get("/hello"),
                    await client.post("/echo", json={"a": [1, 2]}, headers={"X-Tag": "json"}),
                    await client.post("/echo", content=upload()),
                    await client.get("/pieces"),
                    await client.get("/nowhere"),
                    await client.delete("/echo"),
                ]

        try:
            got = await bounded(session(), 10.0, "six httpx requests")
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"httpx raised {short(error)} talking to the server") from None
    hello, as_json, chunked, pieces, missing, wrong = got
    assert (hello.status_code, hello.content) == (200, b"hello"), called(
        "GET /hello", (hello.status_code, hello.content), (200, b"hello")
    )
    info = as_json.json()
    assert json.loads(info["body"]) == {"a": [1, 2]} and info["x-tag"] == "json", called(
        "POST /echo with JSON -> what the handler saw", info
    )
    sent = recorder.seen[2]
    assert sent.body == b"chunk-one chunk-two", called(
        "POST /echo with a chunked upload -> request.body", sent.body, b"chunk-one chunk-two"
    )
    assert pieces.content == b"chunked reply", called(
        "GET /pieces body", pieces.content, b"chunked reply"
    )
    assert missing.status_code == 404, called("GET /nowhere status", missing.status_code, 404)
    allow = sorted(m.strip() for m in wrong.headers.get("allow", "").split(","))
    assert wrong.status_code == 405 and allow == ["GET", "POST", "PUT"], called(
        "DELETE /echo -> (status, Allow)",
        (wrong.status_code, wrong.headers.get("allow")),
        (405, "GET, POST, PUT"),
    )


@pytest.mark.points(3)
async def test_pipelined_requests_answered_in_order():
    """Three requests written at once are all answered, in order, then the connection closes."""
    recorder = Recorder()
    data = (
        request_bytes("GET", "/echo?n=1", [("X-Tag", "first")])
        + request_bytes(
            "POST", "/echo?n=2", [("X-Tag", "second"), ("Content-Length", "4")], b"body"
        )
        + request_bytes("GET", "/echo?n=3", [("X-Tag", "third"), ("Connection", "close")])
    )
    async with running(recorder) as port:
        raw = await exchange(port, data)
    got = replies(raw)
    tags = [(r.status, r.json()["x-tag"]) for r in got if r.status == 200]
    want = [(200, "first"), (200, "second"), (200, "third")]
    assert tags == want and len(got) == 3, called(
        "three pipelined requests in one write -> (status, X-Tag echoed)",
        [(r.status, r.body[:40]) for r in got],
        want,
    )
    assert got[1].json()["body"] == "body", called(
        "second reply's echoed body", got[1].json()["body"], "body"
    )
    assert got[2].header("connection") == "close", called(
        "Connection field of the reply to 'Connection: close'", got[2].header("connection"), "close"
    )


@pytest.mark.points(1)
async def test_requests_before_a_bad_one_are_answered():
    """In a pipeline, the requests before a bad one are answered, then the 400, then the close."""
    recorder = Recorder()
    data = (
        request_bytes("GET", "/hello") + b"GET /hello HTTP/1.1\r\nHost: spec\r\nBad Name: x\r\n\r\n"
    )
    async with running(recorder) as port:
        raw = await exchange(port, data)
    got = [r.status for r in replies(raw)]
    assert got == [200, 400], called(f"{what(data)} in one write -> statuses", got, [200, 400])


async def refused(port: int, data: bytes, statuses: set[int], why: str, recorder: Recorder) -> None:
    """``data`` gets exactly one error reply with Connection: close, then EOF; no handler runs."""
    raw = await exchange(port, data)
    got = replies(raw)
    want = " or ".join(str(s) for s in sorted(statuses))
    assert len(got) == 1 and got[0].status in statuses, called(
        f"{why}: the replies to {what(data, 100)}",
        got,
        f"one {want} reply, then the connection closed",
    )
    assert got[0].header("connection") == "close", called(
        f"{why}: Connection field of the {got[0].status}", got[0].header("connection"), "close"
    )
    assert not recorder.seen, called(f"{why}: handlers that ran", recorder.targets, [])


@pytest.mark.points(2)
async def test_header_limit_over_socket():
    """A header section over max_header_bytes gets 431 with Connection: close, and the close."""
    recorder = Recorder()
    data = request_bytes("GET", "/hello", [("X-Big", "b" * 3000)])
    async with running(recorder, max_header_bytes=1024) as port:
        await refused(port, data, {431}, "a 3 KB header section, max_header_bytes=1024", recorder)


@pytest.mark.points(2)
async def test_body_limit_over_socket():
    """A Content-Length over max_body_bytes gets 413 at once, without waiting for the body."""
    recorder = Recorder()
    data = request_bytes("POST", "/echo", [("Content-Length", "1000000")])
    async with running(recorder, max_body_bytes=1000) as port:
        await refused(
            port, data, {413}, "Content-Length: 1000000 (body not sent), max 1000", recorder
        )


SMUGGLED = b"0\r\n\r\nGET /hello HTTP/1.1\r\nHost: spec\r\n\r\n"


def smuggling_attempts() -> dict[str, bytes]:
    smuggled = SMUGGLED
    return {
        "CL.TE": request_bytes(
            "POST",
            "/echo",
            [("Content-Length", str(len(smuggled))), ("Transfer-Encoding", "chunked")],
            smuggled,
        ),
        "TE.CL": request_bytes(
            "POST",
            "/echo",
            [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
            b"5c\r\n" + smuggled,
        ),
        "CL.CL": request_bytes(
            "POST",
            "/echo",
            [("Content-Length", "0"), ("Content-Length", str(len(smuggled)))],
            smuggled,
        ),
        "TE: xchunked": request_bytes(
            "POST", "/echo", [("Transfer-Encoding", "xchunked")], smuggled
        ),
        "TE: chunked\\x85": request_bytes(
            "POST", "/echo", [("Transfer-Encoding", "chunked\x85")], smuggled
        ),
        "HTTP/1.0 TE": request_bytes(
            "POST", "/echo", [("Transfer-Encoding", "chunked")], smuggled, version="HTTP/1.0"
        ),
    }


@pytest.mark.points(1)
@pytest.mark.parametrize("name", list(smuggling_attempts()))
async def test_smuggling_attempt_over_socket_is_refused(name):
    """A smuggling attempt (CL.TE, TE.CL, CL.CL, obfuscated or HTTP/1.0 Transfer-Encoding) gets one 400, then the close."""
    data = smuggling_attempts()[name]
    async with running(recorder := Recorder()) as port:
        await refused(port, data, {400}, name, recorder)


@pytest.mark.points(2)
async def test_connection_close_is_honoured():
    """After answering a request with Connection: close the server closes; a request behind it is ignored."""
    recorder = Recorder()
    data = request_bytes("GET", "/hello", [("Connection", "close")]) + request_bytes("GET", "/echo")
    async with running(recorder) as port:
        raw = await exchange(port, data)
    got = replies(raw)
    assert [r.status for r in got] == [200], called(
        f"{what(data, 100)} -> replies", got, "one 200, then the close"
    )
    assert got[0].header("connection") == "close", called(
        "Connection field of the reply", got[0].header("connection"), "close"
    )
    assert recorder.targets == ["/hello"], called("handlers that ran", recorder.targets, ["/hello"])


@pytest.mark.points(1)
async def test_http10_closes_after_the_response():
    """An HTTP/1.0 request without keep-alive is answered, then the connection closes."""
    async with running() as port:
        data = request_bytes("GET", "/hello", version="HTTP/1.0") + request_bytes("GET", "/hello")
        raw = await exchange(port, data)
        got = [r.status for r in replies(raw)]
        assert got == [200], called(f"{what(data)} -> replies before the close", got, [200])


@pytest.mark.points(1)
async def test_http10_keep_alive_is_announced_and_kept():
    """An HTTP/1.0 request with Connection: keep-alive gets it back and the connection stays open."""
    async with running() as port:
        client = await Client.connect(port)
        try:
            keep = [("Connection", "keep-alive")]
            await client.send(request_bytes("GET", "/hello", keep, version="HTTP/1.0"))
            first = await client.reply("the reply to an HTTP/1.0 keep-alive request")
            assert "keep-alive" in (first.header("connection") or "").lower(), called(
                "HTTP/1.0 + Connection: keep-alive -> Connection field of the reply",
                first.header("connection"),
                "keep-alive",
            )
            await client.send(request_bytes("GET", "/hello", version="HTTP/1.0"))
            second = await client.reply("the reply to a second request on the kept connection")
            assert second.status == 200, called(
                "second HTTP/1.0 request status", second.status, 200
            )
            rest = await client.eof("the close after an HTTP/1.0 request without keep-alive")
            assert rest == b"", called("bytes after the second reply", rest, b"")
        finally:
            await client.close()


@pytest.mark.points(1)
async def test_handler_error_is_500_and_connection_survives():
    """A handler that raises gets a 500; the connection keeps serving the next request."""
    async with running() as port:
        client = await Client.connect(port)
        try:
            await client.send(request_bytes("GET", "/boom"))
            first = await client.reply("the reply to GET /boom (its handler raises)")
            assert first.status == 500, called("GET /boom status", first.status, 500)
            await client.send(request_bytes("GET", "/hello"))
            second = await client.reply("the reply to GET /hello after the 500")
            assert (second.status, second.body) == (200, b"hello"), called(
                "GET /hello after the 500", (second.status, second.body), (200, b"hello")
            )
        finally:
            await client.close()


@pytest.mark.points(2)
async def test_request_deadline_stops_slowloris():
    """A request not complete within request_timeout is dropped, even if a line trickles in every 20 ms."""
    async with running(request_timeout=0.5) as port:
        client = await Client.connect(port)
        try:
            await client.send(b"GET /hello HTTP/1.1\r\nHost: spec\r\n")

            async def trickle():
                try:
                    for _ in range(400):  # outlasts the 4 s bound below
                        await client.send(b"X-Slow: 1\r\n")
                        await asyncio.sleep(0.02)  # pacing the client, not waiting for anything
                except ConnectionError:
                    pass

            sender = asyncio.create_task(trickle())
            try:
                rest = await client.eof(
                    "the server to drop a request that trickles in for 4 s", 4.0
                )
            finally:
                sender.cancel()
            statuses = [r.status for r in replies(rest)] if rest else []
            assert statuses in ([], [408]), called(
                "what came before the close", statuses, "nothing or one 408"
            )
        finally:
            await client.close()


@pytest.mark.points(1)
async def test_request_deadline_drops_an_idle_connection():
    """A connection that sends nothing is closed after request_timeout (a 408 first is allowed)."""
    async with running(request_timeout=0.5) as port:
        idle = await Client.connect(port)
        try:
            rest = await idle.eof("the server to drop a connection that sends nothing", 4.0)
            statuses = [r.status for r in replies(rest)] if rest else []
            assert statuses in ([], [408]), called(
                "idle connection: what came before the close", statuses
            )
        finally:
            await idle.close()


@pytest.mark.points(1)
async def test_close_closes_kept_alive_connections():
    """server.close() returns promptly and closes an idle kept-alive connection."""
    recorder = Recorder()
    server = HttpServer(recorder.router())
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    client = await Client.connect(port)
    try:
        await client.send(request_bytes("GET", "/hello"))
        reply = await client.reply("the reply to GET /hello")
        assert reply.status == 200, called("GET /hello status", reply.status, 200)
        await bounded(server.close(), 3.0, "server.close() with one idle keep-alive connection")
        rest = await client.eof("the kept-alive connection to be closed by server.close()")
        assert rest == b"", called("bytes after server.close()", rest, b"")
    finally:
        await client.close()


@pytest.mark.points(1)
async def test_close_stops_listening():
    """After server.close() nothing listens on the port any more: a connection is refused."""
    server = HttpServer(Recorder().router())
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    await bounded(server.close(), 3.0, "server.close()")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 2.0)
    except OSError:
        pass
    else:
        writer.close()
        raise AssertionError(
            f"Connected to port {port} after server.close(); expected the connection refused"
        )


@pytest.mark.points(1)
async def test_close_leaves_no_task_behind():
    """When server.close() returns, no task of the server is left (idle, half-read and busy connections)."""
    before = asyncio.all_tasks()
    server = HttpServer(Recorder().router())
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    idle = await Client.connect(port)
    half = await Client.connect(port)
    try:
        await idle.send(request_bytes("GET", "/hello"))
        await idle.reply("the reply to GET /hello")
        await half.send(b"POST /echo HTTP/1.1\r\nHost: spec\r\nContent-Length: 10\r\n\r\nabc")
        await bounded(server.close(), 3.0, "server.close() with two connections open")
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    finally:
        await idle.close()
        await half.close()
    assert not left, called(
        "asyncio.all_tasks() right after server.close() (new tasks)",
        [short(t.get_coro(), 60) for t in left],
        [],
    )


@pytest.mark.points(1)
async def test_close_leaves_the_event_loop_nothing_to_report():
    """server.close() with one kept-alive connection idle and one half-way through a request
    body leaves no error for the event loop to report: a connection task it cancels ends
    without raising.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    server = HttpServer(Recorder().router())
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    async with loop_reports() as reports:
        idle = await Client.connect(port)
        half = await Client.connect(port)
        try:
            for client in (idle, half):
                await client.send(request_bytes("GET", "/hello"))
                await client.reply("the reply to GET /hello")
            await half.send(b"POST /echo HTTP/1.1\r\nHost: spec\r\nContent-Length: 10\r\n\r\nabc")
            await bounded(server.close(), 3.0, "server.close() with two connections open")
        finally:
            await idle.close()
            await half.close()
    assert not reports, reports.message(
        "server.close() with a kept-alive connection idle and one half-way through a body",
        "a connection handler cancelled by close() should end quietly: catch CancelledError "
        "where it waits, close the connection, and return",
    )


@pytest.mark.points(2)
async def test_a_client_that_reads_nothing_stops_the_server_answering():
    """A client that pipelines 64 requests for 1 MiB each and reads nothing gets at most 16 answered: the server waits for its writes to drain."""
    recorder = Recorder()
    router = recorder.router()
    big = b"x" * (1 << 20)

    async def big_handler(request):
        recorder.seen.append(request)
        return Response(200, [], big)

    router.route("GET", "/big", big_handler)
    server = HttpServer(router)
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    _, writer = await asyncio.open_connection(LOCALHOST, port)
    other = await Client.connect(port)
    try:
        writer.write(request_bytes("GET", "/big") * 64)
        await writer.drain()
        # The clock is an event, not a sleep: once another connection's request is answered,
        # a server that never waits for its writes has answered all 64 (nothing in its loop
        # yields while requests are buffered); one that waits is stuck on the first few.
        await other.send(request_bytes("GET", "/hello"))
        reply = await other.reply("the reply to GET /hello on a second connection", timeout=5.0)
        assert reply.status == 200, called("GET /hello on a second connection", reply.status, 200)
        answered = sum(1 for r in recorder.seen if r.target == "/big")
    finally:
        writer.close()
        await other.close()
        await bounded(server.close(), 5.0, "server.close()")
    assert answered <= 16, called(
        "64 pipelined GET /big (1 MiB each), client reading nothing: requests answered "
        "once another connection was served",
        answered,
        "at most 16 (about 16 MiB buffered)",
    )


# --- HEAD, Expect: 100-continue, absolute-form --------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "path, status", [("/hello", 200), ("/pieces", 200), ("/echo", 405), ("/nowhere", 404)]
)
async def test_head_response_has_no_body(path, status):
    """A response to HEAD ends with its header section, so the next response on the connection reads right (RFC 9110 §9.3.2, RFC 9112 §6.3 rule 1)."""
    recorder = Recorder()
    recorder_router = recorder.router()
    recorder_router.route("HEAD", "/hello", recorder.hello)
    recorder_router.route("HEAD", "/pieces", recorder.pieces)
    server = HttpServer(recorder_router)
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    try:
        data = request_bytes("HEAD", path) + request_bytes(
            "GET", "/hello", [("Connection", "close")]
        )
        raw = await exchange(port, data)
    finally:
        await bounded(server.close(), 5.0, "server.close()")
    got = [(r.status, r.body) for r in replies(raw, methods=["HEAD", "GET"])]
    want = [(status, b""), (200, b"hello")]
    assert got == want, called(f"{what(data)} -> (status, body) of each reply", got, want)


@pytest.mark.points(2)
async def test_httpx_head_then_get_on_one_connection():
    """httpx sends HEAD then GET on one kept-alive connection and reads both replies."""
    recorder = Recorder()
    router = recorder.router()
    router.route("HEAD", "/hello", recorder.hello)
    server = HttpServer(router)
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")

    async def session():
        async with httpx.AsyncClient(base_url=f"http://{LOCALHOST}:{port}", timeout=3.0) as http:
            head = await http.head("/hello")
            get = await http.get("/hello")
            return head, get

    try:
        with step("httpx: HEAD /hello, then GET /hello on the same client"):
            head, get = await bounded(session(), 10.0, "httpx HEAD then GET")
    finally:
        await bounded(server.close(), 5.0, "server.close()")
    got = [(head.status_code, head.content), (get.status_code, get.content)]
    want = [(200, b""), (200, b"hello")]
    assert got == want, called("httpx: HEAD /hello, GET /hello -> (status, body)", got, want)


@pytest.mark.points(3)
async def test_expect_100_continue_gets_an_interim_response():
    """A request with Expect: 100-continue gets "100 Continue" before it sends its body (RFC 9110 §10.1.1: a server MUST)."""
    recorder = Recorder()
    head = request_bytes("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "5")])
    async with running(recorder) as port:
        client = await Client.connect(port)
        try:
            await client.send(head)
            with step("reading the server's answer to a head with Expect: 100-continue"):
                first = await bounded(
                    client.reader.readuntil(b"\r\n\r\n"),
                    3.0,
                    "an interim 100 Continue after a head with Expect: 100-continue",
                )
            conn = h11.Connection(h11.CLIENT)
            conn.send(
                h11.Request(
                    method="POST",
                    target="/echo",
                    headers=[("Host", "spec"), ("Expect", "100-continue"), ("Content-Length", "5")],
                )
            )
            conn.receive_data(first)
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                event = f"invalid: {error}"
            assert isinstance(event, h11.InformationalResponse) and event.status_code == 100, (
                called(
                    f"sent {what(head, 100)} without its body; the server's first answer",
                    first,
                    "HTTP/1.1 100 Continue",
                )
            )
            await client.send(b"hello")
            reply = await client.reply("the final reply once the body was sent", method="POST")
        finally:
            await client.close()
    got = (reply.status, reply.json()["body"] if reply.status == 200 else reply.body)
    assert got == (200, "hello"), called(
        "POST /echo after the 100 -> (status, body)", got, (200, "hello")
    )


@pytest.mark.points(1)
async def test_expect_100_continue_is_ignored_in_http10():
    """An HTTP/1.0 request with Expect: 100-continue gets no 100, only its response (RFC 9110 §10.1.1: MUST ignore)."""
    head = request_bytes(
        "POST",
        "/echo",
        [("Expect", "100-continue"), ("Content-Length", "5")],
        version="HTTP/1.0",
    )
    async with running() as port:
        raw = await exchange(port, head + b"hello")
    assert raw.startswith(b"HTTP/1.1 200 "), called(
        f"{what(head + b'hello', 100)} -> the first bytes", raw[:40], b"HTTP/1.1 200 ..."
    )


@pytest.mark.points(1)
async def test_expect_with_a_body_too_large_gets_413_at_once():
    """Expect: 100-continue with a Content-Length over the limit gets 413 at once, no 100 first."""
    head = request_bytes("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "1001")])
    async with running(max_body_bytes=1000) as port:
        raw = await exchange(port, head)
    got = [r.status for r in replies(raw, methods=["POST"])]
    assert raw.startswith(b"HTTP/1.1 413 ") and got == [413], called(
        f"{what(head, 100)} (max_body_bytes=1000) -> replies", (raw[:30], got), [413]
    )


def absolute_form_session(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=3)
    try:
        conn.request("GET", f"http://{LOCALHOST}:{port}/hello?x=1")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.points(2)
async def test_http_client_absolute_form_is_routed():
    """http.client's GET http://host:port/hello (absolute-form) reaches the /hello route (RFC 9112 §3.2.2: a server MUST accept it)."""
    async with running() as port:
        with step(f"http.client: GET http://{LOCALHOST}:{port}/hello?x=1"):
            got = await bounded(
                asyncio.to_thread(absolute_form_session, port), 10.0, "http.client GET"
            )
    assert got == (200, b"hello"), called(
        f"http.client: GET http://{LOCALHOST}:{port}/hello?x=1 -> (status, body)",
        got,
        (200, b"hello"),
    )


async def _wakeups_over(loop, seconds: float) -> int:
    # A measurement window, not a wait for a condition: count what the loop does meanwhile.
    before = loop.wakeups
    await asyncio.sleep(seconds)
    return loop.wakeups - before


async def _idle_then_kept_alive(loop, connections: int, window: float) -> tuple[int, int]:
    server = HttpServer(Recorder().router(), request_timeout=10.0)
    port = await bounded(server.start(LOCALHOST, 0), 3.0, "server.start()")
    clients = []
    try:
        idle = await _wakeups_over(loop, window)
        for _ in range(connections):
            client = await Client.connect(port)
            clients.append(client)
            await client.send(request_bytes("GET", "/hello"))
            await client.reply("the reply to GET /hello")
        kept = await _wakeups_over(loop, window)
    finally:
        for client in clients:
            await client.close()
        await bounded(server.close(), 5.0, "server.close()")
    return idle, kept


@pytest.mark.points(2)
def test_idle_kept_alive_connections_cost_no_wakeups():
    """20 idle kept-alive connections cost (almost) no event-loop wake-ups: no polling for the deadline."""
    connections, window = 20, 0.3
    loop = CountingLoop()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        idle, kept = runner.run(_idle_then_kept_alive(loop, connections, window))
    limit = 2 * idle + 20
    assert kept <= limit, called(
        f"event-loop wake-ups over {window} s with {connections} idle kept-alive connections "
        f"(with none open: {idle})",
        kept,
        f"at most {limit}",
    )
