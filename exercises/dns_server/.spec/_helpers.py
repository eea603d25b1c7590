"""Helpers for the dns_server specs.

* dnspython is the independent oracle: it builds the queries (``dns.message.make_query``) and
  parses every response (``dns.message.from_wire``); hand-built bytes cover what it won't write
  (pointer loops, bad counts, cut-off names).
* ``bounded_call`` runs the learner's sans-IO code in a thread with a CPU-time limit, so a
  pointer loop that never terminates fails its spec quickly instead of hanging the kata.
* ``served`` runs a ``DnsServer`` on 127.0.0.1, port 0, for the body of an ``async with``.

Zones are built inside each spec (never at import time): the stub's ``Zone.from_text`` raises
``NotImplementedError``, and that must fail the spec, not the collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
from dns_server import DnsServer, Zone, answer

from grader.spectools import LOCALHOST, bounded, short

ZONE_TEXT = """\
$ORIGIN example.com.
$TTL 3600
; the apex
@        IN  SOA   ns1 hostmaster 2024010101 7200 3600 1209600 300
@        IN  MX    10 mail
@        IN  MX    20 mail.backup.example.net.
www      300 IN A  192.0.2.1
         300 IN A  192.0.2.2
         IN  AAAA  2001:db8::1
mail     IN  A     192.0.2.25
alias    IN  CNAME www
chain    IN  CNAME alias
away     IN  CNAME www.example.net.
dangling IN  CNAME missing
loop1    IN  CNAME loop2
loop2    IN  CNAME loop1
a.b.deep IN  A     192.0.2.9
"""

# How long one call into the learner's sans-IO code may take: CPU seconds of the thread that
# runs it (a spinning loop reaches this fast, however loaded the machine: it is the check),
# and a wall-clock backstop for a call that blocks without spinning, set far beyond what a
# starved thread on a loaded 2-core runner can take, so that load never trips it.
CPU_LIMIT = 0.5
WALL_LIMIT = 25.0


def zone() -> Zone:
    """The zone most specs use (built fresh: no state shared between specs)."""
    return Zone.from_text(ZONE_TEXT)


# --- calling the learner's code with a bound -------------------------------------------------


class _Hung(BaseException):
    """Injected into a thread that overran its time limit, to stop it."""


def _cpu_seconds(thread: threading.Thread) -> float:
    """CPU time used so far by ``thread`` (0.0 where the platform can't tell)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))
    except (AttributeError, OSError):
        return 0.0


def bounded_call(fn: Callable[..., Any], *args: Any, what: str) -> Any:
    """``fn(*args)`` run in a thread; its result or exception, or AssertionError if it overruns.

    The bound is CPU_LIMIT seconds of the thread's CPU time (or WALL_LIMIT seconds of wall
    time). On overrun the thread gets an asynchronous exception, which stops a Python loop that
    spins forever (a compression pointer loop) so it does not eat the CPU of the next specs.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn(*args)
        except _Hung:
            pass
        except BaseException as exc:  # re-raised in the spec's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    while True:
        thread.join(0.02)
        if not thread.is_alive():
            break
        spun = _cpu_seconds(thread) > CPU_LIMIT
        if spun or time.monotonic() - started > WALL_LIMIT:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident or 0), ctypes.py_object(_Hung)
            )
            thread.join(1.0)
            how = (
                f"it ran for {CPU_LIMIT:g} s of CPU without returning (a loop?)"
                if spun
                else f"it did not return within {WALL_LIMIT:g} s (blocked?)"
            )
            raise AssertionError(f"Called {what}; {how}")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def respond(the_zone: Zone, wire: bytes, what: str = "") -> bytes | None:
    """``answer(zone, wire)``, bounded; a crash becomes a readable failure."""
    what = what or f"answer(zone, {short(wire, 80)})"
    try:
        return bounded_call(answer, the_zone, wire, what=what)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; it raised {short(exc)} instead of answering") from exc


def parse(response: bytes | None, what: str) -> dns.message.Message:
    """The response parsed by dnspython; a failure names what was sent."""
    assert response is not None, f"Called {what}; returned None (dropped); expected a response"
    assert isinstance(response, bytes | bytearray), (
        f"Called {what}; returned {short(response)}; expected bytes"
    )
    try:
        return dns.message.from_wire(bytes(response))
    except Exception as exc:
        raise AssertionError(
            f"Called {what}; dnspython could not parse the response {short(bytes(response), 80)}: "
            f"{short(exc)}"
        ) from None


def ask(
    the_zone: Zone, name: str | dns.name.Name, rdtype: str = "A", **options: Any
) -> tuple[dns.message.Message, dns.message.Message, bytes]:
    """Query ``name``/``rdtype`` through ``answer``: (query, parsed response, raw response)."""
    query = dns.message.make_query(name, rdtype, **options)
    what = f"answer(zone, <query {name} {rdtype}>)"
    raw = respond(the_zone, query.to_wire(), what)
    return query, parse(raw, what), bytes(raw or b"")


# --- describing messages ---------------------------------------------------------------------


def rcode_name(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def flag_names(message: dns.message.Message) -> str:
    return dns.flags.to_text(message.flags) or "(none)"


def records(section: list[dns.rrset.RRset]) -> list[tuple[str, int, str, str]]:
    """A section as (owner lowercased, TTL, type, rdata text) tuples, in wire order."""
    out = []
    for rrset in section:
        for rdata in rrset:
            out.append(
                (
                    rrset.name.to_text().lower(),
                    rrset.ttl,
                    dns.rdatatype.to_text(rrset.rdtype),
                    rdata.to_text().lower(),
                )
            )
    return out


def rr(owner: str, ttl: int, rdtype: str, rdata: str) -> tuple[str, int, str, str]:
    """One expected record in the shape ``records`` gives."""
    return (owner.lower(), ttl, rdtype, rdata.lower())


def question_bytes(wire: bytes) -> bytes:
    """The question section of a message with one uncompressed question (name + 4 bytes)."""
    pos = 12
    while wire[pos] != 0:
        pos += 1 + wire[pos]
    return wire[12 : pos + 5]


# --- hand-built messages ---------------------------------------------------------------------


def header(
    ident: int = 0x1234,
    flags: int = 0x0100,
    qd: int = 1,
    an: int = 0,
    ns: int = 0,
    ar: int = 0,
) -> bytes:
    return struct.pack(">6H", ident, flags, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    """An uncompressed name from its labels (the root added)."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


QTYPE_A_IN = struct.pack(">HH", 1, 1)

# Malformed queries whose 12-byte header is readable: each must get FORMERR.
MALFORMED = {
    "QDCOUNT 0": header(qd=0) + wire_name(b"www", b"example", b"com") + QTYPE_A_IN,
    "QDCOUNT 2": header(qd=2) + (wire_name(b"www", b"example", b"com") + QTYPE_A_IN) * 2,
    "a pointer to itself": header() + b"\xc0\x0c" + QTYPE_A_IN,
    "two pointers pointing at each other": header() + b"\xc0\x0e\xc0\x0c" + QTYPE_A_IN,
    "a label then a pointer back to it": header() + b"\x01a\xc0\x0c" + QTYPE_A_IN,
    "a pointer past the end": header() + b"\x03www\xc0\xff",
    "a pointer cut in half": header() + b"\x03www\xc0",
    "a label longer than the rest of the message": header() + b"\x3fwww",
    "a name with no terminating zero": header() + b"\x03www\x07example",
    "no QTYPE and QCLASS after the name": header() + wire_name(b"www") + b"\x00\x01",
    "label type 0x40 (reserved)": header() + b"\x41abc" + QTYPE_A_IN,
    "label type 0x80 (reserved)": header() + b"\x81abc" + QTYPE_A_IN,
    "a name longer than 255 octets": header() + wire_name(*[b"x" * 63] * 4) + QTYPE_A_IN,
    "nothing after the header": header(),
}


# --- the UDP adapter ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(the_zone: Zone, **options: Any) -> AsyncIterator[tuple[DnsServer, int]]:
    """A ``DnsServer(the_zone, **options)`` on 127.0.0.1, port 0; yields (server, port)."""
    server = DnsServer(the_zone, **options)
    port = await bounded(server.start(LOCALHOST, 0), 5.0, "DnsServer.start() to return")
    assert isinstance(port, int) and 0 < port < 65536, (
        f"Called DnsServer.start('127.0.0.1', 0); returned {short(port)}; expected the bound port"
    )
    try:
        yield server, port
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close(), 5.0)


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: ignore
        pass


