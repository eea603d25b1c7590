"""An authoritative DNS server for one small zone, over UDP and TCP (RFC 1034, 1035, 6891, 7766).

Theory of operation
-------------------
Sans-IO core, thin adapter (the h11 / wsproto model):

* ``answer(zone, datagram)`` is pure: the bytes of one query in, the bytes of the response out
  (or ``None``: drop it). It reads no socket and no clock, so every rule is tested with plain
  bytes, and it must never raise, whatever arrives: a DNS server listens on the open Internet.
* ``DnsServer`` is the adapter: an asyncio datagram endpoint that hands each datagram to
  ``answer`` and sends the result back to whoever asked, and a TCP listener on the same port
  that reads length-prefixed queries and answers them one after another (RFC 7766), so a
  client that got a truncated (TC) answer over UDP can ask again and get all of it.

EDNS(0) (RFC 6891): a query may carry one OPT pseudo-record in its additional section, saying
how large a UDP response the client can take. The response then carries an OPT too, with our
own size, and is truncated at the client's size (capped at ours) instead of 512 bytes.

Names travel as text inside the program ("www.example.com.", absolute, trailing dot, case as
received) and as labels on the wire. A label is arbitrary bytes (RFC 2181 §11), so the text
form escapes the two characters that would make it ambiguous: "." inside a label is "\\." and
a backslash is "\\\\" (the master-file escapes of RFC 1035 §5.1). Bytes map to characters one
to one (latin-1), so text -> wire -> text is exact. Names compare ignoring ASCII case only
(RFC 4343): ``bytes.lower()`` does exactly that, so lookup keys are tuples of lowered labels.

Decoding follows compression pointers (RFC 1035 §4.1.4). A pointer is attacker input: it may
point at itself, into a cycle, or past the end. The rule that makes decoding terminate is the
one dnspython uses: every pointer must jump strictly *before* the start of the labels being
read (the name's start, then the previous pointer's target). Targets strictly decrease, so
there are no cycles, and the 255-octet limit bounds the labels in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import cast

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

TYPE_A, TYPE_CNAME, TYPE_SOA, TYPE_MX, TYPE_AAAA, TYPE_OPT = 1, 5, 6, 15, 28, 41
TYPE_ANY = 255  # the QTYPE "*": every record at the name (RFC 1035 §3.2.3, RFC 1034 §3.7.1)
CLASS_IN = 1
OPCODE_QUERY = 0
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 3, 4, 5
RCODE_BADVERS = 16  # 12 bits: the high 8 travel in the OPT record (RFC 6891 §6.1.3)

HEADER_SIZE = 12
MAX_UDP_SIZE = 512  # RFC 1035 §4.2.1: the limit for a query without EDNS(0)
EDNS_UDP_SIZE = 1232  # the most we send over UDP to an EDNS client (DNS Flag Day 2020)
MAX_TCP_SIZE = 0xFFFF  # the 2-byte length prefix of DNS over TCP (RFC 1035 §4.2.2)
TCP_IDLE_TIMEOUT = 10.0  # seconds a TCP connection may sit idle (RFC 7766 §6.2.3)
OPT_SIZE = 11  # an OPT record without options: root name, TYPE, CLASS, TTL, RDLENGTH
DO = 0x8000  # "DNSSEC OK", in the OPT's TTL field (RFC 3225)
MAX_NAME_LENGTH = 255  # octets on the wire, length bytes and the root included (§2.3.4)
MAX_LABEL_LENGTH = 63

# The flags word of the header (RFC 1035 §4.1.1): QR | Opcode(4) | AA | TC | RD | RA | Z(3) | RCODE(4)
QR, AA, TC, RD = 0x8000, 0x0400, 0x0200, 0x0100
OPCODE_MASK = 0x7800

TYPE_NAMES = {"A": TYPE_A, "AAAA": TYPE_AAAA, "CNAME": TYPE_CNAME, "MX": TYPE_MX, "SOA": TYPE_SOA}
CLASS_NAMES = {"IN", "CH", "HS", "CS", "NONE", "ANY"}

# An absolute name in text form: labels of non-dot characters or escapes, each ending in ".".
_NAME = re.compile(r"(?:(?:[^.\\]|\\[.\\])+\.)+|\.")
_LABEL = re.compile(r"((?:[^.\\]|\\[.\\])+)\.")
_UNESCAPE = re.compile(r"\\([.\\])")
_BLANKS = re.compile(r"[ \t]+")

Key = tuple[bytes, ...]


class FormatError(Exception):
    """The query can't be parsed (the server answers FORMERR)."""


