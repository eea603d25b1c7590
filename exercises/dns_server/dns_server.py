"""An authoritative DNS server for one small zone, over UDP and TCP (RFC 1034, 1035, 6891, 7766).

Two layers (see README.md for the rules in full):

* the sans-IO core: ``decode_name`` / ``encode_name`` (labels and compression pointers),
  ``parse_query`` (header + question), ``Zone`` (the records, parsed from zone-file text) and
  ``answer(zone, message, *, tcp=False) -> bytes | None``, which never raises whatever bytes
  arrive, and speaks EDNS(0) (RFC 6891);
* the adapter: ``DnsServer``, an asyncio datagram endpoint that passes each datagram to
  ``answer`` and sends the reply back to the address that asked, and a TCP listener on the
  same port for length-prefixed queries (RFC 7766), where truncated answers are completed.

Names are text: absolute, with the trailing dot ("www.example.com.", the root is "."), case
kept as received. Label bytes map to characters one to one (latin-1); a "." or "\\" inside a
label is escaped as "\\." or "\\\\" so the text stays unambiguous.

Standard library only: ``dns`` (dnspython), ``dnslib`` and friends are forbidden imports.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = [
    "CLASS_IN",
    "MAX_UDP_SIZE",
    "RCODE_FORMERR",
    "RCODE_NOERROR",
    "RCODE_NOTIMP",
    "RCODE_NXDOMAIN",
    "RCODE_REFUSED",
    "TCP_IDLE_TIMEOUT",
    "TYPE_A",
    "TYPE_AAAA",
    "TYPE_ANY",
    "TYPE_CNAME",
    "TYPE_MX",
    "TYPE_SOA",
    "EDNS_UDP_SIZE",
    "RCODE_BADVERS",
    "DnsServer",
    "Edns",
    "FormatError",
    "Query",
    "Record",
    "Zone",
    "answer",
    "decode_name",
    "encode_name",
    "parse_query",
]

# Record types (RFC 1035 §3.2.2, RFC 3596) and the one class this server serves.
TYPE_A, TYPE_CNAME, TYPE_SOA, TYPE_MX, TYPE_AAAA = 1, 5, 6, 15, 28
# The QTYPE "*", called ANY: no record has it; a query for it asks for every record at the name
# (RFC 1035 §3.2.3, RFC 1034 §3.7.1).
TYPE_ANY = 255
CLASS_IN = 1
# Response codes (RFC 1035 §4.1.1).
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 3, 4, 5
# An extended RCODE (RFC 6891 §6.1.3): the low 4 bits go in the header, the high 8 in the OPT.
RCODE_BADVERS = 16
# The largest UDP response to a query without EDNS(0) (RFC 1035 §4.2.1).
MAX_UDP_SIZE = 512
# The UDP payload size this server offers in its OPT record, and the most it ever sends over
# UDP to an EDNS client (the DNS Flag Day 2020 value: no IP fragmentation).
EDNS_UDP_SIZE = 1232
# Seconds a TCP connection may sit idle before the server closes it (RFC 7766 §6.2.3).
TCP_IDLE_TIMEOUT = 10.0


class FormatError(Exception):
    """The query can't be parsed; ``answer`` turns this into a FORMERR response."""


@dataclass(frozen=True)
class Edns:
    """What the OPT pseudo-record of a query says (RFC 6891 §6.1.2)."""

    udp_size: int  # the OPT's CLASS field: the largest UDP response the client takes
    version: int  # bits 16..23 of the OPT's TTL field (0 is the only version there is)
    dnssec_ok: bool  # bit 15 of the OPT's TTL field, DO (RFC 3225)


@dataclass(frozen=True)
class Query:
    """The header fields, the one question, and the EDNS(0) OPT record (if any) of a query.

    ``flags`` is the header's 16-bit flags word as sent (QR, Opcode, AA, TC, RD, RA, Z, RCODE);
    ``name`` is the question name in text form, case kept; ``edns`` is None without an OPT.
    """

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    edns: Edns | None = None


@dataclass(frozen=True)
class Record:
    """One resource record of the zone (a suggested shape; the specs never look inside).

    ``rdata`` holds the fields in zone-file order, names made absolute:
    A / AAAA ("192.0.2.1",), CNAME ("www.example.com.",), MX (10, "mail.example.com."),
    SOA (mname, rname, serial, refresh, retry, expire, minimum).
    """

    name: str
    rtype: int
    ttl: int
    rdata: tuple[str | int, ...]


