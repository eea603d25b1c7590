"""The destination policy end to end: a refused destination is never connected to (the
origin counts its connections), and the address checked is the address connected to."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import Resolver, exchange, loopback_policy, running_proxy
from forward_proxy import Policy

from grader.spectools import answer_with, called, running_h11_origin


@pytest.mark.points(2)
@pytest.mark.parametrize("method", ["GET", "CONNECT"])
async def test_loopback_refused_unless_configured(method: str) -> None:
    """Without allow_networks a destination that resolves to 127.0.0.1 is answered 403 and the
    proxy never connects to it (SSRF)."""
    async with running_h11_origin(answer_with()) as origin:
        policy = Policy(ports=frozenset({origin.port}), connect_ports=frozenset({origin.port}))
        async with running_proxy(policy) as (proxy, port):
            target = f"origin.test:{origin.port}"
            line = (
                f"GET http://{target}/ HTTP/1.1"
                if method == "GET"
                else f"CONNECT {target} HTTP/1.1"
            )
            answer = await exchange(port, f"{line}\r\nHost: {target}\r\n\r\n".encode(), line)
        got = (answer.status, origin.connections)
        assert got == (403, 0), called(
            f"{line}, origin.test -> 127.0.0.1, no allow_networks (status, origin connections)",
            got,
            (403, 0),
        )


@pytest.mark.parametrize("method", ["GET", "CONNECT"])
async def test_literal_loopback_refused(method: str) -> None:
    """A target written as the IP literal 127.0.0.1 is refused just the same: 403, no connection."""
    async with running_h11_origin(answer_with()) as origin:
        policy = Policy(ports=frozenset({origin.port}), connect_ports=frozenset({origin.port}))
        async with running_proxy(policy) as (proxy, port):
            target = f"127.0.0.1:{origin.port}"
            line = (
                f"GET http://{target}/ HTTP/1.1"
                if method == "GET"
                else f"CONNECT {target} HTTP/1.1"
            )
            answer = await exchange(port, f"{line}\r\nHost: {target}\r\n\r\n".encode(), line)
        got = (answer.status, origin.connections)
        assert got == (403, 0), called(
            f"{line} with no allow_networks (status, origin connections)", got, (403, 0)
        )


@pytest.mark.parametrize("method", ["GET", "CONNECT"])
async def test_port_not_in_the_list_refused(method: str) -> None:
    """A port outside the method's list is answered 403 and never connected to: forwarding uses
    ports, CONNECT uses connect_ports."""
    async with running_h11_origin(answer_with()) as origin:
        # The origin's port is allowed for the *other* kind of request only.
        if method == "GET":
            policy = loopback_policy(connect=(origin.port,))
        else:
            policy = loopback_policy(origin.port)
        async with running_proxy(policy) as (proxy, port):
            target = f"origin.test:{origin.port}"
            line = (
                f"GET http://{target}/ HTTP/1.1"
                if method == "GET"
                else f"CONNECT {target} HTTP/1.1"
            )
            answer = await exchange(port, f"{line}\r\nHost: {target}\r\n\r\n".encode(), line)
        got = (answer.status, origin.connections)
        assert got == (403, 0), called(
            f"{line} on a port allowed only for the other method (status, origin connections)",
            got,
            (403, 0),
        )


@pytest.mark.points(2)
@pytest.mark.parametrize("method", ["GET", "CONNECT"])
async def test_resolved_once_and_connected_by_address(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy asks its resolver once and connects to the address it checked, never resolving
    the name again (a second lookup is how DNS rebinding slips an internal address in)."""
    resolver = Resolver({"rebind.test": ["127.0.0.1"]})
    loop = asyncio.get_running_loop()
    system_lookups: list[object] = []

    async def no_system_lookups(host, *args, **kwargs):
        system_lookups.append(host)
        raise OSError("the spec's event loop resolves no names")

    async with running_h11_origin(answer_with(b"by address")) as origin:
        async with running_proxy(
            loopback_policy(origin.port, connect=(origin.port,)), resolver=resolver
        ) as (proxy, port):
            monkeypatch.setattr(loop, "getaddrinfo", no_system_lookups)
            target = f"rebind.test:{origin.port}"
            if method == "GET":
                answer = await exchange(
                    port,
                    f"GET http://{target}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                    f"GET http://{target}/",
                )
                reached = answer.body
            else:
                data = f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                answer = await exchange(port, data, f"CONNECT {target} then a GET inside")
                reached = answer.body.rpartition(b"\r\n\r\n")[2]
        got = (answer.status, reached, resolver.calls, system_lookups)
        want = (200, b"by address", [("rebind.test", origin.port)], [])
        assert got == want, called(
            f"{method} rebind.test (status, body, resolver calls, system lookups)", got, want
        )


@pytest.mark.points(2)
async def test_zero_address_refused() -> None:
    """A name resolving to 0.0.0.0 is refused: on Linux a connection to 0.0.0.0 reaches this
    machine, a classic way around a blocklist that only knows 127.0.0.0/8."""
    resolver = Resolver({"zero.test": ["0.0.0.0"]})
    async with running_h11_origin(answer_with()) as origin:
        async with running_proxy(loopback_policy(origin.port), resolver=resolver) as (proxy, port):
            data = f"GET http://zero.test:{origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            answer = await exchange(port, data, "GET http://zero.test/ (zero.test -> 0.0.0.0)")
        got = (answer.status, origin.connections)
        assert got == (403, 0), called(
            "GET http://zero.test/, resolving to 0.0.0.0 (status, origin connections)",
            got,
            (403, 0),
        )


async def test_first_allowed_address_is_used() -> None:
    """Of the resolver's addresses the proxy skips the refused ones and connects to the first one
    the policy allows."""
    resolver = Resolver({"multi.test": ["0.0.0.0", "127.0.0.1"]})
    async with running_h11_origin(answer_with(b"second address")) as origin:
        async with running_proxy(loopback_policy(origin.port), resolver=resolver) as (proxy, port):
            data = f"GET http://multi.test:{origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            answer = await exchange(port, data, "GET http://multi.test/ (0.0.0.0, then 127.0.0.1)")
        got = (answer.status, answer.body, origin.connections)
        want = (200, b"second address", 1)
        assert got == want, called(
            "GET http://multi.test/ resolving to [0.0.0.0, 127.0.0.1] (status, body, origin connections)",
            got,
            want,
        )
