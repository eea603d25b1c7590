"""Visible examples for the sni_router kata. Run them with `nox -s try -- sni_router`.

They use the standard library only: a ClientHello made by Python's own ssl module (read from a
MemoryBIO, never sent anywhere) and a plain TCP backend that records what it receives. The
hidden specs go much further (GREASE, limits, malformed hellos, real TLS backends through the
router with httpx verifying their certificates).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

try:
    from sni_router import ClientHello, HelloError, HelloParser, SniRouter
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import ClientHello, HelloError, HelloParser and SniRouter from sni_router.py"
    ) from err


def client_hello(server_name: str, alpn: list[str]) -> bytes:
    """The first bytes an OpenSSL client sends: its ClientHello, in one TLS record."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(alpn)
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_parse_a_real_hello():
    hello = client_hello("api.example.test", ["h2", "http/1.1"])
    got = HelloParser().feed(hello)
    assert isinstance(got, ClientHello), f"Called HelloParser().feed(<hello>); returned {got!r}"
    assert got.server_name == "api.example.test", f"server_name is {got.server_name!r}"
    assert got.alpn_protocols == (b"h2", b"http/1.1"), f"alpn_protocols is {got.alpn_protocols!r}"


def test_need_more_then_hello():
    hello = client_hello("api.example.test", ["h2"])
    parser = HelloParser()
    first = parser.feed(hello[:100])
    assert first is None, (
        f"Called parser.feed(<first 100 bytes>); returned {first!r}; expected None"
    )
    rest = parser.feed(hello[100:])
    assert isinstance(rest, ClientHello), f"Called parser.feed(<the rest>); returned {rest!r}"


def test_not_tls_is_an_error():
    try:
        got = HelloParser().feed(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
    except HelloError:
        return
    raise AssertionError(
        f"Called HelloParser().feed(b'GET / ...'); returned {got!r}; expected HelloError"
    )


async def test_router_replays_the_hello():
    received = bytearray()
    done = asyncio.Event()

    async def backend(reader, writer):
        while data := await reader.read(65536):
            received.extend(data)
        done.set()
        writer.close()

    server = await asyncio.start_server(backend, "127.0.0.1", 0)
    backend_port = server.sockets[0].getsockname()[1]
    router = SniRouter({"api.example.test": ("127.0.0.1", backend_port)})
    port = await router.start("127.0.0.1", 0)
    try:
        hello = client_hello("api.example.test", ["h2"])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(hello)
        writer.write_eof()
        await asyncio.wait_for(done.wait(), 10)
        writer.close()
    finally:
        await router.close()
        server.close()
    assert bytes(received) == hello, (
        f"the backend received {len(received)} bytes; expected the {len(hello)}-byte hello"
    )
