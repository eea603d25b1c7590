"""Hidden specs for DNS over TCP (RFC 7766, RFC 1035 §4.2.2) on the DnsServer's port.

dnspython is the client: ``dns.query.tcp``, ``dns.query.udp_with_fallback`` (UDP, then TCP
when the answer comes back with TC) and a ``dns.resolver.Resolver`` pointed at 127.0.0.1 and
the server's port. Its calls block, so they run in a worker thread while the server answers on
the spec's event loop. Raw connections (asyncio streams) check what dnspython does not:
several queries on one connection, a query split across segments, the idle timeout, close().
"""

from __future__ import annotations

import asyncio
import struct

import dns.message
import dns.query
import dns.resolver
import pytest
from _helpers import (
    LOCALHOST,
    big_zone,
    read_tcp_message,
    records,
    served,
    tcp_connection,
    zone,
)

from grader.spectools import bounded, called, loop_reports, short

BIG = 300  # A records at big.example.com.: 4,833 bytes, far past 512 (and 1232)


async def blocking(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a worker thread, bounded; an exception says what was called."""
    try:
        return await bounded(asyncio.to_thread(fn, *args, **kwargs), 8.0, f"the reply to {what}")
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {type(exc).__name__}: {short(exc)}") from None


def framed(message: dns.message.Message) -> bytes:
    wire = message.to_wire()
    return struct.pack(">H", len(wire)) + wire


@pytest.mark.points(3)
async def test_the_server_answers_over_tcp_on_its_port():
    """DnsServer serves TCP on the port start() returned: dns.query.tcp gets the whole answer (RFC 7766 §5)."""
    async with served(big_zone(BIG)) as (_, port):
        query = dns.message.make_query("big.example.com.", "A")
        what = f"dns.query.tcp(<query big.example.com. A>, '127.0.0.1', port={port})"
        response = await blocking(what, dns.query.tcp, query, LOCALHOST, port=port, timeout=5.0)
        got = len(records(response.answer))
        assert got == BIG, called(f"{what} -> answer records", got, BIG)


@pytest.mark.points(3)
async def test_a_truncated_udp_answer_is_completed_over_tcp():
    """An answer too big for UDP comes back with TC, and dnspython's retry over TCP gets all of it (RFC 7766 §5)."""
    async with served(big_zone(BIG)) as (_, port):
        query = dns.message.make_query("big.example.com.", "A")
        what = f"dns.query.udp_with_fallback(<query big.example.com. A>, port={port})"
        response, used_tcp = await blocking(
            what, dns.query.udp_with_fallback, query, LOCALHOST, port=port, timeout=5.0
        )
        got = (used_tcp, len(records(response.answer)))
        assert got == (True, BIG), called(
            f"{what} -> (fell back to TCP, records)", got, (True, BIG)
        )


@pytest.mark.points(2)
async def test_dnspythons_resolver_gets_a_large_rrset():
    """dns.resolver.Resolver on 127.0.0.1 and the server's port resolves a name whose answer needs TCP."""
    async with served(big_zone(BIG)) as (_, port):
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [LOCALHOST]
        resolver.port = port
        resolver.lifetime = 8.0
        what = f"Resolver(nameservers=['127.0.0.1'], port={port}).resolve('big.example.com.', 'A')"
        answer = await blocking(what, resolver.resolve, "big.example.com.", "A")
        got = len(answer.rrset) if answer.rrset is not None else 0
        assert got == BIG, called(f"{what} -> records", got, BIG)


@pytest.mark.points(2)
async def test_several_queries_on_one_connection_are_answered_in_order():
    """Queries sent back to back on one TCP connection each get their answer, in order (RFC 7766 §6.2.1)."""
    async with served(zone()) as (_, port), tcp_connection(port) as (reader, writer):
        names = ["www.example.com.", "mail.example.com.", "nope.example.com.", "example.com."]
        queries = [dns.message.make_query(name, "A", id=500 + i) for i, name in enumerate(names)]
        writer.write(b"".join(framed(query) for query in queries))  # pipelined, one segment
        got = []
        for query in queries:
            raw = await read_tcp_message(reader, f"the answer to query id {query.id}")
            got.append(dns.message.from_wire(raw).id)
        want = [query.id for query in queries]
        assert got == want, called(
            f"{len(queries)} pipelined queries on one connection -> answer ids", got, want
        )


@pytest.mark.points(2)
async def test_a_query_split_across_segments_is_answered():
    """A query whose length prefix and body arrive a byte at a time is still read whole and answered."""
    async with served(zone()) as (_, port), tcp_connection(port) as (reader, writer):
        query = dns.message.make_query("www.example.com.", "A", id=0x0707)
        for byte in framed(query):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0)  # let the server read each byte on its own
        raw = await read_tcp_message(reader, "the answer to a query sent one byte at a time")
        got = dns.message.from_wire(raw)
        assert (got.id, len(got.answer)) == (0x0707, 1), called(
            "a query sent one byte per write -> (id, answer RRsets)",
            (got.id, len(got.answer)),
            (0x0707, 1),
        )


