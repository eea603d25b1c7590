"""Helpers for hidden specs that more than one kata needs.

Specs import them as ``from grader.spectools import FakeClock, bounded, called``. They exist
so that every spec follows the same rules (DESIGN.md, "Writing specs"):

* deterministic time: inject a :class:`FakeClock`, never read the wall clock;
* no sleeping to wait for a condition: :func:`bounded` awaits an event with a time limit and
  fails with a readable message instead of hanging;
* messages for learners: :func:`called` writes "Called f(x); returned y; expected z", and
  :func:`step` turns an unexpected exception into "Called f(x); raised ValueError: ...";
* network specs bind port 0 on 127.0.0.1 only: :func:`tcp_server`;
* count, never time: :func:`spy_on` records every call of a function however the learner
  reaches it (:func:`spy_compare_digest` for constant-time comparisons), and
  :class:`CountingLoop` counts an event loop's wake-ups;
* a clock a spec moves for code that times itself with asyncio's timers: :class:`SkippingLoop`,
  and on it :class:`LingeringClient` (run by :func:`linger_holds`), which watches a server's
  lingering close end;
* doubles for what a server is handed: a :class:`Gauge` for its metrics callback, a
  :class:`FakeSleep` for its ``sleep``;
* a disk for storage katas: :class:`CountingDisk` logs reads and counts bytes written;
* the far side of a proxy: :class:`H11Origin` (an origin h11 reads, served by
  :func:`running_h11_origin`), :class:`BigPeer`, :class:`StalledSink`, :func:`slow_reader`,
  :func:`read_digest` and :func:`memory_held` for back-pressure specs that count memory, never time;
* a client that sends a whole request body before it reads: :func:`send_whole_then_read`, and
  :class:`WholeUpload`, a 32 MiB body a server refuses from the head alone;
* interim (1xx) responses: :func:`raw_origin` and :class:`ContinuingOrigin` write them as
  http.server does, :func:`response_heads` reads every head back;
* lifecycle hygiene: :func:`loop_reports` records what the event loop's exception handler
  receives (and the ResourceWarnings of unclosed transports) while a block runs and for a few
  loop turns after it, so a spec can assert that ``close()`` left nothing for the loop to report;
  :func:`reset_mid_request` does the same for a client that resets its connection mid-request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
import sys
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

__all__ = [
    "LOCALHOST",
    "BigPeer",
    "CountingDisk",
    "StalledSink",
    "CountingLoop",
    "FakeClock",
    "INTERIM",
    "ContinuingOrigin",
    "FakeSleep",
    "Gauge",
    "H11Origin",
    "LingeringClient",
    "LoopReports",
    "ResponseHead",
    "SkippingLoop",
    "WholeUpload",
    "answer_with",
    "bounded",
    "called",
    "linger_holds",
    "loop_reports",
    "memory_held",
    "raw_origin",
    "read_digest",
    "refused_port",
    "reset_mid_request",
    "response_heads",
    "running_h11_origin",
    "send_whole_then_read",
    "short",
    "slow_reader",
    "spy_compare_digest",
    "spy_on",
    "step",
    "tcp_server",
    "transports_on_port",
]

LOCALHOST = "127.0.0.1"
T = TypeVar("T")


class FakeClock:
    """A monotonic clock the spec moves by hand: ``clock()`` reads it, ``advance()`` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock never goes backwards")
        self.now += seconds
        return self.now


def short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters so a message stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def called(call: str, got: Any, expected: Any | None = None, *, show_expected: bool = True) -> str:
    """The learner-facing message of a failed check: what was called, what came back, what was expected.

    Pass ``show_expected=False`` when the expected value is hidden: the message then says what
    came back, never what the spec wanted.
    """
    message = f"Called {call}; returned {short(got)}"
    if show_expected:
        message += f"; expected {short(expected)}"
    return message


@contextlib.contextmanager
def step(call: str) -> Iterator[None]:
    """Say what the spec called when the learner's code raises something unexpected.

    ``with step("tree.delete(7) on a tree of 40 keys"): tree.delete(7); len(tree)`` fails with
    "Called tree.delete(7) on a tree of 40 keys; raised ValueError: ..." instead of a bare
    exception. AssertionError (the spec's own checks, already worded) and NotImplementedError
    (how the grader tells an untouched stub) pass through unchanged.
    """
    try:
        yield
    except (AssertionError, NotImplementedError):
        raise
    except Exception as exc:
        raise AssertionError(f"Called {call}; raised {type(exc).__name__}: {exc}") from exc


