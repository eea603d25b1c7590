"""Hidden specs for DnsServer, the asyncio UDP adapter, driven by dnspython over a real socket.

dns.query.udp is a blocking call, so it runs in a worker thread while the server answers on
the spec's event loop. Waits are bounded; "no reply" is never waited for: a spec sends the
datagram that must be dropped, then a good query, and reads until the good answer arrives
(one socket, one server, loopback: replies come back in order).
"""

from __future__ import annotations

import asyncio
import random
import socket

import dns.flags
import dns.message
import dns.query
import pytest
from _helpers import LOCALHOST, MALFORMED, header, rcode_name, records, rr, served, udp_client, zone

from grader.spectools import bounded, called, short

# Pointer loops are left to the sans-IO specs, which bound each call: a decoder that spins
# here would block this event loop, and nothing could stop it short of the spec timeout.
LOOPS = (
    "a pointer to itself",
    "two pointers pointing at each other",
    "a label then a pointer back to it",
)


async def udp_query(port: int, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    what = f"dns.query.udp(<query {name} {rdtype}>, '127.0.0.1', port={port})"
    try:
        return await bounded(
            asyncio.to_thread(dns.query.udp, query, LOCALHOST, port=port, timeout=4.0),
            6.0,
            f"the reply to {what}",
        )
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}") from None


@pytest.mark.points(3)
async def test_the_server_answers_over_udp():
    """DnsServer.start() binds 127.0.0.1 on a free port and answers real queries there."""
    async with served(zone()) as (_, port):
        cases = [
            ("www.example.com.", "A", "NOERROR", 2),
            ("example.com.", "MX", "NOERROR", 2),
            ("nope.example.com.", "A", "NXDOMAIN", 0),
            ("www.example.org.", "A", "REFUSED", 0),
        ]
        for name, rdtype, rcode, count in cases:
            response = await udp_query(port, name, rdtype)
            got = (rcode_name(response), len(records(response.answer)))
            assert got == (rcode, count), called(
                f"dns.query.udp(<query {name} {rdtype}>) -> (RCODE, answer records)",
                got,
                (rcode, count),
            )


@pytest.mark.points(3)
async def test_the_server_survives_malformed_datagrams():
    """After garbage, short datagrams and responses the server raised nothing and still answers."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    loop.set_exception_handler(
        lambda _, context: errors.append(short(context.get("exception") or context))
    )
    rng = random.Random(20240101)
    garbage = [data for why, data in MALFORMED.items() if why not in LOOPS]
    garbage += [b"", b"\x00" * 5, header(flags=0x8100)]  # dropped: short, and a response
    garbage += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))) for _ in range(30)]
    good = dns.message.make_query("mail.example.com.", "A", id=0x5EED)
    async with served(zone()) as (_, port), udp_client(port) as (transport, client):
        for data in garbage:
            transport.sendto(data)
        transport.sendto(good.to_wire())
        while True:
            raw = await bounded(
                client.inbox.get(), 5.0, "the answer to a good query sent after the garbage"
            )
            try:
                reply = dns.message.from_wire(raw)
            except Exception as exc:
                errors.append(f"a reply dnspython can't parse ({short(exc)}): {short(raw, 60)}")
                continue
            if reply.id == good.id and reply.flags & dns.flags.QR and reply.question:
                break
    want = [rr("mail.example.com.", 3600, "A", "192.0.2.25")]
    assert records(reply.answer) == want, called(
        "a query for mail.example.com. A after the garbage", records(reply.answer), want
    )
    assert not errors, (
        f"Sent {len(garbage)} malformed datagrams; the server raised or replied badly: {errors[:3]}"
    )


@pytest.mark.points(1)
async def test_each_client_gets_its_own_answers():
    """Replies go back to the address that asked: two clients, interleaved queries, no crossed answers."""
    async with (
        served(zone()) as (_, port),
        udp_client(port) as (first, one),
        udp_client(port) as (second, two),
    ):
        for i in range(5):
            first.sendto(dns.message.make_query("www.example.com.", "A", id=100 + i).to_wire())
            second.sendto(dns.message.make_query("mail.example.com.", "A", id=200 + i).to_wire())
        for client, ids, name in ((one, range(100, 105), "www"), (two, range(200, 205), "mail")):
            got = []
            for _ in ids:
                raw = await bounded(client.inbox.get(), 5.0, f"the answers to the {name} client")
                reply = dns.message.from_wire(raw)
                got.append((reply.id, reply.question[0].name.to_text()))
            want = [(i, f"{name}.example.com.") for i in ids]
            assert sorted(got) == want, called(
                f"5 queries from the {name} client", sorted(got), want
            )


@pytest.mark.points(1)
async def test_close_releases_the_port():
    """After await close() the port is free again, and a second close() does no harm."""
    async with served(zone()) as (server, port):
        await bounded(server.close(), 5.0, "DnsServer.close() to return")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOCALHOST, port))
            except OSError as exc:
                raise AssertionError(
                    f"Called DnsServer.close(); then binding 127.0.0.1:{port} raised {short(exc)}; "
                    "expected the port to be free"
                ) from None
        await bounded(server.close(), 5.0, "a second DnsServer.close() to return")
