"""Helpers for the reliable_udp specs.

* an independent LRCP encoder/decoder (a byte loop and a regular expression, nothing shared with
  the learner's code) to write datagrams by hand and read what the endpoint put on the wire;
* ``Peer``: one endpoint on a FakeClock, with the spec playing the other side by hand;
* ``Relay``: two endpoints joined by a seeded lossy network (sans-IO: no sockets, no sleeping);
  time moves only when nothing is in flight, straight to the earliest ``next_deadline()``;
* UDP helpers for the adapter specs: a raw client socket and a lossy relay, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from reliable_udp import Closed, Connected, DataReceived, LrcpEndpoint

from grader.spectools import LOCALHOST, FakeClock, bounded, short

START = 1000.0
CLIENT = ("192.0.2.10", 40000)  # TEST-NET-1 addresses: opaque to a sans-IO endpoint
SERVER = ("192.0.2.20", 7000)
STRANGER = ("198.51.100.7", 5555)

# --- the wire format, written independently ---------------------------------------------------

_DATA = re.compile(rb"/data/([0-9]+)/([0-9]+)/((?:[^/\\]|\\[/\\])*)/")
_ACK = re.compile(rb"/ack/([0-9]+)/([0-9]+)/")
_CLOSE = re.compile(rb"/close/([0-9]+)/")


def escape(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte in (0x2F, 0x5C):  # "/" and "\"
            out.append(0x5C)
        out.append(byte)
    return bytes(out)


def unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x5C:
            i += 1
        out.append(raw[i])
        i += 1
    return bytes(out)


def data_msg(session: int, pos: int, payload: bytes) -> bytes:
    return b"/data/%d/%d/" % (session, pos) + escape(payload) + b"/"


def decode_data(datagram: bytes) -> tuple[int, int, bytes] | None:
    """(session, pos, unescaped payload) of a well-formed data message, else None."""
    m = _DATA.fullmatch(datagram)
    return (int(m[1]), int(m[2]), unescape(m[3])) if m else None


def decode_ack(datagram: bytes) -> tuple[int, int] | None:
    m = _ACK.fullmatch(datagram)
    return (int(m[1]), int(m[2])) if m else None


def is_close(datagram: bytes, session: int) -> bool:
    m = _CLOSE.fullmatch(datagram)
    return bool(m) and int(m[1]) == session


def show(datagrams: list[tuple[bytes, Any]] | list[bytes]) -> str:
    """A short readable list of datagrams for a message."""
    items = [d[0] if isinstance(d, tuple) else d for d in datagrams]
    if len(items) > 6:
        return short(items[:6], 200)[:-1] + f", ... ({len(items)} datagrams)]"
    return short(items, 200)


def first_difference(got: bytes, want: bytes) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"they differ first at byte {i}"
    return f"{len(got)} bytes delivered, {len(want)} sent"


def stream_of(events: list[Any], session: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived) and e.session == session)


# --- one endpoint, the other side played by hand ----------------------------------------------


class Peer:
    """An endpoint under test on a FakeClock; the spec is its peer at ``addr``."""

    def __init__(self, addr: tuple[str, int] = CLIENT, **options: Any) -> None:
        self.clock = FakeClock(START)
        self.addr = addr
        self.endpoint = LrcpEndpoint(clock=self.clock, **options)

    def feed(self, datagram: bytes, addr: tuple[str, int] | None = None) -> list[tuple[bytes, Any]]:
        """Deliver one datagram from the peer; return what the endpoint sent in response."""
        self.endpoint.datagram_received(datagram, addr or self.addr)
        return self.endpoint.datagrams_to_send()

    def replies(self, datagram: bytes, addr: tuple[str, int] | None = None) -> list[bytes]:
        """Like ``feed``, but only the datagram bytes; fails if one went to another address."""
        out = self.feed(datagram, addr)
        wrong = [(d, a) for d, a in out if a != (addr or self.addr)]
        assert not wrong, (
            f"Delivered {short(datagram)} from {addr or self.addr}; the endpoint sent {short(wrong)} "
            f"to another address; replies go to the peer of the session"
        )
        return [d for d, _ in out]

    def sent(self) -> list[bytes]:
        return [d for d, _ in self.endpoint.datagrams_to_send()]

    def events(self) -> list[Any]:
        return self.endpoint.events()

    def advance(self, seconds: float) -> list[bytes]:
        """Move the clock, run the timers; return the datagrams they sent."""
        self.clock.advance(seconds)
        self.endpoint.tick()
        return self.sent()

    def open(self, session: int) -> None:
        """The spec connects ``session``; the endpoint must ack it (events drained)."""
        got = self.replies(b"/connect/%d/" % session)
        want = [b"/ack/%d/0/" % session]
        assert got == want, called_on(b"/connect/%d/" % session, got, want)
        events = self.events()
        assert events == [Connected(session)], called_on(
            b"/connect/%d/" % session, events, [Connected(session)], what="events()"
        )


def called_on(datagram: bytes, got: Any, want: Any, what: str = "the replies") -> str:
    return (
        f"Delivered {short(datagram)}; {what} were {short(got, 200)}; expected {short(want, 200)}"
    )


# --- two endpoints, a seeded lossy network between them ---------------------------------------


class Relay:
    """A client and a server endpoint joined by a network that loses, duplicates and reorders.

    Each datagram is dropped with probability ``loss``, else delivered once or (``duplicate``)
    twice; each copy is either in flight now or (``delay``) held back until time next moves,
    so it arrives late, after retransmissions. In-flight datagrams are delivered in a random
    order. All of it comes from one ``random.Random(seed)``: the same seed, the same network.
    """

    def __init__(
        self,
        seed: int,
        *,
        loss: float = 0.3,
        duplicate: float = 0.1,
        delay: float = 0.2,
        **options: Any,
    ) -> None:
        self.clock = FakeClock(START)
        self.rng = random.Random(seed)
        self.loss, self.duplicate, self.delay = loss, duplicate, delay
        self.client = LrcpEndpoint(clock=self.clock, **options)
        self.server = LrcpEndpoint(clock=self.clock, **options)
        self._nodes = {"client": (self.client, CLIENT), "server": (self.server, SERVER)}
        self._by_addr = {CLIENT: "client", SERVER: "server"}
        # every datagram put on the wire, in order: (sender, receiver address, bytes)
        self.wire: list[tuple[str, Any, bytes]] = []
        self.events: dict[str, list[Any]] = {"client": [], "server": []}
        self._flight: list[tuple[str, str, bytes]] = []  # (sender, receiver, datagram)
        self._held: list[tuple[str, str, bytes]] = []
        self.steps = 0

    def _collect(self) -> None:
        for name, (endpoint, _) in self._nodes.items():
            for datagram, addr in endpoint.datagrams_to_send():
                self.wire.append((name, addr, datagram))
                target = self._by_addr.get(addr)
                if target is None or self.rng.random() < self.loss:
                    continue
                copies = 2 if self.rng.random() < self.duplicate else 1
                for _ in range(copies):
                    queue = self._held if self.rng.random() < self.delay else self._flight
                    queue.append((name, target, datagram))
            self.events[name].extend(endpoint.events())

    def pump(self, limit: int = 50_000) -> None:
        """Deliver everything in flight (and whatever that provokes) at the current instant."""
        self._collect()
        delivered = 0
        while self._flight:
            sender, target, datagram = self._flight.pop(self.rng.randrange(len(self._flight)))
            self._nodes[target][0].datagram_received(datagram, self._nodes[sender][1])
            self._collect()
            delivered += 1
            if delivered > limit:
                raise AssertionError(
                    f"the endpoints exchanged more than {limit} datagrams without time moving "
                    f"(a message storm); last one: {short(datagram)}"
                )

    def step(self) -> bool:
        """Move the clock to the earliest next_deadline() and tick both; False if none is set."""
        ends = (self.client.next_deadline(), self.server.next_deadline())
        deadlines = [d for d in ends if d is not None]
        if not deadlines:
            return False
        self.clock.now = max(self.clock.now, min(deadlines))
        self._flight += self._held
        self._held = []
        self.client.tick()
        self.server.tick()
        self.steps += 1
        return True

    def run_until(self, done: Callable[[], bool], what: str, max_steps: int = 120) -> None:
        """Deliver and move time until ``done()``; fail (never hang) after ``max_steps`` timers."""
        for _ in range(max_steps):
            self.pump()
            if done():
                return
            if not self.step():
                break
        self.pump()
        if done():
            return
        idle = [
            name for name, (endpoint, _) in self._nodes.items() if endpoint.next_deadline() is None
        ]
        stalled = (
            f"the {' and the '.join(idle)} had no timer left to run (nothing would ever resend)"
            if idle
            else "both still had timers running"
        )
        raise AssertionError(
            f"{what}: incomplete, {self.progress()}, after {self.clock.now - START:g} s of fake "
            f"time and {len(self.wire)} datagrams; {stalled}"
        )

    def advance(self, seconds: float) -> None:
        """Move time by ``seconds`` on the current network, ticking both, then deliver."""
        self.clock.advance(seconds)
        self._flight += self._held
        self._held = []
        self.client.tick()
        self.server.tick()
        self.pump()

    def stream(self, side: str, session: int) -> bytes:
        return stream_of(self.events[side], session)

    def count(self, side: str, kind: type) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for e in self.events[side]:
            if isinstance(e, kind):
                counts[e.session] += 1
        return dict(counts)

    def progress(self) -> str:
        got = {s: len(self.stream("server", s)) for s in self.count("server", Connected)}
        back = {s: len(self.stream("client", s)) for s in self.count("client", Connected)}
        closed = self.count("client", Closed) | self.count("server", Closed)
        return (
            f"bytes delivered to the server per session {short(got)}, to the client "
            f"{short(back)}; sessions closed {short(sorted(closed))}"
        )


def payload(seed: int, size: int) -> bytes:
    """Bytes heavy in "/" and "\\" (and newlines, and binary), so escaping is exercised."""
    rng = random.Random(seed)
    alphabet = b"ab/\\\n" + bytes(range(256))
    weights = [6, 6, 5, 5, 2] + [0.05] * 256
    return bytes(rng.choices(alphabet, weights, k=size))


# --- real UDP, on 127.0.0.1 -------------------------------------------------------------------


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        pass


class RawClient:
    """A plain UDP socket on 127.0.0.1 for the spec to speak LRCP by hand."""

    def __init__(self, inbox: _Inbox) -> None:
        self._inbox = inbox

    @classmethod
    async def open(cls) -> RawClient:
        loop = asyncio.get_running_loop()
        _, inbox = await loop.create_datagram_endpoint(_Inbox, local_addr=(LOCALHOST, 0))
        return cls(inbox)

    def send(self, datagram: bytes, addr: tuple[str, int]) -> None:
        assert self._inbox.transport is not None
        self._inbox.transport.sendto(datagram, addr)

    async def recv(self, timeout: float, what: str) -> bytes:
        data, _ = await bounded(self._inbox.queue.get(), timeout, what)
        return data

    async def recv_until(self, pred: Callable[[bytes], bool], timeout: float, what: str) -> bytes:
        """The first datagram satisfying ``pred`` (others are skipped), within ``timeout``."""

        async def wait() -> bytes:
            while True:
                data, _ = await self._inbox.queue.get()
                if pred(data):
                    return data

        return await bounded(wait(), timeout, what)

    def close(self) -> None:
        if self._inbox.transport is not None:
            self._inbox.transport.close()


class UdpRelay(asyncio.DatagramProtocol):
    """A lossy UDP relay on 127.0.0.1: the client talks to it as if it were the server.

    Datagrams from the server go to the last client address seen; everything else goes to the
    server. Each is dropped with probability ``loss`` (seeded), sometimes duplicated, and sent
    after a small random delay, so datagrams also overtake each other.
    """

    def __init__(self, server: tuple[str, int], seed: int, loss: float) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.loss = loss
        self.client: Any = None
        self.transport: asyncio.DatagramTransport | None = None
        self.forwarded = 0
        self.dropped = 0

    @classmethod
    async def open(cls, server: tuple[str, int], seed: int, loss: float = 0.3) -> UdpRelay:
        loop = asyncio.get_running_loop()
        _, relay = await loop.create_datagram_endpoint(
            lambda: cls(server, seed, loss), local_addr=(LOCALHOST, 0)
        )
        return relay

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if tuple(addr[:2]) == tuple(self.server[:2]):
            target = self.client
        else:
            self.client, target = addr, self.server
        if target is None or self.rng.random() < self.loss:
            self.dropped += 1
            return
        loop = asyncio.get_running_loop()
        copies = 2 if self.rng.random() < 0.05 else 1
        for _ in range(copies):
            loop.call_later(self.rng.uniform(0, 0.01), self._forward, data, target)

    def _forward(self, data: bytes, target: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.forwarded += 1
            self.transport.sendto(data, target)

    def error_received(self, exc: Exception) -> None:
        pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