async def bounded(awaitable: Awaitable[T], timeout: float = 5.0, what: str = "the result") -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds; on expiry fail with a readable message.

    This is how a spec waits for a condition: it awaits the event that signals it, with a bound,
    instead of sleeping and hoping. A ``TimeoutError`` the awaitable raises itself (a
    per-try timeout under test) comes through as it is, not as "never came".
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise AssertionError(f"waited {timeout:g} s for {what}; it never came")
    return task.result()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[tuple[str, int]]:
    """Serve ``handler`` on 127.0.0.1, port 0, for the body of the ``async with``; yields (host, port).

    On exit the server stops accepting and every connection it accepted is closed, so a spec
    leaves nothing listening behind it.
    """
    writers: set[asyncio.StreamWriter] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(tracked, LOCALHOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield LOCALHOST, port
    finally:
        server.close()
        for writer in list(writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)


def spy_on(
    monkeypatch: Any,
    real: Callable[..., Any],
    places: list[tuple[Any, str]],
    module: Any = None,
    record: Callable[..., Any] = lambda *args, **kwargs: args,
) -> list[Any]:
    """Route every way of reaching the function ``real`` through a recorder; return its log.

    ``places`` are the (object, attribute) pairs that hold it (``(hmac, "compare_digest")``);
    every name in the learner's ``module`` bound to it (``from hmac import compare_digest as
    x``) is rerouted too. Each call appends ``record(*args, **kwargs)`` to the log and answers
    as the real function does, so only the count can tell.
    """
    calls: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(record(*args, **kwargs))
        return real(*args, **kwargs)

    for owner, name in places:
        monkeypatch.setattr(owner, name, spy)
    if module is not None:
        for name, value in list(vars(module).items()):
            if value is real:
                monkeypatch.setattr(module, name, spy)
    return calls


def spy_compare_digest(monkeypatch: Any, module: Any = None) -> list[tuple[Any, Any]]:
    """:func:`spy_on` for ``hmac.compare_digest`` (and ``secrets.compare_digest``): the log of
    (a, b) pairs compared in constant time. Counted, never timed."""
    return spy_on(
        monkeypatch,
        hmac.compare_digest,
        [(hmac, "compare_digest"), (secrets, "compare_digest")],
        module,
        record=lambda a, b: (a, b),
    )


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts wake-ups: every callback scheduled to run (``call_soon``).

    A task that resumes, a future's done-callback, a timer that fires: each passes through
    ``call_soon``. A coroutine parked on a future or a socket costs none until it is woken, so
    an idle server's count stays flat.
    """

    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0

    def call_soon(self, callback, *args, context=None):  # type: ignore[no-untyped-def]
        self.wakeups += 1
        return super().call_soon(callback, *args, context=context)


class SkippingLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a spec moves forward by hand: ``time()`` is the real monotonic
    clock plus every :meth:`skip` so far. What a server times with asyncio's own timers
    (``asyncio.timeout``, ``wait_for``, ``sleep``, ``call_later``: all read ``loop.time()``)
    sees the skipped seconds pass at once, and the next loop turn runs the timers that came due.
    So a spec checks a 30-second bound in no real time, and never reads the wall clock.

    Real time still passes as well: check a bound with room on both sides (what must still be
    running a good part below the bound, what must have ended above it). A spec's own
    :func:`bounded` waits run on this clock too: skip only while none is pending.

    It keeps the transport of every connection its servers accepted, in order (``accepted``),
    so a spec can see whether a server closed a connection (``is_closing()``) from the server's
    side; :meth:`turns_until` spins a counted number of loop turns for it. Run a spec on it as
    ``with asyncio.Runner(loop_factory=SkippingLoop) as runner: runner.run(main())``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0
        self.accepted: list[asyncio.Transport] = []

    def time(self) -> float:
        return super().time() + self.skipped

    def skip(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; the timers that came due run on the next turn."""
        if seconds < 0:
            raise ValueError("a monotonic clock never goes backwards")
        self.skipped += seconds

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):  # type: ignore[no-untyped-def]
        transport = super()._make_socket_transport(
            sock, protocol, waiter, extra=extra, server=server
        )
        if server is not None:
            self.accepted.append(transport)
        return transport

    def accepted_from(self, writer: asyncio.StreamWriter) -> asyncio.Transport:
        """The server's side of the spec's connection ``writer``: the accepted transport whose
        peer is the writer's own address."""
        own = writer.get_extra_info("sockname")
        for transport in self.accepted:
            if transport.get_extra_info("peername") == own:
                return transport
        raise AssertionError(f"no server on this loop accepted the connection from {own}")

    async def turns_until(self, done: Callable[[], bool], turns: int = 200) -> bool:
        """Run up to ``turns`` loop turns until ``done()``; return whether it came true. Counted,
        never timed."""
        for _ in range(turns):
            if done():
                return True
            await asyncio.sleep(0)
        return done()


# -- Doubles for what a server is handed: a gauge it reports to, a sleep it waits on ---------

# Servers in the execution-pattern katas take a metrics callback (``on_waiting``,
# ``on_streams``) and a ``sleep`` function. A spec passes these doubles instead: it awaits the
# count it needs instead of sleeping and hoping, and it decides when time passes.