@dataclass(frozen=True)
class Edns:
    """What a query's OPT record says (RFC 6891 §6.1.2)."""

    udp_size: int  # the largest UDP response the client can reassemble (CLASS field)
    version: int  # the EDNS version (0 is the only one there is)
    dnssec_ok: bool  # the DO bit (RFC 3225)


@dataclass(frozen=True)
class Query:
    """The header fields, the one question, and the EDNS(0) OPT record of a query (if any)."""

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    edns: Edns | None = None


@dataclass(frozen=True)
class Record:
    """One resource record of the zone; ``rdata`` holds the fields in zone-file order."""

    name: str
    rtype: int
    ttl: int
    rdata: tuple[str | int, ...]


# --- names ------------------------------------------------------------------------------------


def _labels(name: str) -> list[bytes]:
    """The labels of an absolute text name, escapes undone; [] for the root. ValueError if bad."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not an absolute domain name: {name!r}")
    # A character beyond latin-1 raises UnicodeEncodeError, itself a ValueError.
    labels = [_UNESCAPE.sub(r"\1", text).encode("latin-1") for text in _LABEL.findall(name)]
    if any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise ValueError(f"a label of {name!r} is longer than {MAX_LABEL_LENGTH} octets")
    if sum(1 + len(label) for label in labels) + 1 > MAX_NAME_LENGTH:
        raise ValueError(f"{name!r} is longer than {MAX_NAME_LENGTH} octets")
    return labels


def _key(name: str) -> Key:
    """The lookup key of a name: its labels, ASCII letters lowered (RFC 4343)."""
    return tuple(label.lower() for label in _labels(name))


def _escape(label: bytes) -> str:
    return label.decode("latin-1").replace("\\", "\\\\").replace(".", "\\.")


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` (following compression pointers) and the offset just after it."""
    labels: list[str] = []
    length = 1  # the root's zero byte
    end: int | None = None  # where the name ends in the stream: after its first pointer
    limit = offset  # the next pointer must jump strictly before this
    pos = offset
    while True:
        if pos >= len(data):
            raise FormatError("a name runs past the end of the message")
        size = data[pos]
        if size == 0:
            pos += 1
            break
        if size & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise FormatError("a compression pointer is cut off")
            target = (size & 0x3F) << 8 | data[pos + 1]
            if target >= limit:
                raise FormatError("a compression pointer does not point backwards")
            if end is None:
                end = pos + 2
            limit = pos = target
            continue
        if size & 0xC0:
            raise FormatError(f"unknown label type 0x{size & 0xC0:02x}")
        label = data[pos + 1 : pos + 1 + size]
        if len(label) < size:
            raise FormatError("a label runs past the end of the message")
        length += 1 + size
        if length > MAX_NAME_LENGTH:
            raise FormatError(f"a name is longer than {MAX_NAME_LENGTH} octets")
        labels.append(_escape(label))
        pos += 1 + size
    return ".".join(labels) + ".", pos if end is None else end


def encode_name(name: str, compression: dict[Key, int], offset: int) -> bytes:
    """The wire form of ``name`` written at ``offset``, compressed against ``compression``.

    ``compression`` maps each name suffix already in the message to where it starts; this
    call reuses the longest suffix it finds and records the new ones it writes.
    """
    labels = _labels(name)
    out = bytearray()
    for i, label in enumerate(labels):
        suffix = tuple(part.lower() for part in labels[i:])  # compare names ignoring case
        if suffix in compression:
            return bytes(out) + struct.pack(">H", 0xC000 | compression[suffix])
        if offset + len(out) < 0x4000:  # a pointer has 14 bits of offset
            compression[suffix] = offset + len(out)
        out += bytes([len(label)]) + label
    return bytes(out) + b"\x00"


