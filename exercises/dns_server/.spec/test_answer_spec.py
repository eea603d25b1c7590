"""Hidden specs for answer(zone, datagram): the sans-IO heart of the server.

dnspython builds every well-formed query and parses every response; the zone is _helpers.ZONE_TEXT.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import pytest
from _helpers import (
    MALFORMED,
    ask,
    flag_names,
    header,
    opcode_name,
    parse,
    question_bytes,
    rcode_name,
    records,
    respond,
    rr,
    zone,
)
from dns_server import Zone
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, short

WWW_A = [
    rr("www.example.com.", 300, "A", "192.0.2.1"),
    rr("www.example.com.", 300, "A", "192.0.2.2"),
]
SOA = rr(
    "example.com.",
    300,  # RFC 2308 §3: min(SOA TTL 3600, SOA MINIMUM 300)
    "SOA",
    "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
)


def expect(name, rdtype, rcode, answers, *, aa=True, ordered=False, the_zone=None):
    """Ask and check RCODE, AA and the answer section; returns the parsed response."""
    _, response, _ = ask(the_zone or zone(), name, rdtype)
    what = f"answer(zone, <query {name} {rdtype}>)"
    assert rcode_name(response) == rcode, called(f"{what} -> RCODE", rcode_name(response), rcode)
    has_aa = bool(response.flags & dns.flags.AA)
    assert has_aa == aa, called(
        f"{what} -> flags", flag_names(response), "AA " + ("set" if aa else "clear")
    )
    got = records(response.answer)
    if not ordered:
        got, answers = sorted(got), sorted(answers)
    assert got == answers, called(f"{what} -> answer section", got, answers)
    return response


# --- answers --------------------------------------------------------------------------------


RECORDS = {
    "www A": ("www.example.com.", "A", WWW_A),
    "www AAAA": ("www.example.com.", "AAAA", [rr("www.example.com.", 3600, "AAAA", "2001:db8::1")]),
    "mail A": ("mail.example.com.", "A", [rr("mail.example.com.", 3600, "A", "192.0.2.25")]),
    "apex MX": (
        "example.com.",
        "MX",
        [
            rr("example.com.", 3600, "MX", "10 mail.example.com."),
            rr("example.com.", 3600, "MX", "20 mail.backup.example.net."),
        ],
    ),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(RECORDS.values()), ids=list(RECORDS))
def test_queries_get_their_records_with_the_zone_ttls(case):
    """A, AAAA and MX queries get every record of that type at the name, with its TTL, and AA set."""
    name, rdtype, want = case
    expect(name, rdtype, "NOERROR", want)


HEADERS = [(0, True), (1, False), (0xBEEF, True), (0xFFFF, False)]
HEADER_IDS = [f"id {ident:#06x}, RD {'set' if rd else 'clear'}" for ident, rd in HEADERS]


def _echo(ident: int, rd: bool) -> tuple[str, bytes, bytes, dns.message.Message]:
    query = dns.message.make_query("www.example.com.", "A", id=ident)
    query.flags = dns.flags.RD if rd else 0
    wire = query.to_wire()
    what = f"answer(zone, <query www.example.com. A, id {ident}, RD {'set' if rd else 'clear'}>)"
    raw = respond(zone(), wire, what)
    return what, wire, raw or b"", parse(raw, what)


@pytest.mark.points(1)
@pytest.mark.parametrize("header_case", HEADERS, ids=HEADER_IDS)
def test_the_response_echoes_the_query_id(header_case):
    """The response carries the query's ID, whatever its value (RFC 1035 §4.1.1)."""
    ident, rd = header_case
    what, _, _, response = _echo(ident, rd)
    assert response.id == ident, called(f"{what} -> id", response.id, ident)


