"""Hidden specs for EDNS(0) (RFC 6891) in answer(): the OPT record, the client's size, BADVERS.

dnspython writes the EDNS queries (``use_edns=0, payload=N``) and parses every response;
hand-built OPT records cover what it won't write (two OPTs, version 1 with a given size).
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rrset
import pytest
from _helpers import (
    ask,
    big_zone,
    flag_names,
    header,
    opt_record,
    parse,
    rcode_name,
    records,
    respond,
    wire_name,
    zone,
)

from grader.spectools import called, short

QUERIES = {
    "an answer": ("www.example.com.", "A"),
    "NXDOMAIN": ("nope.example.com.", "A"),
    "NODATA": ("www.example.com.", "MX"),
    "REFUSED": ("www.example.org.", "A"),
}


def opt_of(response: dns.message.Message) -> tuple[int, int, int]:
    """(EDNS version, UDP payload size, count of OPT records) as dnspython read them."""
    return response.edns, response.payload, 1 if response.opt is not None else 0


@pytest.mark.points(3)
@pytest.mark.parametrize("case", list(QUERIES.values()), ids=list(QUERIES))
def test_an_edns_query_gets_an_opt_record_back(case):
    """A query with an OPT record gets one OPT back: version 0, the server's UDP size 1232 (RFC 6891 §7)."""
    name, rdtype = case
    _, response, raw = ask(zone(), name, rdtype, use_edns=0, payload=4096)
    arcount = struct.unpack_from(">H", raw, 10)[0]
    got = (*opt_of(response), arcount)
    want = (0, 1232, 1, 1)
    assert got == want, called(
        f"answer(zone, <EDNS query {name} {rdtype}, payload 4096>) "
        "-> (EDNS version, OPT UDP size, OPT records, ARCOUNT)",
        got,
        want,
    )


