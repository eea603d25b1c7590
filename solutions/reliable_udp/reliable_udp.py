"""Reliable, ordered byte streams over UDP: the Line Reversal Control Protocol (LRCP).

Two layers, in the sans-IO style of h11 and wsproto:

* ``LrcpEndpoint`` — the protocol and nothing else. Datagrams go in through
  ``datagram_received``, application bytes through ``send``; datagrams to put on the wire come
  out of ``datagrams_to_send`` and things the application should know about come out of
  ``events``. It never touches a socket and never reads the wall clock: time comes from the
  injected ``clock``, and ``tick`` runs whatever timers are due.
* ``LrcpSocket`` — the thin asyncio adapter: a UDP socket feeds the endpoint, the endpoint's
  output goes to the socket, and one ``loop.call_at(next_deadline())`` timer calls ``tick``.

Theory of operation. Each side of a session keeps two counters. ``received`` is how many bytes
of the peer's stream have been delivered in order; it is also the only ack we ever send, so
acks are cumulative and can't move backwards. ``acked`` is the highest ack the peer sent us;
everything after it is kept in ``unacked`` and resent, all of it, when the retransmission timer
fires (go-back-N). A data message is accepted only if it starts at or before ``received``:
no reassembly buffer, a gap is simply answered with the current ack.

Expiry follows LRCP: a session is given up only while the peer owes us something (an ack for
our data, or for our connect) and stays silent for ``expire_after``. A quiet peer that owes
nothing is not gone, so an idle session lives on and costs no timer at all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import cast

__all__ = [
    "MAX_MESSAGE",
    "MAX_NUMBER",
    "Closed",
    "Connected",
    "DataReceived",
    "Event",
    "LrcpEndpoint",
    "LrcpSocket",
]

MAX_MESSAGE = 1000  # every LRCP datagram is SMALLER than this many bytes
MAX_NUMBER = 2**31  # every numeric field is smaller than this

Address = Hashable  # whatever identifies a peer: (host, port) for UDP


@dataclass(frozen=True)
class Connected:
    """The session is open: a peer's connect arrived, or the peer acked our connect."""

    session: int


@dataclass(frozen=True)
class DataReceived:
    """The next bytes of the peer's stream, in order, each byte exactly once."""

    session: int
    data: bytes


@dataclass(frozen=True)
class Closed:
    """The session is over (closed by either side, misbehaving peer, or expired)."""

    session: int


Event = Connected | DataReceived | Closed


# --- the wire format --------------------------------------------------------------------------
#
# A field is any run of bytes other than "/" and "\", or the escapes "\/" and "\\". A message is
# "/" followed by one or more fields, each closed by "/". The alternatives in _FIELD are
# disjoint, so the regular expressions run in linear time on hostile input.

_FIELD = rb"(?:[^/\\]|\\[/\\])*"
_MESSAGE = re.compile(rb"/(?:" + _FIELD + rb"/)+")
_FIELDS = re.compile(rb"(" + _FIELD + rb")/")
_UNESCAPE = re.compile(rb"\\([/\\])")
_NUMBER = re.compile(rb"[0-9]+")  # int() alone would also take " 7", "+7", "7_0" and "٧"
_ARITY = {b"connect": 1, b"data": 3, b"ack": 2, b"close": 1}


def _escape(data: bytes) -> bytes:
    # Backslashes first: escaping "/" first would double the backslashes it just added.
    return data.replace(b"\\", b"\\\\").replace(b"/", b"\\/")


def _number(field: bytes) -> int | None:
    if not _NUMBER.fullmatch(field):
        return None
    value = int(field)
    return value if value < MAX_NUMBER else None


def _parse(datagram: bytes) -> tuple | None:
    """The message as a tuple (kind, session, *numbers, [payload]); None if it is not LRCP."""
    if len(datagram) >= MAX_MESSAGE or not _MESSAGE.fullmatch(datagram):
        return None
    kind, *fields = _FIELDS.findall(datagram, 1)
    if _ARITY.get(kind) != len(fields):
        return None
    payload = None
    if kind == b"data":
        *fields, raw = fields
        payload = _UNESCAPE.sub(rb"\1", raw)
    numbers = [_number(f) for f in fields]
    if None in numbers:
        return None
    message = (kind.decode(), *numbers)
    return message if payload is None else (*message, payload)


# --- the protocol -----------------------------------------------------------------------------


@dataclass
class _Session:
    peer: Address
    established: bool = True  # False while our own connect waits for its ack
    received: int = 0  # bytes of the peer's stream delivered in order == the ack we send
    acked: int = 0  # the highest ack the peer sent == the start of `unacked`
    sent: int = 0  # bytes the application gave us == acked + len(unacked)
    unacked: bytearray = field(default_factory=bytearray)
    retransmit_at: float | None = None  # running retransmission timer, if any
    # While the peer owes us an ack: when we give up on it if it stays silent. None when it
    # owes nothing: a quiet peer with nothing outstanding is idle, not gone.
    expire_at: float | None = None