def parse_query(data: bytes) -> Query:
    """The header, the single question and the OPT record of a query; ``FormatError`` if malformed.

    The records of the answer, authority and additional sections are walked to find the OPT
    record (RFC 6891): every one of them must be whole, and there may be one OPT at most.
    """
    if len(data) < HEADER_SIZE:
        raise FormatError("shorter than the 12-byte header")
    ident, flags, qdcount, ancount, nscount, arcount = struct.unpack_from(">6H", data)
    if qdcount != 1:
        raise FormatError(f"QDCOUNT is {qdcount}; a query has exactly one question")
    name, pos = decode_name(data, HEADER_SIZE)
    if pos + 4 > len(data):
        raise FormatError("the question ends before QTYPE and QCLASS")
    qtype, qclass = struct.unpack_from(">HH", data, pos)
    pos += 4
    edns = None
    for index in range(ancount + nscount + arcount):
        owner, pos = decode_name(data, pos)
        if pos + 10 > len(data):
            raise FormatError("a resource record is cut off")
        rtype, rclass, ttl, rdlength = struct.unpack_from(">HHIH", data, pos)
        pos += 10 + rdlength
        if pos > len(data):
            raise FormatError("RDATA runs past the end of the message")
        if rtype == TYPE_OPT and index >= ancount + nscount:
            if edns is not None:  # RFC 6891 §6.1.1: MUST answer FORMERR
                raise FormatError("more than one OPT record")
            if owner != ".":  # §6.1.2: the owner name of an OPT is the root
                raise FormatError("an OPT record whose owner is not the root")
            edns = Edns(rclass, ttl >> 16 & 0xFF, bool(ttl & DO))
    return Query(ident, flags, name, qtype, qclass, edns)


# --- the zone ---------------------------------------------------------------------------------


def _absolute(name: str, origin: str | None) -> str:
    """A zone-file name made absolute: "@" is the origin, a name without a final dot is relative."""
    if name == "@" or not _NAME.fullmatch(name):
        if origin is None:
            raise ValueError(f"relative name {name!r} and no $ORIGIN")
        name = origin if name == "@" else name + "." + origin.removeprefix(".")
    _labels(name)  # validate
    return name


