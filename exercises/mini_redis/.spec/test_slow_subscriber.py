"""The per-subscriber output-buffer limit (client-output-buffer-limit pubsub): a slow reader is cut."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _helpers import (
    LOCALHOST,
    HeldConnection,
    bounded,
    called,
    command,
    held_connection,
    running,
    step,
)

PAYLOAD = b"p" * 100
FRAME = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$100\r\n" + PAYLOAD + b"\r\n"  # one pushed message
SUBSCRIBED = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"


async def _publish(publisher: HeldConnection, want: int, n: int) -> None:
    await publisher.send(
        command("PUBLISH", "ch", PAYLOAD), b":%d\r\n" % want, f"PUBLISH ch <100 bytes> (#{n})"
    )


async def _subscriber_and_publisher(srv) -> tuple[HeldConnection, HeldConnection]:
    with step("server.handle(reader, writer) for a subscriber"):
        sub = await held_connection(srv.server)
        await sub.send(command("SUBSCRIBE", "ch"), SUBSCRIBED, "SUBSCRIBE ch")
    with step("server.handle(reader, writer) for a publisher"):
        pub = await held_connection(srv.server)
    return sub, pub


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("limit", "cut_at"),
    [(3 * len(FRAME) - 1, 3), (3 * len(FRAME), 3), (3 * len(FRAME) + 1, 4)],
    ids=["limit_one_below_3_frames", "limit_at_3_frames", "limit_one_above_3_frames"],
)
async def test_subscriber_is_cut_when_pending_bytes_reach_the_limit(
    limit: int, cut_at: int
) -> None:
    """A subscriber that reads nothing is disconnected by the message that brings its unread bytes to pubsub_limit or more, not before."""
    async with running(pubsub_limit=limit) as srv:
        sub, pub = await _subscriber_and_publisher(srv)
        for n in range(1, cut_at):
            await _publish(pub, 1, n)
            # Every message so far reaches the transport (at once, or from a queue of the server's).
            await sub.transport.until(
                lambda n=n: len(sub.transport.held) >= n * len(FRAME) or sub.transport.closed,
                f"{n} message(s) of {len(FRAME)} bytes in the subscriber's transport",
            )
            assert not sub.transport.closed, called(
                f"{n} unread message(s) of {len(FRAME)} bytes, pubsub_limit={limit}",
                "the subscriber disconnected",
                "still connected",
            )
        await _publish(pub, 1, cut_at)
        closed = sub.transport.closed
        aborted = sub.transport.aborted
        await bounded(sub.task, 3.0, "the cut subscriber's handle() to return")
        await pub.send(command("PUBLISH", "ch", "x"), b":0\r\n", "PUBLISH ch x after the cut")
    assert closed, called(
        f"{cut_at} unread messages ({cut_at * len(FRAME)} bytes), pubsub_limit={limit}",
        "still connected",
        "disconnected",
    )
    assert aborted, called(
        "closing the slow subscriber",
        "transport.close() (waits to flush what it can't send)",
        "transport.abort() (drops the pending bytes at once)",
    )


async def test_a_cut_subscriber_is_forgotten_before_the_next_command() -> None:
    """A cut subscriber's subscriptions go at once: a PUBLISH pipelined right after the one that cut it counts 0."""
    async with running(pubsub_limit=len(FRAME)) as srv:
        sub, pub = await _subscriber_and_publisher(srv)
        await pub.send(
            command("PUBLISH", "ch", PAYLOAD) + command("PUBLISH", "ch", PAYLOAD),
            b":1\r\n:0\r\n",
            f"PUBLISH ch <100 bytes> twice in one read, pubsub_limit={len(FRAME)} (one message)",
        )
        await bounded(sub.task, 3.0, "the cut subscriber's handle() to return")


@pytest.mark.points(2)
async def test_a_subscriber_that_keeps_reading_is_never_cut() -> None:
    """Bytes the subscriber has read no longer count: a reader that keeps up gets any number of messages."""
    limit = 2 * len(FRAME)
    async with running(pubsub_limit=limit) as srv:
        sub, pub = await _subscriber_and_publisher(srv)
        for n in range(1, 21):
            await _publish(pub, 1, n)
            got = await sub.take(len(FRAME), f"message #{n} in the subscriber's transport")
            assert got == FRAME, called(
                f"message #{n} with pubsub_limit={limit}, read after each", got, FRAME
            )
        assert not sub.transport.closed, called(
            "20 messages, each read at once", "disconnected", "connected"
        )


@pytest.mark.points(2)
async def test_a_slow_subscriber_does_not_hold_back_the_others() -> None:
    """Cutting a slow subscriber leaves the others alone: they keep receiving every message, and PUBLISH never waits."""
    limit = 3 * len(FRAME)
    async with running(pubsub_limit=limit) as srv:
        slow, pub = await _subscriber_and_publisher(srv)
        fast = await held_connection(srv.server)
        await fast.send(command("SUBSCRIBE", "ch"), SUBSCRIBED, "SUBSCRIBE ch (second subscriber)")
        received = b""
        for n in range(1, 11):
            want = 2 if n <= 3 else 1  # the slow one is cut by message 3 (counted, as Redis does)
            await _publish(pub, want, n)
            received += await fast.take(len(FRAME), f"message #{n} for the fast subscriber")
    assert slow.transport.closed, called(
        f"10 messages unread, pubsub_limit={limit}", "still connected", "disconnected"
    )
    assert received == FRAME * 10, called(
        "what the fast subscriber read",
        f"{len(received)} bytes",
        f"{len(FRAME * 10)} bytes: all 10 messages",
    )