class LrcpEndpoint:
    """One LRCP endpoint (server, client, or both), with no I/O and an injected clock."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        retransmit_after: float = 3.0,
        expire_after: float = 60.0,
    ) -> None:
        self._clock = clock
        self._retransmit_after = retransmit_after
        self._expire_after = expire_after
        self._sessions: dict[int, _Session] = {}
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: list[Event] = []

    # -- the application's side ----------------------------------------------------------------

    def connect(self, session: int, addr: Address) -> None:
        """Open ``session`` to ``addr`` (client role); Connected comes when the peer answers."""
        if not 0 <= session < MAX_NUMBER:
            raise ValueError(f"session {session} is not in [0, 2**31)")
        if session in self._sessions:
            raise ValueError(f"session {session} is already open")
        now = self._clock()
        self._sessions[session] = _Session(
            addr,
            established=False,
            retransmit_at=now + self._retransmit_after,
            expire_at=now + self._expire_after,  # the connect waits for its ack
        )
        self._put(b"/connect/%d/" % session, addr)

    def send(self, session: int, data: bytes) -> None:
        """Append ``data`` to our stream on ``session``; KeyError if it is not open."""
        s = self._sessions[session]  # KeyError: not an open session
        if not data:
            return
        start = s.sent
        s.unacked += data
        s.sent += len(data)
        if s.expire_at is None:  # the peer owes us an ack from now on: start waiting
            s.expire_at = self._clock() + self._expire_after
        if s.established:  # otherwise it goes out when the connect is acked
            self._transmit(session, s, start)
            if s.retransmit_at is None:  # RFC 6298 §5.1: start the timer if it isn't running
                s.retransmit_at = self._clock() + self._retransmit_after

    def close(self, session: int) -> None:
        """Send /close/ and report Closed; nothing if the session is not open."""
        if session in self._sessions:
            self._close(session)

    # -- the network's side --------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """Handle one datagram from ``addr``; anything that is not LRCP is ignored."""
        message = _parse(data)
        if message is None:
            return  # LRCP: an illegal packet is silently ignored
        kind, session = message[0], message[1]
        s = self._sessions.get(session)
        if s is not None and s.peer != addr:
            return  # a session belongs to one peer address; anybody else is ignored
        if kind == "connect":
            self._on_connect(session, s, addr)
        elif kind == "close":
            if s is not None:  # never answer a close for an unknown session: no close storms
                self._close(session)
        elif s is None:  # data or ack for a session we don't have
            self._put(b"/close/%d/" % session, addr)
        else:
            self._heard(s)
            self._establish(session, s)  # any reply to our connect means the peer is there
            if kind == "data":
                self._on_data(session, s, message[2], message[3])
            else:
                self._on_ack(session, s, message[2])

    def _on_connect(self, session: int, s: _Session | None, addr: Address) -> None:
        if s is None:
            s = self._sessions[session] = _Session(addr)
            self._events.append(Connected(session))
        else:
            self._heard(s)
        # A duplicate connect is answered too (the first ack may have been lost), with the
        # current length rather than LRCP's literal 0: an ack never moves backwards.
        self._ack(session, s)

    def _on_data(self, session: int, s: _Session, pos: int, payload: bytes) -> None:
        if pos <= s.received:  # no gap: keep only what we don't have yet
            new = payload[s.received - pos :]
            if new:
                s.received += len(new)
                self._events.append(DataReceived(session, new))
        # In order, duplicate or beyond a gap: the answer is always what we have, so a gap
        # repeats the previous ack and the sender's timer resends the missing bytes.
        self._ack(session, s)

    def _on_ack(self, session: int, s: _Session, length: int) -> None:
        if length <= s.acked:
            return  # a duplicate or a late, reordered ack: acks only move forwards
        if length > s.sent:
            self._close(session)  # acks bytes we never sent: the peer is misbehaving
            return
        del s.unacked[: length - s.acked]
        s.acked = length
        # All acked: stop the timer. Progress: restart it (RFC 6298 §5.3). LRCP suggests
        # resending the rest at once, which with many chunks in flight floods the peer with
        # copies it is about to receive anyway; the timer resends what really got lost.
        done = s.acked == s.sent
        s.retransmit_at = None if done else self._clock() + self._retransmit_after
        if done:
            s.expire_at = None  # the peer owes us nothing: idle, however long it stays quiet

    # -- timers --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Run the timers due at ``clock()``: expire sessions whose peer went silent, retransmit."""
        now = self._clock()
        for session, s in list(self._sessions.items()):
            if s.expire_at is not None and now >= s.expire_at:
                del self._sessions[session]  # the peer is gone: no point telling it
                self._events.append(Closed(session))
            elif s.retransmit_at is not None and now >= s.retransmit_at:
                if s.established:
                    self._transmit(session, s, s.acked)
                else:
                    self._put(b"/connect/%d/" % session, s.peer)
                s.retransmit_at = now + self._retransmit_after

    def next_deadline(self) -> float | None:
        """The earliest time tick() has work to do; None when no timer runs (idle sessions)."""
        deadlines = []
        for s in self._sessions.values():
            deadlines += [t for t in (s.retransmit_at, s.expire_at) if t is not None]
        return min(deadlines, default=None)

    # -- output --------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """The (datagram, address) pairs to send since the last call."""
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[Event]:
        """The events since the last call, in order."""
        out, self._events = self._events, []
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _put(self, datagram: bytes, addr: Address) -> None:
        self._outbox.append((datagram, addr))

    def _heard(self, s: _Session) -> None:
        """A valid message from the peer: it is still there, so waiting for it starts over."""
        if s.expire_at is not None:
            s.expire_at = self._clock() + self._expire_after

    def _ack(self, session: int, s: _Session) -> None:
        self._put(b"/ack/%d/%d/" % (session, s.received), s.peer)

    def _establish(self, session: int, s: _Session) -> None:
        if s.established:
            return
        s.established = True
        self._events.append(Connected(session))
        s.retransmit_at = None  # the connect's timer
        if s.unacked:  # data the application queued while we were connecting
            self._transmit(session, s, s.acked)
            s.retransmit_at = self._clock() + self._retransmit_after
        else:
            s.expire_at = None  # the connect is answered and nothing else is owed

    def _close(self, session: int) -> None:
        s = self._sessions.pop(session)
        self._put(b"/close/%d/" % session, s.peer)
        self._events.append(Closed(session))

    def _transmit(self, session: int, s: _Session, start: int) -> None:
        """Send the stream from position ``start`` to the end, in datagrams under the limit."""
        data = memoryview(s.unacked)[start - s.acked :]
        pos = start
        while data:
            header = b"/data/%d/%d/" % (session, pos)
            room = MAX_MESSAGE - 1 - len(header) - 1  # < MAX_MESSAGE, with the closing "/"
            take = cost = 0
            for byte in data:  # "/" and "\" cost two bytes once escaped; never split an escape
                cost += 2 if byte in b"/\\" else 1
                if cost > room:
                    break
                take += 1
            self._put(header + _escape(bytes(data[:take])) + b"/", s.peer)
            pos += take
            data = data[take:]


