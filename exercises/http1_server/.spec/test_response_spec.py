"""Hidden specs for serialize_response (read back with h11 as the client) and Router.dispatch."""

from __future__ import annotations

import h11
import pytest
from _helpers import Recorder, one, replies, request_bytes, what
from http1_server import Response, Router, serialize_response

from grader.spectools import bounded, called, short


def serialized(*args, **kwargs) -> bytes:
    data = serialize_response(*args, **kwargs)
    assert isinstance(data, bytes), called("serialize_response(...)", type(data).__name__, "bytes")
    return data


@pytest.mark.points(2)
def test_response_with_content_length():
    """A bytes body is sent with the status line, the caller's fields and a Content-Length."""
    data = serialized(200, [("Content-Type", "text/plain"), ("X-Tag", "a b")], b"hello")
    got = replies(data, eof=False)
    assert len(got) == 1, called(
        f"h11 reading serialize_response(200, ...) = {what(data)}", got, "1 response"
    )
    reply = got[0]
    checks = [
        ("status", reply.status, 200),
        ("content-type", reply.header("content-type"), "text/plain"),
        ("x-tag", reply.header("x-tag"), "a b"),
        ("content-length", reply.header("content-length"), "5"),
        ("body", reply.body, b"hello"),
        ("connection", reply.header("connection"), None),
    ]
    for name, value, want in checks:
        assert value == want, called(
            f"serialize_response(200, ..., b'hello') -> {name}", value, want
        )
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), called(
        "serialize_response(200, ...) status line", data.split(b"\r\n")[0], b"HTTP/1.1 200 OK"
    )
    odd = serialized(299, [], b"")
    assert odd.startswith(b"HTTP/1.1 299 \r\n"), called(
        "serialize_response(299, [], b'') status line (no known reason phrase)",
        odd.split(b"\r\n")[0],
        b"HTTP/1.1 299 ",
    )


@pytest.mark.points(2)
def test_chunked_response_skips_empty_pieces():
    """A list body is sent chunked; an empty piece is skipped, never written as a 0-size chunk."""
    pieces = [b"first ", b"", b"second ", b"x" * 300]
    data = serialized(200, [("Content-Type", "text/plain")], pieces)
    got = replies(data, eof=False)
    want = b"".join(pieces)
    assert len(got) == 1 and got[0].body == want, called(
        f"h11 reading serialize_response(200, [...], {short(pieces, 60)}) = {what(data, 200)}",
        got,
        f"one response with body {short(want, 40)}",
    )
    assert got[0].header("transfer-encoding") == "chunked", called(
        "Transfer-Encoding of a list body", got[0].header("transfer-encoding"), "chunked"
    )
    empty = replies(serialized(200, [], []), eof=False)
    assert [r.body for r in empty] == [b""], called(
        "h11 reading serialize_response(200, [], [])", empty
    )


@pytest.mark.points(1)
def test_close_announces_connection_close():
    """close=True adds Connection: close, so the client knows the connection ends after it."""
    data = serialized(404, [], b"nope", close=True)
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "spec")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    event = None
    while not isinstance(event, h11.EndOfMessage):
        event = client.next_event()
        assert event is not h11.NEED_DATA, f"h11 needs more bytes after {what(data)}"
    assert client.their_state is h11.MUST_CLOSE, called(
        f"h11 reading {what(data)}: the server's state", client.their_state, h11.MUST_CLOSE
    )


@pytest.mark.points(1)
def test_no_content_statuses_have_no_body():
    """204 and 304 responses carry no body and no Content-Length; only 200-599 are accepted."""
    for status in (204, 304):
        data = serialized(status, [("ETag", '"v1"')], b"")
        head = data.lower()
        assert b"content-length" not in head and b"transfer-encoding" not in head, called(
            f"serialize_response({status}, ...)", data, "no Content-Length, no Transfer-Encoding"
        )
        assert data.endswith(b"\r\n\r\n"), called(f"serialize_response({status}, ...)", data)
        with pytest.raises(ValueError):
            serialize_response(status, [], b"body")
    for status in (100, 101, 199, 600, 99):
        with pytest.raises(ValueError):
            serialize_response(status, [], b"")


@pytest.mark.points(2)
def test_unsafe_fields_are_refused():
    """CR or LF in a field (response splitting) and caller-set framing fields raise ValueError."""
    for headers in (
        [("X-Name", "alice\r\nSet-Cookie: admin=1")],
        [("X-Name", "alice\nX: y")],
        [("X-Name", "nul\x00")],
        [("Bad Name", "x")],
        [("X-A\r\nX-B", "x")],
        [("", "x")],
        [("Content-Length", "3")],
        [("transfer-encoding", "chunked")],
    ):
        try:
            data = serialize_response(200, headers, b"abc")
        except ValueError:
            continue
        raise AssertionError(
            called(f"serialize_response(200, {headers!r}, b'abc')", data, "ValueError")
        )


# --- the router -----------------------------------------------------------------------------------


async def dispatch(router: Router, data: bytes) -> Response:
    return await bounded(router.dispatch(one(data)), 2.0, f"router.dispatch({what(data, 60)})")


@pytest.mark.points(2)
async def test_router_404_and_405_with_allow():
    """Unknown path -> 404; known path, other method -> 405 with Allow naming the path's methods."""
    recorder = Recorder()
    router = recorder.router()
    response = await dispatch(router, request_bytes("GET", "/nowhere"))
    assert response.status == 404, called("dispatch(GET /nowhere).status", response.status, 404)
    response = await dispatch(router, request_bytes("PATCH", "/hello"))
    allow = dict((n.lower(), v) for n, v in response.headers).get("allow")
    methods = sorted(m.strip() for m in (allow or "").split(","))
    assert response.status == 405 and methods == ["DELETE", "GET"], called(
        "dispatch(PATCH /hello) -> (status, Allow)", (response.status, allow), (405, "DELETE, GET")
    )
    response = await dispatch(router, request_bytes("get", "/hello"))
    assert response.status == 405, called(
        "dispatch(get /hello) (methods are case-sensitive)", response.status, 405
    )
    assert recorder.seen == [], called(
        "handlers called for 404/405 requests", len(recorder.seen), 0
    )


@pytest.mark.points(1)
async def test_router_matches_the_path_without_query():
    """Routes match the path exactly, without the query string; the handler gets the request."""
    recorder = Recorder()
    router = recorder.router()
    response = await dispatch(router, request_bytes("GET", "/hello?name=x&y=1"))
    assert response.status == 200 and response.body == b"hello", called(
        "dispatch(GET /hello?name=x&y=1)", (response.status, response.body), (200, b"hello")
    )
    assert recorder.targets == ["/hello?name=x&y=1"], called(
        "targets the handler saw", recorder.targets
    )
    for path in ("/hello/", "/Hello", "/hello/x"):
        response = await dispatch(router, request_bytes("GET", path))
        assert response.status == 404, called(f"dispatch(GET {path}).status", response.status, 404)
