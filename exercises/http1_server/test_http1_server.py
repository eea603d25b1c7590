"""Visible examples for the http1_server kata. Run them with `nox -s try -- http1_server`.

They use the standard library only, with raw bytes, so you can read exactly what goes over the
wire. The hidden specs go much further: h11 as an oracle on generated requests (valid and
subtly broken), any split of the byte stream, real clients (http.client, httpx), every limit
and smuggling defence over a socket, keep-alive, timeouts.
"""

from __future__ import annotations

import asyncio

import pytest

try:
    from http1_server import (
        HttpError,
        HttpServer,
        Request,
        RequestParser,
        Response,
        Router,
        serialize_response,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import HttpError, HttpServer, Request, RequestParser, "
        "Response, Router and serialize_response from http1_server.py"
    ) from err


def parse_all(data: bytes) -> list[Request]:
    parser = RequestParser()
    parser.feed(data)
    requests = []
    while (request := parser.next_request()) is not None:
        requests.append(request)
    return requests


def test_parse_a_get():
    [request] = parse_all(b"GET /hello?x=1 HTTP/1.1\r\nHost: example.test\r\nX-Tag:  a b \r\n\r\n")
    assert (request.method, request.target, request.version) == ("GET", "/hello?x=1", "HTTP/1.1")
    assert request.header("x-tag") == "a b"  # any case; OWS trimmed
    assert request.path == "/hello"
    assert request.body == b""
    assert request.keep_alive is True


def test_incomplete_then_complete():
    parser = RequestParser()
    parser.feed(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel")
    assert parser.next_request() is None  # 2 body bytes missing
    parser.feed(b"lo")
    request = parser.next_request()
    assert request is not None and request.body == b"hello"


def test_chunked_body_and_pipelining():
    data = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    first, second = parse_all(data)
    assert first.body == b"hello world"
    assert second.target == "/b"


def test_smuggling_attempt_is_400():
    data = (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nX"
    )
    with pytest.raises(HttpError) as caught:
        parse_all(data)
    assert caught.value.status == 400


def test_header_limit_is_431():
    parser = RequestParser(max_header_bytes=100)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"x" * 200 + b"\r\n\r\n")
    with pytest.raises(HttpError) as caught:
        parser.next_request()
    assert caught.value.status == 431


def test_serialize_response():
    data = serialize_response(200, [("Content-Type", "text/plain")], b"hi", close=True)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Length: 2" in lines and b"Connection: close" in lines
    assert body == b"hi"
    chunked = serialize_response(200, [], [b"ab", b"c"])
    assert chunked.endswith(b"\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")


async def test_server_keep_alive_and_404():
    async def hello(request: Request) -> Response:
        return Response(200, [("Content-Type", "text/plain")], b"hello " + request.body)

    router = Router()
    router.route("POST", "/hello", hello)
    server = HttpServer(router)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nworld")
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        received = await asyncio.wait_for(reader.read(-1), 5)  # until the server closes
        writer.close()
        first, _, rest = received.partition(b"hello world")
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert rest.startswith(b"HTTP/1.1 404 Not Found\r\n")
        assert b"Connection: close" in rest
    finally:
        await asyncio.wait_for(server.close(), 5)
