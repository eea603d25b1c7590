"""Long polls: parking, waking on publish, timing out with 204, clients leaving, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import pytest
from _helpers import (
    LOCALHOST,
    bounded,
    called,
    check_not_blocking,
    client,
    exchange,
    open_waiter,
    read_reply,
    running,
    short,
)

from grader.spectools import step

# A parked poll in these specs asks for timeout=3 although nothing should ever make it wait
# that long: a server that blocks its event loop then fails within 3 s, not at the spec limit.
PARK = "timeout=3"


@pytest.mark.points(4)
async def test_parked_poll_wakes_on_publish() -> None:
    """A poll with nothing new parks, and a publish wakes it with the new message."""
    async with running(poll_timeout=30.0) as srv, client() as http:
        poll = asyncio.create_task(http.get(f"{srv.url}/messages?after=0&{PARK}"))
        await srv.gauge.reaches(1)
        assert srv.server.waiting == 1, called(
            "server.waiting while one poll parks", srv.server.waiting, 1
        )
        assert not poll.done(), "GET /messages?after=0 answered before any message was published"

        srv.server.publish("wake up")
        resp = await bounded(poll, 2.0, "the parked poll to answer after a publish")
        assert resp.status_code == 200, called(
            "GET /messages?after=0 then publish", resp.status_code, 200
        )
        want = {"messages": [{"id": 1, "body": "wake up"}], "cursor": 1}
        assert resp.json() == want, called("GET /messages?after=0 then publish", resp.json(), want)
        await srv.gauge.reaches(0)


@pytest.mark.points(2)
async def test_parked_poll_wakes_on_post_from_another_client() -> None:
    """A POST /messages from another client wakes a parked poll."""
    async with running(poll_timeout=30.0) as srv, client() as http, client() as other:
        srv.server.publish("old")
        poll = asyncio.create_task(http.get(f"{srv.url}/messages?after=1&{PARK}"))
        await srv.gauge.reaches(1)
        post = await bounded(other.post(f"{srv.url}/messages", content=b"new"), 2.0, "POST")
        assert post.json() == {"id": 2}, called("POST /messages", post.json(), {"id": 2})
        resp = await bounded(poll, 2.0, "the parked poll to answer after a POST")
        want = {"messages": [{"id": 2, "body": "new"}], "cursor": 2}
        assert resp.json() == want, called("GET /messages?after=1 then POST", resp.json(), want)


@pytest.mark.points(4)
async def test_one_publish_wakes_every_parked_poll() -> None:
    """One publish wakes every parked poll, not just the first one."""
    async with running(poll_timeout=30.0) as srv, client() as http:
        await check_not_blocking(srv)  # else 5 parked polls would stall one after another
        polls = [
            asyncio.create_task(http.get(f"{srv.url}/messages?after=1&{PARK}")) for _ in range(5)
        ]
        await srv.gauge.reaches(5)
        srv.server.publish("everyone")
        done, _ = await asyncio.wait(polls, timeout=2.0)
        assert len(done) == 5, called(
            "5 parked polls, then one publish (polls answered)", len(done), 5
        )
        want = {"messages": [{"id": 2, "body": "everyone"}], "cursor": 2}
        for poll in polls:
            got = poll.result().json()
            assert got == want, called(
                "a parked GET /messages?after=1 after one publish", got, want
            )


@pytest.mark.points(3)
async def test_timed_out_poll_answers_204_without_body() -> None:
    """A poll that sees nothing new before its timeout answers 204 No Content, empty body."""
    async with running(poll_timeout=30.0) as srv, client() as http:
        srv.server.publish("already read")
        resp = await bounded(
            http.get(f"{srv.url}/messages?after=1&timeout=0.05"), 3.0, "a 0.05 s poll to time out"
        )
        got = (resp.status_code, resp.content)
        assert got == (204, b""), called(
            "GET /messages?after=1&timeout=0.05 (status, body)", got, (204, b"")
        )
        assert srv.server.waiting == 0, called(
            "server.waiting after the timeout", srv.server.waiting, 0
        )


async def test_timeout_zero_never_waits() -> None:
    """timeout=0 turns a poll into a plain check: 204 at once when there is nothing new."""
    async with running(poll_timeout=30.0) as srv, client() as http:
        resp = await bounded(http.get(f"{srv.url}/messages?timeout=0"), 2.0, "a timeout=0 poll")
        assert resp.status_code == 204, called(
            "GET /messages?timeout=0 (empty log)", resp.status_code, 204
        )
        srv.server.publish("x")
        resp = await bounded(http.get(f"{srv.url}/messages?timeout=0"), 2.0, "a timeout=0 poll")
        assert resp.status_code == 200, called(
            "GET /messages?timeout=0 (one message)", resp.status_code, 200
        )


@pytest.mark.parametrize(
    "query", ["after=0", "after=0&timeout=3600"], ids=["no-timeout", "timeout=3600"]
)
async def test_server_poll_timeout_caps_the_client_timeout(query: str) -> None:
    """The server's poll_timeout is the default and the cap of a client's timeout."""
    async with running(poll_timeout=0.05) as srv, client() as http:
        resp = await bounded(
            http.get(f"{srv.url}/messages?{query}"),
            3.0,
            f"GET ?{query} to time out after 0.05 s",
        )
        assert resp.status_code == 204, called(
            f"GET /messages?{query} with poll_timeout=0.05", resp.status_code, 204
        )


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


@pytest.mark.points(3)
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_that_leaves_is_no_longer_waiting(how: str) -> None:
    """A client that closes its socket while parked is dropped from the waiters at once."""
    async with running(poll_timeout=30.0) as srv, client() as http:
        await check_not_blocking(srv)  # publishes message 1
        _, writer = await open_waiter(srv.port, "after=1")
        await srv.gauge.reaches(1)
        if how == "close":
            writer.close()
        else:
            _reset(writer)
        await srv.gauge.reaches(0)
        assert srv.server.waiting == 0, called(
            f"server.waiting after the client's {how}", srv.server.waiting, 0
        )

        # The server is still fine: another poll parks and wakes.
        poll = asyncio.create_task(http.get(f"{srv.url}/messages?after=1&{PARK}"))
        await srv.gauge.reaches(1)
        srv.server.publish("still here")
        resp = await bounded(poll, 2.0, "a poll after a client left")
        assert resp.status_code == 200, called(
            "GET /messages?after=1 after a client left", resp.status_code, 200
        )


@pytest.mark.points(2)
async def test_a_cursor_ahead_of_the_log_waits_for_the_log() -> None:
    """after=N beyond the newest id keeps waiting until a message with id > N exists."""
    async with running(poll_timeout=30.0) as srv, client() as http, client() as other:
        srv.server.publish("one")
        poll = asyncio.create_task(http.get(f"{srv.url}/messages?after=2&{PARK}"))
        await srv.gauge.reaches(1)
        srv.server.publish("two")  # id 2: still not newer than the cursor
        check = await bounded(other.get(f"{srv.url}/messages?after=0"), 2.0, "a short poll")
        assert check.status_code == 200, called("GET /messages?after=0", check.status_code, 200)
        assert not poll.done(), (
            "GET /messages?after=2 answered when message 2 was published; expected it to wait "
            f"for id 3 (answer: {poll.result().status_code} {poll.result().content[:80]!r})"
        )
        srv.server.publish("three")
        resp = await bounded(poll, 2.0, "the poll with after=2 to answer once id 3 exists")
        want = {"messages": [{"id": 3, "body": "three"}], "cursor": 3}
        assert resp.json() == want, called(
            "GET /messages?after=2 (log reaches 3)", resp.json(), want
        )


@pytest.mark.points(3)
async def test_a_parked_poll_does_not_hold_up_other_requests() -> None:
    """While polls are parked, other requests are served at once."""
    async with running(poll_timeout=30.0) as srv, client() as http, client() as other:
        poll = asyncio.create_task(http.get(f"{srv.url}/messages?after=0&{PARK}"))
        await srv.gauge.reaches(1)
        quick = await bounded(other.get(f"{srv.url}/messages?timeout=0"), 2.0, "a timeout=0 poll")
        missing = await bounded(other.get(f"{srv.url}/nothing"), 2.0, "GET /nothing")
        assert not poll.done(), (
            "the parked poll answered before the other requests were served; "
            "is the event loop blocked while a poll waits?"
        )
        assert quick.status_code in (200, 204), called(
            "GET /messages?timeout=0 while a poll is parked", quick.status_code, "200 or 204"
        )
        assert missing.status_code == 404, called("GET /nothing", missing.status_code, 404)
        srv.server.publish("release")
        await bounded(poll, 2.0, "the parked poll to answer")


@pytest.mark.points(2)
async def test_close_ends_parked_polls() -> None:
    """server.close() returns promptly and ends the connection of a parked poll."""
    async with running(poll_timeout=30.0) as srv:
        reader, _writer = await open_waiter(srv.port, f"after=0&{PARK}")
        await srv.gauge.reaches(1)
        await bounded(srv.server.close(), 2.0, "server.close() with a poll parked")
        await bounded(read_reply_or_eof(reader), 2.0, "the parked poll's connection to end")
        assert srv.server.waiting == 0, called(
            "server.waiting after server.close()", srv.server.waiting, 0
        )


@pytest.mark.points(1)
async def test_close_stops_listening() -> None:
    """After server.close() nothing listens on the port any more: a connection is refused."""
    async with running() as srv:
        await bounded(srv.server.close(), 2.0, "server.close()")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, srv.port), 2.0)
        except OSError:
            pass
        else:
            writer.close()
            raise AssertionError(
                f"Connected to port {srv.port} after server.close(); expected it refused"
            )


@pytest.mark.points(1)
async def test_close_leaves_no_task_behind() -> None:
    """When server.close() returns, no task of the server is left: parked polls and half-read requests are done."""
    before = asyncio.all_tasks()
    async with running(poll_timeout=30.0) as srv:
        _, waiter = await open_waiter(srv.port, f"after=0&{PARK}")
        _, half = await asyncio.open_connection(LOCALHOST, srv.port)
        half.write(b"GET /messages HTTP/1.1\r\nHo")
        await half.drain()
        try:
            await srv.gauge.reaches(1)
            await bounded(srv.server.close(), 2.0, "server.close() with two connections open")
            left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
        finally:
            waiter.close()
            half.close()
    assert not left, called(
        "asyncio.all_tasks() right after server.close() (new tasks)",
        [short(t.get_coro(), 60) for t in left],
        [],
    )


@pytest.mark.points(1)
async def test_a_second_close_is_harmless() -> None:
    """Calling server.close() twice is harmless."""
    async with running() as srv:
        await bounded(srv.server.close(), 2.0, "server.close()")
        with step("a second server.close()"):
            await bounded(srv.server.close(), 2.0, "a second server.close()")


async def read_reply_or_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(AssertionError):  # no response at all is fine: it was closed
        await read_reply(reader, "a poll parked during close()")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "partial",
    [
        b"GET /messages?after=0 HTTP/1.1\r\nHost: sp",
        b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 10\r\n\r\nabc",
    ],
    ids=["half-head", "half-body"],
)
async def test_a_client_vanishing_mid_request_does_not_hurt_the_server(partial: bytes) -> None:
    """A client that closes in the middle of its request head or body is simply forgotten."""
    async with running() as srv:
        _, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        writer.write(partial)
        await writer.drain()
        writer.close()
        reply = await exchange(
            srv.port, b"GET /messages?timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n", "GET"
        )
        assert reply.status in (200, 204), called(
            f"GET /messages?timeout=0 after a client left mid-request ({partial[:24]!r}...)",
            reply.status,
            "200 or 204",
        )
        first = srv.server.publish("next")
        assert first == 1, called(
            'server.publish("next") after a half-sent request (nothing published before)', first, 1
        )


@pytest.mark.parametrize("value", ["0", "00", "0.0", "0.000"], ids=lambda v: f"timeout={v}")
async def test_a_zero_timeout_in_any_spelling_answers_at_once(value: str) -> None:
    """timeout=0, 00, 0.0 or 0.000 is a valid timeout of zero: 204 at once."""
    async with running(poll_timeout=30.0) as srv:
        reply = await exchange(
            srv.port, _get_bytes(f"/messages?timeout={value}"), f"timeout={value}"
        )
        assert reply.status == 204, called(f"GET /messages?timeout={value}", reply.status, 204)


async def test_a_timeout_of_thousands_of_digits_is_capped() -> None:
    """A timeout too long for any clock (5,000 digits) is capped by poll_timeout, not refused."""
    async with running(poll_timeout=0.05) as srv:
        target = "/messages?timeout=" + "9" * 5000
        reply = await exchange(srv.port, _get_bytes(target), "GET /messages?timeout=<5,000 digits>")
        assert reply.status == 204, called(
            "GET /messages?timeout=<5,000 digits> with poll_timeout=0.05", reply.status, 204
        )


def _get_bytes(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: spec\r\n\r\n".encode()
