"""Reliable, ordered byte streams over UDP: the Line Reversal Control Protocol (LRCP).

Two layers:

* ``LrcpEndpoint`` — the protocol, sans-IO: datagrams in (``datagram_received``), application
  bytes in (``send``), datagrams out (``datagrams_to_send``), events out (``events``). It never
  touches a socket and never reads the wall clock: time comes from the injected ``clock`` and
  ``tick()`` runs the timers that are due. ``next_deadline()`` says when that is.
* ``LrcpSocket`` — the asyncio adapter: a UDP socket feeds the endpoint, its output goes to the
  socket, and one ``loop.call_at(next_deadline(), ...)`` timer calls ``tick()``.

The messages (each one UDP datagram, < 1000 bytes, numbers < 2**31):

    /connect/SESSION/         open a session
    /data/SESSION/POS/DATA/   DATA is the stream from position POS; "/" and "\\" escaped
    /ack/SESSION/LENGTH/      "I have received LENGTH bytes of your stream, in order"
    /close/SESSION/           close the session

Standard library only. See README.md for the rules in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass

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


class LrcpEndpoint:
    """One LRCP endpoint (server, client, or both at once), with no I/O and an injected clock.

    ``clock()`` returns the current time in seconds (monotonic). Data not acked within
    ``retransmit_after`` seconds is sent again; a session whose peer owes an ack (for data or
    for our connect) and stays silent for ``expire_after`` seconds is closed. A session that
    owes nothing and is owed nothing never expires, however quiet it is (LRCP).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        retransmit_after: float = 3.0,
        expire_after: float = 60.0,
    ) -> None:
        """TODO: keep the clock and the two timeouts; no sessions, no output, no events yet."""
        raise NotImplementedError

    # -- the application's side ----------------------------------------------------------------

    def connect(self, session: int, addr: Address) -> None:
        """Open ``session`` to the peer at ``addr`` (the client role).

        TODO: ValueError if ``session`` is not in [0, 2**31) or is already open.
        TODO: send /connect/SESSION/ to ``addr``; resend it every ``retransmit_after`` until
              the peer answers (any ack or data for the session). Then report Connected(session).
        TODO: bytes given to send() before that wait, and go out once the session is connected.
        TODO: no answer for ``expire_after``: give up and report Closed(session).
        """
        raise NotImplementedError

    def send(self, session: int, data: bytes) -> None:
        """Append ``data`` to our stream on ``session`` and put it on the wire.

        TODO: KeyError if the session is not open; b"" sends nothing.
        TODO: /data/SESSION/POS/DATA/ where POS is the position of DATA's first byte in the
              stream (counting raw bytes, not escaped ones) and DATA has "\\" -> "\\\\" and
              "/" -> "\\/" (in that order!).
        TODO: every datagram must be smaller than 1000 bytes AFTER escaping: split into as
              many data messages as needed, never splitting an escape.
        TODO: start the retransmission timer (retransmit_after) if it is not running.
        """
        raise NotImplementedError

    def close(self, session: int) -> None:
        """Close ``session``: send /close/SESSION/ and report Closed(session).

        TODO: a session that is not open: do nothing (no error).
        """
        raise NotImplementedError

    # -- the network's side --------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """Handle one datagram from ``addr``.

        TODO: ignore silently anything that is not LRCP: 1000 bytes or more; not starting and
              ending with "/"; unknown type; wrong number of fields; a number that is not
              plain ASCII digits or is >= 2**31; a backslash in DATA not followed by "/" or "\\"
              (an unescaped "/" in DATA makes one field too many).
        TODO: a message for an open session from an address other than the session's peer:
              ignore it.
        TODO: connect: new session -> open it (its peer is ``addr``), report Connected;
              new or not, answer /ack/SESSION/LENGTH/ with what you have received (0 if new).
        TODO: data or ack for a session that is not open: answer /close/SESSION/, nothing else.
        TODO: data at POS <= received: unescape, deliver only the bytes after ``received`` as
              DataReceived (duplicates are never delivered twice), then ack the total received.
              Data at POS > received (a gap): deliver nothing, keep nothing, repeat the ack.
        TODO: ack LENGTH <= the highest ack so far: ignore (a duplicate or late ack).
              LENGTH > bytes sent: the peer misbehaves, close the session (/close/ + Closed).
              Otherwise those bytes are delivered: forget them; all acked -> stop the
              retransmission timer, else restart it.
        TODO: close for an open session: answer /close/SESSION/, report Closed, drop it.
              Close for an unknown session: say nothing (else two peers bounce closes forever).
        TODO: every valid message for a session counts as hearing from the peer: while it owes
              us an ack, the expiry clock starts over.
        """
        raise NotImplementedError

    # -- timers --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Run every timer that is due at ``clock()`` (due means now >= deadline).

        TODO: expiry: the peer owes an ack (data unacked, or our connect unanswered) and has been
              silent for expire_after since we started waiting or last heard from it: drop
              the session, report Closed. Nothing owed: no expiry at all.
        TODO: retransmission due: resend ALL unacked data (or the connect), restart the timer.
        """
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """The earliest time at which tick() has something to do; None if no timer runs.

        TODO: the minimum over sessions of the running timers: retransmission, and expiry while
              the peer owes an ack. Idle sessions run no timer, so an idle endpoint says None.
        """
        raise NotImplementedError

    # -- output --------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """The datagrams to put on the wire since the last call, in order, as (bytes, addr).

        TODO: hand them over and forget them (a second call returns []).
        """
        raise NotImplementedError

    def events(self) -> list[Event]:
        """What happened since the last call, in order: Connected, DataReceived, Closed.

        TODO: hand them over and forget them (a second call returns []).
        """
        raise NotImplementedError


class LrcpSocket(asyncio.DatagramProtocol):
    """An ``LrcpEndpoint`` on a real UDP socket, timed by the event loop's clock.

    ``endpoint`` is the LrcpEndpoint it drives, with ``clock=loop.time``.
    """

    endpoint: LrcpEndpoint

    def __init__(self, *, retransmit_after: float = 3.0, expire_after: float = 60.0) -> None:
        """TODO: an LrcpEndpoint on the running loop's clock; an asyncio.Queue for its events."""
        raise NotImplementedError

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        retransmit_after: float = 3.0,
        expire_after: float = 60.0,
    ) -> LrcpSocket:
        """Bind a UDP socket on (host, port) and return the protocol driving it.

        TODO: loop.create_datagram_endpoint(lambda: cls(...), local_addr=(host, port)).
        """
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the socket is bound to (the real port when opened with port 0)."""
        raise NotImplementedError

    def connect(self, session: int, addr: tuple[str, int]) -> None:
        """endpoint.connect(), then put its output on the wire."""
        raise NotImplementedError

    def send(self, session: int, data: bytes) -> None:
        """endpoint.send(), then put its output on the wire."""
        raise NotImplementedError

    def close(self, session: int) -> None:
        """endpoint.close(), then put its output on the wire."""
        raise NotImplementedError

    async def next_event(self) -> Event:
        """Wait for the endpoint's next event."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Cancel the timer and close the socket."""
        raise NotImplementedError

    # -- asyncio.DatagramProtocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TODO: keep the transport (an asyncio.DatagramTransport)."""
        raise NotImplementedError

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Feed the endpoint, then flush.

        TODO: after every call into the endpoint (here, in connect/send/close and in the timer
              callback): sendto() each of datagrams_to_send(), queue each of events(), and
              re-arm ONE timer with loop.call_at(next_deadline(), ...) that calls tick() and
              flushes again. A timer driven only by incoming datagrams never fires on a quiet
              socket, which is exactly when retransmissions are needed.
        """
        raise NotImplementedError

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (port unreachable...): for a protocol built to survive loss, ignore them."""
        raise NotImplementedError
