"""Examples of what the mini Redis server must do. Run: nox -s try -- mini_redis"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aredis

try:
    from mini_redis import MiniRedis, RespParser, encode
except ImportError as err:
    raise ImportError(
        "MISSING CLASS --> could not import MiniRedis, RespParser, encode from mini_redis.py"
    ) from err


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def serve(**options: object) -> AsyncIterator[tuple[MiniRedis, aredis.Redis]]:
    server = MiniRedis(expire_interval=None, **options)
    port = await server.start("127.0.0.1", 0)
    client = aredis.Redis(host="127.0.0.1", port=port, protocol=2)  # redis-py 8 defaults to RESP3
    try:
        yield server, client
    finally:
        await client.aclose()
        await server.close()


def test_parser_reads_a_pipeline_split_anywhere() -> None:
    parser = RespParser()
    parser.feed(b"*2\r\n$3\r\nGET\r\n$1\r")
    assert parser.next_command() is None, "half a command: next_command() should be None"
    parser.feed(b"\nk\r\nPING\r\n")
    assert parser.next_command() == [b"GET", b"k"], "the array command"
    assert parser.next_command() == [b"PING"], "the inline command after it"
    assert parser.next_command() is None, "nothing left"


def test_encode() -> None:
    assert encode(b"hi") == b"$2\r\nhi\r\n", f"encode(b'hi') = {encode(b'hi')!r}"
    assert encode(None) == b"$-1\r\n", f"encode(None) = {encode(None)!r}"
    assert encode([1, b"a"]) == b"*2\r\n:1\r\n$1\r\na\r\n", (
        f"encode([1, b'a']) = {encode([1, b'a'])!r}"
    )


async def test_set_get_incr_with_redis_py() -> None:
    async with serve() as (_, r):
        assert await r.ping() is True, "PING"
        assert await r.set("greeting", "hello") is True, "SET greeting hello"
        assert await r.get("greeting") == b"hello", "GET greeting"
        assert await r.incr("visits") == 1, "INCR visits (missing counts as 0)"
        assert await r.incrby("visits", 9) == 10, "INCRBY visits 9"


async def test_expiry_on_an_injected_clock() -> None:
    clock = Clock()
    async with serve(clock=clock) as (_, r):
        await r.set("session", "abc", ex=10)
        assert await r.ttl("session") == 10, "TTL right after SET EX 10"
        clock.now += 10
        assert await r.get("session") == b"abc", "still there at its deadline"
        clock.now += 0.001
        assert await r.get("session") is None, "gone just after it"


async def test_publish_and_subscribe() -> None:
    async with serve() as (_, r):
        pubsub = r.pubsub()
        await pubsub.subscribe("news")
        confirm = await pubsub.get_message(timeout=2.0)
        assert confirm is not None and confirm["type"] == "subscribe", f"got {confirm}"
        assert await r.publish("news", "hello") == 1, "PUBLISH news: one subscriber"
        message = await pubsub.get_message(timeout=2.0)
        assert message is not None and message["data"] == b"hello", f"got {message}"
        await pubsub.aclose()
