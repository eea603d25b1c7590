"""MUTANT: drops the records that don't fit in 512 bytes but does not set the TC bit.

A copy of the reference solution with this one mistake.
"""

from __future__ import annotations

import asyncio
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

TYPE_A, TYPE_CNAME, TYPE_SOA, TYPE_MX, TYPE_AAAA = 1, 5, 6, 15, 28
CLASS_IN = 1
OPCODE_QUERY = 0
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 3, 4, 5

HEADER_SIZE = 12
MAX_UDP_SIZE = 512  # RFC 1035 §4.2.1; this server does not do EDNS0 (RFC 6891)
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

Key = tuple[bytes, ...]


class FormatError(Exception):
    """The query can't be parsed (the server answers FORMERR)."""


@dataclass(frozen=True)
class Query:
    """The header fields and the one question of a query."""

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int


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
    """The header and the single question of a query; ``FormatError`` if malformed.

    Later sections (an EDNS0 OPT record in the additional section, say) are not read.
    """
    if len(data) < HEADER_SIZE:
        raise FormatError("shorter than the 12-byte header")
    ident, flags, qdcount = struct.unpack_from(">HHH", data)
    if qdcount != 1:
        raise FormatError(f"QDCOUNT is {qdcount}; a query has exactly one question")
    name, pos = decode_name(data, HEADER_SIZE)
    if pos + 4 > len(data):
        raise FormatError("the question ends before QTYPE and QCLASS")
    qtype, qclass = struct.unpack_from(">HH", data, pos)
    return Query(ident, flags, name, qtype, qclass)


# --- the zone ---------------------------------------------------------------------------------


def _absolute(name: str, origin: str | None) -> str:
    """A zone-file name made absolute: "@" is the origin, a name without a final dot is relative."""
    if name == "@" or not _NAME.fullmatch(name):
        if origin is None:
            raise ValueError(f"relative name {name!r} and no $ORIGIN")
        name = origin if name == "@" else name + "." + origin.removeprefix(".")
    _labels(name)  # validate
    return name


def _number(text: str, bits: int, what: str) -> int:
    if not text.isdigit() or int(text) >= 1 << bits:
        raise ValueError(f"bad {what}: {text!r}")
    return int(text)


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
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split(";", 1)[0]  # a comment runs to the end of the line
            fields = line.split()
            if not fields:
                continue
            try:
                keyword = fields[0].upper()
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
                if not line[0].isspace():  # a line starting with a blank keeps the owner
                    owner = _absolute(fields.pop(0), current)
                if owner is None:
                    raise ValueError("the first record needs an owner name")
                ttl = default_ttl
                while fields and (fields[0].isdigit() or fields[0].upper() in CLASS_NAMES):
                    value = fields.pop(0)
                    if value.isdigit():
                        ttl = _number(value, 31, "TTL")  # RFC 2181 §8: 0 .. 2**31 - 1
                    elif value.upper() != "IN":
                        raise ValueError(f"only class IN is served, not {value}")
                if not fields or fields[0].upper() not in TYPE_NAMES:
                    raise ValueError(f"unknown or missing type in {line.strip()!r}")
                if ttl is None:
                    raise ValueError("no TTL on the record and no $TTL before it")
                rtype = TYPE_NAMES[fields.pop(0).upper()]
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


# --- answering --------------------------------------------------------------------------------


def _resolve(zone: Zone, name: str, qtype: int) -> tuple[int, list[Record], list[Record]]:
    """(RCODE, answer records, authority records) for a question inside the zone."""
    answers: list[Record] = []
    seen: set[Key] = set()
    while zone.exists(name):
        cname = zone.rrset(name, TYPE_CNAME)
        if not cname or qtype == TYPE_CNAME:
            records = zone.rrset(name, qtype)
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


def _response(
    query: Query,
    rcode: int,
    authoritative: bool = False,
    sections: tuple[list[Record], ...] = ([], []),
) -> bytes:
    """The response message: the question echoed, then as many records as fit in 512 bytes."""
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
            if len(out) > MAX_UDP_SIZE:
                # Drop this record and every later one (RFC 2181 §9) and say so with TC: the
                # client retries over TCP. The compression table may now point past the end,
                # which is harmless: nothing else is written.
                del out[mark:]
                truncated = True
                break
            counts[section] += 1
        if truncated:
            break
    flags = QR | query.flags & (OPCODE_MASK | RD) | rcode
    flags |= AA if authoritative else 0
    struct.pack_into(">6H", out, 0, query.id, flags, 1, counts[0], counts[1], 0)
    return bytes(out)


def _header_only(ident: int, flags: int, rcode: int) -> bytes:
    """An error response that can't echo a question: the header alone."""
    return struct.pack(">6H", ident, QR | flags & (OPCODE_MASK | RD) | rcode, 0, 0, 0, 0)


def answer(zone: Zone, data: bytes) -> bytes | None:
    """The response to one query datagram, or ``None`` to drop it. Never raises."""
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
    if query.qclass != CLASS_IN or not zone.contains(query.name):
        return _response(query, RCODE_REFUSED)  # not ours: this server does not recurse
    rcode, answers, authority = _resolve(zone, query.name, query.qtype)
    return _response(query, rcode, True, (answers, authority))


# --- the UDP adapter --------------------------------------------------------------------------


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
    """Serve ``zone`` over UDP: one datagram in, at most one datagram back."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self._protocol: _DnsProtocol | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host``:``port`` (0: any free port) and serve; return the bound port."""
        loop = asyncio.get_running_loop()
        self._transport, self._protocol = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(self.zone), local_addr=(host, port)
        )
        return self._transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        """Stop serving; when this returns the socket is closed and the port free."""
        if self._transport is None or self._protocol is None:
            return
        self._transport.close()
        await self._protocol.closed  # connection_lost runs after the socket is closed
        self._transport = self._protocol = None