async def _collect(reader: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await reader.read(65536):
        into += chunk


@pytest.mark.points(2)
async def test_slow_reader_over_real_sockets_is_cut_and_fast_ones_get_everything() -> None:
    """Over TCP: a subscriber that never reads is cut once the kernel's buffers and pubsub_limit fill; two that read get every message."""
    limit = 256 * 1024
    payload = b"z" * 32768
    frame = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$32768\r\n" + payload + b"\r\n"
    most = 500  # 16 MB: far more than loopback's buffers plus the limit
    async with running(pubsub_limit=limit) as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )  # a small window: the kernel holds little
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (LOCALHOST, srv.port))
        slow = await asyncio.open_connection(sock=sock)
        fast = [await asyncio.open_connection(LOCALHOST, srv.port) for _ in range(2)]
        pub_reader, pub_writer = await asyncio.open_connection(LOCALHOST, srv.port)
        buffers = [bytearray(), bytearray()]
        try:
            for reader, writer in [slow, *fast]:
                writer.write(command("SUBSCRIBE", "ch"))
                confirmed = await bounded(
                    reader.readexactly(len(SUBSCRIBED)), 5.0, "SUBSCRIBE ch confirmed"
                )
                assert confirmed == SUBSCRIBED, called("SUBSCRIBE ch", confirmed, SUBSCRIBED)
            collectors = [
                asyncio.create_task(_collect(r, b)) for (r, _), b in zip(fast, buffers, strict=True)
            ]
            answers = []
            while len(answers) < most and (not answers or answers[-1] == b":3\r\n"):
                pub_writer.write(command("PUBLISH", "ch", payload))
                await pub_writer.drain()
                answers.append(await bounded(pub_reader.readline(), 5.0, "the answer to PUBLISH"))
            for _ in range(5):  # life goes on for the others
                pub_writer.write(command("PUBLISH", "ch", payload))
                answers.append(await bounded(pub_reader.readline(), 5.0, "the answer to PUBLISH"))
            for task in collectors:
                task.cancel()
            await asyncio.gather(*collectors, return_exceptions=True)
            published = len(answers)
            for (reader, _), buffer in zip(fast, buffers, strict=True):
                missing = published * len(frame) - len(buffer)
                if missing > 0:
                    buffer += await bounded(
                        reader.readexactly(missing),
                        10.0,
                        "the fast subscribers to read every message",
                    )
        finally:
            for _, writer in [slow, *fast, (pub_reader, pub_writer)]:
                writer.close()
    assert answers[-1] == b":2\r\n", called(
        f"{published} PUBLISH of 32 KiB with one of three subscribers never reading, pubsub_limit={limit}",
        f"the last answer {answers[-1]!r}",
        "the slow subscriber cut (:2)",
    )
    for n, buffer in enumerate(buffers, 1):
        assert bytes(buffer) == frame * published, called(
            f"what fast subscriber {n} read",
            f"{len(buffer)} bytes",
            f"{published} messages, {published * len(frame)} bytes",
        )


@pytest.mark.points(2)
async def test_publish_never_waits_for_a_subscriber() -> None:
    """PUBLISH answers at once even when a subscriber's transport has paused writing (drain() would block)."""
    big = b"b" * 8192
    frame = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$8192\r\n" + big + b"\r\n"
    limit = 10 * 1024 * 1024
    async with running(pubsub_limit=limit) as srv:
        sub, pub = await _subscriber_and_publisher(srv)
        for n in range(1, 31):  # 240 KiB: far past the transport's 64 KiB high-water mark
            await pub.send(
                command("PUBLISH", "ch", big),
                b":1\r\n",
                f"PUBLISH ch <8 KiB> #{n}, the subscriber reading nothing",
            )
        got = b""
        while len(got) < 30 * len(frame) and not sub.transport.closed:  # now it reads
            got += await sub.take(1, "the rest of the 30 messages once the subscriber reads")
    assert got == frame * 30, called(
        "30 PUBLISH of 8 KiB while the subscriber read nothing, then it reads",
        f"{len(got)} bytes",
        f"all 30 messages, {30 * len(frame)} bytes",
    )


async def test_a_reset_subscriber_is_forgotten() -> None:
    """A subscriber whose connection is reset (RST) is forgotten: the next PUBLISH counts 0, and the server carries on."""
    async with running() as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )  # close = RST
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (LOCALHOST, srv.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(command("SUBSCRIBE", "ch"))
        got = await bounded(reader.readexactly(len(SUBSCRIBED)), 5.0, "SUBSCRIBE ch confirmed")
        assert got == SUBSCRIBED, called("SUBSCRIBE ch", got, SUBSCRIBED)
        writer.transport.abort()
        pub_reader, pub_writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            answers = []
            for _ in range(3):  # the reset reaches the server within these round trips
                pub_writer.write(command("PUBLISH", "ch", "x") + command("PING"))
                answers.append(
                    await bounded(pub_reader.readexactly(11), 5.0, "PUBLISH and PING answered")
                )
        finally:
            pub_writer.close()
    assert answers[-1] == b":0\r\n+PONG\r\n", called(
        "PUBLISH ch; PING after the subscriber's reset", answers, b":0\r\n+PONG\r\n"
    )