@pytest.mark.points(1)
def test_a_query_without_edns_gets_no_opt_record():
    """A query without an OPT record gets none back: an OPT would confuse a client that never asked."""
    _, response, raw = ask(zone(), "www.example.com.", "A")
    arcount = struct.unpack_from(">H", raw, 10)[0]
    got = (response.edns, arcount)
    assert got == (-1, 0), called(
        "answer(zone, <query www.example.com. A without EDNS>) -> (EDNS version, ARCOUNT)",
        got,
        (-1, 0),
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("do", [True, False], ids=["DO set", "DO clear"])
def test_the_do_bit_is_copied_into_the_opt(do):
    """The OPT of the response carries the query's DO bit (RFC 3225 §3: it MUST be copied)."""
    flags = dns.flags.DO if do else 0
    _, response, _ = ask(zone(), "www.example.com.", "A", use_edns=0, ednsflags=flags)
    got = bool(response.ednsflags & dns.flags.DO)
    assert got == do, called(
        f"answer(zone, <EDNS query with DO {'set' if do else 'clear'}>) -> DO bit", got, do
    )


# (client's UDP size, A records at the name, label of the name) -> (bytes, records, TC).
# Size = 12 header + (len(label) + 14 + 4) question + 16 per record + 11 OPT.
SIZES = {
    "exactly the client's 1000 bytes": (1000, 59, "x" * 15, (1000, 59, False)),
    "one byte over the client's 999": (999, 59, "x" * 15, (984, 58, True)),
    "16 bytes over the client's 1000": (1000, 60, "x" * 15, (1000, 59, True)),
    "client 4096, exactly the cap of 1232": (4096, 74, "exactly", (1232, 74, False)),
    "client 4096, one record past the cap": (4096, 75, "exactly", (1232, 74, True)),
    "client 1231, one byte short": (1231, 74, "exactly", (1216, 73, True)),
    "client 512, exactly 512": (512, 29, "exactly", (512, 29, False)),
    "client 100 counts as 512": (100, 29, "exactly", (512, 29, False)),
    "client 511 counts as 512, one record over": (511, 30, "exactly", (512, 29, True)),
}


@pytest.mark.points(3)
@pytest.mark.parametrize("case", list(SIZES.values()), ids=list(SIZES))
def test_udp_answers_are_truncated_at_the_clients_edns_size(case):
    """Over UDP an EDNS answer fills the client's size (512 at least, 1232 at most), then stops with TC (RFC 6891 §6.2.5)."""
    size, count, label, want = case
    name = f"{label}.example.com."
    _, response, raw = ask(big_zone(count, label), name, "A", use_edns=0, payload=size)
    got = (len(raw), len(records(response.answer)), bool(response.flags & dns.flags.TC))
    assert got == want, called(
        f"answer(<zone with {count} A records at {short(name, 40)}>, <EDNS query, payload "
        f"{size}>) -> (bytes, records, TC)",
        got,
        want,
    )


@pytest.mark.points(2)
def test_a_truncated_edns_answer_keeps_its_opt_record():
    """A response cut short with TC still ends with the OPT record (RFC 6891 §7)."""
    _, response, raw = ask(big_zone(200), "big.example.com.", "A", use_edns=0, payload=1232)
    got = (bool(response.flags & dns.flags.TC), *opt_of(response))
    want = (True, 0, 1232, 1)
    assert got == want, called(
        "answer(<zone with 200 A records>, <EDNS query, payload 1232>) "
        "-> (TC, EDNS version, OPT UDP size, OPT records)",
        got,
        want,
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("version", [1, 255], ids=["version 1", "version 255"])
def test_an_unknown_edns_version_gets_badvers(version):
    """An OPT with a version other than 0 gets BADVERS, an OPT of version 0, no answer (RFC 6891 §6.1.3)."""
    query = dns.message.make_query("www.example.com.", "A", use_edns=version)
    what = f"answer(zone, <query www.example.com. A with EDNS version {version}>)"
    response = parse(respond(zone(), query.to_wire(), what), what)
    got = (rcode_name(response), response.edns, records(response.answer), flag_names(response))
    want = ("BADVERS", 0, [], "QR RD")
    assert got == want, called(f"{what} -> (RCODE, EDNS version, answer, flags)", got, want)


QUESTION = wire_name(b"www", b"example", b"com") + struct.pack(">HH", 1, 1)
BAD_OPTS = {
    "two OPT records": header(ar=2) + QUESTION + opt_record() + opt_record(),
    "an OPT whose owner is not the root": header(ar=1)
    + QUESTION
    + opt_record(owner=b"\x03www\x00"),
    "an OPT cut off in its RDATA": header(ar=1) + QUESTION + opt_record()[:-2] + b"\x00\x04",
}


@pytest.mark.points(2)
@pytest.mark.parametrize("data", list(BAD_OPTS.values()), ids=list(BAD_OPTS))
def test_a_malformed_opt_gets_formerr(data):
    """Two OPT records, an OPT not owned by the root, or one cut off: FORMERR (RFC 6891 §6.1.1, §6.1.2)."""
    what = f"answer(zone, {short(data, 80)})"
    response = parse(respond(zone(), data, what), what)
    got = (response.id, rcode_name(response))
    assert got == (0x1234, "FORMERR"), called(f"{what} -> (id, RCODE)", got, (0x1234, "FORMERR"))


@pytest.mark.points(1)
def test_an_opt_after_other_additional_records_is_found():
    """The OPT may follow other records in the additional section: it is still read and answered."""
    query = dns.message.make_query("www.example.com.", "A", use_edns=0, payload=1232)
    query.additional.append(dns.rrset.from_text("extra.example.com.", 60, "IN", "A", "192.0.2.99"))
    wire = query.to_wire()
    what = "answer(zone, <EDNS query with an A record before the OPT in the additional section>)"
    response = parse(respond(zone(), wire, what), what)
    got = (rcode_name(response), *opt_of(response))
    assert got == ("NOERROR", 0, 1232, 1), called(
        f"{what} -> (RCODE, EDNS version, OPT UDP size, OPT records)", got, ("NOERROR", 0, 1232, 1)
    )
