"""Visible examples for the forward_proxy kata. Run them with `nox -s try -- forward_proxy`.

They use the standard library only: an origin on 127.0.0.1:0 and a raw client, so you can see
exactly the bytes that go over the wire. The hidden specs go much further (httpx and TLS through
CONNECT, every hop-by-hop rule, half-close, back-pressure, authentication, many addresses).
"""

from __future__ import annotations

import asyncio

try:
    from forward_proxy import ForwardProxy, Policy, strip_hop_by_hop
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import ForwardProxy, Policy and strip_hop_by_hop from forward_proxy.py"
    ) from err


def test_hop_by_hop_fields_are_dropped():
    headers = [("Connection", "X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "5"), ("Accept", "*/*")]
    got = strip_hop_by_hop(headers)
    assert got == [("Accept", "*/*")], f"Called strip_hop_by_hop({headers!r}); returned {got!r}"


def test_policy_refuses_internal_addresses():
    policy = Policy()
    got = [
        policy.allowed(80, a) for a in ("10.0.0.1", "127.0.0.1", "169.254.169.254", "93.184.215.14")
    ]
    assert got == [False, False, False, True], f"Called Policy().allowed(80, ...); returned {got!r}"
    assert Policy().allowed(443, "93.184.215.14", tunnel=True), (
        "CONNECT to port 443 is allowed by default"
    )


async def test_a_get_is_forwarded_in_origin_form():
    seen = []

    async def origin(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    origin_port = server.sockets[0].getsockname()[1]

    async def resolver(host, port):
        return ["127.0.0.1"]  # every name is this machine, for the example

    policy = Policy(ports=frozenset({origin_port}), allow_networks=("127.0.0.1/32",))
    proxy = ForwardProxy(policy, resolver=resolver, via="kata")
    _, port = await proxy.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET http://example.test:{origin_port}/x HTTP/1.1\r\nHost: example.test\r\n\r\n".encode()
        )
        answer = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()
    finally:
        await proxy.close()
        server.close()
    assert answer.startswith(b"HTTP/1.1 200"), f"the proxy answered {answer!r}"
    assert answer.endswith(b"\r\n\r\nhi"), f"the proxy answered {answer!r}"
    request = seen[0].decode()
    assert request.startswith("GET /x HTTP/1.1\r\n"), f"the origin got {request!r}"
    assert f"Host: example.test:{origin_port}\r\n" in request, f"the origin got {request!r}"
    assert "Via: 1.1 kata\r\n" in request, f"the origin got {request!r}"


async def test_connect_to_a_refused_port_is_403():
    proxy = ForwardProxy(Policy())  # CONNECT to 443 only, public addresses only
    _, port = await proxy.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: 127.0.0.1:25\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(-1), 5)
        writer.close()
    finally:
        await proxy.close()
    assert answer.startswith(b"HTTP/1.1 403"), f"the proxy answered {answer!r}"
