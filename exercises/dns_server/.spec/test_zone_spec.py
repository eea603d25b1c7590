"""Hidden specs for Zone.from_text: the master-file subset (RFC 1035 §5), read back through answer()."""

from __future__ import annotations

import dns.name
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
    "$TTL 2**31 - 1": ("$TTL 2147483647\nwww IN A 192.0.2.1\n", "www", "A"),
    "SOA serial 2**32 - 1 (32 bits, RFC 1035 section 3.3.13)": (
        "@ 60 IN SOA ns h 4294967295 7200 3600 86400 5\n",
        "@",
        "SOA",
    ),
    "SOA MINIMUM 2**32 - 1": ("@ 60 IN SOA ns h 1 7200 3600 86400 4294967295\n", "@", "SOA"),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", list(LIMITS.values()), ids=list(LIMITS))
def test_values_at_their_limits_are_accepted(case, request):
    """A TTL of 2**31 - 1, an MX preference of 65535, an SOA number of 2**32 - 1, a 63-octet label: at the limit, accepted and served."""
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
    "$TTL 2**31": "$TTL 2147483648\nwww IN A 192.0.2.1\n",
    "SOA serial 2**32": "@ 60 IN SOA ns h 4294967296 7200 3600 86400 5\n",
    "SOA MINIMUM 2**32": "@ 60 IN SOA ns h 1 7200 3600 86400 4294967296\n",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("text", list(OVER_LIMITS.values()), ids=list(OVER_LIMITS))
def test_values_one_past_their_limits_are_rejected(text, request):
    """A TTL of 2**31, an MX preference of 65536, an SOA number of 2**32, a 64-octet label: one past the limit, ValueError."""
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


# Digits that str.isdigit() accepts; int() reads all but the superscript as a number.
NON_ASCII_NUMBERS = {
    "a fullwidth TTL": "www ６０ IN A 192.0.2.1\n",
    "an Arabic-Indic $TTL": "$TTL ٣٠\nwww IN A 192.0.2.1\n",
    "a superscript TTL": "www ² IN A 192.0.2.1\n",
    "a Devanagari MX preference": "@ 60 IN MX १० mail\n",
    "a fullwidth SOA serial": "@ 60 IN SOA ns h １ 7200 3600 86400 5\n",
    "a fullwidth SOA minimum": "@ 60 IN SOA ns h 1 7200 3600 86400 ５\n",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("text", list(NON_ASCII_NUMBERS.values()), ids=list(NON_ASCII_NUMBERS))
def test_numbers_with_non_ascii_digits_are_rejected(text, request):
    """A TTL, MX preference or SOA number written with digits other than ASCII 0-9 (６, ٣, ², १) raises ValueError.

    str.isdigit() is true of all of them and int() reads most of them as numbers.
    """
    what = f"Zone.from_text({text!r}, origin='example.com.') ({request.node.callspec.id})"
    try:
        got = Zone.from_text(text, origin="example.com.")
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(
        called(what, got, "ValueError: a number in a zone file is ASCII digits 0-9 only")
    )


# Non-ASCII letters whose str.upper() is an ASCII mnemonic: dotless i (ı -> I), long s (ſ -> S).
NON_ASCII_MNEMONICS = {
    "class ın": "www 60 ın A 192.0.2.1\n",
    "type ſoa": "@ 60 IN ſoa ns h 1 7200 3600 86400 5\n",
    "directive $orıgin": "$orıgin example.com.\nwww 60 IN A 192.0.2.1\n",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("text", list(NON_ASCII_MNEMONICS.values()), ids=list(NON_ASCII_MNEMONICS))
def test_mnemonics_match_ignoring_ascii_case_only(text, request):
    """A type, class or directive name spelt with a non-ASCII letter whose upper case is ASCII (ı, ſ) raises ValueError."""
    what = f"Zone.from_text({text!r}, origin='example.com.') ({request.node.callspec.id})"
    try:
        got = Zone.from_text(text, origin="example.com.")
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(
        called(what, got, "ValueError: 'ı'.upper() is 'I', but ı is not a letter of IN")
    )


@pytest.mark.points(1)
def test_the_value_error_names_the_line_by_its_number():
    """The ValueError for a bad record says "line N", N counting every line of the text from 1 (comments and blank ones too)."""
    text = "; the zone\n\nwww 60 IN A 192.0.2.1\nbad 60 IN TXT hello\n"
    what = f"Zone.from_text({text!r}, origin='example.com.')"
    try:
        got = Zone.from_text(text, origin="example.com.")
    except ValueError as exc:
        message = str(exc)
        assert "line 4" in message and "line 3" not in message, called(
            what, f"ValueError({message!r})", "a ValueError whose message says 'line 4'"
        )
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(called(what, got, "ValueError naming line 4"))


@pytest.mark.points(1)
def test_only_spaces_and_tabs_separate_fields():
    """Only spaces and tabs separate the fields of a record (RFC 1035 §5.1): a no-break space (U+00A0) is part of the name.

    str.split() with no argument also splits at U+00A0, "\\x0c", "\\x85" and other Unicode blanks.
    """
    text = "$TTL 300\nwww\u00a060 IN A 192.0.2.1\n"
    with step(f"Zone.from_text({text!r}, origin='example.com.')"):
        the_zone = Zone.from_text(text, origin="example.com.")
    name = dns.name.Name([b"www\xa060", b"example", b"com", b""])
    _, response, _ = ask(the_zone, name, "A")
    got = [(ttl, rdata) for _, ttl, _, rdata in records(response.answer)]
    assert got == [(300, "192.0.2.1")], called(
        f"answer(<zone {text!r}>, <query b'www\\xa060'.example.com. A>) -> (TTL, address)",
        got,
        [(300, "192.0.2.1")],
    )


@pytest.mark.points(1)
def test_only_a_newline_ends_a_line():
    """A record line ends at "\\n" (or "\\r\\n") only: U+2028, which str.splitlines() breaks at, is not a line break (the line is then bad: ValueError)."""
    text = "www 60 IN A 192.0.2.1\u2028ftp 60 IN A 192.0.2.2\n"
    what = f"Zone.from_text({text!r}, origin='example.com.')"
    try:
        got = Zone.from_text(text, origin="example.com.")
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(f"Called {what}; raised {short(exc)}; expected ValueError") from None
    raise AssertionError(
        called(what, got, "ValueError: one line, whose A record has a bad address")
    )
