"""MUTANT: stop() sets a flag but does not wake the loop sleeping in select().

A single-threaded TCP echo server on an event loop: one selector, non-blocking sockets.

Theory of operation
-------------------
One thread owns one selector. Three kinds of file objects are registered in it, told apart by
the ``data`` of their selector key:

* the listening socket: readable means connections are waiting in the accept queue;
* the wake-up socket (one end of a socketpair): readable means ``stop()`` was called, maybe
  from another thread, and the loop must look at its flag now instead of sleeping on;
* one socket per client, whose key's data is its ``_Connection``.

A client's interest set is a pure function of its state (``_interest``):

    EVENT_READ   while the client has not half-closed and its pending output is below max_buffer
    EVENT_WRITE  while there is pending output

and a client whose interest set is empty (it sent EOF and every echoed byte left) is finished.
After every event the loop recomputes the interest set and tells the selector only when it
changed. Asking for EVENT_WRITE with nothing to write would make a level-triggered selector
report the socket writable on every call, forever: a busy loop. Keeping EVENT_READ while the
output is over the limit would read without bound from a client that never reads its echoes.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["EchoServer"]

_LISTENER = "listener"
_WAKEUP = "wakeup"


@dataclass(eq=False)
class _Connection:
    """One client: its socket, the echo bytes not yet sent, and whether it half-closed."""

    sock: socket.socket
    pending: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the client shut its write side: recv() returned b""
    events: int = selectors.EVENT_READ  # the interest set registered in the selector
    closed: bool = False


class EchoServer:
    """Echo every byte each client sends, on one thread, with one selector."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_buffer: int = 64 * 1024,
        read_size: int = 64 * 1024,
        backlog: int = 128,
        sndbuf: int | None = None,
        selector_factory: Callable[[], selectors.BaseSelector] = selectors.DefaultSelector,
    ) -> None:
        if max_buffer < 1 or read_size < 1:
            raise ValueError("max_buffer and read_size must be positive")
        self._max_buffer = max_buffer
        self._read_size = read_size
        self._sndbuf = sndbuf
        self._connections: set[_Connection] = set()
        self._stopping = False
        self._closed = False
        self._selector = selector_factory()
        # create_server binds and listens: the address is known, and clients can connect (into
        # the accept queue), before the loop runs.
        self._listener = socket.create_server((host, port), backlog=backlog)
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, _LISTENER)
        # The self-pipe trick: another thread cannot interrupt select(), but it can make a
        # registered descriptor readable. One byte on _wake_w wakes the loop up.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKEUP)

    # -- the public surface ------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the real port when port 0 was asked for."""
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def connection_count(self) -> int:
        """How many client connections are open."""
        return len(self._connections)

    def buffered_bytes(self) -> int:
        """Echo bytes read from clients and not yet sent back, over all connections."""
        return sum(len(conn.pending) for conn in self._connections)

    def run_once(self, timeout: float | None = None) -> None:
        """Wait for events (at most ``timeout`` seconds; None: until one comes) and handle them."""
        for key, mask in self._selector.select(timeout):
            if key.data is _LISTENER:
                self._accept()
            elif key.data is _WAKEUP:
                self._drain_wakeup()
            else:
                self._handle(key.data, mask)

    def serve_forever(self) -> None:
        """Run the loop until stop() is called (before or during this call)."""
        while not self._stopping:
            self.run_once(None)

    def stop(self) -> None:
        """Make serve_forever return soon; safe to call from any thread, any number of times."""
        self._stopping = True
        # OSError: the pipe is full (a wake-up is pending anyway) or the server is closed.
        # BUG: nothing wakes a select() that sleeps with no timeout

    def close(self) -> None:
        """Close every connection, the listening socket, the wake-up pair and the selector."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._connections):
            self._close(conn)
        for sock in (self._listener, self._wake_r):
            self._selector.unregister(sock)
            sock.close()
        self._wake_w.close()
        self._selector.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the loop's handlers -----------------------------------------------------------------

    def _accept(self) -> None:
        # Drain the accept queue: one readiness event may stand for many queued connections.
        # Accepting one per wake-up works with level-triggered epoll but costs a select() per
        # client, and with edge-triggered epoll it would strand the rest in the queue.
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:  # the client gave up while it sat in the queue
                continue
            sock.setblocking(False)
            if self._sndbuf is not None:  # a small kernel send buffer makes partial sends common
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf)
            conn = _Connection(sock)
            self._selector.register(sock, conn.events, conn)
            self._connections.add(conn)

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def _handle(self, conn: _Connection, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self._read(conn)
        if mask & selectors.EVENT_WRITE and not conn.closed:
            self._write(conn)
        if not conn.closed:
            self._update(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(self._read_size)
        except BlockingIOError:  # readiness is a hint, not a promise
            return
        except ConnectionError:
            self._close(conn)
            return
        if not data:
            conn.eof = True  # half-close: stop reading, keep sending what is pending
            return
        conn.pending += data
        # Optimistic write: the socket is almost always writable, so most echoes leave in the
        # same wake-up and EVENT_WRITE is only registered when the kernel buffer is full.
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        if not conn.pending:
            return
        try:
            sent = conn.sock.send(conn.pending)
        except BlockingIOError:
            return
        except ConnectionError:  # the client is gone (EPIPE, ECONNRESET): drop its output
            self._close(conn)
            return
        del conn.pending[:sent]  # a partial send keeps the unsent tail for the next EVENT_WRITE

    def _interest(self, conn: _Connection) -> int:
        events = 0
        if not conn.eof and len(conn.pending) < self._max_buffer:
            events |= selectors.EVENT_READ
        if conn.pending:
            events |= selectors.EVENT_WRITE
        return events

    def _update(self, conn: _Connection) -> None:
        wanted = self._interest(conn)
        if wanted == 0:
            # EOF received and every byte echoed: our close() sends the FIN that ends the
            # client's read. Nothing is left unread, so the kernel sends no RST.
            self._close(conn)
        elif wanted != conn.events:
            self._selector.modify(conn.sock, wanted, conn)
            conn.events = wanted

    def _close(self, conn: _Connection) -> None:
        conn.closed = True
        self._connections.discard(conn)
        self._selector.unregister(conn.sock)
        conn.sock.close()