def _is_decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() is also true of "²", "６" and "٣", and int() reads the last two."""
    return text.isascii() and text.isdigit()


def _number(text: str, bits: int, what: str) -> int:
    if not _is_decimal(text) or int(text) >= 1 << bits:
        raise ValueError(f"bad {what}: {text!r}")
    return int(text)


def _mnemonic(text: str) -> str:
    """A type, class or directive name in upper case, by ASCII rules only: "ı".upper() is "I"."""
    return text.upper() if text.isascii() else text


def _rdata(rtype: int, fields: list[str], origin: str | None) -> tuple[str | int, ...]:
    shapes = {TYPE_A: 1, TYPE_AAAA: 1, TYPE_CNAME: 1, TYPE_MX: 2, TYPE_SOA: 7}
    if len(fields) != shapes[rtype]:
        raise ValueError(f"expected {shapes[rtype]} rdata fields, got {len(fields)}")
    if rtype == TYPE_A:
        return (str(ipaddress.IPv4Address(fields[0])),)
    if rtype == TYPE_AAAA:
        return (str(ipaddress.IPv6Address(fields[0])),)
    if rtype == TYPE_CNAME:
        return (_absolute(fields[0], origin),)
    if rtype == TYPE_MX:
        return (_number(fields[0], 16, "MX preference"), _absolute(fields[1], origin))
    mname, rname = _absolute(fields[0], origin), _absolute(fields[1], origin)
    return (mname, rname, *(_number(value, 32, "SOA number") for value in fields[2:]))


class Zone:
    """The records of one zone: everything at or below ``origin`` (the apex)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._apex = _key(origin)
        self._rrsets: dict[Key, list[Record]] = {}
        self._names: set[Key] = {self._apex}  # names that exist, empty non-terminals too
        self.soa: Record | None = None

    @classmethod
    def from_text(cls, text: str, origin: str | None = None) -> Zone:
        """Parse a zone in (a subset of) the master file format of RFC 1035 §5.

        The apex is ``origin`` if given, else the first ``$ORIGIN``. Every problem raises
        ``ValueError`` naming the line.
        """
        zone = None if origin is None else cls(_absolute(origin, None))
        current, default_ttl, owner = origin, None, None
        # Lines end at "\n" (a "\r" before it goes too), and only spaces and tabs separate
        # fields (RFC 1035 §5.1): str.splitlines() and str.split() also break at "\x0c",
        # "\x85", "\u2028", a no-break space ...
        for number, line in enumerate(text.split("\n"), 1):
            line = line.removesuffix("\r").split(";", 1)[0]  # a comment runs to the line's end
            fields = _BLANKS.split(line.strip(" \t"))
            fields = fields if fields != [""] else []
            if not fields:
                continue
            try:
                keyword = _mnemonic(fields[0])
                if keyword in ("$ORIGIN", "$TTL") and len(fields) != 2:
                    raise ValueError(f"{keyword} takes one value")
                if keyword == "$ORIGIN":
                    current = _absolute(fields[1], current)
                    zone = zone or cls(current)
                    continue
                if keyword == "$TTL":
                    default_ttl = _number(fields[1], 31, "TTL")
                    continue
                if keyword.startswith("$"):
                    raise ValueError(f"unsupported directive {fields[0]}")
                if line[0] not in " \t":  # a line starting with a blank keeps the owner
                    owner = _absolute(fields.pop(0), current)
                if owner is None:
                    raise ValueError("the first record needs an owner name")
                ttl = default_ttl
                while fields and (fields[0].isdigit() or _mnemonic(fields[0]) in CLASS_NAMES):
                    value = fields.pop(0)
                    if value.isdigit():  # any Unicode digit: _number refuses all but 0-9
                        ttl = _number(value, 31, "TTL")  # RFC 2181 §8: 0 .. 2**31 - 1
                    elif _mnemonic(value) != "IN":
                        raise ValueError(f"only class IN is served, not {value}")
                if not fields or _mnemonic(fields[0]) not in TYPE_NAMES:
                    raise ValueError(f"unknown or missing type in {line.strip()!r}")
                if ttl is None:
                    raise ValueError("no TTL on the record and no $TTL before it")
                rtype = TYPE_NAMES[_mnemonic(fields.pop(0))]
                if zone is None:
                    raise ValueError("no zone origin: pass origin= or start with $ORIGIN")
                zone.add(Record(owner, rtype, ttl, _rdata(rtype, fields, current)))
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
        if zone is None:
            raise ValueError("no zone origin: pass origin= or start with $ORIGIN")
        return zone

    def add(self, record: Record) -> None:
        """Add one record; ``ValueError`` if it is out of the zone or breaks a CNAME rule."""
        key = _key(record.name)
        if not self.contains(record.name):
            raise ValueError(f"{record.name} is not in the zone {self.origin}")
        rrset = self._rrsets.setdefault(key, [])
        if rrset and TYPE_CNAME in {record.rtype, *(r.rtype for r in rrset)}:
            # RFC 1034 §3.6.2: an alias has no other data (and only one CNAME).
            raise ValueError(f"{record.name}: a CNAME can't share its name with other records")
        if record.rtype == TYPE_SOA:
            if key != self._apex or self.soa is not None:
                raise ValueError("one SOA, at the apex of the zone")
            self.soa = record
        rrset.append(record)
        for depth in range(len(self._apex), len(key) + 1):  # the name and its ancestors exist
            self._names.add(key[len(key) - depth :])

    def contains(self, name: str) -> bool:
        """Whether ``name`` is at or below the apex (this server is authoritative for it)."""
        key = _key(name)
        return key[len(key) - len(self._apex) :] == self._apex

    def exists(self, name: str) -> bool:
        """Whether ``name`` owns records or has descendants that do (RFC 8020)."""
        return _key(name) in self._names

    def rrset(self, name: str, rtype: int) -> list[Record]:
        """The records of type ``rtype`` at ``name``, in zone-file order."""
        return [r for r in self._rrsets.get(_key(name), ()) if r.rtype == rtype]

    def records(self, name: str) -> list[Record]:
        """Every record at ``name`` (the answer to QTYPE ANY), RRset by RRset, in zone-file order."""
        records = self._rrsets.get(_key(name), [])
        types = dict.fromkeys(r.rtype for r in records)  # each type once, first seen first
        return [r for rtype in types for r in records if r.rtype == rtype]


# --- answering --------------------------------------------------------------------------------


