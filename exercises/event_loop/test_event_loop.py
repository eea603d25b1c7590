"""Examples of a working event-loop echo server. Run them with `nox -s try -- event_loop`.

The server never starts a thread; these tests do, to run serve_forever() beside the clients.
"""

import selectors
import socket
import threading

try:
    from event_loop import EchoServer
except ImportError as err:
    raise ImportError("MISSING CLASS --> could not import EchoServer from event_loop.py") from err


class CountingSelector(selectors.DefaultSelector):
    """The default selector, counting how many events each select() call returned."""

    def __init__(self):
        super().__init__()
        self.returned = []

    def select(self, timeout=None):
        ready = super().select(timeout)
        self.returned.append(len(ready))
        return ready


def start(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def finish(server, thread):
    server.stop()
    thread.join(2)
    assert not thread.is_alive(), "Called server.stop(); serve_forever() did not return in 2 s"
    server.close()


def read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_echo_one_message():
    server = EchoServer()
    thread = start(server)
    try:
        with socket.create_connection(server.address, timeout=5) as client:
            client.sendall(b"hello")
            got = read_exactly(client, 5)
            assert got == b"hello", f"Sent b'hello'; got {got!r}; expected b'hello'"
    finally:
        finish(server, thread)


def test_half_close_then_read_to_eof():
    # max_buffer above the payload: the server reads it all even though we read nothing yet.
    server = EchoServer(max_buffer=2 << 20)
    thread = start(server)
    try:
        with socket.create_connection(server.address, timeout=5) as client:
            payload = bytes(range(256)) * 4000  # about 1 MB: more than one send() can take
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)  # "I am done sending; keep talking to me"
            got = read_exactly(client, len(payload) + 1)  # +1: must stop at EOF
            assert got == payload, f"Got {len(got)} of {len(payload)} bytes back, then EOF"
    finally:
        finish(server, thread)


def test_run_once_drives_the_loop_from_the_calling_thread():
    selector = CountingSelector()
    server = EchoServer(selector_factory=lambda: selector)
    try:
        with socket.create_connection(server.address, timeout=5) as client:
            server.run_once(1.0)  # the listener is readable: accept
            assert server.connection_count == 1, (
                f"connection_count after one run_once(): {server.connection_count}; expected 1"
            )
            client.sendall(b"ping")
            server.run_once(1.0)  # the client is readable: recv and echo
            assert read_exactly(client, 4) == b"ping", "Expected b'ping' back"
            assert server.buffered_bytes() == 0, "Everything was sent: nothing is buffered"
            # Idle now: nothing to read, nothing to write, so select() reports nothing.
            before = len(selector.returned)
            server.run_once(0)
            server.run_once(0)
            assert selector.returned[before:] == [0, 0], (
                f"select() on an idle server returned {selector.returned[before:]} events; "
                "expected [0, 0] (register EVENT_WRITE only while output is pending)"
            )
    finally:
        server.close()


def test_stop_from_another_thread():
    server = EchoServer()
    thread = start(server)
    finish(server, thread)  # serve_forever() sleeps in select(); stop() must wake it