# --- names ------------------------------------------------------------------------------------


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """Read the name at ``offset``; return (its text, the offset just after it in ``data``).

    TODO: a name is labels (a length byte 1..63, then that many bytes) ending with a zero byte.
    TODO: a byte 0b11xxxxxx starts a 2-byte compression pointer: the name continues at the
          14-bit offset it holds (RFC 1035 §4.1.4). The name ends (for the returned offset)
          right after the FIRST pointer.
    TODO: never loop forever: each pointer must jump strictly before the place where the labels
          being read started (the name's start, then the previous pointer's target).
    TODO: FormatError for: a label or pointer running past the end, a backwards-rule violation,
          label types 0b01 / 0b10, a name over 255 octets (length bytes and root included).
    TODO: text form: labels joined with ".", a final "." ("." alone for the root); bytes decoded
          as latin-1; "." and "\\" inside a label escaped as "\\." and "\\\\".
    """
    raise NotImplementedError


def encode_name(name: str, compression: dict[tuple[bytes, ...], int], offset: int) -> bytes:
    """The wire form of the absolute text ``name``, to be written at ``offset`` in a message.

    ``compression`` is the message's table of names already written: use one dict per message,
    starting empty, and pass every name of that message through it in order.

    TODO: if a suffix of the name (longest first) is in the table, write the labels before it
          and then a pointer 0xC000 | its offset; else write all labels and a zero byte.
    TODO: record each suffix you write (key: its labels, lowered, so names compare ignoring
          ASCII case) with its offset, if that offset fits in 14 bits (< 0x4000).
    TODO: undo the "\\." and "\\\\" escapes; ValueError for a relative or empty-label name, a
          label over 63 octets, a name over 255 octets. The root "." is the single byte 0.
    """
    raise NotImplementedError


def parse_query(data: bytes) -> Query:
    """Parse the header, the one question and the OPT record; raise ``FormatError`` if malformed.

    TODO: header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT, big-endian 16-bit each.
    TODO: FormatError if shorter than 12 bytes, or QDCOUNT != 1 (RFC 9619).
    TODO: the question: a name (decode_name; it may use pointers), then QTYPE and QCLASS;
          FormatError if they are cut off.
    TODO: then ANCOUNT + NSCOUNT + ARCOUNT resource records: name, TYPE, CLASS, TTL (32 bits),
          RDLENGTH, RDATA. FormatError if one is cut off. Keep only the OPT (TYPE 41) of the
          additional section: Edns(udp_size=CLASS, version=TTL >> 16 & 0xFF,
          dnssec_ok=bool(TTL & 0x8000)). FormatError for a second OPT (RFC 6891 §6.1.1) or an
          OPT whose owner is not the root (§6.1.2).
    """
    raise NotImplementedError


# --- the zone ---------------------------------------------------------------------------------


class Zone:
    """The records of one zone: everything at or below ``origin`` (the apex).

    The specs use ``Zone.from_text`` and ``answer``; ``add``, ``contains``, ``exists``,
    ``rrset`` and ``records`` are a suggested way to organise the work.
    """

    origin: str

    def __init__(self, origin: str) -> None:
        """An empty zone whose apex is ``origin`` (absolute); ``add`` puts records in."""
        raise NotImplementedError

    @classmethod
    def from_text(cls, text: str, origin: str | None = None) -> Zone:
        """Parse zone-file text (a subset of RFC 1035 §5); ``ValueError`` naming the bad line
        ("line N", N counting every line of the text from 1).

        TODO: one record per line: ``owner [TTL] [class] type rdata`` (TTL and class in either
              order, both optional); ";" starts a comment; blank lines are skipped. Lines end
              at "\n" ("\r\n" too); only spaces and tabs separate fields (RFC 1035 §5.1):
              str.split() and str.splitlines() also break at other Unicode blanks.
        TODO: owner: "@" is the current origin; a name without a final "." is relative to it;
              a line starting with a space or tab reuses the previous owner.
        TODO: ``$ORIGIN name`` sets the origin for relative names; the zone apex is the
              ``origin`` argument if given, else the first $ORIGIN (neither: ValueError).
        TODO: ``$TTL n`` is the TTL of records that give none (no TTL and no $TTL: ValueError).
              TTLs are decimal, 0 .. 2**31 - 1 (RFC 2181 §8).
        TODO: class IN only. Types A (IPv4), AAAA (IPv6), CNAME (name), MX (preference 0..65535,
              name), SOA (mname rname serial refresh retry expire minimum, 32 bits each), in any
              ASCII letter case ("ı".upper() is "I": ın is not IN).
        TODO: numbers are ASCII digits 0-9 only: str.isdigit() is true of "²", "６" and "٣", and
              int() reads "６" and "٣" as digits.
        TODO: ValueError for: an unknown type or directive, bad rdata, a name outside the zone,
              a CNAME sharing its name with any other record (RFC 1034 §3.6.2), a second SOA
              or one not at the apex.
        """
        raise NotImplementedError

    def add(self, record: Record) -> None:
        """Add one record (ValueError if out of zone or it breaks the CNAME rule)."""
        raise NotImplementedError

    def contains(self, name: str) -> bool:
        """Whether ``name`` is the apex or below it, label by label and ignoring case.

        TODO: "evilexample.com." is NOT below "example.com.": compare labels, not strings.
        """
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        """Whether ``name`` owns records, or has a descendant that does (RFC 8020)."""
        raise NotImplementedError

    def rrset(self, name: str, rtype: int) -> list[Record]:
        """The records of type ``rtype`` at ``name`` (ignoring case), in zone-file order."""
        raise NotImplementedError

    def records(self, name: str) -> list[Record]:
        """Every record at ``name`` (ignoring case), whatever its type: the answer to ANY."""
        raise NotImplementedError


