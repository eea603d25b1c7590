"""Spec helpers for event_loop: a recording selector, a server thread, and plain clients.

The server under test runs its loop either in a background thread (``serving``) or in the
spec's own thread (``pump``, which calls ``run_once``). The learner's code never starts a thread;
the specs may.

``Recorder`` is the selector the specs hand to ``EchoServer(selector_factory=...)``. It wraps a
real ``selectors.DefaultSelector`` and records every ``select()`` call (its timeout and how many
events it returned). Before each ``select()`` it runs the spec's probes *in the server's thread*,
between two iterations of the loop, so a probe reads a consistent state (``buffered_bytes()``,
``connection_count``) without racing the loop. ``wait_for`` wakes the loop through a private
socketpair that the learner never sees (filtered out of ``select()`` and ``get_map()``), so a
condition that is already true is noticed at once instead of at the next real event.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from grader.spectools import LOCALHOST, short

__all__ = [
    "JOIN_WAIT",
    "LOCALHOST",
    "choke",
    "Choked",
    "connect",
    "describe_fds",
    "echo_in_step",
    "exchange",
    "listen_queue_length",
    "open_fds",
    "payloads",
    "pump",
    "receive",
    "Received",
    "Recorder",
    "serving",
    "sockopt",
    "stream",
    "wait_listen_queue",
]

WAIT = 5.0  # seconds: the bound on every wait for data; a correct server needs a tiny fraction
JOIN_WAIT = 2.0  # seconds: how long stop() may take to make serve_forever() return
CHOKE_WAIT = 3.0  # seconds: how long a server may take to pause a client that never reads
SETTLE = 3.0  # seconds: how long the loop may take to reach a state a spec waits for
SPIN = 1000  # select() calls without progress that prove a loop spins instead of sleeping


@dataclass(frozen=True)
class SelectCall:
    timeout: float | None
    ready: int  # how many (key, events) pairs select() handed to the server


class _HiddenMap(Mapping):
    """The inner selector's map without the recorder's private wake-up socket."""

    def __init__(self, inner: Mapping, hidden_fd: int) -> None:
        self._inner = inner
        self._hidden = hidden_fd

    def __getitem__(self, fileobj):
        key = self._inner[fileobj]
        if key.fd == self._hidden:
            raise KeyError(fileobj)
        return key

    def __iter__(self):
        return (fd for fd in self._inner if fd != self._hidden)

    def __len__(self) -> int:
        return len(self._inner) - 1


def _peer_of(fileobj) -> tuple | None:
    """The remote address of a TCP socket (or of a file descriptor), None for anything else."""
    try:
        if isinstance(fileobj, int):
            with socket.socket(fileno=os.dup(fileobj)) as dup:
                return dup.getpeername() if dup.family == socket.AF_INET else None
        if isinstance(fileobj, socket.socket) and fileobj.family == socket.AF_INET:
            return fileobj.getpeername()
    except OSError:  # a listening socket has no peer
        return None
    return None


class Recorder(selectors.BaseSelector):
    """A selector that records select() calls and runs probes between loop iterations."""

    def __init__(self) -> None:
        self.inner = selectors.DefaultSelector()
        self.calls: list[SelectCall] = []
        self.peers: dict[int, tuple] = {}  # fd -> remote address, for registered TCP clients
        self.probe_errors: list[BaseException] = []
        self.spurious: list[tuple] = []  # peers to report readable once, whether or not they are
        self._probes: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._kick_r, self._kick_w = socket.socketpair()
        self._kick_r.setblocking(False)
        self._kick_w.setblocking(False)
        self.inner.register(self._kick_r, selectors.EVENT_READ)
        self._kick_fd = self._kick_r.fileno()

    # -- the selector interface the server uses ------------------------------------------------

    def register(self, fileobj, events, data=None):
        key = self.inner.register(fileobj, events, data)
        peer = _peer_of(fileobj)
        if peer is not None:
            self.peers[key.fd] = peer
        return key

    def unregister(self, fileobj):
        key = self.inner.unregister(fileobj)
        self.peers.pop(key.fd, None)
        return key

    def modify(self, fileobj, events, data=None):
        return self.inner.modify(fileobj, events, data)

    def select(self, timeout=None):
        end = None if timeout is None else time.monotonic() + max(timeout, 0)
        while True:
            self._run_probes()
            left = None if end is None else max(end - time.monotonic(), 0)
            ready = self.inner.select(left)
            theirs = [(key, events) for key, events in ready if key.fd != self._kick_fd]
            theirs += self._spurious_events(theirs)
            if len(theirs) < len(ready):
                with contextlib.suppress(BlockingIOError):
                    while self._kick_r.recv(4096):
                        pass
            if theirs or len(theirs) == len(ready) or (end is not None and left == 0):
                self.calls.append(SelectCall(timeout, len(theirs)))
                return theirs

    def _spurious_events(self, ready: list) -> list:
        """(key, EVENT_READ) for each peer in ``spurious`` not already reported readable."""
        extra = []
        for peer in self.spurious:
            for fd, address in list(self.peers.items()):
                key = self.inner.get_map().get(fd)
                if address == peer and key is not None and all(k.fd != fd for k, _ in ready):
                    extra.append((key, selectors.EVENT_READ))
        self.spurious.clear()
        return extra

    def close(self) -> None:
        self.inner.close()
        self._kick_r.close()
        self._kick_w.close()

    def get_map(self):
        return _HiddenMap(self.inner.get_map(), self._kick_fd)

    # -- what the specs use --------------------------------------------------------------------

    def _run_probes(self) -> None:
        with self._lock:
            probes = list(self._probes)
        for probe in probes:
            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - reported by the spec that set the probe
                self.probe_errors.append(exc)

    def probe(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` in the server's thread before every select() call."""
        with self._lock:
            self._probes.append(fn)

    def kick(self) -> None:
        """Wake the loop so the probes run now (the server itself sees no event)."""
        with contextlib.suppress(OSError):
            self._kick_w.send(b"k")

    def when(self, predicate: Callable[[], bool]) -> threading.Event:
        """An Event set the first time ``predicate()`` is true between two loop iterations."""
        event = threading.Event()

        def check() -> None:
            if not event.is_set() and predicate():
                event.set()

        self.probe(check)
        self.kick()
        return event

    def wait_for(self, predicate: Callable[[], bool], timeout: float = SETTLE) -> bool:
        """True once ``predicate()`` held in the server thread; False if ``timeout`` passed first."""
        return self.when(predicate).wait(timeout)

    def events_of(self, peer: tuple) -> int | None:
        """The interest set registered for the client at ``peer`` (None: not registered)."""
        for fd, address in list(self.peers.items()):
            if address == peer:
                key = self.inner.get_map().get(fd)
                return None if key is None else key.events
        return None

    def client_keys(self) -> list[selectors.SelectorKey]:
        """The keys of the registered client sockets."""
        found = self.inner.get_map()
        return [found[fd] for fd in list(self.peers) if fd in found]


