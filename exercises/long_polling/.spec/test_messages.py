"""Publishing, short polls, cursors and limits: the parts of the API that answer at once."""

from __future__ import annotations

import pytest
from _helpers import (
    bounded,
    called,
    client,
    exchange,
    running,
)


async def _get(http, url: str, what: str):
    return await bounded(http.get(url), 2.0, f"an answer to {what} (messages exist: no wait)")


@pytest.mark.points(2)
async def test_post_assigns_increasing_ids() -> None:
    """POST /messages answers 201 with JSON {"id": n}, ids counting 1, 2, 3."""
    async with running() as srv, client() as http:
        for expected in (1, 2, 3):
            resp = await http.post(f"{srv.url}/messages", content=f"m{expected}".encode())
            assert resp.status_code == 201, called("POST /messages", resp.status_code, 201)
            kind = resp.headers.get("content-type", "")
            assert kind.startswith("application/json"), called(
                "POST /messages (Content-Type)", kind, "application/json"
            )
            assert resp.json() == {"id": expected}, called(
                "POST /messages", resp.json(), {"id": expected}
            )


async def test_publish_shares_the_id_sequence_with_post() -> None:
    """server.publish(body) returns the next id, from the same sequence as POST /messages."""
    async with running() as srv, client() as http:
        first = srv.server.publish("in-process")
        assert first == 1, called('server.publish("in-process")', first, 1)
        resp = await http.post(f"{srv.url}/messages", content=b"over http")
        assert resp.json() == {"id": 2}, called(
            "POST /messages after one publish", resp.json(), {"id": 2}
        )
        third = srv.server.publish("again")
        assert third == 3, called('server.publish("again")', third, 3)


@pytest.mark.points(2)
async def test_short_poll_returns_newer_messages_at_once() -> None:
    """GET /messages?after=0 answers 200 at once with every message and cursor = last id."""
    bodies = ["hello", "", "héllo wörld ✓", '{"json": "in a body"}']
    async with running(poll_timeout=30.0) as srv, client() as http:
        for body in bodies:
            srv.server.publish(body)
        resp = await _get(http, f"{srv.url}/messages?after=0", "GET /messages?after=0")
        assert resp.status_code == 200, called("GET /messages?after=0", resp.status_code, 200)
        want = {
            "messages": [{"id": i, "body": b} for i, b in enumerate(bodies, 1)],
            "cursor": len(bodies),
        }
        assert resp.json() == want, called("GET /messages?after=0", resp.json(), want)


@pytest.mark.points(3)
async def test_after_is_exclusive() -> None:
    """after=N returns the messages with id > N only: never message N itself."""
    async with running() as srv, client() as http:
        for body in ("a", "b", "c"):
            srv.server.publish(body)
        for after, ids in ((1, [2, 3]), (2, [3])):
            url = f"{srv.url}/messages?after={after}"
            resp = await _get(http, url, f"GET /messages?after={after}")
            got = [m["id"] for m in resp.json()["messages"]]
            assert got == ids, called(f"GET /messages?after={after} (ids)", got, ids)
            cursor = resp.json()["cursor"]
            assert cursor == 3, called(f"GET /messages?after={after} (cursor)", cursor, 3)


async def test_after_defaults_to_zero() -> None:
    """GET /messages without after starts from the beginning of the log."""
    async with running() as srv, client() as http:
        srv.server.publish("first")
        resp = await _get(http, f"{srv.url}/messages", "GET /messages")
        want = {"messages": [{"id": 1, "body": "first"}], "cursor": 1}
        assert resp.json() == want, called("GET /messages", resp.json(), want)


@pytest.mark.points(3)
async def test_limit_caps_the_batch_and_the_cursor_is_the_last_sent() -> None:
    """With limit=2, each answer holds 2 messages and its cursor is the last id it holds."""
    async with running() as srv, client() as http:
        for i in range(5):
            srv.server.publish(f"m{i + 1}")
        for after, ids in ((0, [1, 2]), (2, [3, 4]), (4, [5])):
            what = f"GET /messages?after={after}&limit=2"
            resp = await _get(http, f"{srv.url}/messages?after={after}&limit=2", what)
            got = ([m["id"] for m in resp.json()["messages"]], resp.json()["cursor"])
            assert got == (ids, ids[-1]), called(f"{what} (ids, cursor)", got, (ids, ids[-1]))


async def test_max_batch_caps_any_limit() -> None:
    """The server's max_batch caps a batch, whatever limit the client asks for."""
    async with running(max_batch=3) as srv, client() as http:
        for i in range(5):
            srv.server.publish(f"m{i + 1}")
        for query in ("after=0", "after=0&limit=10"):
            resp = await _get(http, f"{srv.url}/messages?{query}", f"GET /messages?{query}")
            got = ([m["id"] for m in resp.json()["messages"]], resp.json()["cursor"])
            want = ([1, 2, 3], 3)
            assert got == want, called(f"GET /messages?{query} with max_batch=3", got, want)


async def test_a_post_answer_is_valid_http11() -> None:
    """A raw POST /messages gets a valid HTTP/1.1 201 (read with h11) with JSON {"id": 1}."""
    async with running() as srv:
        post = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 5\r\n\r\nhello"
        reply = await exchange(srv.port, post, "a raw POST /messages")
        got = (reply.status, reply.json())
        assert got == (201, {"id": 1}), called("raw POST /messages", got, (201, {"id": 1}))


async def test_a_200_frames_its_body_and_says_connection_close() -> None:
    """A 200 carries a Content-Length equal to its body and Connection: close."""
    async with running() as srv:
        srv.server.publish("hello")
        get = b"GET /messages?after=0 HTTP/1.1\r\nHost: spec\r\n\r\n"
        reply = await exchange(srv.port, get, "a raw GET /messages?after=0")
        got = (
            reply.status,
            reply.headers.get("content-length"),
            reply.headers.get("connection", "").lower(),
        )
        want = (200, str(len(reply.body)), "close")
        assert got == want, called(
            "raw GET /messages?after=0 -> (status, Content-Length, Connection)", got, want
        )


async def test_a_204_has_no_body_and_no_content_length() -> None:
    """A 204 has no body and no Content-Length (RFC 9110 §8.6, §15.3.5)."""
    async with running() as srv:
        empty = b"GET /messages?after=1&timeout=0 HTTP/1.1\r\nHost: spec\r\n\r\n"
        reply = await exchange(srv.port, empty, "a raw GET /messages?after=1&timeout=0")
        got = (reply.status, reply.body, "content-length" in reply.headers)
        assert got == (204, b"", False), called(
            "raw GET /messages?after=1&timeout=0 (status, body, has Content-Length)",
            got,
            (204, b"", False),
        )


async def test_http10_request_without_host_is_served() -> None:
    """An HTTP/1.0 request needs no Host header and gets a normal answer."""
    async with running() as srv:
        srv.server.publish("old client")
        reply = await exchange(srv.port, b"GET /messages?after=0 HTTP/1.0\r\n\r\n", "HTTP/1.0 GET")
        assert reply.status == 200, called("GET /messages?after=0 HTTP/1.0", reply.status, 200)
        want = {"messages": [{"id": 1, "body": "old client"}], "cursor": 1}
        assert reply.json() == want, called("GET /messages?after=0 HTTP/1.0", reply.json(), want)
