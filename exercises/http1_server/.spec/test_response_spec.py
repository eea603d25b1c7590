"""Hidden specs for serialize_response (read back with h11 as the client) and Router.dispatch."""

from __future__ import annotations

import h11
import pytest
from _helpers import Recorder, one, replies, request_bytes, what
from http1_server import Response, Router, serialize_response

from grader.spectools import bounded, called, short, step


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


@pytest.mark.points(1)
def test_unknown_status_has_an_empty_reason_phrase():
    """A status without a known reason phrase gets an empty one, its space kept (RFC 9112 §4)."""
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
@pytest.mark.parametrize("status", [204, 304])
def test_no_content_statuses_have_no_framing(status):
    """204 and 304 responses carry no Content-Length, no Transfer-Encoding and no body (RFC 9110 §6.4.1)."""
    data = serialized(status, [("ETag", '"v1"')], b"")
    head = data.lower()
    assert b"content-length" not in head and b"transfer-encoding" not in head, called(
        f"serialize_response({status}, ...)", data, "no Content-Length, no Transfer-Encoding"
    )
    assert data.endswith(b"\r\n\r\n"), called(
        f"serialize_response({status}, ...) (ends with the empty line)", data[-8:], b"\r\n\r\n"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("status", [204, 304])
def test_no_content_status_with_a_body_is_refused(status):
    """A body for a 204 or 304 raises ValueError."""
    try:
        data = serialize_response(status, [], b"body")
    except ValueError:
        return
    raise AssertionError(called(f"serialize_response({status}, [], b'body')", data, "ValueError"))


@pytest.mark.points(1)
@pytest.mark.parametrize("status", [99, 100, 101, 199, 600])
def test_only_final_statuses_are_serialized(status):
    """Only statuses 200-599 are serialized; any other raises ValueError."""
    try:
        data = serialize_response(status, [], b"")
    except ValueError:
        return
    raise AssertionError(called(f"serialize_response({status}, [], b'')", data, "ValueError"))


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "headers",
    [
        [("X-Name", "alice\r\nSet-Cookie: admin=1")],
        [("X-Name", "alice\nX: y")],
        [("X-Name", "alice\rX: y")],
        [("X-Name", "nul\x00")],
        [("Bad Name", "x")],
        [("X-A\r\nX-B", "x")],
        [("", "x")],
    ],
    ids=[
        "CRLF-value",
        "LF-value",
        "CR-value",
        "NUL-value",
        "space-name",
        "CRLF-name",
        "empty-name",
    ],
)
def test_unsafe_fields_are_refused(headers):
    """A field name that is not a token or a value with CR, LF or NUL raises ValueError (response splitting, CWE-113)."""
    try:
        data = serialize_response(200, headers, b"abc")
    except ValueError:
        return
    raise AssertionError(
        called(f"serialize_response(200, {headers!r}, b'abc')", data, "ValueError")
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "headers",
    [[("Content-Length", "3")], [("transfer-encoding", "chunked")]],
    ids=["Content-Length", "transfer-encoding"],
)
def test_caller_framing_fields_are_refused(headers):
    """A caller-supplied Content-Length or Transfer-Encoding raises ValueError: framing is the serializer's."""
    try:
        data = serialize_response(200, headers, b"abc")
    except ValueError:
        return
    raise AssertionError(
        called(f"serialize_response(200, {headers!r}, b'abc')", data, "ValueError")
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "body, framing",
    [(b"hello", ("content-length", "5")), ([b"hel", b"lo"], ("transfer-encoding", "chunked"))],
    ids=["bytes", "pieces"],
)
def test_head_response_keeps_the_fields_and_drops_the_body(body, framing):
    """serialize_response(..., head=True) sends the fields of the full response and no body (RFC 9110 §9.3.2)."""
    with step(f"serialize_response(200, [], {body!r}, head=True)"):
        data = serialize_response(200, [("Content-Type", "text/plain")], body, head=True)
    got = replies(data, eof=False, methods=["HEAD"])
    name, value = framing
    assert data.endswith(b"\r\n\r\n") and len(got) == 1, called(
        f"serialize_response(200, [...], {body!r}, head=True)", data, "a header section only"
    )
    assert got[0].header(name) == value, called(
        f"serialize_response(200, [...], {body!r}, head=True): {name}",
        got[0].header(name),
        value,
    )


# --- the router -----------------------------------------------------------------------------------


async def dispatch(router: Router, data: bytes) -> Response:
    return await bounded(router.dispatch(one(data)), 2.0, f"router.dispatch({what(data, 60)})")


@pytest.mark.points(1)
async def test_router_unknown_path_is_404():
    """An unknown path gets 404 and no handler runs."""
    recorder = Recorder()
    response = await dispatch(recorder.router(), request_bytes("GET", "/nowhere"))
    assert response.status == 404, called("dispatch(GET /nowhere).status", response.status, 404)
    assert recorder.seen == [], called("handlers called for GET /nowhere", recorder.targets, [])


@pytest.mark.points(2)
async def test_router_other_method_is_405_with_allow():
    """A known path with a method it has no route for gets 405 with Allow naming its methods (RFC 9110 §15.5.6)."""
    recorder = Recorder()
    response = await dispatch(recorder.router(), request_bytes("PATCH", "/hello"))
    allow = dict((n.lower(), v) for n, v in response.headers).get("allow")
    methods = sorted(m.strip() for m in (allow or "").split(","))
    assert response.status == 405 and methods == ["DELETE", "GET"], called(
        "dispatch(PATCH /hello) -> (status, Allow)", (response.status, allow), (405, "DELETE, GET")
    )
    assert recorder.seen == [], called("handlers called for PATCH /hello", recorder.targets, [])


@pytest.mark.points(1)
async def test_router_methods_are_case_sensitive():
    """Methods are case-sensitive: "get" is not "GET" and gets 405."""
    response = await dispatch(Recorder().router(), request_bytes("get", "/hello"))
    assert response.status == 405, called("dispatch(get /hello).status", response.status, 405)


@pytest.mark.points(1)
async def test_router_matches_the_path_without_query():
    """Routes match the path without the query string; the handler gets the whole target."""
    recorder = Recorder()
    response = await dispatch(recorder.router(), request_bytes("GET", "/hello?name=x&y=1"))
    assert response.status == 200 and response.body == b"hello", called(
        "dispatch(GET /hello?name=x&y=1)", (response.status, response.body), (200, b"hello")
    )
    assert recorder.targets == ["/hello?name=x&y=1"], called(
        "targets the handler saw", recorder.targets, ["/hello?name=x&y=1"]
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("path", ["/hello/", "/Hello", "/hello/x"])
async def test_router_matches_the_exact_path(path):
    """Routes match the exact path: a trailing slash, another case or a subpath is 404."""
    response = await dispatch(Recorder().router(), request_bytes("GET", path))
    assert response.status == 404, called(f"dispatch(GET {path}).status", response.status, 404)


@pytest.mark.points(1)
async def test_router_routes_an_absolute_form_target():
    """An absolute-form target (http://host/hello) is routed by its path (RFC 9112 §3.2.2)."""
    recorder = Recorder()
    response = await dispatch(recorder.router(), request_bytes("GET", "http://spec/hello?x=1"))
    assert response.status == 200 and response.body == b"hello", called(
        "dispatch(GET http://spec/hello?x=1)", (response.status, response.body), (200, b"hello")
    )