# -- running the server ----------------------------------------------------------------------


@contextlib.contextmanager
def serving(server, *, strict_stop: bool = False) -> Iterator[threading.Thread]:
    """Run ``server.serve_forever()`` in a background thread; stop, join and close on exit.

    Only the specs about stopping pass ``strict_stop``: they fail when stop() alone does not
    end serve_forever(). The others, after stop(), also connect once to the server, so that a
    loop sleeping in select() wakes up and sees the stop even without a wake-up of its own,
    and a broken stop() costs the stop specs only.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.serve_forever()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name="echo-server", daemon=True)
    thread.start()
    try:
        yield thread
    except BaseException:
        _shutdown(server, thread, poke=True)
        if errors:
            raise AssertionError(f"serve_forever() raised {short(errors[0])}") from None
        raise
    stopped = _shutdown(server, thread, poke=not strict_stop)
    assert not errors, f"serve_forever() raised {short(errors[0] if errors else None)}"
    assert stopped, (
        f"Called server.stop() from another thread; serve_forever() was still running "
        f"{JOIN_WAIT:g} s later; expected it to return promptly"
    )


def _shutdown(server, thread: threading.Thread, *, poke: bool) -> bool:
    server.stop()
    if poke and thread.is_alive():
        with contextlib.suppress(OSError), socket.create_connection(server.address, timeout=1):
            pass
    thread.join(JOIN_WAIT)
    if thread.is_alive():
        return False  # still using its sockets: leave them to the process's exit
    if poke:  # close() has specs of its own; here it only tidies up
        with contextlib.suppress(Exception):
            server.close()
    else:
        server.close()
    return True


def pump(server, done: Callable[[], bool], *, deadline: float = WAIT) -> bool:
    """Call ``server.run_once(0.05)`` in this thread until ``done()``; False if time ran out."""
    end = time.monotonic() + deadline
    while not done():
        if time.monotonic() > end:
            return False
        server.run_once(0.05)
    return True


# -- clients ---------------------------------------------------------------------------------


def connect(address, *, rcvbuf: int | None = None, sndbuf: int | None = None) -> socket.socket:
    """A blocking client socket (5 s timeout); buffer sizes are set before the handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.settimeout(WAIT)
    sock.connect(address)
    return sock