def _resolve(zone: Zone, name: str, qtype: int) -> tuple[int, list[Record], list[Record]]:
    """(RCODE, answer records, authority records) for a question inside the zone."""
    answers: list[Record] = []
    seen: set[Key] = set()
    while zone.exists(name):
        cname = zone.rrset(name, TYPE_CNAME)
        # RFC 1034 §3.6.2: "a type CNAME or * query should return just the CNAME".
        if not cname or qtype in (TYPE_CNAME, TYPE_ANY):
            # "*" matches every type (§3.7.1): all records at the name, never NODATA if it has some.
            records = zone.records(name) if qtype == TYPE_ANY else zone.rrset(name, qtype)
            if records:
                return RCODE_NOERROR, answers + records, []
            rcode = RCODE_NOERROR  # NODATA: the name exists, without this type
            break
        # An alias: answer the CNAME, then chase its target while it stays in the zone.
        answers += cname
        seen.add(_key(name))
        name = str(cname[0].rdata[0])
        if not zone.contains(name) or _key(name) in seen:  # the resolver goes on from here
            return RCODE_NOERROR, answers, []
    else:
        rcode = RCODE_NXDOMAIN  # RFC 6604: the RCODE speaks for the last name of the chain
    if zone.soa is None:
        return rcode, answers, []
    # RFC 2308 §3: the SOA tells resolvers how long to cache the negative answer.
    soa = zone.soa
    negative_ttl = min(soa.ttl, int(soa.rdata[6]))
    return rcode, answers, [Record(soa.name, TYPE_SOA, negative_ttl, soa.rdata)]


def _encode_rdata(record: Record, names: dict[Key, int], at: int) -> bytes:
    """The RDATA of ``record``, whose first byte lands at offset ``at``."""
    data = record.rdata
    if record.rtype == TYPE_A:
        return ipaddress.IPv4Address(data[0]).packed
    if record.rtype == TYPE_AAAA:
        return ipaddress.IPv6Address(data[0]).packed
    if record.rtype == TYPE_CNAME:
        return encode_name(str(data[0]), names, at)
    if record.rtype == TYPE_MX:
        return struct.pack(">H", data[0]) + encode_name(str(data[1]), names, at + 2)
    mname = encode_name(str(data[0]), names, at)
    rname = encode_name(str(data[1]), names, at + len(mname))
    return mname + rname + struct.pack(">5I", *data[2:])


def _size_limit(query: Query, tcp: bool) -> int:
    """How large the response to ``query`` may be."""
    if tcp:
        return MAX_TCP_SIZE
    if query.edns is None:
        return MAX_UDP_SIZE
    # RFC 6891 §6.2.3 and §6.2.5: a size below 512 means 512; and never more than we offer.
    return min(max(query.edns.udp_size, MAX_UDP_SIZE), EDNS_UDP_SIZE)


def _opt(query: Query, rcode: int) -> bytes:
    """Our OPT record: our UDP size, the extended RCODE bits, version 0, the query's DO bit."""
    assert query.edns is not None
    ttl = (rcode >> 4) << 24 | (DO if query.edns.dnssec_ok else 0)  # version 0: the middle byte
    return b"\x00" + struct.pack(">HHIH", TYPE_OPT, EDNS_UDP_SIZE, ttl, 0)


