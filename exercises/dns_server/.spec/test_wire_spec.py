"""Hidden specs for the wire format: names, compression pointers, and parsing a query.

Oracles: dnspython (it writes queries and compressed names) and the worked example of
RFC 1035 §4.1.4 (F.ISI.ARPA, FOO.F.ISI.ARPA, ARPA and the root in one message).
"""

from __future__ import annotations

import io
import struct

import dns.flags
import dns.message
import dns.name
import pytest
from _helpers import MALFORMED, QTYPE_A_IN, bounded_call, header, wire_name
from dns_server import FormatError, decode_name, encode_name, parse_query
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, short, step


def rfc1035_example() -> bytes:
    """RFC 1035 §4.1.4: F.ISI.ARPA at 20, FOO + pointer to 20 at 40, pointer to 26 at 64, root at 92."""
    data = bytearray(94)
    data[20:32] = b"\x01F\x03ISI\x04ARPA\x00"
    data[40:46] = b"\x03FOO\xc0\x14"
    data[64:66] = b"\xc0\x1a"
    data[70:76] = b"\x03BAR\xc0\x28"  # not in the RFC: a pointer to a name that ends in one
    data[92] = 0
    return bytes(data)


RFC_NAMES = [
    (20, "F.ISI.ARPA.", 32),
    (40, "FOO.F.ISI.ARPA.", 46),
    (64, "ARPA.", 66),
    (70, "BAR.FOO.F.ISI.ARPA.", 76),
    (92, ".", 93),
]


def decode(data: bytes, offset: int) -> tuple[str, int]:
    return bounded_call(decode_name, data, offset, what=f"decode_name({short(data, 60)}, {offset})")


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_decode_name_follows_compression_pointers():
    """decode_name follows pointers (RFC 1035 §4.1.4) and returns the offset just after the name."""
    data = rfc1035_example()
    for offset, name, end in RFC_NAMES:
        got = decode(data, offset)
        assert tuple(got) == (name, end), called(
            f"decode_name(<RFC 1035 §4.1.4 example>, {offset})", got, (name, end)
        )


# A small pool of labels, so that names share suffixes and dnspython compresses them.
LABELS = st.sampled_from(["www", "mail", "example", "com", "org", "a", "B", "x-1", "Long" * 5])
NAMES = st.lists(LABELS, min_size=0, max_size=4).map(lambda labels: ".".join(labels) + ".")


def dnspython_encoding(names: list[str]) -> tuple[bytes, list[int]]:
    """The names written one after another from offset 12 by dnspython, with compression."""
    buffer = io.BytesIO(b"\x00" * 12)
    buffer.seek(12)
    table: dict = {}
    offsets = []
    for name in names:
        offsets.append(buffer.tell())
        dns.name.from_text(name).to_wire(buffer, table)
    return buffer.getvalue(), offsets


@pytest.mark.points(2)
@settings(max_examples=80, phases=[Phase.explicit, Phase.generate])
@given(st.lists(NAMES, min_size=1, max_size=6))
@example(["."])  # the root alone: one zero byte
@example([".", "."])  # the root twice: dnspython never points at the root
@example(["com.", "com."])  # a whole name as one pointer
@example(["www.example.com.", "mail.example.com."])  # a pointer to a suffix
@example(["a.B.a.B."])  # repeated labels inside one name
@example(["LongLongLongLongLong.com.", "x-1.LongLongLongLongLong.com.", "com."])
def test_decode_name_reads_names_compressed_by_dnspython(names):
    """decode_name reads every name of a message compressed by dnspython, case kept."""
    data, offsets = dnspython_encoding(names)
    ends = offsets[1:] + [len(data)]
    for name, offset, end in zip(names, offsets, ends, strict=True):
        got = decode(data, offset)
        want = (name, end)
        assert tuple(got) == want, called(f"decode_name({short(data, 90)}, {offset})", got, want)