class Gauge:
    """A metrics callback: the server calls it with a count; a spec awaits a given count.

    ``what`` names the count and the callback for the failure message, e.g.
    ``Gauge("parked poll(s) through on_waiting")``; ``timeout`` is the default bound of
    :meth:`reaches`.
    """

    def __init__(self, what: str = "count(s)", timeout: float = 5.0) -> None:
        self.what = what
        self.timeout = timeout
        self.count = 0
        self._events: dict[int, list[asyncio.Event]] = {}

    def __call__(self, count: int) -> None:
        self.count = count
        for event in self._events.pop(count, []):
            event.set()

    async def reaches(self, count: int, timeout: float | None = None) -> None:
        """Wait (bounded) until the server reports exactly ``count``."""
        if self.count == count:
            return
        event = asyncio.Event()
        self._events.setdefault(count, []).append(event)
        await bounded(
            event.wait(),
            self.timeout if timeout is None else timeout,
            f"the server to report {count} {self.what} (last report: {self.count})",
        )


class FakeSleep:
    """An injected ``sleep``: records every delay asked for in ``delays``, and sets ``asked``.

    With a :class:`FakeClock`, each call moves the clock by the delay and returns at once (a
    retry loop's backoff passes in no real time). Without one, each call waits until the spec
    calls :meth:`fire`, as if the time had passed then.
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.asked = asyncio.Event()
        self._wakers: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.asked.set()
        if self.clock is not None:
            self.clock.advance(max(seconds, 0.0))
            return
        waker = asyncio.get_running_loop().create_future()
        self._wakers.append(waker)
        await waker

    def fire(self) -> None:
        """End every pending sleep, as if its time had passed."""
        for waker in self._wakers:
            if not waker.done():
                waker.set_result(None)
        self._wakers.clear()


# -- A disk for storage katas: named files in memory that count what the learner does -------


class CountingDisk:
    """The "disk" a storage kata is handed: named files of bytes in memory.

    It logs every read as ``(name, offset, size)`` and counts the bytes written per name, so a
    spec counts block reads and write amplification instead of timing them. A read past the end
    of a file fails loudly (an AssertionError naming the read), and ``size``, ``truncate`` and
    ``delete`` of a missing name raise FileNotFoundError. Files whose name ends in
    ``immutable`` (``".sst"`` for SSTables) are written once and whole: rewriting or appending
    to one fails loudly. Specs may read and replace ``files`` directly (a torn tail, a flipped
    byte). Used by ``lsm_tree`` and ``commit_log``.
    """

    def __init__(self, *, immutable: str | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.reads: list[tuple[str, int, int]] = []
        self.written: dict[str, int] = {}
        self.immutable = immutable

    def _is_immutable(self, name: str) -> bool:
        return self.immutable is not None and name.endswith(self.immutable)

    def read(self, name: str, offset: int, size: int) -> bytes:
        if name not in self.files:
            raise FileNotFoundError(name)
        data = self.files[name]
        if offset < 0 or size < 0 or offset + size > len(data):
            raise AssertionError(
                f"disk.read({name!r}, {offset}, {size}) reads past the end of a "
                f"{len(data)}-byte file"
            )
        self.reads.append((name, offset, size))
        return data[offset : offset + size]

    def write(self, name: str, data: bytes) -> None:
        if self._is_immutable(name) and name in self.files:
            raise AssertionError(
                f"disk.write({name!r}, ...): this file is immutable, never rewritten"
            )
        self.files[name] = bytes(data)
        self.written[name] = self.written.get(name, 0) + len(data)

    def append(self, name: str, data: bytes) -> None:
        if self._is_immutable(name):
            raise AssertionError(f"disk.append({name!r}, ...): this file is written whole")
        self.files[name] = self.files.get(name, b"") + bytes(data)
        self.written[name] = self.written.get(name, 0) + len(data)

    def truncate(self, name: str, size: int) -> None:
        if name not in self.files:
            raise FileNotFoundError(name)
        self.files[name] = self.files[name][:size]

    def size(self, name: str) -> int:
        if name not in self.files:
            raise FileNotFoundError(name)
        return len(self.files[name])

    def delete(self, name: str) -> None:
        if name not in self.files:
            raise FileNotFoundError(name)
        del self.files[name]

    def names(self) -> list[str]:
        return sorted(self.files)

    # -- for the specs --

    def mark(self) -> int:
        """A point in the read log, for :meth:`reads_since`."""
        return len(self.reads)

    def reads_since(self, mark: int, suffix: str = "") -> list[tuple[str, int, int]]:
        """The reads after ``mark`` of the files whose name ends in ``suffix``."""
        return [r for r in self.reads[mark:] if r[0].endswith(suffix)]

    def bytes_written(self, suffix: str = "") -> int:
        """Every byte written or appended to the files whose name ends in ``suffix``."""
        return sum(n for name, n in self.written.items() if name.endswith(suffix))


# -- The far side of a proxy: an HTTP origin, a peer that floods a slow reader ---------------
#
# The proxy katas (forward_proxy, tls_termination, sni_router, ...) put the learner's code
# between a spec's client and a spec's server. These are the spec's servers: an HTTP/1.1 origin
# that an independent parser (h11) reads, so what the proxy sent is judged by an oracle; and a
# peer that writes more than the kernel's buffers hold, for back-pressure specs that count the
# memory the process holds instead of timing anything.

Respond = Callable[[Any, bytes], tuple[int, list[tuple[str, str]], bytes]]


def answer_with(content: bytes = b"hello") -> Respond:
    """A ``respond`` for :class:`H11Origin`: 200, ``Content-Type: text/plain``, ``content``."""
    return lambda request, body: (200, [("Content-Type", "text/plain")], content)


class H11Origin:
    """An HTTP/1.1 origin (or backend) on 127.0.0.1: h11 parses what the proxy sends, one request
    per connection, and ``respond(request, body)`` makes the answer (status, fields, content;
    ``Content-Length`` is added when missing, no content for HEAD).

    It keeps what a spec asks about: ``connections`` accepted (a refused destination stays at 0),
    ``requests`` as (``h11.Request``, body) pairs, ``raw`` (every byte received, all
    connections), ``errors`` (h11's complaints about what the proxy sent), and ``arrived`` (set
    when a request has been read). Serve it with :func:`running_h11_origin`.
    """

    def __init__(self, respond: Respond | None = None) -> None:
        self.respond = respond or answer_with()
        self.connections = 0
        self.requests: list[tuple[Any, bytes]] = []
        self.raw = bytearray()
        self.errors: list[str] = []
        self.arrived = asyncio.Event()
        self.port = 0

    @property
    def last(self) -> Any:
        """The last request read (an ``h11.Request``)."""
        return self.requests[-1][0]

    def header(self, name: str, index: int = -1) -> list[str]:
        """Every value of field ``name`` (any case) in request ``index``, in order."""
        request = self.requests[index][0]
        return [
            v.decode("latin-1") for k, v in request.headers if k.decode().lower() == name.lower()
        ]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11  # an oracle library: imported only by the specs that use an origin

        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        request, body = None, b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    self.raw += data
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            self.requests.append((request, body))
            self.arrived.set()
            status, headers, content = self.respond(request, body)
            if not any(k.lower() == "content-length" for k, _ in headers):
                headers = [*headers, ("Content-Length", str(len(content)))]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            if content and request is not None and request.method != b"HEAD":
                writer.write(conn.send(h11.Data(data=content)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except h11.ProtocolError as err:
            self.errors.append(repr(err))
        except ConnectionError:
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def running_h11_origin(
    respond: Respond | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[H11Origin]:
    """An :class:`H11Origin` on 127.0.0.1, port 0 (TLS with ``ssl_context``), for the body of the
    ``async with``; its ``port`` is set. On exit it stops listening and cancels what it serves."""
    origin = H11Origin(respond)
    tasks: set[asyncio.Task[Any]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await origin.handle(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(tracked, LOCALHOST, 0, ssl=ssl_context)
    origin.port = server.sockets[0].getsockname()[1]
    try:
        yield origin
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)


class BigPeer:
    """A far end that writes ``size`` bytes of a fixed pattern, 64 KiB at a time, awaiting
    ``drain()`` after each, with a 64 KiB send buffer: it goes only as fast as the proxy in
    front of it takes, and notes when its writes back up.

    ``before(reader, writer)`` runs first (read the request and write a response head, read the
    ClientHello ...), then ``prefix`` is written (a request head, for an upload), and
    ``after(reader, writer)`` runs once everything is written (``write_eof()``, wait for the
    proxy's EOF ...). Serve ``handle`` (or run it on a client connection, for an upload); await
    :meth:`settled`, then compare what arrived with :meth:`digest` (of the pattern, without
    ``prefix``).
    """

    PIECE = bytes(range(256)) * 256  # 64 KiB

    def __init__(
        self,
        size: int,
        *,
        before: Handler | None = None,
        prefix: bytes = b"",
        after: Handler | None = None,
    ) -> None:
        if size % len(self.PIECE):
            raise ValueError("size must be a whole number of 64 KiB pieces")
        self.size = size
        self.before = before
        self.prefix = prefix
        self.after = after
        self.sent = 0
        self.blocked = False
        self.changed = asyncio.Event()

    def digest(self) -> str:
        """The SHA-256 (hex) of the ``size`` bytes this peer writes."""
        return hashlib.sha256(self.PIECE * (self.size // len(self.PIECE))).hexdigest()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 65536
        )
        if self.before is not None:
            await self.before(reader, writer)
        writer.write(self.prefix)
        while self.sent < self.size:
            writer.write(self.PIECE)
            self.sent += len(self.PIECE)
            if writer.transport.get_write_buffer_size() > 0:
                self.blocked = True
                self.changed.set()
            await writer.drain()
            self.blocked = False
        self.changed.set()
        if self.after is not None:
            await self.after(reader, writer)

    async def settled(self, spins: int = 200) -> None:
        """Return once everything is written, or once the peer has stayed blocked on ``drain()``
        while the event loop ran ``spins`` more callbacks (nobody is reading its bytes any more)."""
        while self.sent < self.size:
            self.changed.clear()
            if not self.blocked:
                await self.changed.wait()
                continue
            mark = self.sent
            for _ in range(spins):
                await asyncio.sleep(0)
            if self.blocked and self.sent == mark:
                return


async def slow_reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection to 127.0.0.1:``port`` with a 64 KiB receive buffer: as long as the
    spec does not read, the kernel holds little for it and the back-pressure reaches the proxy."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        sock.connect((LOCALHOST, port))
        sock.setblocking(False)
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


async def read_digest(
    reader: asyncio.StreamReader, size: int, what: str, timeout: float = 30
) -> tuple[int, str]:
    """Read up to ``size`` bytes (less if EOF comes first), each read bounded by ``timeout``;
    return (bytes read, their SHA-256 in hex)."""
    digest, received = hashlib.sha256(), 0
    while received < size:
        data = await bounded(
            reader.read(1 << 20), timeout, f"the rest of {what} ({received} bytes so far)"
        )
        if not data:
            break
        digest.update(data)
        received += len(data)
    return received, digest.hexdigest()


class StalledSink:
    """A far end for upload specs: it reads a request head, then nothing until :meth:`release`;
    then it reads ``size`` bytes (``body`` resolves to their count and SHA-256 in hex) and
    answers ``answer``. Serve ``handle``; a :class:`BigPeer` with the request head as its
    ``prefix``, run on the client's connection, is the upload."""

    def __init__(self, size: int, answer: bytes = b"HTTP/1.1 204 No Content\r\n\r\n") -> None:
        self.size = size
        self.answer = answer
        self._released = asyncio.Event()
        self.body: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        """Start reading the body."""
        self._released.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await self._released.wait()
        self.body.set_result(await read_digest(reader, self.size, "the uploaded body"))
        writer.write(self.answer)
        await writer.drain()


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where ``connect()`` is refused, for the body of the ``with``: a
    socket bound to it, never listening, holds it. A port found free and then closed is
    free for any process to take a moment later (another spec's server on a busy machine),
    and then a "dead" backend answers."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        yield sock.getsockname()[1]


def transports_on_port(port: int) -> list[asyncio.Transport]:
    """The open asyncio stream transports in this process whose local port is ``port``: a
    server's ends of its connections (a TLS transport and the TCP transport below it, both).
    Their ``get_write_buffer_size()`` is what the server holds written and unsent, where
    ``memory_held`` can't see it (OpenSSL keeps its own memory)."""
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Transport) and not obj.is_closing():
            sock = obj.get_extra_info("socket")
            name = obj.get_extra_info("sockname")
            if sock is not None and sock.type == socket.SOCK_STREAM and name and name[1] == port:
                found.append(obj)
    return found


async def memory_held(awaitable: Awaitable[Any], timeout: float, what: str) -> int:
    """The most memory the process held above where it started (``tracemalloc``'s peak) while
    awaiting ``awaitable``, bounded by ``timeout`` (:func:`bounded` says ``what`` never came)."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await bounded(awaitable, timeout, what)
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


async def send_whole_then_read(
    port: int, head: bytes, piece: bytes, count: int, tail: bytes = b"", timeout: float = 10
) -> tuple[bytes, ConnectionError | None]:
    """What urllib, http.client and requests do with a request body: write ``head``, then
    ``piece`` ``count`` times (awaiting ``drain()`` after each, every wait bounded by ``timeout``),
    then ``tail``, and only then read the answer to the close.

    Returns (the bytes read, None), or (what was read, the error) when the connection was reset:
    a server that closes with the client's bytes unread makes the kernel answer them with a
    reset, and the client fails on a write before it reads anything."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    received = b""
    try:
        writer.write(head)
        for _ in range(count):
            writer.write(piece)
            await bounded(writer.drain(), timeout, "the server to take the next piece of the body")
        writer.write(tail)
        await bounded(writer.drain(), timeout, "the server to take the end of the body")
        received = await bounded(reader.read(), timeout, "the server's answer and its close")
    except ConnectionError as error:
        return received, error
    finally:
        writer.close()
    return received, None


@dataclasses.dataclass(frozen=True)
class WholeUpload:
    """A request whose body is far bigger than the socket buffers between a spec and a server
    (``pieces`` of 64 KiB, 32 MiB by default), framed by Content-Length or, with ``chunked``,
    as 64 KiB chunks; sent whole before reading, as urllib, http.client and requests do.

    For the specs of an answer a server gives from the head alone (413, 501, 404...): a server
    that closes with the body unread makes the client fail on a write instead of reading the
    answer; one that closes in stages (RFC 9112 §9.6) gets it read. ``head`` is the request line,
    ``Host`` and the framing field; :meth:`answer` sends it all and returns what came back."""

    PIECE = b"x" * 65536

    request_line: str
    host: str
    chunked: bool = False
    pieces: int = 512

    @property
    def framing(self) -> str:
        """The framing field, as sent: ``Content-Length: 33554432`` or ``Transfer-Encoding: chunked``."""
        if self.chunked:
            return "Transfer-Encoding: chunked"
        return f"Content-Length: {self.pieces * len(self.PIECE)}"

    @property
    def head(self) -> bytes:
        return f"{self.request_line}\r\nHost: {self.host}\r\n{self.framing}\r\n\r\n".encode()

    @property
    def piece(self) -> bytes:
        """What is written ``pieces`` times: 64 KiB, or a chunk of 64 KiB."""
        return b"10000\r\n" + self.PIECE + b"\r\n" if self.chunked else self.PIECE

    @property
    def tail(self) -> bytes:
        """What ends the body: the last chunk, or nothing."""
        return b"0\r\n\r\n" if self.chunked else b""

    async def answer(self, port: int, what: str, status: int) -> bytes:
        """Send it all to 127.0.0.1:``port`` (:func:`send_whole_then_read`), then read the answer
        to the close; return it. A reset fails the spec with "Called ``what``; returned the
        connection was reset: ...; expected 'HTTP/1.1 ``status`` ...'"."""
        raw, failure = await send_whole_then_read(
            port, self.head, self.piece, self.pieces, self.tail
        )
        assert failure is None, called(
            what, f"the connection was reset: {failure!r}", f"HTTP/1.1 {status} ..."
        )
        return raw


class LingeringClient:
    """The client of a lingering close (RFC 9112 §9.6), on a :class:`SkippingLoop`: it sent a
    request the server refuses from the head alone, read the answer's head, and now holds its
    end open while the server half-closes and reads on, bounded (nginx: ``lingering_timeout``
    without a byte, ``lingering_time`` in all).

    Open it with :meth:`refused`; :meth:`held_after` moves the loop's clock and says whether the
    server still holds the connection; :meth:`close` ends the client's side. Nothing is timed:
    the server's side is watched through the loop (``SkippingLoop.accepted``), counting turns.
    """

    def __init__(
        self,
        loop: SkippingLoop,
        writer: asyncio.StreamWriter,
        server_side: asyncio.Transport,
        head: bytes,
    ) -> None:
        self.loop = loop
        self.writer = writer
        self.server_side = server_side
        self.head = head
        self.sent = 0

    @classmethod
    async def refused(cls, port: int, request: bytes, what: str) -> LingeringClient:
        """Connect to 127.0.0.1:``port``, send ``request`` (a head the server refuses, maybe a
        little body), and read the answer's head (``what`` names the request in the failure
        message)."""
        loop = asyncio.get_running_loop()
        if not isinstance(loop, SkippingLoop):
            raise TypeError("a LingeringClient runs on a SkippingLoop")
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(request)
            head = await bounded(reader.readuntil(b"\r\n\r\n"), 10, f"the answer to {what}")
            return cls(loop, writer, loop.accepted_from(writer), head)
        except BaseException:
            writer.close()
            raise

    @property
    def held(self) -> bool:
        """Whether the server still holds its side of the connection (has not closed it)."""
        return not self.server_side.is_closing()

    async def held_after(self, seconds: float, *, every: float | None = None) -> bool:
        """Move the clock ``seconds`` forward, in steps of ``every`` with a byte of body sent
        after each step (a client still sending), or at once (a client that sends nothing);
        after each step the loop runs until the server closes, or 200 turns. Return whether the
        server still holds the connection at the end."""
        step = seconds if every is None else every
        left = seconds
        while left > 1e-9:
            self.loop.skip(min(step, left))
            left -= step
            if await self.loop.turns_until(lambda: not self.held):
                return False
            if every is not None:
                with contextlib.suppress(ConnectionError):
                    self.writer.write(b"x")
                    self.sent += 1
                for _ in range(20):  # the server reads the byte
                    await asyncio.sleep(0)
        return self.held

    def close(self) -> None:
        self.writer.close()


def linger_holds(
    serve: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
    request: bytes,
    what: str,
    *moves: tuple[float, float | None],
) -> tuple[bool, ...]:
    """Whether a server still holds a refused client's connection after each move of the clock.

    Runs on a fresh :class:`SkippingLoop` (call it from a plain, not an async, spec): ``serve()``
    starts the learner's server (an async context manager yielding something with a ``port``);
    a :class:`LingeringClient` sends ``request`` and reads the answer's head; then each move
    ``(seconds, every)`` is :meth:`LingeringClient.held_after` (``every``: how often the client
    sends a byte of body meanwhile, or None: never)."""

    async def main() -> tuple[bool, ...]:
        async with serve() as server:
            client = await LingeringClient.refused(server.port, request, what)
            try:
                return tuple([await client.held_after(s, every=e) for s, e in moves])
            finally:
                client.close()

    with asyncio.Runner(loop_factory=SkippingLoop) as runner:
        return runner.run(main())


# -- Interim (1xx) responses: an origin that sends them, a parser that keeps them ------------
#
# forward_proxy, tls_termination and resilience_sidecar each face an origin that writes raw
# bytes as Python's http.server does for curl's Expect: 100-continue: interim heads, then the
# final answer (RFC 9110 §15.2). h11 cannot be that origin (it never sends a 103), so these
# write the bytes themselves, and :func:`response_heads` reads every head back, 1xx included.

INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
)


