"""Publish/subscribe with the real redis-py client: channels, patterns, counts, subscribed mode."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import (
    async_client,
    bounded,
    called,
    command,
    in_thread,
    raw_exchange,
    running,
    short,
    sync_client,
)


@pytest.mark.points(3)
async def test_subscriber_gets_what_is_published_sync_client() -> None:
    """A subscriber (blocking client, get_message) receives every message published to its channel, in order."""

    def subscriber_session(
        port: int, ready: asyncio.Event, loop: asyncio.AbstractEventLoop
    ) -> list[object]:
        r = sync_client(port)
        p = r.pubsub()
        try:
            p.subscribe("news")
            first = p.get_message(timeout=5.0)
            loop.call_soon_threadsafe(ready.set)
            got = [first]
            while len(got) < 4:
                message = p.get_message(timeout=5.0)
                if message is None:
                    break
                got.append(message)
            return got
        finally:
            p.close()
            r.close()

    async with running() as srv:
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        sub = asyncio.create_task(
            in_thread(
                lambda: subscriber_session(srv.port, ready, loop),
                "a subscriber's SUBSCRIBE news, then get_message() x 4",
            )
        )
        await bounded(ready.wait(), 10.0, "the subscriber's SUBSCRIBE to be confirmed")
        pub = async_client(srv.port)
        try:
            counts = [await pub.publish("news", f"m{i}") for i in range(3)]
            other = await pub.publish("sports", "x")
        finally:
            await pub.aclose()
        got = await sub
    want = [
        {"type": "subscribe", "pattern": None, "channel": b"news", "data": 1},
        *(
            {"type": "message", "pattern": None, "channel": b"news", "data": f"m{i}".encode()}
            for i in range(3)
        ),
    ]
    assert got == want, called(
        "SUBSCRIBE news; PUBLISH news m0, m1, m2; get_message() x 4", got, want
    )
    assert counts == [1, 1, 1], called("PUBLISH news m0..m2 with one subscriber", counts, [1, 1, 1])
    assert other == 0, called("PUBLISH sports x (nobody subscribed)", other, 0)


@pytest.mark.points(2)
async def test_pattern_subscriber_gets_pmessages_async_listen() -> None:
    """PSUBSCRIBE news.* receives pmessage with the pattern and the channel for every matching channel (asyncio client, listen)."""
    async with running() as srv:
        sub = async_client(srv.port)
        pub = async_client(srv.port)
        p = sub.pubsub()
        try:
            await p.psubscribe("news.*")
            seen = []

            async def take(n: int) -> None:
                async for message in p.listen():
                    seen.append(message)
                    if len(seen) == n:
                        return

            await bounded(take(1), 5.0, "the PSUBSCRIBE confirmation")
            counts = [
                await pub.publish(ch, "x")
                for ch in ("news.tech", "news", "weather.news.tech", "news.")
            ]
            await bounded(take(3), 5.0, "two pmessages")
        finally:
            await p.aclose()
            await sub.aclose()
            await pub.aclose()
    want = [
        {"type": "psubscribe", "pattern": None, "channel": b"news.*", "data": 1},
        {"type": "pmessage", "pattern": b"news.*", "channel": b"news.tech", "data": b"x"},
        {"type": "pmessage", "pattern": b"news.*", "channel": b"news.", "data": b"x"},
    ]
    assert seen == want, called(
        "PSUBSCRIBE news.*; PUBLISH news.tech, news, weather.news.tech, news.", seen, want
    )
    assert counts == [1, 0, 0, 1], called("the four PUBLISH answers", counts, [1, 0, 0, 1])


async def test_publish_counts_every_delivery() -> None:
    """PUBLISH answers how many deliveries it made: a client on the channel and on a matching pattern counts twice."""
    async with running() as srv:
        a, b, pub = async_client(srv.port), async_client(srv.port), async_client(srv.port)
        pa, pb = a.pubsub(), b.pubsub()
        try:
            await pa.subscribe("c")
            await pa.psubscribe("c*")
            await pb.psubscribe("?", "[abc]")
            for p, n in ((pa, 2), (pb, 2)):
                for _ in range(n):
                    await bounded(p.get_message(timeout=5.0), 6.0, "a subscription confirmation")
            got = await pub.publish("c", "x")
        finally:
            for closing in (pa.aclose(), pb.aclose(), a.aclose(), b.aclose(), pub.aclose()):
                await closing
    assert got == 4, called("PUBLISH c with A on 'c' and 'c*', B on '?' and '[abc]'", got, 4)


async def test_subscription_replies_count_channels_and_patterns() -> None:
    """Each (un)subscribe reply carries the client's count of channels plus patterns after it; UNSUBSCRIBE alone leaves them all."""
    async with running() as srv:
        data = (
            command("SUBSCRIBE", "a", "b")
            + command("PSUBSCRIBE", "p*")
            + command("UNSUBSCRIBE")
            + command("PUNSUBSCRIBE", "p*")
            + command("UNSUBSCRIBE")
        )
        want = (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
            b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
            b"*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        )
        got = await raw_exchange(
            srv.port,
            data,
            "SUBSCRIBE a b; PSUBSCRIBE p*; UNSUBSCRIBE; PUNSUBSCRIBE p*; UNSUBSCRIBE",
            len(want),
        )
    assert got == want, called(
        "SUBSCRIBE a b; PSUBSCRIBE p*; UNSUBSCRIBE; PUNSUBSCRIBE p*; UNSUBSCRIBE (raw)", got, want
    )


async def test_quit_is_allowed_in_subscribed_mode() -> None:
    """QUIT works in subscribed mode: it answers +OK and the server closes the connection."""
    async with running() as srv:
        data = command("SUBSCRIBE", "c") + command("QUIT")
        want = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n+OK\r\n"
        got = await raw_exchange(srv.port, data, "SUBSCRIBE c; QUIT")
    assert got == want, called("SUBSCRIBE c; QUIT (raw, read until the server closes)", got, want)


async def test_unsubscribe_without_names_counts_the_other_kind() -> None:
    """UNSUBSCRIBE with no names and no channels (but patterns) still answers one reply with a nil name and the count of patterns; PUNSUBSCRIBE likewise with only channels."""
    async with running() as srv:
        data = (
            command("PSUBSCRIBE", "p*")
            + command("UNSUBSCRIBE")
            + command("PUNSUBSCRIBE")
            + command("SUBSCRIBE", "a")
            + command("PUNSUBSCRIBE")
            + command("UNSUBSCRIBE")
        )
        want = (
            b"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n"
            b"*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n"
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
            b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"
        )
        got = await raw_exchange(
            srv.port,
            data,
            "PSUBSCRIBE p*; UNSUBSCRIBE; PUNSUBSCRIBE; SUBSCRIBE a; PUNSUBSCRIBE; UNSUBSCRIBE",
            len(want),
        )
    assert got == want, called(
        "PSUBSCRIBE p*; UNSUBSCRIBE; PUNSUBSCRIBE; SUBSCRIBE a; PUNSUBSCRIBE; UNSUBSCRIBE (raw)",
        got,
        want,
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "cmd",
    [["GET", "k"], ["SET", "k", "v"], ["PUBLISH", "c", "m"], ["ECHO", "x"]],
    ids=["get", "set", "publish", "echo"],
)
async def test_subscribed_mode_allows_only_pubsub_commands(cmd: list[str]) -> None:
    """With a subscription, other commands answer Redis's "Can't execute ... only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET" error."""
    async with running() as srv:
        want = (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
            b"-ERR Can't execute '" + cmd[0].lower().encode() + b"': only (P|S)SUBSCRIBE / "
            b"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
        )
        got = await raw_exchange(
            srv.port,
            command("SUBSCRIBE", "c") + command(*cmd),
            f"SUBSCRIBE c; {' '.join(cmd)}",
            len(want),
        )
    assert got == want, called(f"SUBSCRIBE c; {' '.join(cmd)} (raw)", got, want)


async def test_ping_in_subscribed_mode_and_leaving_it() -> None:
    """In subscribed mode PING answers ["pong", ""]; after the last UNSUBSCRIBE normal commands work again."""
    async with running() as srv:
        data = (
            command("SUBSCRIBE", "c")
            + command("PING")
            + command("PING", "hi")
            + command("UNSUBSCRIBE", "c")
            + command("PING")
        )
        want = (
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
            b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
            b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
            b"+PONG\r\n"
        )
        got = await raw_exchange(
            srv.port, data, "SUBSCRIBE c; PING; PING hi; UNSUBSCRIBE c; PING", len(want)
        )
    assert got == want, called("SUBSCRIBE c; PING; PING hi; UNSUBSCRIBE c; PING (raw)", got, want)


async def test_a_gone_subscriber_is_forgotten() -> None:
    """When a subscriber's connection closes, the server forgets its subscriptions: PUBLISH counts 0."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(command("SUBSCRIBE", "c") + command("PSUBSCRIBE", "*"))
        await bounded(reader.readexactly(58), 5.0, "the two subscription confirmations")
        writer.close()
        # EOF here means the server has finished with the connection (its close answers ours).
        await bounded(reader.read(), 5.0, "the server to close the connection")
        pub = async_client(srv.port)
        try:
            got = await pub.publish("c", "x")
        finally:
            await pub.aclose()
    assert got == 0, called("PUBLISH c after the only subscriber closed", got, 0)


async def test_unsubscribing_stops_delivery() -> None:
    """After UNSUBSCRIBE a client gets no more messages from that channel, while its other channel keeps delivering."""
    async with running() as srv:
        sub, pub = async_client(srv.port), async_client(srv.port)
        p = sub.pubsub()
        try:
            await p.subscribe("a", "b")
            await p.unsubscribe("a")
            got = [await pub.publish("a", "1"), await pub.publish("b", "2")]
            messages = []
            while len(messages) < 4:
                message = await bounded(p.get_message(timeout=5.0), 6.0, "a message")
                if message is None:
                    break
                messages.append(message)
        finally:
            await p.aclose()
            await sub.aclose()
            await pub.aclose()
    kinds = [(m["type"], m["channel"], m["data"]) for m in messages]
    want = [
        ("subscribe", b"a", 1),
        ("subscribe", b"b", 2),
        ("unsubscribe", b"a", 1),
        ("message", b"b", b"2"),
    ]
    assert got == [0, 1], called("PUBLISH a 1; PUBLISH b 2 after UNSUBSCRIBE a", got, [0, 1])
    assert kinds == want, called("what the subscriber got", short(kinds, 300), want)


async def test_sync_pubsub_ping_roundtrip() -> None:
    """redis-py's PubSub.ping() works: the server answers PING in subscribed mode as redis-py expects."""

    def session() -> object:
        r = sync_client(srv.port)
        p = r.pubsub()
        try:
            p.subscribe("c")
            p.get_message(timeout=5.0)
            p.ping()
            return p.get_message(timeout=5.0)
        finally:
            p.close()
            r.close()

    async with running() as srv:
        got = await in_thread(session, "SUBSCRIBE c; PubSub.ping(); get_message()")
    want = {"type": "pong", "pattern": None, "channel": None, "data": b""}
    assert got == want, called("PubSub.ping() then get_message()", got, want)


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (["FLY"], b"-ERR unknown command 'FLY', with args beginning with: \r\n"),
        (["GET"], b"-ERR wrong number of arguments for 'get' command\r\n"),
    ],
    ids=["unknown_command", "wrong_arity"],
)
async def test_subscribed_mode_checks_the_command_first(cmd: list[str], error: bytes) -> None:
    """In subscribed mode an unknown command or a wrong argument count gets that error, as Redis checks them first (server.c, processCommand)."""
    async with running() as srv:
        want = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n" + error
        got = await raw_exchange(
            srv.port,
            command("SUBSCRIBE", "c") + command(*cmd),
            f"SUBSCRIBE c; {' '.join(cmd)}",
            len(want),
        )
    assert got == want, called(f"SUBSCRIBE c; {' '.join(cmd)} (raw)", got, want)


async def test_channels_and_messages_are_binary_safe() -> None:
    """Channel names and messages may hold any bytes, CR LF and NUL included; they arrive exactly as published."""
    channel, payload = b"ch\r\n\x00", b"\xff\r\n*1\r\n$4\r\nPING\r\n"
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(command("SUBSCRIBE", channel))
            confirm = b"*3\r\n$9\r\nsubscribe\r\n$5\r\n" + channel + b"\r\n:1\r\n"
            got = await bounded(reader.readexactly(len(confirm)), 5.0, "the SUBSCRIBE confirmation")
            assert got == confirm, called(f"SUBSCRIBE {channel!r}", got, confirm)
            count = await raw_exchange(srv.port, command("PUBLISH", channel, payload), "PUBLISH", 4)
            push = (
                b"*3\r\n$7\r\nmessage\r\n$5\r\n"
                + channel
                + b"\r\n$%d\r\n%s\r\n" % (len(payload), payload)
            )
            got = await bounded(reader.readexactly(len(push)), 5.0, "the pushed message")
        finally:
            writer.close()
    assert count == b":1\r\n", called(f"PUBLISH {channel!r} <binary>", count, b":1\r\n")
    assert got == push, called("what the subscriber received", got, push)
