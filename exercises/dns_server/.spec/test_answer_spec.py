"""Hidden specs for answer(zone, datagram): the sans-IO heart of the server.

dnspython builds every well-formed query and parses every response; the zone is _helpers.ZONE_TEXT.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
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
from hypothesis import Phase, given, settings
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


@pytest.mark.points(4)
def test_queries_get_their_records_with_the_zone_ttls():
    """A, AAAA and MX queries get every record of that type at the name, with its TTL, and AA set."""
    expect("www.example.com.", "A", "NOERROR", WWW_A)
    aaaa = [rr("www.example.com.", 3600, "AAAA", "2001:db8::1")]
    expect("www.example.com.", "AAAA", "NOERROR", aaaa)
    mail = [rr("mail.example.com.", 3600, "A", "192.0.2.25")]
    expect("mail.example.com.", "A", "NOERROR", mail)
    mx = [
        rr("example.com.", 3600, "MX", "10 mail.example.com."),
        rr("example.com.", 3600, "MX", "20 mail.backup.example.net."),
    ]
    expect("example.com.", "MX", "NOERROR", mx)


@pytest.mark.points(3)
def test_response_echoes_the_id_the_rd_bit_and_the_question():
    """The response has the query's ID, QR and AA set, opcode QUERY, RD as asked, RA clear, the question byte for byte."""
    the_zone = zone()
    for ident, rd in [(0, True), (1, False), (0xBEEF, True), (0xFFFF, False)]:
        query = dns.message.make_query("www.example.com.", "A", id=ident)
        query.flags = dns.flags.RD if rd else 0
        wire = query.to_wire()
        what = (
            f"answer(zone, <query www.example.com. A, id {ident}, RD {'set' if rd else 'clear'}>)"
        )
        raw = respond(the_zone, wire, what)
        response = parse(raw, what)
        assert response.id == ident, called(f"{what} -> id", response.id, ident)
        want_flags = dns.flags.QR | dns.flags.AA | (dns.flags.RD if rd else 0)
        got_flags = f"{flag_names(response)}, opcode {opcode_name(response)}"
        assert response.flags == want_flags and opcode_name(response) == "QUERY", called(
            f"{what} -> flags", got_flags, f"{dns.flags.to_text(want_flags)}, opcode QUERY"
        )
        qdcount = struct.unpack_from(">H", raw, 4)[0]
        echoed = raw[12 : 12 + len(question_bytes(wire))]
        assert qdcount == 1 and echoed == question_bytes(wire), called(
            f"{what} -> QDCOUNT and question section", (qdcount, echoed), (1, question_bytes(wire))
        )


@pytest.mark.points(3)
def test_names_not_in_the_zone_get_nxdomain():
    """A name under the zone that does not exist gets NXDOMAIN (RCODE 3), AA set, no answer."""
    for name in ("nope.example.com.", "www.nope.example.com.", "x.a.b.deep.example.com."):
        for rdtype in ("A", "MX"):
            expect(name, rdtype, "NXDOMAIN", [])


@pytest.mark.points(3)
def test_a_name_without_the_asked_type_gets_nodata():
    """A name that exists without the asked type gets NOERROR with an empty answer (NODATA), AA set."""
    for name, rdtype in [
        ("www.example.com.", "MX"),
        ("mail.example.com.", "AAAA"),
        ("example.com.", "A"),
        ("www.example.com.", "TXT"),
    ]:
        expect(name, rdtype, "NOERROR", [])


@pytest.mark.points(1)
def test_an_empty_non_terminal_exists():
    """A name with no records but names below it (deep, b.deep) gets NODATA, not NXDOMAIN (RFC 8020)."""
    for name in ("b.deep.example.com.", "deep.example.com."):
        expect(name, "A", "NOERROR", [])


@pytest.mark.points(2)
def test_negative_answers_carry_the_zone_soa():
    """NXDOMAIN and NODATA responses carry the SOA in the authority section, TTL min(SOA TTL, MINIMUM)."""
    for name, rdtype, rcode in [
        ("nope.example.com.", "A", "NXDOMAIN"),
        ("www.example.com.", "MX", "NOERROR"),
    ]:
        response = expect(name, rdtype, rcode, [])
        got = records(response.authority)
        assert got == [SOA], called(
            f"answer(zone, <query {name} {rdtype}>) -> authority section", got, [SOA]
        )


@pytest.mark.points(2)
def test_names_outside_the_zone_are_refused():
    """A name outside the zone (or a class other than IN) gets REFUSED, AA clear, the question echoed."""
    the_zone = zone()
    cases = [
        ("www.example.org.", "IN"),
        ("com.", "IN"),
        (".", "IN"),
        ("evilexample.com.", "IN"),
        ("example.com.evil.", "IN"),
        ("www.example.com.", "CH"),
    ]
    for name, rdclass in cases:
        query = dns.message.make_query(name, "A", rdclass)
        what = f"answer(zone, <query {name} A {rdclass}>)"
        response = parse(respond(the_zone, query.to_wire(), what), what)
        got = (rcode_name(response), bool(response.flags & dns.flags.AA), records(response.answer))
        want = ("REFUSED", False, [])
        assert got == want, called(f"{what} -> (RCODE, AA, answer)", got, want)
        assert query.is_response(response), called(
            f"{what} -> question section", response.question, query.question
        )


