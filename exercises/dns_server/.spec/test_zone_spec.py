"""Hidden specs for Zone.from_text: the master-file subset (RFC 1035 §5), read back through answer()."""

from __future__ import annotations

import pytest
from _helpers import ask, rcode_name, records, rr
from dns_server import Zone

from grader.spectools import called, short, step

SYNTAX = """\
; a comment line, then a blank line

$TTL 120
$ORIGIN example.org.
@                IN SOA ns hostmaster.example.org. 1 7200 3600 86400 5  ; trailing comment
www              A   192.0.2.10               ; no class, the $TTL
                 IN 60 AAAA 2001:db8::10      ; blank owner: www again; class before TTL
ftp.example.org. 30 IN cname www              ; absolute owner, lower-case type, relative target
$ORIGIN sub.example.org.
host             IN  A   192.0.2.11           ; host.sub.example.org.
@                MX  5   host                 ; sub.example.org. MX 5 host.sub.example.org.
"""


@pytest.mark.points(3)
def test_zone_text_syntax():
    """Comments, $TTL, $ORIGIN, @, relative and absolute names, blank owners, TTL/class in any order."""
    zone = Zone.from_text(SYNTAX)
    www_a = rr("www.example.org.", 120, "A", "192.0.2.10")
    cases = [
        ("www.example.org.", "A", [www_a]),
        ("www.example.org.", "AAAA", [rr("www.example.org.", 60, "AAAA", "2001:db8::10")]),
        ("ftp.example.org.", "A", [rr("ftp.example.org.", 30, "CNAME", "www.example.org."), www_a]),
        ("host.sub.example.org.", "A", [rr("host.sub.example.org.", 120, "A", "192.0.2.11")]),
        ("sub.example.org.", "MX", [rr("sub.example.org.", 120, "MX", "5 host.sub.example.org.")]),
        (
            "example.org.",
            "SOA",
            [
                rr(
                    "example.org.",
                    120,
                    "SOA",
                    "ns.example.org. hostmaster.example.org. 1 7200 3600 86400 5",
                )
            ],
        ),
    ]
    for name, rdtype, want in cases:
        _, response, _ = ask(zone, name, rdtype)
        got = records(response.answer)
        assert got == want, called(
            f"answer(Zone.from_text(<zone>), <query {name} {rdtype}>) -> answer section", got, want
        )


@pytest.mark.points(1)
def test_origin_argument_and_a_zone_without_soa():
    """origin= sets the apex when the text has no $ORIGIN; without an SOA, negative answers have no authority."""
    zone = Zone.from_text("www 60 IN A 192.0.2.1\n", origin="example.net.")
    _, response, _ = ask(zone, "www.example.net.", "A")
    got = records(response.answer)
    want = [rr("www.example.net.", 60, "A", "192.0.2.1")]
    assert got == want, called("answer(<zone example.net.>, <query www.example.net. A>)", got, want)
    _, response, _ = ask(zone, "ftp.example.net.", "A")
    got = (rcode_name(response), records(response.authority))
    assert got == ("NXDOMAIN", []), called(
        "answer(<zone example.net. without SOA>, <query ftp.example.net. A>) -> (RCODE, authority)",
        got,
        ("NXDOMAIN", []),
    )
    _, response, _ = ask(zone, "www.example.com.", "A")
    assert rcode_name(response) == "REFUSED", called(
        "answer(<zone example.net.>, <query www.example.com. A>) -> RCODE",
        rcode_name(response),
        "REFUSED",
    )