@dataclass
class Received:
    data: bytes
    ended: str  # "complete", "eof", "timeout" or "reset"

    def describe(self, expected: bytes) -> str:
        """'N of M bytes (how it ended)', plus where the first wrong byte is, if any."""
        text = f"{len(self.data)} of {len(expected)} bytes ({self.ended})"
        for i, (a, b) in enumerate(zip(self.data, expected, strict=False)):
            if a != b:
                return text + f", first wrong byte at offset {i}"
        return text


def receive(sock: socket.socket, size: int | None = None, *, deadline: float = WAIT) -> Received:
    """Read ``size`` bytes (None: until EOF) from a blocking socket, for at most ``deadline`` s."""
    end = time.monotonic() + deadline
    chunks: list[bytes] = []
    got = 0
    while size is None or got < size:
        left = end - time.monotonic()
        if left <= 0:
            return Received(b"".join(chunks), "timeout")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536 if size is None else min(65536, size - got))
        except TimeoutError:
            return Received(b"".join(chunks), "timeout")
        except ConnectionError:
            return Received(b"".join(chunks), "reset")
        if not chunk:
            return Received(b"".join(chunks), "eof")
        chunks.append(chunk)
        got += len(chunk)
    return Received(b"".join(chunks), "complete")


@dataclass
class _Client:
    sock: socket.socket
    payload: memoryview
    sent: int = 0
    received: bytearray | None = None
    ended: str = ""


def exchange(
    address,
    payloads: list[bytes],
    *,
    half_close: bool = False,
    rcvbuf: int | None = None,
    deadline: float = WAIT,
) -> list[Received]:
    """Connect one client per payload and echo them all at once, driven by a client selector.

    Each client writes its payload while reading what comes back. With ``half_close`` it then
    shuts its write side and reads until EOF; otherwise it stops once it has as many bytes as it
    sent. Every socket is closed on return.
    """
    selector = selectors.DefaultSelector()
    clients: list[_Client] = []
    try:
        for payload in payloads:
            sock = connect(address, rcvbuf=rcvbuf)
            sock.setblocking(False)
            client = _Client(sock, memoryview(payload), received=bytearray())
            clients.append(client)
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        open_count = len(clients)
        end = time.monotonic() + deadline
        while open_count:
            left = end - time.monotonic()
            if left <= 0:
                break
            for key, mask in selector.select(left):
                client = key.data
                if mask & selectors.EVENT_WRITE:
                    _send_some(selector, client, half_close)
                if mask & selectors.EVENT_READ and _receive_some(client, half_close):
                    selector.unregister(client.sock)
                    open_count -= 1
        return [Received(bytes(c.received or b""), c.ended or "timeout") for c in clients]
    finally:
        for client in clients:
            client.sock.close()
        selector.close()


def _send_some(selector: selectors.BaseSelector, client: _Client, half_close: bool) -> None:
    try:
        client.sent += client.sock.send(client.payload[client.sent : client.sent + 65536])
    except BlockingIOError:
        return
    except ConnectionError:
        client.sent = len(client.payload)
    if client.sent == len(client.payload):
        if half_close:
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_WR)
        selector.modify(client.sock, selectors.EVENT_READ, client)


def _receive_some(client: _Client, half_close: bool) -> bool:
    """Read once; True when this client is finished."""
    assert client.received is not None
    try:
        chunk = client.sock.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionError:
        client.ended = "reset"
        return True
    if not chunk:
        client.ended = "eof"
        return True
    client.received += chunk
    if not half_close and len(client.received) >= len(client.payload):
        client.ended = "complete"
        return True
    return False


def payloads(seed: int, count: int, low: int, high: int) -> list[bytes]:
    """``count`` random payloads of ``low``..``high`` bytes, the same for the same seed."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(low, high)) for _ in range(count)]


# -- the kernel's view -----------------------------------------------------------------------


def open_fds() -> set[int]:
    """This process's open file descriptors (Linux /proc/self/fd, macOS /dev/fd)."""
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    found = set()
    for name in os.listdir(folder):
        fd = int(name)
        with contextlib.suppress(OSError):
            os.fstat(fd)  # the listing's own descriptor is closed again by now
            found.add(fd)
    return found


def describe_fds(fds: set[int]) -> list[str]:
    """What each descriptor is ('socket:[123]', 'anon_inode:[eventpoll]'), where Linux says."""
    out = []
    for fd in sorted(fds):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            out.append(str(fd))
    return out


def listen_queue_length(port: int) -> int | None:
    """The accept-queue length of the IPv4 listener on ``port``, from /proc/net/tcp (Linux).

    For a LISTEN row (state 0A) the rx_queue field is the number of established connections
    waiting for accept() (VECTORS.md, "Kernel facts"). None where /proc/net/tcp does not exist.
    """
    try:
        with open("/proc/net/tcp") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return int(queues.split(":")[1], 16)
    return None