@contextlib.asynccontextmanager
async def udp_client(port: int) -> AsyncIterator[tuple[asyncio.DatagramTransport, _Client]]:
    """A UDP socket connected to 127.0.0.1:``port``: (transport to send, protocol with inbox)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Client, remote_addr=(LOCALHOST, port)
    )
    try:
        yield transport, protocol
    finally:
        transport.close()


def opcode_name(message: dns.message.Message) -> str:
    return dns.opcode.to_text(message.opcode())


def big_zone(count: int, label: str = "big") -> Zone:
    """A zone whose name ``label``.example.com. owns ``count`` A records (16 bytes each on the wire)."""
    lines = [f"{label} 60 IN A 198.51.{100 + i // 250}.{i % 250 + 1}" for i in range(count)]
    soa = "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300"
    return Zone.from_text("\n".join([soa, *lines]) + "\n", origin="example.com.")


def opt_record(size: int = 1232, version: int = 0, owner: bytes = b"\x00") -> bytes:
    """An OPT pseudo-record written by hand (RFC 6891 §6.1.2), for what dnspython won't write."""
    return owner + struct.pack(">HHIH", 41, size, version << 16, 0)


@contextlib.asynccontextmanager
async def tcp_connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A TCP connection to 127.0.0.1:``port``, closed on exit."""
    reader, writer = await bounded(
        asyncio.open_connection(LOCALHOST, port), 5.0, f"a TCP connection to port {port}"
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def read_tcp_message(reader: asyncio.StreamReader, what: str) -> bytes:
    """One length-prefixed DNS message from ``reader`` (RFC 1035 §4.2.2), with a bound."""

    async def read() -> bytes:
        (length,) = struct.unpack(">H", await reader.readexactly(2))
        return await reader.readexactly(length)

    try:
        return await bounded(read(), 5.0, what)
    except asyncio.IncompleteReadError as exc:
        raise AssertionError(
            f"waited for {what}; the server closed the connection after {len(exc.partial)} "
            "more bytes"
        ) from None