@pytest.mark.points(1)
@pytest.mark.parametrize("header_case", HEADERS, ids=HEADER_IDS)
def test_the_response_flags_are_qr_aa_and_the_query_rd(header_case):
    """An answer has QR and AA set, opcode QUERY, RD as in the query, RA clear (no recursion here)."""
    ident, rd = header_case
    what, _, _, response = _echo(ident, rd)
    want_flags = dns.flags.QR | dns.flags.AA | (dns.flags.RD if rd else 0)
    got = f"{flag_names(response)}, opcode {opcode_name(response)}"
    assert response.flags == want_flags and opcode_name(response) == "QUERY", called(
        f"{what} -> flags", got, f"{dns.flags.to_text(want_flags)}, opcode QUERY"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("header_case", HEADERS[:1], ids=HEADER_IDS[:1])
def test_the_response_echoes_the_question_byte_for_byte(header_case):
    """The response has QDCOUNT 1 and the query's question section, byte for byte."""
    what, wire, raw, _ = _echo(*header_case)
    qdcount = struct.unpack_from(">H", raw, 4)[0]
    echoed = raw[12 : 12 + len(question_bytes(wire))]
    assert qdcount == 1 and echoed == question_bytes(wire), called(
        f"{what} -> QDCOUNT and question section", (qdcount, echoed), (1, question_bytes(wire))
    )


NXDOMAINS = [
    (name, rdtype)
    for name in ("nope.example.com.", "www.nope.example.com.", "x.a.b.deep.example.com.")
    for rdtype in ("A", "MX")
]


@pytest.mark.points(1)
@pytest.mark.parametrize("case", NXDOMAINS, ids=[f"{n} {t}" for n, t in NXDOMAINS])
def test_names_not_in_the_zone_get_nxdomain(case):
    """A name under the zone that does not exist gets NXDOMAIN (RCODE 3), AA set, no answer."""
    expect(*case, "NXDOMAIN", [])


NODATA = [
    ("www.example.com.", "MX"),
    ("mail.example.com.", "AAAA"),
    ("example.com.", "A"),
    ("www.example.com.", "TXT"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("case", NODATA, ids=[f"{n} {t}" for n, t in NODATA])
def test_a_name_without_the_asked_type_gets_nodata(case):
    """A name that exists without the asked type gets NOERROR with an empty answer (NODATA), AA set."""
    expect(*case, "NOERROR", [])


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["b.deep.example.com.", "deep.example.com."])
def test_an_empty_non_terminal_exists(name):
    """A name with no records but names below it (deep, b.deep) gets NODATA, not NXDOMAIN (RFC 8020)."""
    expect(name, "A", "NOERROR", [])


NEGATIVE = [("nope.example.com.", "A", "NXDOMAIN"), ("www.example.com.", "MX", "NOERROR")]


@pytest.mark.points(1)
@pytest.mark.parametrize("case", NEGATIVE, ids=["NXDOMAIN", "NODATA"])
def test_negative_answers_carry_the_zone_soa(case):
    """NXDOMAIN and NODATA responses carry the SOA in the authority section, TTL min(SOA TTL, MINIMUM) (RFC 2308 §3)."""
    name, rdtype, rcode = case
    response = expect(name, rdtype, rcode, [])
    got = records(response.authority)
    assert got == [SOA], called(
        f"answer(zone, <query {name} {rdtype}>) -> authority section", got, [SOA]
    )


@pytest.mark.points(1)
def test_the_negative_ttl_is_the_soa_ttl_when_it_is_the_smaller():
    """The SOA of a negative answer has TTL min(SOA TTL, MINIMUM): the SOA's own TTL when that is smaller (RFC 2308 §3)."""
    the_zone = Zone.from_text(
        "@ 60 IN SOA ns h 1 7200 3600 86400 300\nwww 60 IN A 192.0.2.1\n", origin="example.com."
    )
    _, response, _ = ask(the_zone, "nope.example.com.", "A")
    got = [ttl for _, ttl, _, _ in records(response.authority)]
    assert got == [60], called(
        "answer(<zone whose SOA has TTL 60 and MINIMUM 300>, <query nope.example.com. A>)"
        " -> authority TTLs",
        got,
        [60],
    )


QUERY_BITS = {"AA": dns.flags.AA, "TC": dns.flags.TC, "Z": 0x0040}


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("name", "aa"),
    [("www.example.com.", True), ("www.example.org.", False)],
    ids=["answered", "refused"],
)
def test_no_other_query_flag_is_copied(name, aa):
    """A query's AA, TC and Z bits are not copied: AA says whether this server is authoritative, TC whether it truncated, Z is 0 (RFC 1035 §4.1.1)."""
    query = dns.message.make_query(name, "A")
    query.flags |= dns.flags.AA | dns.flags.TC | 0x0040
    what = f"answer(zone, <query {name} A with AA, TC and the Z bit set>)"
    response = parse(respond(zone(), query.to_wire(), what), what)
    got = {bit: bool(response.flags & mask) for bit, mask in QUERY_BITS.items()}
    want = {"AA": aa, "TC": False, "Z": False}
    assert got == want, called(f"{what} -> flags", got, want)


REFUSED = [
    ("www.example.org.", "IN"),
    ("com.", "IN"),
    (".", "IN"),
    ("evilexample.com.", "IN"),
    ("example.com.evil.", "IN"),
    ("www.example.com.", "CH"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("case", REFUSED, ids=[f"{n} {c}" for n, c in REFUSED])
def test_names_outside_the_zone_are_refused(case):
    """A name outside the zone (or a class other than IN) gets REFUSED, AA clear, the question echoed."""
    name, rdclass = case
    query = dns.message.make_query(name, "A", rdclass)
    what = f"answer(zone, <query {name} A {rdclass}>)"
    response = parse(respond(zone(), query.to_wire(), what), what)
    got = (rcode_name(response), bool(response.flags & dns.flags.AA), records(response.answer))
    want = ("REFUSED", False, [])
    assert got == want, called(f"{what} -> (RCODE, AA, answer)", got, want)
    assert query.is_response(response), called(
        f"{what} -> question section", response.question, query.question
    )


ALIAS = rr("alias.example.com.", 3600, "CNAME", "www.example.com.")
CHAIN = rr("chain.example.com.", 3600, "CNAME", "alias.example.com.")
CNAMES = {
    "alias A": ("alias.example.com.", "A", [ALIAS, *WWW_A]),
    "chain of two A": ("chain.example.com.", "A", [CHAIN, ALIAS, *WWW_A]),
    "alias AAAA": (
        "alias.example.com.",
        "AAAA",
        [ALIAS, rr("www.example.com.", 3600, "AAAA", "2001:db8::1")],
    ),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(CNAMES.values()), ids=list(CNAMES))
def test_a_cname_is_followed_inside_the_zone(case):
    """A query at an alias gets the CNAME first, then the target's records (RFC 1034 §3.6.2)."""
    name, rdtype, want = case
    expect(name, rdtype, "NOERROR", want, ordered=True)


@pytest.mark.points(1)
def test_a_cname_query_gets_the_cname_only():
    """A query of type CNAME at an alias gets the CNAME record itself, not its target's records."""
    response = expect("alias.example.com.", "CNAME", "NOERROR", [ALIAS])
    got = records(response.authority)
    assert got == [], called(
        "answer(zone, <query alias.example.com. CNAME>) -> authority section"
        " (the CNAME is the answer: no NODATA SOA for its target)",
        got,
        [],
    )


@pytest.mark.points(1)
def test_a_cname_leaving_the_zone_is_answered_alone():
    """A CNAME whose target is outside the zone is answered alone: the resolver goes on from there."""
    away = rr("away.example.com.", 3600, "CNAME", "www.example.net.")
    expect("away.example.com.", "A", "NOERROR", [away])


@pytest.mark.points(1)
def test_a_cname_to_a_missing_name_gets_nxdomain():
    """A CNAME to a name missing from the zone: the CNAME, and NXDOMAIN for the end of the chain (RFC 6604)."""
    dangling = rr("dangling.example.com.", 3600, "CNAME", "missing.example.com.")
    expect("dangling.example.com.", "A", "NXDOMAIN", [dangling])


@pytest.mark.points(1)
def test_a_cname_loop_ends():
    """A CNAME loop (loop1 -> loop2 -> loop1) ends: the answer starts with loop1's CNAME and stops."""
    _, response, _ = ask(zone(), "loop1.example.com.", "A")
    got = records(response.answer)
    first = rr("loop1.example.com.", 3600, "CNAME", "loop2.example.com.")
    assert got[:1] == [first] and len(got) <= 4, called(
        "answer(zone, <query loop1.example.com. A>) (loop1 -> loop2 -> loop1) -> answer",
        got,
        f"{first} first, and an end to the chase",
    )


# --- QTYPE ANY (255, "*") ------------------------------------------------------------------

APEX_SOA = rr(
    "example.com.",
    3600,  # in the answer the SOA is a record like any other: its own TTL
    "SOA",
    "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300",
)
ANY = {
    "apex: SOA and two MX": (
        "example.com.",
        [
            APEX_SOA,
            rr("example.com.", 3600, "MX", "10 mail.example.com."),
            rr("example.com.", 3600, "MX", "20 mail.backup.example.net."),
        ],
    ),
    "www: two A and an AAAA": (
        "www.example.com.",
        [*WWW_A, rr("www.example.com.", 3600, "AAAA", "2001:db8::1")],
    ),
    "mail: one A": ("mail.example.com.", [rr("mail.example.com.", 3600, "A", "192.0.2.25")]),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", list(ANY.values()), ids=list(ANY))
def test_an_any_query_gets_every_record_at_the_name(case):
    """A query of type ANY (255) gets every record the name owns, of every type, not NODATA (RFC 1034 §3.7.1, §4.3.2)."""
    name, want = case
    expect(name, "ANY", "NOERROR", want)


@pytest.mark.points(1)
def test_an_any_query_at_an_alias_gets_the_cname_only():
    """A query of type ANY at an alias gets the CNAME alone, not followed: "a type CNAME or * query should return just the CNAME" (RFC 1034 §3.6.2)."""
    expect("alias.example.com.", "ANY", "NOERROR", [ALIAS])


ANY_NEGATIVE = [("nope.example.com.", "NXDOMAIN"), ("b.deep.example.com.", "NOERROR")]


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "case", ANY_NEGATIVE, ids=["missing name: NXDOMAIN", "empty non-terminal: NODATA"]
)
def test_an_any_query_at_a_name_without_records_gets_the_negative_answer(case):
    """A query of type ANY at a missing name gets NXDOMAIN, at an empty non-terminal NODATA, with the SOA in the authority section, as any other type."""
    name, rcode = case
    response = expect(name, "ANY", rcode, [])
    got = records(response.authority)
    assert got == [SOA], called(
        f"answer(zone, <query {name} ANY>) -> authority section", got, [SOA]
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("name", ["wWw.ExAmPlE.cOm.", "WWW.EXAMPLE.COM."])
def test_names_match_ignoring_case(name):
    """Mixed-case (0x20) queries find the zone's records: names compare ignoring ASCII case (RFC 4343)."""
    _, response, _ = ask(zone(), name, "A")
    got = sorted(records(response.answer))
    assert got == sorted(WWW_A), called(
        f"answer(zone, <query {name} A>) -> answer", got, sorted(WWW_A)
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("label", "rcode"),
    [(b"\xe9", "NOERROR"), (b"\xc9", "NXDOMAIN")],
    ids=["the same byte 0xe9: found", "0xc9 (latin-1 capital E acute): another name"],
)
def test_only_ascii_letters_match_ignoring_case(label, rcode):
    """Names match ignoring ASCII case only: a label byte 0xc9 is not 0xe9, though latin-1 reads them as É and é (RFC 4343)."""
    the_zone = Zone.from_text("\u00e9 60 IN A 192.0.2.1\n", origin="example.com.")
    name = dns.name.Name([label, b"example", b"com", b""])
    _, response, _ = ask(the_zone, name, "A")
    got = rcode_name(response)
    assert got == rcode, called(
        f"answer(<zone with the label b'\\xe9' (\u00e9)>, <query {label!r}.example.com. A>) -> RCODE",
        got,
        rcode,
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["wWw.ExAmPlE.cOm.", "WWW.EXAMPLE.COM."])
def test_the_echoed_question_keeps_the_query_case(name):
    """The echoed question keeps the query's exact letter case (resolvers check it: 0x20 encoding)."""
    query, _, raw = ask(zone(), name, "A")
    sent = question_bytes(query.to_wire())
    echoed = raw[12 : 12 + len(sent)]
    assert echoed == sent, called(f"answer(zone, <query {name} A>) -> question bytes", echoed, sent)


@pytest.mark.points(1)
def test_a_zone_written_in_upper_case_matches_lower_case_queries():
    """A zone whose text is in upper case ($ORIGIN Example.COM., WWW) answers lower-case queries."""
    upper = Zone.from_text("$ORIGIN Example.COM.\nWWW 60 IN A 192.0.2.7\n")
    want = [rr("www.example.com.", 60, "A", "192.0.2.7")]
    expect("www.example.com.", "A", "NOERROR", want, the_zone=upper)


# --- errors ---------------------------------------------------------------------------------

OPCODES = [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE]


@pytest.mark.points(1)
@pytest.mark.parametrize("opcode", OPCODES, ids=[dns.opcode.to_text(op) for op in OPCODES])
def test_opcodes_other_than_query_get_notimp(opcode):
    """IQUERY, STATUS, NOTIFY and UPDATE get NOTIMP (RCODE 4) with the ID and the opcode echoed."""
    query = dns.message.make_query("www.example.com.", "A", id=4242)
    query.set_opcode(opcode)
    what = f"answer(zone, <{dns.opcode.to_text(opcode)} message>)"
    response = parse(respond(zone(), query.to_wire(), what), what)
    qr = bool(response.flags & dns.flags.QR)
    got = (response.id, opcode_name(response), rcode_name(response), qr)
    want = (4242, dns.opcode.to_text(opcode), "NOTIMP", True)
    assert got == want, called(f"{what} -> (id, opcode, RCODE, QR)", got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_queries_with_a_readable_header_get_formerr(data, request):
    """QDCOUNT 0 or 2, pointer loops, cut-off names, bad label types: FORMERR with the ID echoed."""
    what = f"answer(zone, <{request.node.callspec.id}: {short(data, 60)}>)"
    response = parse(respond(zone(), data, what), what)
    got = (response.id, rcode_name(response), flag_names(response))
    want = (0x1234, "FORMERR", "QR RD")
    assert got == want, called(f"{what} -> (id, RCODE, flags)", got, want)


_QUERY = dns.message.make_query("www.example.com.", "A")
DROPPED = {
    "an empty datagram": b"",
    "one byte": b"\x12",
    "11 bytes": _QUERY.to_wire()[:11],
    "a response message": dns.message.make_response(_QUERY).to_wire(),
    "a FORMERR response": header(flags=0x8001, qd=0),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("data", list(DROPPED.values()), ids=list(DROPPED))
def test_short_datagrams_and_responses_are_dropped(data, request):
    """Fewer than 12 bytes, or the QR bit set (a response, not a query): answer returns None."""
    what = f"answer(zone, <{request.node.callspec.id}: {short(data, 40)}>)"
    got = respond(zone(), data, what)
    assert got is None, called(what, got, None)


@pytest.mark.points(1)
def test_a_12_byte_header_alone_gets_formerr():
    """Exactly 12 bytes (a header with QDCOUNT 1 and no question) is read and answered FORMERR, not dropped."""
    data = header()
    what = f"answer(zone, <a 12-byte header alone: {short(data)}>)"
    response = parse(respond(zone(), data, what), what)
    got = (response.id, rcode_name(response))
    assert got == (0x1234, "FORMERR"), called(f"{what} -> (id, RCODE)", got, (0x1234, "FORMERR"))


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        where %= len(out) or 1
        if kind == 0 and out:
            out[where] = value
        elif kind == 1:
            out.insert(where, value)
        elif out:
            del out[where]
    return bytes(out)


_QUERIES = [
    dns.message.make_query(name, rdtype, id=0x0A0A).to_wire()
    for name, rdtype in [
        ("www.example.com.", "A"),
        ("alias.example.com.", "MX"),
        ("a.b.deep.example.com.", "AAAA"),
    ]
]
_EDITS = st.tuples(st.integers(0, 2), st.integers(0, 255), st.integers(0, 255))

DATAGRAMS = st.one_of(
    st.binary(max_size=48),
    st.builds(
        lambda ident, flags, qd, rest: header(ident, flags, qd) + rest,
        st.integers(0, 0xFFFF),
        st.sampled_from([0x0000, 0x0100, 0x0110, 0x2100, 0x7FFF]),
        st.sampled_from([1, 1, 1, 0, 2]),
        st.binary(max_size=40),
    ),
    st.builds(_mutate, st.sampled_from(_QUERIES), st.lists(_EDITS, min_size=1, max_size=4)),
)


_ZONES: list[Zone] = []  # one zone for all examples of the property below (a speed-up)


@pytest.mark.points(3)
@settings(max_examples=150, phases=[Phase.explicit, Phase.generate])
@given(DATAGRAMS)
@example(b"")
@example(b"\x00" * 11)  # one byte short of a header
@example(b"\x00" * 12)  # a header alone, QDCOUNT 0
@example(header())  # QDCOUNT 1 and nothing after it
@example(header(flags=0x8000))  # a response: dropped
@example(header(flags=0x7900))  # opcode 15
@example(_QUERIES[0][:-1])  # QCLASS cut in half
@example(_QUERIES[0] + b"\x00")  # a trailing byte
@example(header(ar=1) + _QUERIES[0][12:] + b"\x00\x00\x29\x02\x00")  # an OPT cut off
@example(header(ar=1) + _QUERIES[0][12:] + b"\x00\x00\x29\xff\xff\x00\x00\x00\x00\x00\x00")
def test_any_datagram_gets_a_well_formed_answer_or_is_dropped(data):
    """Whatever bytes arrive, answer never raises: None for a short datagram or a response, else a valid reply."""
    if not _ZONES:
        _ZONES.append(zone())
    the_zone = _ZONES[0]
    what = f"answer(zone, {short(data, 90)})"
    raw = respond(the_zone, data, what)
    if len(data) < 12 or data[2] & 0x80:
        assert raw is None, called(what, raw, None)
        return
    response = parse(raw, what)
    ident, flags = struct.unpack_from(">HH", data)
    want = (ident, True, dns.opcode.to_text(dns.opcode.from_flags(flags)))
    got = (response.id, bool(response.flags & dns.flags.QR), opcode_name(response))
    assert got == want, called(f"{what} -> (id, QR, opcode)", got, want)
    allowed = ("NOERROR", "FORMERR", "NXDOMAIN", "NOTIMP", "REFUSED")
    assert rcode_name(response) in allowed, called(
        f"{what} -> RCODE", rcode_name(response), f"one of {allowed}"
    )
    limit = 512 if response.opt is None else 1232  # EDNS: at most the server's 1232 bytes
    assert len(raw) <= limit, called(
        f"{what} -> response length", len(raw), f"at most {limit} bytes"
    )


# --- size: compression and truncation ---------------------------------------------------------


@pytest.mark.points(3)
def test_responses_use_name_compression():
    """Responses are as compact as dnspython's own encoding: owner names and CNAME/MX/SOA names compressed."""
    the_zone = zone()
    for name, rdtype in [
        ("www.example.com.", "A"),
        ("WwW.ExAmPlE.CoM.", "A"),  # 0x20: the owners compress against the question anyway
        ("example.com.", "MX"),
        ("chain.example.com.", "A"),
        ("nope.example.com.", "A"),
        ("example.com.", "SOA"),
        ("example.com.", "ANY"),
    ]:
        _, response, raw = ask(the_zone, name, rdtype)
        compact = len(response.to_wire())
        assert len(raw) <= compact, (
            f"Called answer(zone, <query {name} {rdtype}>); the response is {len(raw)} bytes, but "
            f"dnspython writes the same message in {compact} bytes with name compression"
        )


def many_a_zone(count: int, label: str = "many") -> Zone:
    lines = [f"{label} 60 IN A 198.51.100.{i}" for i in range(1, count + 1)]
    return Zone.from_text("\n".join(lines) + "\n", origin="example.com.")


@pytest.mark.points(2)
def test_an_answer_that_fits_when_compressed_is_not_truncated():
    """25 A records fit in 512 bytes once owner names are pointers: all 25 come back, TC clear."""
    _, response, raw = ask(many_a_zone(25), "many.example.com.", "A")
    got = (len(records(response.answer)), bool(response.flags & dns.flags.TC))
    assert got == (25, False), called(
        f"answer(<zone with 25 A records>, <query many.example.com. A>) -> (records, TC) "
        f"in {len(raw)} bytes",
        got,
        (25, False),
    )


@pytest.mark.points(4)
def test_a_response_over_512_bytes_is_truncated_with_tc():
    """40 A records don't fit in 512 bytes: TC set, at most 512 bytes, only whole records from the zone."""
    query, response, raw = ask(many_a_zone(40), "many.example.com.", "A")
    what = "answer(<zone with 40 A records>, <query many.example.com. A>)"
    assert response.flags & dns.flags.TC, called(f"{what} -> flags", flag_names(response), "TC set")
    assert len(raw) <= 512, called(f"{what} -> length", len(raw), "at most 512 bytes")
    zone_records = {rr("many.example.com.", 60, "A", f"198.51.100.{i}") for i in range(1, 41)}
    got = records(response.answer)
    assert set(got) <= zone_records and len(set(got)) == len(got), called(
        f"{what} -> answer section", got, "distinct records of the zone"
    )
    head = (response.id, rcode_name(response), bool(response.flags & dns.flags.AA))
    want = (query.id, "NOERROR", True)
    assert head == want, called(f"{what} -> (id, RCODE, AA)", head, want)


@pytest.mark.points(2)
def test_a_response_of_exactly_512_bytes_is_not_truncated():
    """512 bytes is the limit, not past it: 28 records making exactly 512 bytes all come back; 29 don't fit."""
    label = "n" * 34  # a 48-byte name: 12 + (48 + 4) + 28 * 16 = 512
    name = f"{label}.example.com."
    for count, want in [(28, (512, 28, False)), (29, (512, 28, True))]:
        _, response, raw = ask(many_a_zone(count, label), name, "A")
        got = (len(raw), len(records(response.answer)), bool(response.flags & dns.flags.TC))
        assert got == want, called(
            f"answer(<zone with {count} A records>, <query nnnn...example.com. A>) "
            "-> (bytes, records, TC)",
            got,
            want,
        )
