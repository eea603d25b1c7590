"""A single-threaded TCP echo server on an event loop: one selector, non-blocking sockets.

Read README.md first. No asyncio and no threads: one thread runs one ``selectors`` selector,
and every socket is non-blocking. The rules the specs check:

* Every byte a client sends comes back to it, in order. ``send()`` on a non-blocking socket
  may take only part of the buffer: keep the rest and send it when the socket is writable.
* A client's interest set is a function of its state:
  EVENT_READ  while it has not half-closed and its pending output is below ``max_buffer``;
  EVENT_WRITE while it has pending output (never otherwise: an idle loop must sleep).
* Half-close: ``recv()`` returning ``b""`` means the client shut its write side. Stop reading,
  send everything still pending, then close the connection.
* ``stop()`` may be called from another thread: wake the loop up through a descriptor that is
  registered in the selector (the self-pipe trick).
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable
from types import TracebackType

__all__ = ["EchoServer"]


class EchoServer:
    """Echo every byte each client sends, on one thread, with one selector.

    Specs create it, run ``serve_forever()`` in a thread of their own (or call ``run_once()``
    themselves), and talk to it with plain sockets.
    """

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
        """Bind, listen and register; the loop does not run yet.

        max_buffer: a connection is read only while its pending output is below this.
        read_size: the most bytes one ``recv()`` may ask for.
        backlog: passed to ``listen()``.
        sndbuf: if not None, SO_SNDBUF for every accepted client socket.
        selector_factory: called once to make the selector (the specs pass a recording one).

        Raises ValueError if max_buffer or read_size is below 1.
        """
        # TODO: validate max_buffer and read_size.
        # TODO: create the selector with selector_factory(); use only it to wait for events.
        # TODO: a listening socket bound to (host, port), listen(backlog), non-blocking,
        #       registered for EVENT_READ. socket.create_server does the first three.
        # TODO: a wake-up socketpair for stop(), both ends non-blocking, the read end
        #       registered for EVENT_READ.
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on: the real port when port 0 was asked for."""
        raise NotImplementedError

    @property
    def connection_count(self) -> int:
        """How many client connections are open."""
        raise NotImplementedError

    def buffered_bytes(self) -> int:
        """Echo bytes read from clients and not yet sent back, summed over all connections."""
        raise NotImplementedError

    def run_once(self, timeout: float | None = None) -> None:
        """Call select() once (waiting at most ``timeout`` s; None: until an event) and handle
        every event it returns."""
        # TODO: listener readable -> accept until BlockingIOError; set each new socket
        #       non-blocking (and SO_SNDBUF if sndbuf was given); register it for EVENT_READ.
        # TODO: wake-up socket readable -> read it empty.
        # TODO: client readable -> recv(read_size): b"" is EOF (half-close), a ConnectionError
        #       closes the connection, data is appended to its pending output.
        # TODO: client writable -> send() pending output; keep what send() did not take.
        # TODO: then recompute the client's interest set (see the module docstring), modify the
        #       registration only if it changed, and close the connection once it is empty
        #       (EOF seen and nothing pending).
        raise NotImplementedError

    def serve_forever(self) -> None:
        """Run the loop on the calling thread until stop() is called (before or during it)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Make serve_forever() return promptly. Safe from any thread, any number of times,
        also after close()."""
        # TODO: set a flag, then write one byte to the wake-up socket (ignore OSError: the
        #       pipe may be full, which means a wake-up is pending anyway, or closed).
        raise NotImplementedError

    def close(self) -> None:
        """Close every connection, the listening socket, the wake-up pair and the selector.

        Call it after serve_forever() returned (or instead of it). A second call does nothing.
        """
        raise NotImplementedError

    def __enter__(self) -> EchoServer:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the server."""
        raise NotImplementedError