def _response(
    query: Query,
    rcode: int,
    authoritative: bool = False,
    sections: tuple[list[Record], ...] = ([], []),
    tcp: bool = False,
) -> bytes:
    """The response message: the question echoed, then as many records as fit, then the OPT."""
    # RFC 6891 §7: the OPT record goes in every response to an EDNS query, truncated or not,
    # so its bytes are set aside before any record is added.
    opt = b"" if query.edns is None else _opt(query, rcode)
    limit = _size_limit(query, tcp) - len(opt)
    out = bytearray(HEADER_SIZE)
    names: dict[Key, int] = {}
    out += encode_name(query.name, names, len(out)) + struct.pack(">HH", query.qtype, query.qclass)
    counts, truncated = [0, 0], False
    for section, records in enumerate(sections):
        for record in records:
            mark = len(out)
            out += encode_name(record.name, names, mark)
            rdata = _encode_rdata(record, names, len(out) + 10)
            out += struct.pack(">HHIH", record.rtype, CLASS_IN, record.ttl, len(rdata)) + rdata
            if len(out) > limit:
                # Drop this record and every later one (RFC 2181 §9) and say so with TC: the
                # client retries over TCP. The compression table may now point past the end,
                # which is harmless: nothing else is written.
                del out[mark:]
                truncated = True
                break
            counts[section] += 1
        if truncated:
            break
    flags = QR | query.flags & (OPCODE_MASK | RD) | rcode & 0xF
    flags |= (AA if authoritative else 0) | (TC if truncated else 0)
    struct.pack_into(">6H", out, 0, query.id, flags, 1, counts[0], counts[1], len(opt) // OPT_SIZE)
    return bytes(out + opt)


def _header_only(ident: int, flags: int, rcode: int) -> bytes:
    """An error response that can't echo a question: the header alone."""
    return struct.pack(">6H", ident, QR | flags & (OPCODE_MASK | RD) | rcode, 0, 0, 0, 0)


def answer(zone: Zone, data: bytes, *, tcp: bool = False) -> bytes | None:
    """The response to one query, or ``None`` to drop it. Never raises.

    ``tcp``: the query came over TCP, where a response may take up to 65535 bytes.
    """
    if len(data) < HEADER_SIZE:
        return None  # no header, so no ID to answer to
    ident, flags = struct.unpack_from(">HH", data)
    if flags & QR:
        return None  # a response: answering it could start an endless ping-pong
    if flags & OPCODE_MASK != OPCODE_QUERY:
        return _header_only(ident, flags, RCODE_NOTIMP)
    try:
        query = parse_query(data)
    except FormatError:
        return _header_only(ident, flags, RCODE_FORMERR)
    if query.edns is not None and query.edns.version != 0:
        return _response(query, RCODE_BADVERS, tcp=tcp)  # RFC 6891 §6.1.3: we speak version 0
    if query.qclass != CLASS_IN or not zone.contains(query.name):
        return _response(query, RCODE_REFUSED, tcp=tcp)  # not ours: this server does not recurse
    rcode, answers, authority = _resolve(zone, query.name, query.qtype)
    return _response(query, rcode, True, (answers, authority), tcp)


# --- the adapters: UDP and TCP on one port -----------------------------------------------------


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = answer(self.zone, data)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


class DnsServer:
    """Serve ``zone`` over UDP and TCP on one port (RFC 7766: TCP is not optional).

    ``tcp_idle_timeout``: seconds a TCP connection may wait for its next query (or for the
    client to read our answer) before the server closes it.
    """

    def __init__(self, zone: Zone, *, tcp_idle_timeout: float = TCP_IDLE_TIMEOUT) -> None:
        self.zone = zone
        self.tcp_idle_timeout = tcp_idle_timeout
        self._protocol: _DnsProtocol | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host``:``port`` (0: a free port) for UDP and TCP and serve; return the port."""
        loop = asyncio.get_running_loop()
        # TCP first: a free TCP port is then tried for UDP, and on the rare clash (another
        # program has that UDP port) both are given back and we try again.
        for attempt in range(1, 11):
            listener = await asyncio.start_server(self._serve_tcp, host, port)
            bound = listener.sockets[0].getsockname()[1]
            try:
                self._transport, self._protocol = await loop.create_datagram_endpoint(
                    lambda: _DnsProtocol(self.zone), local_addr=(host, bound)
                )
            except OSError:
                listener.close()
                await listener.wait_closed()
                if port != 0 or attempt == 10:
                    raise
                continue
            self._listener = listener
            return bound
        raise AssertionError("unreachable")

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One TCP connection: length-prefixed queries, answered in order, until EOF or idle."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                # Every wait has the idle timeout: for the next query, and for a client that
                # stops reading our answers (drain() returns once the buffer is small again,
                # so a slow reader never makes us hold more than one answer or so).
                prefix = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_timeout)
                (length,) = struct.unpack(">H", prefix)
                query = await asyncio.wait_for(reader.readexactly(length), self.tcp_idle_timeout)
                response = answer(self.zone, query, tcp=True)
                if response is None:
                    continue  # a response or a runt: nothing to say, as over UDP
                writer.write(struct.pack(">H", len(response)) + response)
                await asyncio.wait_for(writer.drain(), self.tcp_idle_timeout)
        except TimeoutError:
            # Idle, or not reading what we sent: close() would wait for the unread bytes to
            # drain, perhaps forever, so drop them and the connection at once.
            writer.transport.abort()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # closed by the client (mid-message, even) or reset: hang up
        except asyncio.CancelledError:
            # close() cancelled us: end normally. A start_server handler that ends cancelled
            # makes Python 3.11 log "Exception in callback ... CancelledError".
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        """Stop serving; when this returns both sockets and every TCP connection are closed."""
        # Order matters: close the listener (no new connections), end the handlers, and only
        # then wait_closed(). Since Python 3.12 wait_closed() also waits for every accepted
        # connection to close (CPython gh-79033), so awaiting it first would wait for the clients.
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for task in list(self._connections):
            task.cancel()  # its finally closes the connection
        await asyncio.gather(*self._connections, return_exceptions=True)
        if listener is not None:
            await listener.wait_closed()
        if self._transport is not None and self._protocol is not None:
            self._transport.close()
            await self._protocol.closed  # connection_lost runs after the socket is closed
            self._transport = self._protocol = None