@pytest.mark.points(3)
def test_a_cname_is_followed_inside_the_zone():
    """A query at an alias gets the CNAME first, then the target's records; a CNAME query gets the CNAME only."""
    alias = rr("alias.example.com.", 3600, "CNAME", "www.example.com.")
    chain = rr("chain.example.com.", 3600, "CNAME", "alias.example.com.")
    www_aaaa = rr("www.example.com.", 3600, "AAAA", "2001:db8::1")
    expect("alias.example.com.", "A", "NOERROR", [alias, *WWW_A], ordered=True)
    expect("chain.example.com.", "A", "NOERROR", [chain, alias, *WWW_A], ordered=True)
    expect("alias.example.com.", "AAAA", "NOERROR", [alias, www_aaaa], ordered=True)
    expect("alias.example.com.", "CNAME", "NOERROR", [alias])


@pytest.mark.points(2)
def test_cname_chasing_stops_at_the_zone_edge_and_at_dead_ends():
    """A CNAME leaving the zone is answered alone; one to a missing name gets NXDOMAIN (RFC 6604); loops end."""
    away = rr("away.example.com.", 3600, "CNAME", "www.example.net.")
    expect("away.example.com.", "A", "NOERROR", [away])
    dangling = rr("dangling.example.com.", 3600, "CNAME", "missing.example.com.")
    expect("dangling.example.com.", "A", "NXDOMAIN", [dangling])
    _, response, _ = ask(zone(), "loop1.example.com.", "A")
    got = records(response.answer)
    first = rr("loop1.example.com.", 3600, "CNAME", "loop2.example.com.")
    assert got[:1] == [first] and len(got) <= 4, called(
        "answer(zone, <query loop1.example.com. A>) (loop1 -> loop2 -> loop1) -> answer",
        got,
        f"{first} first, and an end to the chase",
    )


@pytest.mark.points(3)
def test_names_match_ignoring_case_and_the_question_keeps_the_query_case():
    """Mixed-case (0x20) queries match the zone, and the echoed question keeps the query's exact case."""
    for name in ("wWw.ExAmPlE.cOm.", "WWW.EXAMPLE.COM."):
        query, response, raw = ask(zone(), name, "A")
        what = f"answer(zone, <query {name} A>)"
        got = sorted(records(response.answer))
        assert got == sorted(WWW_A), called(f"{what} -> answer section", got, sorted(WWW_A))
        sent = question_bytes(query.to_wire())
        echoed = raw[12 : 12 + len(sent)]
        assert echoed == sent, called(f"{what} -> question section bytes", echoed, sent)
    upper = Zone.from_text("$ORIGIN Example.COM.\nWWW 60 IN A 192.0.2.7\n")
    want = [rr("www.example.com.", 60, "A", "192.0.2.7")]
    expect("www.example.com.", "A", "NOERROR", want, the_zone=upper)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.points(1)
def test_opcodes_other_than_query_get_notimp():
    """IQUERY, STATUS, NOTIFY and UPDATE get NOTIMP (RCODE 4) with the ID and the opcode echoed."""
    the_zone = zone()
    for opcode in (dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE):
        query = dns.message.make_query("www.example.com.", "A", id=4242)
        query.set_opcode(opcode)
        what = f"answer(zone, <{dns.opcode.to_text(opcode)} message>)"
        response = parse(respond(the_zone, query.to_wire(), what), what)
        qr = bool(response.flags & dns.flags.QR)
        got = (response.id, opcode_name(response), rcode_name(response), qr)
        want = (4242, dns.opcode.to_text(opcode), "NOTIMP", True)
        assert got == want, called(f"{what} -> (id, opcode, RCODE, QR)", got, want)


@pytest.mark.points(3)
def test_malformed_queries_with_a_readable_header_get_formerr():
    """QDCOUNT 0 or 2, pointer loops, cut-off names, bad label types: FORMERR with the ID echoed."""
    the_zone = zone()
    for why, data in MALFORMED.items():
        what = f"answer(zone, <{why}: {short(data, 60)}>)"
        response = parse(respond(the_zone, data, what), what)
        got = (response.id, rcode_name(response), flag_names(response))
        want = (0x1234, "FORMERR", "QR RD")
        assert got == want, called(f"{what} -> (id, RCODE, flags)", got, want)


@pytest.mark.points(2)
def test_short_datagrams_and_responses_are_dropped():
    """Fewer than 12 bytes, or the QR bit set (a response, not a query): answer returns None."""
    the_zone = zone()
    query = dns.message.make_query("www.example.com.", "A")
    cases = {
        "an empty datagram": b"",
        "11 bytes": query.to_wire()[:11],
        "a response message": dns.message.make_response(query).to_wire(),
        "a FORMERR response": header(flags=0x8001, qd=0),
    }
    for why, data in cases.items():
        what = f"answer(zone, <{why}: {short(data, 40)}>)"
        got = respond(the_zone, data, what)
        assert got is None, called(what, got, None)


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
        ("example.com.", "MX"),
        ("chain.example.com.", "A"),
        ("nope.example.com.", "A"),
        ("example.com.", "SOA"),
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
