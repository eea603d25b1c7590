"""Visible examples for the dns_server kata. Run them with `nox -s try -- dns_server`.

They use the standard library only: queries are built byte by byte with struct, so you can
read exactly what goes over the wire. The hidden specs go much further (dnspython builds and
parses the messages; malformed and random datagrams; truncation; a real UDP socket).
"""

from __future__ import annotations

import asyncio
import socket
import struct

try:
    from dns_server import (
        DnsServer,
        Zone,
        answer,
        decode_name,
        encode_name,
        parse_query,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import DnsServer, Zone, answer, decode_name, encode_name "
        "and parse_query from dns_server.py"
    ) from err

ZONE = """\
$ORIGIN example.com.
$TTL 3600
www   300 IN A     192.0.2.1
mail      IN A     192.0.2.25
@         IN MX    10 mail
"""


def query(name: bytes, qtype: int = 1, ident: int = 0xBEEF) -> bytes:
    """A query by hand: header (ID, flags RD, QDCOUNT 1), then the name, QTYPE, QCLASS IN."""
    return struct.pack(">6H", ident, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", qtype, 1)


WWW = b"\x03www\x07example\x03com\x00"


def test_parse_query_reads_the_question():
    got = parse_query(query(WWW))
    assert (got.id, got.name, got.qtype, got.qclass) == (0xBEEF, "www.example.com.", 1, 1), (
        f"Called parse_query(<query www.example.com. A>); returned {got!r}"
    )


def test_decode_name_follows_a_pointer():
    # RFC 1035 §4.1.4: F.ISI.ARPA at offset 20; at 40, FOO then a pointer (0xC0 0x14) to 20.
    data = bytearray(46)
    data[20:32] = b"\x01F\x03ISI\x04ARPA\x00"
    data[40:46] = b"\x03FOO\xc0\x14"
    got = decode_name(bytes(data), 40)
    assert got == ("FOO.F.ISI.ARPA.", 46), (
        f"Called decode_name(<RFC example>, 40); returned {got!r}"
    )


def test_encode_name_compresses_a_known_suffix():
    table: dict = {}
    first = encode_name("www.example.com.", table, 12)
    second = encode_name("mail.example.com.", table, 12 + len(first))
    assert first == WWW, f"Called encode_name('www.example.com.', {{}}, 12); returned {first!r}"
    # "example.com." started at 12 + 4 = 16 = 0x10: "mail" then a pointer to it.
    assert second == b"\x04mail\xc0\x10", (
        f"Called encode_name('mail.example.com.', table, {12 + len(first)}); returned {second!r}"
    )


def test_answer_returns_the_a_records():
    response = answer(Zone.from_text(ZONE), query(WWW))
    assert response is not None, "Called answer(zone, <query www.example.com. A>); returned None"
    ident, flags, qd, an, ns, ar = struct.unpack_from(">6H", response)
    assert ident == 0xBEEF, f"the response ID is {ident:#x}, expected the query's 0xbeef"
    assert flags & 0x8000 and flags & 0x0400, f"flags {flags:#06x}: expected QR and AA set"
    assert flags & 0x000F == 0, f"RCODE {flags & 0xF}, expected 0 (NOERROR)"
    assert (qd, an) == (1, 1), f"QDCOUNT, ANCOUNT = {(qd, an)}, expected (1, 1)"
    # The last 4 bytes of the answer record are the address.
    assert response[-4:] == bytes([192, 0, 2, 1]), f"the answer ends with {response[-4:]!r}"


def test_a_missing_name_gets_nxdomain():
    response = answer(Zone.from_text(ZONE), query(b"\x04nope\x07example\x03com\x00"))
    assert response is not None, "Called answer(zone, <query nope.example.com. A>); returned None"
    rcode = struct.unpack_from(">H", response, 2)[0] & 0x000F
    assert rcode == 3, (
        f"Called answer(zone, <query nope.example.com. A>); RCODE {rcode}, expected 3"
    )


def test_a_short_datagram_is_dropped():
    got = answer(Zone.from_text(ZONE), b"\x12\x34\x01")
    assert got is None, f"Called answer(zone, 3 bytes); returned {got!r}, expected None"


async def test_the_server_answers_over_udp():
    server = DnsServer(Zone.from_text(ZONE))
    port = await server.start("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        await loop.sock_connect(client, ("127.0.0.1", port))
        await loop.sock_sendall(client, query(WWW, ident=7))
        reply = await asyncio.wait_for(loop.sock_recv(client, 512), 2.0)
    await server.close()
    assert struct.unpack_from(">H", reply)[0] == 7, f"the reply {reply!r} does not carry ID 7"


def test_an_edns_query_gets_an_opt_record_back():
    # The OPT pseudo-record (RFC 6891): root name, TYPE 41, CLASS = UDP size 4096, TTL 0, no data.
    opt = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 0)
    edns_query = struct.pack(">6H", 0xBEEF, 0x0100, 1, 0, 0, 1) + WWW + struct.pack(">HH", 1, 1)
    response = answer(Zone.from_text(ZONE), edns_query + opt)
    assert response is not None, "Called answer(zone, <EDNS query>); returned None"
    arcount = struct.unpack_from(">H", response, 10)[0]
    assert arcount == 1, f"ARCOUNT {arcount}: expected 1, the OPT record"
    # The OPT is the last 11 bytes: root, TYPE 41, CLASS = the server's UDP size 1232.
    assert response[-11:-6] == b"\x00\x00\x29\x04\xd0", f"the response ends {response[-11:]!r}"


async def test_the_server_answers_over_tcp_on_the_same_port():
    server = DnsServer(Zone.from_text(ZONE))
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = query(WWW, ident=9)
        writer.write(struct.pack(">H", len(message)) + message)  # a 2-byte length, then the query
        (length,) = struct.unpack(">H", await asyncio.wait_for(reader.readexactly(2), 2.0))
        reply = await asyncio.wait_for(reader.readexactly(length), 2.0)
        writer.close()
    finally:
        await server.close()
    assert struct.unpack_from(">H", reply)[0] == 9, f"the reply {reply!r} does not carry ID 9"