BAD_ZONES = {
    "an unsupported type": ("www 60 IN TXT hello\n", "example.com."),
    "a bad IPv4 address": ("www 60 IN A 300.1.1.1\n", "example.com."),
    "an IPv4 address in an AAAA record": ("www 60 IN AAAA 192.0.2.1\n", "example.com."),
    "a CNAME next to an A record": (
        "www 60 IN A 192.0.2.1\nwww 60 IN CNAME mail\n",
        "example.com.",
    ),
    "two CNAMEs at one name": ("www 60 IN CNAME a\nwww 60 IN CNAME b\n", "example.com."),
    "a record outside the zone": ("www.example.org. 60 IN A 192.0.2.1\n", "example.com."),
    "no origin at all": ("www 60 IN A 192.0.2.1\n", None),
    "no TTL and no $TTL": ("www IN A 192.0.2.1\n", "example.com."),
    "class CH": ("www 60 CH A 192.0.2.1\n", "example.com."),
    "an MX without a preference": ("@ 60 IN MX mail\n", "example.com."),
    "a TTL of 2**31": ("www 2147483648 IN A 192.0.2.1\n", "example.com."),
    "an unknown directive": ("$INCLUDE other.zone\n", "example.com."),
    "a 64-octet label": (f"{'x' * 64} 60 IN A 192.0.2.1\n", "example.com."),
    "an empty zone with no origin": ("; nothing here\n", None),
    "an absolute record and no origin": ("www.example.com. 60 IN A 192.0.2.1\n", None),
    "$TTL without a value": ("$TTL\nwww 60 IN A 192.0.2.1\n", "example.com."),
    "a blank owner on the first record": ("    60 IN A 192.0.2.1\n", "example.com."),
    "a second SOA": (
        "@ 60 IN SOA ns h 1 2 3 4 5\n@ 60 IN SOA ns h 2 2 3 4 5\n",
        "example.com.",
    ),
    "an SOA below the apex": ("www 60 IN SOA ns h 1 2 3 4 5\n", "example.com."),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(BAD_ZONES.values()), ids=list(BAD_ZONES))
def test_bad_zone_text_raises_value_error(case, request):
    """Unsupported types, bad addresses, CNAME conflicts, out-of-zone names, missing TTL or origin: ValueError."""
    text, origin = case
    what = f"Zone.from_text({short(text, 60)}, origin={origin!r}) ({request.node.callspec.id})"
    try:
        got = Zone.from_text(text, origin=origin)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(called(what, got, "ValueError"))


LIMITS = {
    "TTL 2**31 - 1 (the largest, RFC 2181 section 8)": (
        "www 2147483647 IN A 192.0.2.1\n",
        "www",
        "A",
    ),
    "TTL 0": ("www 0 IN A 192.0.2.1\n", "www", "A"),
    "MX preference 65535": ("@ 60 IN MX 65535 mail\n", "@", "MX"),
    "MX preference 0": ("@ 60 IN MX 0 mail\n", "@", "MX"),
    "a 63-octet label": (f"{'x' * 63} 60 IN A 192.0.2.1\n", "x" * 63, "A"),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(LIMITS.values()), ids=list(LIMITS))
def test_values_at_their_limits_are_accepted(case, request):
    """A TTL of 2**31 - 1, an MX preference of 65535, a 63-octet label: at the limit, accepted and served."""
    text, owner, rdtype = case
    name = "example.com." if owner == "@" else f"{owner}.example.com."
    with step(f"Zone.from_text({short(text, 60)}, origin='example.com.')"):
        the_zone = Zone.from_text(text, origin="example.com.")
    _, response, _ = ask(the_zone, name, rdtype)
    got = len(records(response.answer))
    assert got == 1, called(
        f"answer(<zone with {request.node.callspec.id}>, <query {short(name, 40)} {rdtype}>) "
        "-> answer records",
        got,
        1,
    )


OVER_LIMITS = {
    "TTL 2**31": "www 2147483648 IN A 192.0.2.1\n",
    "MX preference 65536": "@ 60 IN MX 65536 mail\n",
    "a 64-octet label": f"{'x' * 64} 60 IN A 192.0.2.1\n",
    "a TTL with a sign": "www +60 IN A 192.0.2.1\n",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("text", list(OVER_LIMITS.values()), ids=list(OVER_LIMITS))
def test_values_one_past_their_limits_are_rejected(text, request):
    """A TTL of 2**31, an MX preference of 65536, a 64-octet label: one past the limit, ValueError."""
    what = f"Zone.from_text({short(text, 60)}, origin='example.com.') ({request.node.callspec.id})"
    try:
        got = Zone.from_text(text, origin="example.com.")
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(called(what, got, "ValueError"))