def raw_origin(answer: bytes, *, hold: bool = False) -> Handler:
    """A raw origin handler (serve it with :func:`tcp_server`): it reads a request head, then
    writes ``answer`` at once, bytes no HTTP library would send: ``INTERIM + final`` (a 100
    Continue and a 103 Early Hints with a Link, then a whole final response), or a 101 and what
    follows it. With ``hold`` it then reads until the proxy closes, so only the proxy can end
    the connection; without, it returns (and its server closes the connection)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if hold:
            await reader.read(-1)

    return handle


class ContinuingOrigin:
    """A raw origin that answers an upload as http.server does: it reads a request head, writes
    ``HTTP/1.1 100 Continue`` (when the head has an Expect field, or always with ``always``),
    reads the ``Content-Length`` body, then writes ``answer``. With ``hold`` it then reads until
    the proxy closes. ``requests`` keeps each (head as text, body). Serve ``handle``."""

    def __init__(
        self,
        answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nstored!",
        *,
        always: bool = False,
        hold: bool = False,
    ) -> None:
        self.answer = answer
        self.always = always
        self.hold = hold
        self.requests: list[tuple[str, bytes]] = []

    @property
    def bodies(self) -> list[bytes]:
        """The body of each request read, in order."""
        return [body for _, body in self.requests]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = [line.partition(":") for line in head.split("\r\n")[1:]]
        if self.always or any(k.strip().lower() == "expect" for k, _, _ in fields):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        length = sum(int(v) for k, _, v in fields if k.strip().lower() == "content-length")
        self.requests.append((head, await reader.readexactly(length)))
        writer.write(self.answer)
        await writer.drain()
        if self.hold:
            await reader.read(-1)


@dataclasses.dataclass(frozen=True)
class ResponseHead:
    """One response head as sent: its status line, its status (0 when the line has none), and
    its fields in order as (lower-case name, value without surrounding white space)."""

    status_line: str
    status: int
    fields: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        """Every value of field ``name`` (any case), in order."""
        return [v for k, v in self.fields if k == name.lower()]


def response_heads(raw: bytes) -> tuple[list[ResponseHead], bytes]:
    """The response heads at the start of ``raw``, up to and including the first that is not a
    1xx, and what follows that head (the final body). Reads raw bytes without judging them, so a
    spec sees every interim head a proxy relayed, or failed to."""
    heads = []
    rest = raw
    while rest.startswith(b"HTTP/"):
        head, _, rest = rest.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        fields = tuple(
            (k.strip().lower(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])
        )
        heads.append(ResponseHead(lines[0], status, fields))
        if not 100 <= status < 200:
            break
    return heads, rest


# -- Lifecycle hygiene: what a close() leaves the event loop to report -----------------------
#
# A close() that cancels a connection task which then ends in CancelledError makes Python 3.11.7
# and 3.12.1's start_server log "Exception in callback ..." (the done-callback added for
# gh-110894 calls task.exception() on the cancelled task; since gh-113538, in 3.13, it closes
# the transport silently instead; before gh-110894 nothing watched the task). A task that
# failed unseen is logged as "Task exception was never retrieved" when it is collected, a
# transport dropped without close() warns "unclosed transport" (ResourceWarning). Nothing
# fails, so only a spec that listens to the loop's exception handler notices. What asyncio logs
# differs between versions, so loop_reports also watches the start_server connection tasks
# made during the block itself and reports one that ended cancelled or failed, on every version.


class LoopReports:
    """What the event loop reported while :func:`loop_reports` listened: the contexts its
    exception handler received, and the ResourceWarnings raised (an unclosed transport or
    socket). Empty (false) when the loop had nothing to report."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.handlers: list[str] = []  # connection tasks that ended cancelled or failed

    def __len__(self) -> int:
        return len(self.contexts) + len(self.warnings) + len(self.handlers)

    def lines(self) -> list[str]:
        """Each report in a line, the exception first (the loop's message names a long callback
        repr), cut to 160 characters; a report made several times is one line ending "(xN)"."""
        out: list[str] = []
        for context in self.contexts:
            line = str(context.get("message", "(no message)"))
            exc = context.get("exception")
            if exc is not None:
                name = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                line = f"{name} in: {line}"
            out.append(line)
        out += [f"ResourceWarning: {w}" for w in self.warnings]
        out += self.handlers
        cut = [line if len(line) <= 160 else line[:157] + "..." for line in out]
        counts = {line: cut.count(line) for line in cut}  # in order of first report
        return [line if n == 1 else f"{line} (x{n})" for line, n in counts.items()]

    def message(self, call: str, hint: str = "") -> str:
        """The learner-facing message: what was called and what the loop reported, quoted."""
        quoted = "; ".join(repr(line) for line in self.lines())
        text = (
            f"Called {call}; the event loop reported {len(self)} error(s): {quoted}; expected none"
        )
        return f"{text} ({hint})" if hint else text


