"""Hidden specs for Room: a broadcast to every member, members leaving, and the slow-member
policy (a bounded queue per member; a member that falls behind is dropped)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import websockets
from _helpers import running
from websocket import ConnectionClosed, Room

from grader.spectools import LOCALHOST, bounded, called, short, step


def make_room(**options) -> Room:
    with step(f"Room({', '.join(f'{k}={v}' for k, v in options.items())})"):
        return Room(**options)


def chat(room: Room, joined: asyncio.Queue):
    """The handler: join, broadcast every message received, leave at the end."""

    async def handler(websocket):
        room.join(websocket)
        joined.put_nowait(websocket)
        try:
            async for message in websocket:
                room.broadcast(message)
        finally:
            room.leave(websocket)

    return handler


async def connect(port: int, **options):
    return await bounded(
        websockets.connect(f"ws://{LOCALHOST}:{port}/room", open_timeout=5, **options),
        10.0,
        "a websockets client to connect",
    )


@pytest.mark.points(3)
async def test_broadcast_reaches_every_member_in_order():
    """A message one member sends reaches every member, the sender included, in the order sent."""
    room = make_room()
    joined: asyncio.Queue = asyncio.Queue()
    async with running(chat(room, joined)) as port:
        clients = [await connect(port) for _ in range(3)]
        try:
            for _ in clients:
                await bounded(joined.get(), 5.0, "the handler to join the room")
            assert len(room) == 3, called("len(room) after three joins", len(room), 3)
            await clients[0].send("one")
            await clients[1].send("two")
            got = []
            for client in clients:
                got.append([await bounded(client.recv(), 5.0, "a broadcast") for _ in range(2)])
        finally:
            for client in clients:
                await client.close()
    assert got == [["one", "two"]] * 3, called(
        "client 0 sends 'one', client 1 sends 'two'; each receives", got, [["one", "two"]] * 3
    )


@pytest.mark.points(2)
async def test_a_member_that_disconnects_leaves():
    """A member whose connection closes is no longer in the room, and broadcasts go on for the others."""
    room = make_room()
    joined: asyncio.Queue = asyncio.Queue()
    async with running(chat(room, joined)) as port:
        first, second = await connect(port), await connect(port)
        try:
            for _ in range(2):
                await bounded(joined.get(), 5.0, "the handler to join the room")
            await first.close()
            await second.send("still here")
            got = await bounded(second.recv(), 5.0, "the broadcast to the remaining member")
        finally:
            await second.close()
    assert got == "still here", called(
        "after one member left, broadcast('still here')", got, "still here"
    )


@pytest.mark.points(1)
async def test_leave_stops_delivery():
    """After room.leave(ws), a broadcast no longer reaches ws, and len(room) drops by one."""
    room = make_room()
    joined: asyncio.Queue = asyncio.Queue()

    async def handler(websocket):
        room.join(websocket)
        joined.put_nowait(websocket)
        async for message in websocket:
            if message == "leave":
                room.leave(websocket)
                await websocket.send("left")

    async with running(handler) as port:
        client = await connect(port)
        try:
            await bounded(joined.get(), 5.0, "the handler to join the room")
            room.broadcast("before")
            first = await bounded(client.recv(), 5.0, "the first broadcast")
            await client.send("leave")
            second = await bounded(client.recv(), 5.0, "the 'left' reply")
            room.broadcast("after")
            size = len(room)
            await client.send("leave")
            third = await bounded(client.recv(), 5.0, "the second 'left' reply")
        finally:
            await client.close()
    got = (first, second, size, third)
    assert got == ("before", "left", 0, "left"), called(
        "broadcast, leave, broadcast: what the member received and len(room)",
        got,
        ("before", "left", 0, "left"),
    )


@pytest.mark.points(3)
async def test_slow_member_is_dropped_and_others_keep_up():
    """A member that stops reading is dropped once max_queue messages wait for it; the members
    that read keep receiving every message, in order: one slow reader can neither stall the room
    nor grow the server's memory without bound."""
    room = make_room(max_queue=4)
    joined: asyncio.Queue = asyncio.Queue()
    async with running(chat(room, joined)) as port:
        # The slow member: a raw socket with a small receive buffer that never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        await bounded(loop.sock_connect(slow, (LOCALHOST, port)), 5.0, "the slow member to connect")
        request = (
            "GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(slow, request.encode())
        fast = await connect(port, max_size=None)
        try:
            for _ in range(2):
                await bounded(joined.get(), 5.0, "the handler to join the room")
            chunk = b"m" * 65536
            sent = 0
            while len(room) == 2 and sent < 400:
                room.broadcast(chunk + sent.to_bytes(4, "big"))
                got = await bounded(fast.recv(), 5.0, f"broadcast {sent} at the reading member")
                assert got[-4:] == sent.to_bytes(4, "big"), called(
                    f"the reading member's message {sent}", short(got[-4:]), sent.to_bytes(4, "big")
                )
                sent += 1
            size = len(room)
            room.broadcast(b"after")
            after = await bounded(fast.recv(), 5.0, "a broadcast after the slow member was dropped")
        finally:
            slow.close()
            await fast.close()
    assert size == 1, called(
        f"{sent} broadcasts of 64 KiB with one member never reading (max_queue=4): len(room)",
        size,
        "1: the slow member dropped",
    )
    assert after == b"after", called(
        "broadcast(b'after') to the remaining member", short(after), b"after"
    )


class StuckMember:
    """A stand-in for a WebSocket whose peer stopped reading: the first send never returns."""

    def __init__(self) -> None:
        self.path = "/room"
        self.close_code: int | None = None
        self.sent: list = []
        self.sending = asyncio.Event()
        self.aborted = 0
        self._never = asyncio.Event()

    async def send(self, message) -> None:
        self.sent.append(message)
        self.sending.set()
        await self._never.wait()

    async def recv(self):
        await self._never.wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.close_code = code

    def abort(self) -> None:
        self.aborted += 1
        self.close_code = 1006


@pytest.mark.points(2)
@pytest.mark.parametrize("max_queue", [1, 4], ids=["max_queue=1", "max_queue=4"])
async def test_queue_limit_is_exact(max_queue):
    """A member stuck in send keeps its place while max_queue messages wait for it, and is
    removed and aborted by the broadcast one past that."""
    room = make_room(max_queue=max_queue)
    member = StuckMember()
    with step("room.join(member)"):
        room.join(member)
    room.broadcast("first")
    await bounded(member.sending.wait(), 5.0, "the room to start sending 'first' to the member")
    for i in range(max_queue):
        room.broadcast(f"queued {i}")
    kept = (len(room), member.aborted)
    room.broadcast("one too many")
    dropped = (len(room), member.aborted)
    assert kept == (1, 0), called(
        f"Room(max_queue={max_queue}): 1 message in send + {max_queue} queued: (len(room), aborts)",
        kept,
        (1, 0),
    )
    assert dropped == (0, 1), called(
        f"Room(max_queue={max_queue}): one broadcast more: (len(room), aborts)", dropped, (0, 1)
    )


@pytest.mark.points(1)
async def test_leave_ends_the_member_task():
    """leave(ws) ends the member's sender task: nothing of the room keeps running for it."""
    room = make_room()
    members = [StuckMember() for _ in range(3)]
    before = asyncio.all_tasks()
    with step("room.join(member) x3"):
        for member in members:
            room.join(member)
    room.broadcast("hello")
    for member in members:
        await bounded(member.sending.wait(), 5.0, "the room to start sending to each member")
    with step("room.leave(member) x3"):
        for member in members:
            room.leave(member)
    started = asyncio.all_tasks() - before
    if started:
        await bounded(asyncio.wait(started), 5.0, "the members' tasks to end after leave()")
    running_after = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert len(room) == 0 and not running_after, called(
        "join x3, broadcast, leave x3: (len(room), tasks still running)",
        (len(room), len(running_after)),
        (0, 0),
    )


class RecordingMember(StuckMember):
    """A member whose sends complete at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def send(self, message) -> None:
        self.sent.append(message)
        self.arrived.set()


class ClosedMember(StuckMember):
    """A member whose connection is already closed: send raises ConnectionClosed."""

    async def send(self, message) -> None:
        self.sent.append(message)
        self.sending.set()
        raise ConnectionClosed(1006, "gone")


async def turns_until(condition, turns: int = 200) -> bool:
    """Yield to the event loop (no clock involved) until ``condition()`` holds, at most ``turns`` times."""
    for _ in range(turns):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


@pytest.mark.points(1)
async def test_joining_twice_changes_nothing():
    """Joining twice keeps one membership and one sender task: each broadcast arrives once."""
    room = make_room()
    member = RecordingMember()
    before = asyncio.all_tasks()
    with step("room.join(member) twice"):
        room.join(member)
        room.join(member)
    room.broadcast("once")
    await bounded(member.arrived.wait(), 5.0, "the broadcast to reach the member")
    await turns_until(lambda: len(member.sent) > 1, 20)
    tasks = [t for t in asyncio.all_tasks() - before if not t.done()]
    got = (len(room), member.sent, len(tasks))
    room.leave(member)
    assert got == (1, ["once"], 1), called(
        "join twice, broadcast('once'): (len(room), messages received, sender tasks)",
        got,
        (1, ["once"], 1),
    )


@pytest.mark.points(1)
async def test_a_closed_member_is_removed_by_its_sender():
    """A member whose send() raises ConnectionClosed is removed from the room by its sender
    task, even if nobody calls leave()."""
    room = make_room()
    member = ClosedMember()
    with step("room.join(closed member)"):
        room.join(member)
    room.broadcast("hello?")
    await bounded(member.sending.wait(), 5.0, "the room to try sending to the member")
    removed = await turns_until(lambda: len(room) == 0)
    assert removed, called(
        "broadcast to a member whose send raises ConnectionClosed: len(room)", len(room), 0
    )