LOOPS = {
    "a pointer to itself": header() + b"\xc0\x0c",
    "two pointers pointing at each other": header() + b"\xc0\x0e\xc0\x0c",
    "a label, then a pointer back to that label": header() + b"\x01a\xc0\x0c",
    "a three-pointer cycle": header() + b"\xc0\x10\xc0\x0c\xc0\x0e",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("data", list(LOOPS.values()), ids=list(LOOPS))
def test_decode_name_rejects_pointer_loops(data, request):
    """A compression pointer loop raises FormatError promptly instead of looping forever (RFC 9267 §2)."""
    what = f"decode_name(<{request.node.callspec.id}: {short(data, 60)}>, 12)"
    try:
        got = bounded_call(decode_name, data, 12, what=what)
    except FormatError:
        return
    raise AssertionError(called(what, got, "FormatError"))


def _name_of(octets: int) -> bytes:
    """An uncompressed wire name of exactly ``octets`` octets (length bytes and root included)."""
    labels, left = [], octets - 1
    while left:
        size = min(63, left - 1)
        labels.append(b"n" * size)
        left -= size + 1
    return wire_name(*labels)


@pytest.mark.points(1)
def test_decode_name_reads_a_name_of_exactly_255_octets():
    """A name of exactly 255 octets, the limit (RFC 1035 §2.3.4), is read; FormatError only past it."""
    data = header() + _name_of(255)
    with step(f"decode_name(<a 255-octet name: {short(data, 40)}>, 12)"):
        got = decode(data, 12)
    assert got[1] == len(data), called(
        "decode_name(<a 255-octet name>, 12) -> next offset", got[1], len(data)
    )


_LONG = wire_name(*[b"y" * 63] * 3)  # 193 octets at offset 12
RUN_OFF = {
    "a pointer past the end": (header() + b"\x03www\xc0\xff", 12),
    "a pointer cut in half": (header() + b"\x03www\xc0", 12),
    "a label longer than the rest": (header() + b"\x3fwww", 12),
    "a label one byte longer than the rest": (header() + b"\x04www", 12),
    "no terminating zero": (header() + b"\x03www\x07example", 12),
    "an offset past the end": (header(), 12),
    "label type 0x40": (header() + b"\x41abc\x00", 12),
    "label type 0x80": (header() + b"\x81abc\x00", 12),
    "a 256-octet name": (header() + _name_of(256), 12),
    "a 257-octet name": (header() + wire_name(*[b"x" * 63] * 4), 12),
    "a 259-octet name made with a pointer": (
        header() + _LONG + b"\x02zz\x3e" + b"w" * 62 + b"\xc0\x0c",
        12 + len(_LONG),
    ),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(RUN_OFF.values()), ids=list(RUN_OFF))
def test_decode_name_rejects_names_that_run_off_or_are_invalid(case, request):
    """Labels or pointers past the end, reserved label types and names over 255 octets raise FormatError."""
    data, offset = case
    what = f"decode_name(<{request.node.callspec.id}: {short(data, 50)}>, {offset})"
    try:
        got = bounded_call(decode_name, data, offset, what=what)
    except FormatError:
        return
    except (AssertionError, NotImplementedError):
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected FormatError") from None
    raise AssertionError(called(what, got, "FormatError"))


@pytest.mark.points(1)
def test_a_dot_inside_a_label_is_escaped():
    """A "." or "\\" inside a label is written "\\." or "\\\\" in the text name, and encoded back as one label."""
    cases = [
        (dns.name.Name([b"a.www", b"example", b"com", b""]), "a\\.www.example.com."),
        (dns.name.Name([b"back\\slash", b"example", b"com", b""]), "back\\\\slash.example.com."),
    ]
    for name, text in cases:
        data = header() + name.to_wire()
        got = decode(data, 12)
        assert got[0] == text, called(f"decode_name({short(data)}, 12)", got[0], text)
        wire = encode_name(text, {}, 12)
        assert wire == name.to_wire(), called(
            f"encode_name({text!r}, {{}}, 12)", wire, name.to_wire()
        )


# --- encoding -------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_encode_name_compresses_like_rfc1035():
    """encode_name writes labels, then a pointer to the longest suffix already in the message."""
    table: dict = {}
    data = rfc1035_example()
    for offset, name, end in RFC_NAMES:
        got = encode_name(name, table, offset)
        want = data[offset:end]
        assert got == want, called(
            f"encode_name({name!r}, table, {offset}) after the names before it", got, want
        )


@pytest.mark.points(3)
@settings(max_examples=80, phases=[Phase.explicit, Phase.generate])
@given(st.lists(NAMES.map(str.lower), min_size=1, max_size=6))
@example(["."])
@example([".", "."])
@example(["com.", "com."])
@example(["example.com.", "www.example.com.", "com."])  # a suffix, then a longer name
@example(["www.example.com.", "mail.example.org.", "mail.example.com."])  # longest suffix wins
@example(["a.a.a."])
def test_encode_name_matches_dnspython_compression(names):
    """A run of names encoded with one compression table is byte for byte what dnspython writes."""
    want, _ = dnspython_encoding(names)
    table: dict = {}
    got = b"\x00" * 12
    for name in names:
        got += encode_name(name, table, len(got))
    assert got == want, called(
        f"encode_name(name, table, offset) for {names} in turn", got[12:], want[12:]
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "case",
    [(0x3FFF, True), (0x4000, False)],
    ids=["written at 0x3fff: pointed at", "written at 0x4000: not"],
)
def test_encode_name_points_only_below_16k(case):
    """A pointer holds 14 bits: a name written at 0x3FFF can be pointed at, one at 0x4000 or later never."""
    offset, pointed = case
    table: dict = {}
    encode_name("example.com.", table, offset)
    got = encode_name("www.example.com.", table, 0x4100)
    want = b"\x03www" + (
        struct.pack(">H", 0xC000 | offset) if pointed else b"\x07example\x03com\x00"
    )
    assert got == want, called(
        f"encode_name('www.example.com.', table, 0x4100) after example.com. at {offset:#x}",
        got,
        want,
    )


NOT_WRITABLE = {
    "a relative name": "www.example.com",
    "an empty label": "www..example.com.",
    "a 64-octet label": "x" * 64 + ".example.com.",
    "a 256-octet name": ("y" * 63 + ".") * 3 + "z" * 62 + ".",
    "a 257-octet name": ("y" * 63 + ".") * 4,
    "a character beyond one byte": "caf\u20ac.example.com.",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("name", list(NOT_WRITABLE.values()), ids=list(NOT_WRITABLE))
def test_encode_name_rejects_names_it_cannot_write(name, request):
    """encode_name raises ValueError for a relative name, an empty label, a 64-octet label, a name over 255 octets."""
    what = f"encode_name({short(name, 50)}, {{}}, 12) ({request.node.callspec.id})"
    try:
        got = encode_name(name, {}, 12)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(called(what, got, "ValueError"))


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "name",
    ["x" * 63 + ".example.com.", ("y" * 63 + ".") * 3 + "z" * 61 + "."],
    ids=["a 63-octet label", "a 255-octet name"],
)
def test_encode_name_writes_names_at_the_limits(name, request):
    """A 63-octet label and a 255-octet name, exactly at the limits, are written like dnspython does."""
    with step(f"encode_name(<{request.node.callspec.id}>, {{}}, 12)"):
        got = encode_name(name, {}, 12)
    want = dns.name.from_text(name).to_wire()
    assert got == want, called(f"encode_name(<{request.node.callspec.id}>, {{}}, 12)", got, want)


# --- parsing a query ------------------------------------------------------------------------


@pytest.mark.points(3)
def test_parse_query_reads_the_header_and_the_question():
    """parse_query returns the ID, the flags word, the name (case kept), QTYPE and QCLASS."""
    cases = [
        ("www.example.com.", "A", "IN", dns.flags.RD),
        ("MaIl.Example.COM.", "MX", "IN", 0),
        ("example.com.", "AAAA", "CH", dns.flags.RD | dns.flags.CD),
        (".", "SOA", "IN", 0),
    ]
    for name, rdtype, rdclass, flags in cases:
        query = dns.message.make_query(name, rdtype, rdclass)
        query.flags = flags
        wire = query.to_wire()
        got = parse_query(wire)
        want = (query.id, flags, name, query.question[0].rdtype, query.question[0].rdclass)
        fields = (got.id, got.flags, got.name, got.qtype, got.qclass)
        assert fields == want, called(
            f"parse_query(<query {name} {rdtype} {rdclass}>) -> (id, flags, name, qtype, qclass)",
            fields,
            want,
        )


@pytest.mark.points(2)
def test_parse_query_follows_a_pointer_in_the_question():
    """A question name that ends with a pointer (here into the header's zero bytes) is decoded."""
    # Offset 4 holds QDCOUNT's high byte, 0x00: a pointer to it is the root label.
    data = header(ident=0x0BEE) + b"\x03www\x07example\x03com\xc0\x04" + QTYPE_A_IN
    got = parse_query(data)
    want = ("www.example.com.", 1, 1)
    assert (got.name, got.qtype, got.qclass) == want, called(
        f"parse_query({short(data)}) -> (name, qtype, qclass)",
        (got.name, got.qtype, got.qclass),
        want,
    )


@pytest.mark.points(2)
def test_parse_query_rejects_malformed_queries():
    """parse_query raises FormatError for a short header, QDCOUNT other than 1, or a broken question."""
    cases = {"11 bytes": header()[:11], "no bytes": b"", **MALFORMED}
    for why, data in cases.items():
        what = f"parse_query(<{why}: {short(data, 50)}>)"
        try:
            got = bounded_call(parse_query, data, what=what)
        except FormatError:
            continue
        except (AssertionError, NotImplementedError):
            raise
        except Exception as exc:
            raise AssertionError(
                f"Called {what}; raised {short(exc)}; expected FormatError"
            ) from None
        raise AssertionError(called(what, got, "FormatError"))