@contextlib.asynccontextmanager
async def loop_reports(turns: int = 10) -> AsyncIterator[LoopReports]:
    """Record what the running loop's exception handler receives, and every ResourceWarning,
    while the body of the ``async with`` runs and for ``turns`` loop turns after it, a garbage
    collection (a failed task nobody awaited, a transport nobody closed, report when collected),
    and ``turns`` more. Turns are counted, never timed. Use it as
    ``async with loop_reports() as reports: ... await server.close()`` then
    ``assert not reports, reports.message("server.close() with a client waiting")``.

    It also reports, on every Python version, a connection task that ``asyncio.start_server``
    made during the block (the task running its ``client_connected_cb``) and that ended
    cancelled or with an exception: nothing awaits that task, so what it raises goes to asyncio,
    which logs it or not depending on the version (a cancelled one is logged by 3.11.7 and
    3.12.1, not by 3.13). A task still running at the end is not reported here.

    Garbage made before the block is collected before listening starts, so a leak of earlier
    code is not blamed on the block. The loop's own handler, task factory and the warning
    filters are put back on exit; an exception from the body passes through unchanged (the
    turns are not run then)."""
    loop = asyncio.get_running_loop()
    reports = LoopReports()
    gc.collect()  # what earlier code left for the collector reports now, not in our window
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.contexts.append(context))
    handlers: list[asyncio.Task[Any]] = []
    factory = loop.get_task_factory()

    def watch(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        task = factory(loop, coro, **kwargs) if factory else asyncio.Task(coro, loop=loop, **kwargs)
        if _made_by_start_server() and isinstance(task, asyncio.Task):
            handlers.append(task)
        return task

    loop.set_task_factory(watch)
    with warnings.catch_warnings():
        warnings.simplefilter("always", ResourceWarning)
        shown = warnings.showwarning

        def record(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            if issubclass(category, ResourceWarning):
                reports.warnings.append(str(message))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = record
        try:
            yield reports
            for _ in range(turns):
                await asyncio.sleep(0)
            gc.collect()
            for _ in range(turns):
                await asyncio.sleep(0)
            reports.handlers += _handler_endings(handlers, reports.contexts)
        finally:
            loop.set_task_factory(factory)
            loop.set_exception_handler(previous)


def _made_by_start_server() -> bool:
    """Whether the task being made runs a start_server ``client_connected_cb``: in 3.11 to 3.13
    ``StreamReaderProtocol.connection_made`` creates it (``self._loop.create_task(res)``)."""
    frame = sys._getframe(2)
    for _ in range(4):  # watch() <- create_task() <- connection_made()
        if frame is None:
            return False
        if frame.f_code.co_name == "connection_made" and isinstance(
            frame.f_locals.get("self"), asyncio.StreamReaderProtocol
        ):
            return True
        frame = frame.f_back
    return False


def _handler_endings(tasks: list[asyncio.Task[Any]], contexts: list[dict[str, Any]]) -> list[str]:
    """A line for each connection task that ended cancelled or failed (a failure the loop has
    already reported is not repeated)."""
    heard = {id(context.get("exception")) for context in contexts}
    out = []
    for task in tasks:
        if not task.done():
            continue
        name = getattr(task.get_coro(), "__qualname__", repr(task.get_coro()))
        if task.cancelled():
            out.append(
                f"CancelledError ended {name}(), a start_server connection task (Python 3.11.7 "
                "logs it, 3.13 does not)"
            )
        elif (exc := task.exception()) is not None and id(exc) not in heard:
            out.append(
                f"{type(exc).__name__}: {exc} ended {name}(), a start_server connection task"
            )
    return out


Begin = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def reset_mid_request(
    handle: Handler, begin: Begin, what: str, timeout: float = 8.0
) -> LoopReports:
    """What the event loop reports when a client resets its connection while the server is busy
    with its request: the reset is not an error of the server, so a server should leave none.

    ``handle`` (the learner's connection handler) is served by ``asyncio.start_server`` itself
    on 127.0.0.1, port 0, so an exception it lets out is reported by the loop ("Unhandled
    exception in client_connected_cb"), as is a task that failed unseen or a transport nobody
    closed. One client connects; ``begin(reader, writer)`` sends its request and waits (bounded)
    until the request is in the server's hands; then the client resets the connection (a TCP
    RST, not a FIN) and the server is given ``timeout`` seconds to return from ``handle``
    (``what`` names that wait in the failure message). Returns the :func:`loop_reports` of it
    all: ``assert not reports, reports.message(...)``."""
    ended = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        finally:
            ended.set()

    listener = await asyncio.start_server(serve, LOCALHOST, 0)
    try:
        async with loop_reports() as reports:
            port = listener.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            await begin(reader, writer)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # a TCP RST, not a FIN
            await bounded(ended.wait(), timeout, what)
    finally:
        listener.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(listener.wait_closed(), 2.0)
    return reports