def echo_in_step(server, clients: list[socket.socket], messages: list[bytes]) -> list[bytes]:
    """Each client sends its (small) message; run_once() in this thread until all are echoed."""
    for client, message in zip(clients, messages, strict=True):
        client.sendall(message)  # small: it fits in the kernel buffers, nobody has to read yet
        client.setblocking(False)
    got = [bytearray() for _ in clients]
    finished = [False] * len(clients)

    def done() -> bool:
        for i, (client, message) in enumerate(zip(clients, messages, strict=True)):
            while not finished[i] and len(got[i]) < len(message):
                try:
                    chunk = client.recv(65536)
                except BlockingIOError:
                    break
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    finished[i] = True
                got[i] += chunk
        return all(f or len(g) >= len(m) for f, g, m in zip(finished, got, messages, strict=True))

    try:
        pump(server, done)
    finally:
        for client in clients:
            client.settimeout(WAIT)
    return [bytes(g) for g in got]


def sockopt(fileobj, option: int) -> int:
    """getsockopt(SOL_SOCKET, option) on a registered socket or file descriptor."""
    if isinstance(fileobj, int):
        with socket.socket(fileno=os.dup(fileobj)) as dup:
            return dup.getsockopt(socket.SOL_SOCKET, option)
    return fileobj.getsockopt(socket.SOL_SOCKET, option)


# -- a client that never reads -----------------------------------------------------------------

_PATTERN = random.Random(2024).randbytes(1_000_003)  # odd length: no alignment with any chunk
_CAP = 64 << 20  # a server that keeps reading past this has no backpressure at all


def stream(size: int) -> bytes:
    """The first ``size`` bytes the slow client sends: the pattern, repeated."""
    return (_PATTERN * (size // len(_PATTERN) + 1))[:size]


@dataclass
class Choked:
    sent: int  # bytes the slow client managed to send
    peak: list[int]  # [largest buffered_bytes() seen between two loop iterations]
    paused: bool  # the server stopped reading from the slow client (no EVENT_READ)
    selects: int  # select() calls the loop made meanwhile


def choke(server, recorder: Recorder, slow: socket.socket, bound: int) -> Choked:
    """Make ``slow`` send without ever reading until the server stops reading from it.

    Returns when the server's interest set for ``slow`` has no EVENT_READ (it paused), when
    buffered_bytes() went over ``bound``, or after _CAP bytes or WAIT seconds. The server must
    be running (``serving``) and ``slow`` connected; ``slow`` is left non-blocking.
    """
    peer = slow.getsockname()
    peak = [0]
    seen = [False]

    def track() -> None:
        peak[0] = max(peak[0], server.buffered_bytes())

    def paused() -> bool:
        events = recorder.events_of(peer)
        if events is None:
            return seen[0]  # unregistered after being registered: not reading either
        seen[0] = True
        return not events & selectors.EVENT_READ

    def check() -> bool:
        if paused():
            state["paused"] = True
        return state["paused"] or peak[0] > bound

    state = {"paused": False}
    recorder.probe(track)
    stop = recorder.when(check)
    data = memoryview(_PATTERN * 2)
    slow.setblocking(False)
    sent = 0
    calls_before = len(recorder.calls)
    waiter = selectors.DefaultSelector()
    waiter.register(slow, selectors.EVENT_WRITE)
    end = time.monotonic() + CHOKE_WAIT
    stuck_since = None  # len(recorder.calls) when the slow client's sends started failing
    try:
        while not stop.is_set() and sent < _CAP and time.monotonic() < end:
            offset = sent % len(_PATTERN)
            try:
                sent += slow.send(data[offset : offset + 65536])
                stuck_since = None
            except BlockingIOError:
                if stuck_since is None:
                    stuck_since = len(recorder.calls)
                elif len(recorder.calls) - stuck_since > SPIN:
                    break  # the loop spins without reading: it will never pause
                waiter.select(0.05)  # until writable again; the tick re-checks the stop event
    finally:
        waiter.close()
    if stop.is_set():
        recorder.wait_for(lambda: True)  # one more loop iteration: the probes see the last state
    return Choked(sent, peak, state["paused"], len(recorder.calls) - calls_before)


def wait_listen_queue(port: int, at_least: int, *, deadline: float = SETTLE) -> int | None:
    """The accept-queue length once it reaches ``at_least`` (or ``deadline`` passes).

    On loopback the kernel finishes a handshake almost at once, but a busy machine may defer it
    to a softirq thread; the kernel offers no event to wait on, so this reads /proc/net/tcp in
    short steps, within a bound. None where /proc/net/tcp does not exist.
    """
    end = time.monotonic() + deadline
    while True:
        queued = listen_queue_length(port)
        if queued is None or queued >= at_least or time.monotonic() > end:
            return queued
        time.sleep(0.005)