# --- answering --------------------------------------------------------------------------------


def answer(zone: Zone, data: bytes, *, tcp: bool = False) -> bytes | None:
    """The response to one query, or ``None`` to drop it. Never raises.

    ``tcp`` is True for a query that came over TCP (its 2-byte length prefix already removed).

    TODO: fewer than 12 bytes, or the QR bit set (it is a response): return None.
    TODO: opcode other than QUERY (0): NOTIMP, header only (no question).
    TODO: parse_query raises FormatError: FORMERR, header only.
    TODO: every response: the query's ID, QR set, the query's opcode and RD bit (no other
          flag bit of the query: AA and TC are this response's own, Z is 0), RA clear;
          unless header-only, the question echoed exactly as asked (case kept), QDCOUNT 1.
    TODO: class not IN, or the name not in the zone: REFUSED, AA clear, no records.
    TODO: inside the zone, AA set, and:
            records of the type at the name     -> NOERROR with them (TTLs from the zone);
            type ANY (255), records at the name -> NOERROR with every record at the name, of
                                                   every type ("*" matches every type);
            a CNAME at the name (type not CNAME -> the CNAME, then go on with its target while
              and not ANY)                         it is in the zone (stop on a loop); a CNAME
                                                   or ANY query gets the CNAME alone;
            the name exists without the type    -> NOERROR, empty answer (NODATA); for ANY,
                                                   only a name without records (an empty
                                                   non-terminal);
            the name does not exist             -> NXDOMAIN (also at the end of a CNAME chain).
          Names match ignoring ASCII case. NODATA and NXDOMAIN carry the zone's SOA (if any) in
          the authority section, its TTL = min(SOA TTL, SOA minimum) (RFC 2308 §3).
    TODO: compress names (one compression table per response): the question, owner names, and
          the names inside CNAME, MX and SOA data.
    TODO: the size limit: over TCP 65535 bytes; over UDP MAX_UDP_SIZE without EDNS, else the
          client's udp_size (below 512 counts as 512) capped at EDNS_UDP_SIZE. Add records in
          order while they fit; at the first that doesn't, stop, and set TC. The counts in the
          header say what was actually written.
    TODO: EDNS (RFC 6891): a query with an OPT gets an OPT back as the last record of the
          additional section (ARCOUNT 1), even when truncated, and counted in the limit:
          root name, TYPE 41, CLASS EDNS_UDP_SIZE, TTL = extended RCODE << 24 | version 0 << 16
          | the query's DO bit (0x8000), RDLENGTH 0.
    TODO: an OPT with a version other than 0: BADVERS (16) - RCODE 0 in the header, 1 in the
          OPT's extended RCODE byte - the question echoed, no records, AA clear (§6.1.3).
    """
    raise NotImplementedError


# --- the UDP adapter --------------------------------------------------------------------------


class DnsServer:
    """Serve ``zone`` over UDP and TCP on one port.

    ``tcp_idle_timeout``: seconds a TCP connection may wait for its next query, for the rest
    of a query that stopped half-way, or for the client to read an answer, before the server
    closes it.
    """

    def __init__(self, zone: Zone, *, tcp_idle_timeout: float = TCP_IDLE_TIMEOUT) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host``:``port`` (0: a free port) for UDP and TCP, serve, return the port.

        TODO: UDP: loop.create_datagram_endpoint with an asyncio.DatagramProtocol whose
              datagram_received(data, addr) sends answer(zone, data) back to addr (unless None).
        TODO: TCP on the SAME port (asyncio.start_server): each query is a 2-byte big-endian
              length, then the message; answer(zone, message, tcp=True), sent back with its own
              length prefix. Several queries per connection, answered in order, until the
              client closes or tcp_idle_timeout passes without a query (RFC 7766 §6.2.3).
        TODO: with port 0, bind TCP first (port 0), then UDP on the port TCP got.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Stop serving. When this returns, the sockets and every TCP connection are closed.

        Calling it again is harmless.

        TODO: transport.close() only schedules the close: wait for the protocol's
              connection_lost before returning. Close the TCP listener and every open TCP
              connection too.
        """
        raise NotImplementedError
