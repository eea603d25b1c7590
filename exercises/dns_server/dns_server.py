"""An authoritative DNS server for one small zone, over UDP (RFC 1034, RFC 1035).

Two layers (see README.md for the rules in full):

* the sans-IO core: ``decode_name`` / ``encode_name`` (labels and compression pointers),
  ``parse_query`` (header + question), ``Zone`` (the records, parsed from zone-file text) and
  ``answer(zone, datagram) -> bytes | None``, which never raises whatever bytes arrive;
* the adapter: ``DnsServer``, an asyncio datagram endpoint that passes each datagram to
  ``answer`` and sends the reply back to the address that asked.

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
    "TYPE_A",
    "TYPE_AAAA",
    "TYPE_CNAME",
    "TYPE_MX",
    "TYPE_SOA",
    "DnsServer",
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
CLASS_IN = 1
# Response codes (RFC 1035 §4.1.1).
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 3, 4, 5
# The largest UDP response without EDNS0 (RFC 1035 §4.2.1). This server ignores EDNS0.
MAX_UDP_SIZE = 512


class FormatError(Exception):
    """The query can't be parsed; ``answer`` turns this into a FORMERR response."""


@dataclass(frozen=True)
class Query:
    """The header fields and the one question of a query.

    ``flags`` is the header's 16-bit flags word as sent (QR, Opcode, AA, TC, RD, RA, Z, RCODE);
    ``name`` is the question name in text form, case kept.
    """

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int


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
    """Parse the 12-byte header and the one question; raise ``FormatError`` if malformed.

    TODO: header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT, big-endian 16-bit each.
    TODO: FormatError if shorter than 12 bytes, or QDCOUNT != 1 (RFC 9619).
    TODO: the question: a name (decode_name; it may use pointers), then QTYPE and QCLASS;
          FormatError if they are cut off.
    TODO: don't read further: the other sections (an EDNS0 OPT record, say) are ignored.
    """
    raise NotImplementedError


# --- the zone ---------------------------------------------------------------------------------


class Zone:
    """The records of one zone: everything at or below ``origin`` (the apex).

    The specs use ``Zone.from_text`` and ``answer``; ``add``, ``contains``, ``exists`` and
    ``rrset`` are a suggested way to organise the work.
    """

    origin: str

    def __init__(self, origin: str) -> None:
        """An empty zone whose apex is ``origin`` (absolute); ``add`` puts records in."""
        raise NotImplementedError

    @classmethod
    def from_text(cls, text: str, origin: str | None = None) -> Zone:
        """Parse zone-file text (a subset of RFC 1035 §5); ``ValueError`` naming the bad line.

        TODO: one record per line: ``owner [TTL] [class] type rdata`` (TTL and class in either
              order, both optional); ";" starts a comment; blank lines are skipped.
        TODO: owner: "@" is the current origin; a name without a final "." is relative to it;
              a line starting with a space or tab reuses the previous owner.
        TODO: ``$ORIGIN name`` sets the origin for relative names; the zone apex is the
              ``origin`` argument if given, else the first $ORIGIN (neither: ValueError).
        TODO: ``$TTL n`` is the TTL of records that give none (no TTL and no $TTL: ValueError).
              TTLs are decimal, 0 .. 2**31 - 1 (RFC 2181 §8).
        TODO: class IN only. Types A (IPv4), AAAA (IPv6), CNAME (name), MX (preference 0..65535,
              name), SOA (mname rname serial refresh retry expire minimum), in any letter case.
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


# --- answering --------------------------------------------------------------------------------


def answer(zone: Zone, data: bytes) -> bytes | None:
    """The response to one query datagram, or ``None`` to drop it. Never raises.

    TODO: fewer than 12 bytes, or the QR bit set (it is a response): return None.
    TODO: opcode other than QUERY (0): NOTIMP, header only (no question).
    TODO: parse_query raises FormatError: FORMERR, header only.
    TODO: every response: the query's ID, QR set, the query's opcode and RD bit, RA clear;
          unless header-only, the question echoed exactly as asked (case kept), QDCOUNT 1.
    TODO: class not IN, or the name not in the zone: REFUSED, AA clear, no records.
    TODO: inside the zone, AA set, and:
            records of the type at the name     -> NOERROR with them (TTLs from the zone);
            a CNAME at the name (type not CNAME) -> the CNAME, then go on with its target while
                                                   it is in the zone (stop on a loop);
            the name exists without the type    -> NOERROR, empty answer (NODATA);
            the name does not exist             -> NXDOMAIN (also at the end of a CNAME chain).
          Names match ignoring ASCII case. NODATA and NXDOMAIN carry the zone's SOA (if any) in
          the authority section, its TTL = min(SOA TTL, SOA minimum) (RFC 2308 §3).
    TODO: compress names (one compression table per response): the question, owner names, and
          the names inside CNAME, MX and SOA data.
    TODO: at most MAX_UDP_SIZE bytes: add records in order while they fit; at the first that
          doesn't, stop, and set TC. The counts in the header say what was actually written.
    """
    raise NotImplementedError


# --- the UDP adapter --------------------------------------------------------------------------


class DnsServer:
    """Serve ``zone`` over UDP: one datagram in, at most one datagram back."""

    def __init__(self, zone: Zone) -> None:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host``:``port`` (0: any free port), start serving, return the bound port.

        TODO: loop.create_datagram_endpoint with an asyncio.DatagramProtocol whose
              datagram_received(data, addr) sends answer(zone, data) back to addr (unless None).
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Stop serving. When this returns, the socket is closed; calling it again is harmless.

        TODO: transport.close() only schedules the close: wait for the protocol's
              connection_lost before returning.
        """
        raise NotImplementedError