# --- the UDP adapter --------------------------------------------------------------------------


class LrcpSocket(asyncio.DatagramProtocol):
    """An ``LrcpEndpoint`` on a real UDP socket, timed by the event loop's clock."""

    def __init__(self, *, retransmit_after: float = 3.0, expire_after: float = 60.0) -> None:
        self._loop = asyncio.get_running_loop()
        self.endpoint = LrcpEndpoint(
            clock=self._loop.time, retransmit_after=retransmit_after, expire_after=expire_after
        )
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retransmit_after: float = 3.0,
        expire_after: float = 60.0,
    ) -> LrcpSocket:
        """Bind a UDP socket on (host, port) and return the protocol driving it."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(retransmit_after=retransmit_after, expire_after=expire_after),
            local_addr=(host, port),
        )
        return protocol

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the socket is bound to."""
        assert self._transport is not None
        return self._transport.get_extra_info("sockname")[:2]

    def connect(self, session: int, addr: tuple[str, int]) -> None:
        self.endpoint.connect(session, addr)
        self._flush()

    def send(self, session: int, data: bytes) -> None:
        self.endpoint.send(session, data)
        self._flush()

    def close(self, session: int) -> None:
        self.endpoint.close(session)
        self._flush()

    async def next_event(self) -> Event:
        """Wait for the endpoint's next event."""
        return await self._events.get()

    def shutdown(self) -> None:
        """Cancel the timer and close the socket."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.DatagramProtocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.endpoint.datagram_received(data, addr)
        self._flush()

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable: to a protocol that expects loss, just another loss

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- plumbing ------------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self.endpoint.tick()
        self._flush()

    def _flush(self) -> None:
        """Move the endpoint's output to the socket and the queue, then re-arm the one timer."""
        if self._transport is None or self._transport.is_closing():
            return
        for datagram, addr in self.endpoint.datagrams_to_send():
            self._transport.sendto(datagram, addr)
        for event in self.endpoint.events():
            self._events.put_nowait(event)
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.endpoint.next_deadline()
        # call_at may run a hair before `deadline` (the loop's clock resolution); tick() then
        # finds nothing due and we simply re-arm for the same instant.
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)
