"""RESP over TCP: protocol errors answer '-ERR Protocol error: ...' and close; pipelines split anywhere."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import LOCALHOST, bounded, called, command, raw_exchange, read_all, running


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n:5\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
        (b"*1\r\n$-7\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$17\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*17\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"x" * 40, b"-ERR Protocol error: too big inline request\r\n"),
    ],
    ids=[
        "bad_count",
        "not_a_bulk",
        "negative_bulk",
        "bulk_over_max_bulk",
        "array_over_max_array",
        "inline_over_max_inline",
    ],
)
async def test_protocol_error_answers_and_closes(data: bytes, error: bytes) -> None:
    """A protocol error is answered with '-ERR Protocol error: ...' and the server closes the connection (networking.c)."""
    async with running(max_bulk=16, max_array=16, max_inline=16) as srv:
        got = await raw_exchange(srv.port, data, f"{data[:20]!r} (limits 16)")
    assert got == error, called(
        f"sending {data[:20]!r}, reading until the server closes", got, error
    )


async def test_replies_before_a_protocol_error_are_sent_first() -> None:
    """Commands pipelined before a protocol error are answered, in order, before the error; nothing after it runs."""
    async with running() as srv:
        data = (
            command("SET", "a", "1")
            + command("GET", "a")
            + b"*1\r\n:oops\r\n"
            + command("SET", "b", "2")
        )
        got = await raw_exchange(srv.port, data, "SET a 1; GET a; <garbage>; SET b 2")
        check = await raw_exchange(srv.port, command("EXISTS", "b"), "EXISTS b", 4)
    want = b"+OK\r\n$1\r\n1\r\n-ERR Protocol error: expected '$', got ':'\r\n"
    assert got == want, called("SET a 1; GET a; <garbage>; SET b 2 (read until close)", got, want)
    assert check == b":0\r\n", called("EXISTS b (sent after the garbage)", check, b":0\r\n")


@pytest.mark.points(2)
async def test_commands_split_across_segments() -> None:
    """A pipeline sent one byte per write, with inline and array commands mixed, gets every reply."""
    async with running() as srv:
        data = command("SET", "k", "a\r\nb") + b"GET k\r\n" + command("INCR", "n") + b"PING\r\n"
        want = b"+OK\r\n$4\r\na\r\nb\r\n:1\r\n+PONG\r\n"
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
            got = await bounded(
                reader.readexactly(len(want)), 5.0, "every reply to a pipeline sent byte by byte"
            )
        except asyncio.IncompleteReadError as error:
            got = error.partial
        finally:
            writer.close()
    assert got == want, called(
        "SET k 'a\\r\\nb'; GET k; INCR n; PING, one byte per write", got, want
    )


async def test_client_closing_mid_command_leaves_the_server_serving() -> None:
    """A client that closes in the middle of a command costs nothing: the server keeps serving others."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        writer.write(b"*3\r\n$3\r\nSET\r\n$1\r\nk")
        await writer.drain()
        writer.close()
        await bounded(read_all(reader), 5.0, "the server to close the half-sent connection")
        got = await raw_exchange(srv.port, command("GET", "k") + command("PING"), "GET k; PING", 12)
    assert got == b"$-1\r\n+PONG\r\n", called(
        "GET k; PING after another client left mid-SET", got, b"$-1\r\n+PONG\r\n"
    )