@pytest.mark.points(2)
@pytest.mark.parametrize("after", ["no query", "one answered query"])
async def test_an_idle_tcp_connection_is_closed_after_the_idle_timeout(after):
    """A TCP connection with no query for tcp_idle_timeout seconds is closed by the server (RFC 7766 §6.2.3)."""
    async with (
        served(zone(), tcp_idle_timeout=0.2) as (_, port),
        tcp_connection(port) as (reader, writer),
    ):
        if after != "no query":
            writer.write(framed(dns.message.make_query("www.example.com.", "A")))
            await read_tcp_message(reader, "the answer before going idle")
        try:
            rest = await bounded(
                reader.read(), 5.0, "the server to close a connection idle for 0.2 s"
            )
        except ConnectionError:
            rest = b""  # closed with a reset: closed all the same
        assert rest == b"", called(
            f"an idle connection after {after} (tcp_idle_timeout=0.2) -> bytes before EOF",
            rest,
            b"",
        )


@pytest.mark.points(1)
async def test_a_query_that_stops_half_way_is_closed_after_the_idle_timeout():
    """A connection whose query stops half-way (length prefix sent, body not all there) is closed after tcp_idle_timeout."""
    async with (
        served(zone(), tcp_idle_timeout=0.2) as (_, port),
        tcp_connection(port) as (reader, writer),
    ):
        wire = framed(dns.message.make_query("www.example.com.", "A"))
        writer.write(wire[: len(wire) // 2])  # the prefix and half the body, then nothing
        await writer.drain()
        try:
            rest = await bounded(
                reader.read(), 5.0, "the server to close a connection stalled mid-query for 0.2 s"
            )
        except ConnectionError:
            rest = b""
        assert rest == b"", called(
            "half a query, then silence (tcp_idle_timeout=0.2) -> bytes before EOF", rest, b""
        )


@pytest.mark.points(2)
async def test_close_closes_the_listener_and_open_connections():
    """After await close(), an open TCP connection is at EOF and new connections are refused."""
    async with served(zone()) as (server, port), tcp_connection(port) as (reader, _):
        await bounded(server.close(), 5.0, "DnsServer.close() to return")
        try:
            rest = await bounded(reader.read(), 5.0, "EOF on a connection open during close()")
        except ConnectionError:
            rest = b""
        assert rest == b"", called("DnsServer.close(); then reading an open connection", rest, b"")
        try:
            _, late = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 5.0)
        except OSError:
            return  # refused: nothing listens any more
        late.close()
        raise AssertionError(
            f"Called DnsServer.close(); then a new TCP connection to port {port} was accepted; "
            "expected it refused"
        )


@pytest.mark.points(1)
async def test_close_leaves_the_event_loop_nothing_to_report():
    """close() with one TCP connection idle and one half-way through a query leaves no error
    for the event loop to report: a handler task it cancels ends without raising.

    A start_server handler that ends in CancelledError is logged by Python 3.11.7 and 3.12.1
    ("Exception in callback ... CancelledError"), not by 3.13: loop_reports reports it on every
    version (it watches how each connection task made in the block ended), as it does a task
    that failed unseen or a transport nobody closed.
    """
    async with (
        served(zone()) as (server, port),
        loop_reports() as reports,
        tcp_connection(port) as (idle, idle_writer),
        tcp_connection(port) as (half, writer),
    ):
        query = framed(dns.message.make_query("www.example.com.", "A"))
        for reader, sender in ((idle, idle_writer), (half, writer)):
            sender.write(query)  # answered: the server's handler runs and reads on
            await read_tcp_message(reader, "the answer to a query over TCP")
        writer.write(query[:5])  # the length and part of the next query
        await writer.drain()
        await bounded(server.close(), 5.0, "DnsServer.close() to return")
    assert not reports, reports.message(
        "DnsServer.close() with a TCP connection idle and one half-way through a query",
        "a connection handler cancelled by close() should end quietly: catch CancelledError "
        "where it waits, close the connection, and return",
    )
