"""The pure rules, sans I/O: which certificate serves a name, the RFC 4514 subject string, the
Forwarded node, and the request fields the backend gets."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st
from tls_termination import SUBJECT_HEADER, forwarded_node, pick_name, rewrite_headers, rfc4514

from grader.spectools import called, step

NAMES = {"a.test": 1, "B.test": 2, "*.w.test": 3, "w.test": 4, "*.V.test": 5}

PICKS = [
    ("exact", "a.test", "a.test"),
    ("case-of-the-client", "A.TEST", "a.test"),
    ("case-of-the-config", "b.test", "B.test"),
    ("wildcard-one-label", "x.w.test", "*.w.test"),
    ("wildcard-upper-case", "X.W.Test", "*.w.test"),
    ("wildcard-case-of-the-config", "x.v.test", "*.V.test"),
    ("wildcard-empty-label", ".w.test", None),
    ("exact-beats-wildcard", "w.test", "w.test"),
    ("wildcard-not-two-labels", "y.x.w.test", None),
    ("wildcard-not-apex", "v.test", None),
    ("wildcard-not-suffix-only", "xw.test", None),
    ("unknown-name", "c.test", None),
    ("single-label", "localhost", None),
    ("wildcard-itself", "*.w.test", "*.w.test"),
    ("no-sni", None, None),
    ("empty", "", None),
]


@pytest.mark.parametrize(
    ("server_name", "expected"), [case[1:] for case in PICKS], ids=[case[0] for case in PICKS]
)
def test_pick_name(server_name: str | None, expected: str | None) -> None:
    """pick_name() chooses the exact name case-insensitively, else a wildcard covering exactly one
    label (RFC 9525 §6.3), else None for the default certificate."""
    with step(f"pick_name({server_name!r}, {list(NAMES)})"):
        got = pick_name(server_name, NAMES)
    assert got == expected, called(f"pick_name({server_name!r}, {list(NAMES)})", got, expected)


# getpeercert() names the attributes with OpenSSL's long names.
LONG_NAMES = {
    NameOID.COMMON_NAME: "commonName",
    NameOID.LOCALITY_NAME: "localityName",
    NameOID.STATE_OR_PROVINCE_NAME: "stateOrProvinceName",
    NameOID.ORGANIZATION_NAME: "organizationName",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizationalUnitName",
    NameOID.STREET_ADDRESS: "streetAddress",
    NameOID.DOMAIN_COMPONENT: "domainComponent",
    NameOID.USER_ID: "userId",
}


def as_peercert(name: x509.Name) -> tuple:
    """The subject of ``name`` as SSLObject.getpeercert()['subject'] gives it."""
    return tuple(tuple((LONG_NAMES[a.oid], a.value) for a in rdn) for rdn in name.rdns)


PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12)
ATTRIBUTE = st.builds(
    x509.NameAttribute,
    st.sampled_from(sorted(LONG_NAMES, key=lambda oid: oid.dotted_string)),
    PRINTABLE,
)
SINGLE_NAMES = st.lists(ATTRIBUTE, min_size=1, max_size=5).map(
    lambda attrs: x509.Name([x509.RelativeDistinguishedName([a]) for a in attrs])
)


def cn(*values: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, v) for v in values])


@given(SINGLE_NAMES)
@example(cn("alice"))
@example(
    x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "bob"),
        ]
    )
)
@example(cn("#hash first"))
@example(cn(" space first"))
@example(cn("space last "))
@example(cn(" "))
@example(cn('a,b+c"d\\e<f>g;h'))
@example(cn("a=b#c"))
def test_rfc4514_matches_cryptography(name: x509.Name) -> None:
    """rfc4514() writes a subject as RFC 4514 does: the last RDN first, "," between RDNs, short type
    names (CN, O, OU...), and , + " \\ < > ; a leading space or # and a trailing space escaped (RFC 4514 §2)."""
    subject = as_peercert(name)
    want = name.rfc4514_string()
    with step(f"rfc4514({subject!r})"):
        got = rfc4514(subject)
    assert got == want, called(f"rfc4514({subject!r})", got, want)


def test_rfc4514_multi_valued_rdn() -> None:
    """An RDN with several attributes joins them with "+" (RFC 4514 §2.2), and the whole string
    parses back to the same name."""
    rdn = x509.RelativeDistinguishedName(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.USER_ID, "a1"),
        ]
    )
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test")]),
            rdn,
        ]
    )
    subject = as_peercert(name)
    with step(f"rfc4514({subject!r})"):
        got = rfc4514(subject)
    ok = (
        got.count("+") == 1
        and got.endswith(",DC=test")
        and x509.Name.from_rfc4514_string(got) == name
    )
    assert ok, called(
        f"rfc4514({subject!r})", got, "CN=alice+UID=a1,DC=test (either order inside the RDN)"
    )


@pytest.mark.parametrize(
    "value",
    ["line\r\nX-Admin: 1", "tab\there", "nul\x00", "é-accent", "del\x7f"],
    ids=["crlf", "tab", "nul", "non-ascii", "del"],
)
def test_rfc4514_escapes_what_a_header_cannot_carry(value: str) -> None:
    """Control and non-ASCII characters are written as \\XX hex pairs of their UTF-8 bytes (RFC 4514
    §2.4), so the string is printable ASCII (safe in a header) and still parses back to the same name."""
    name = cn(value)
    subject = as_peercert(name)
    with step(f"rfc4514({subject!r})"):
        got = rfc4514(subject)
    printable = all(" " <= ch <= "~" for ch in got)
    try:
        same = x509.Name.from_rfc4514_string(got) == name
    except ValueError:
        same = False
    assert printable and same, called(
        f"rfc4514({subject!r})", got, "printable ASCII that parses back to the same name"
    )


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("192.0.2.60", "192.0.2.60"),
        ("::1", '"[::1]"'),
        ("2001:db8:cafe::17", '"[2001:db8:cafe::17]"'),
    ],
    ids=["ipv4-loopback", "ipv4", "ipv6-loopback", "ipv6"],
)
def test_forwarded_node(ip: str, expected: str) -> None:
    """A Forwarded node is an IPv4 address as it is, an IPv6 address in brackets inside a quoted
    string (RFC 7239 §6, §4)."""
    with step(f"forwarded_node({ip!r})"):
        got = forwarded_node(ip)
    assert got == expected, called(f"forwarded_node({ip!r})", got, expected)


CLIENT_LIES = [
    ("Host", "a.test"),
    ("X-Forwarded-For", "10.0.0.1"),
    ("x-forwarded-proto", "http"),
    ("X-FORWARDED-FOR", "10.9.9.9"),
    ("Forwarded", "for=10.0.0.1;proto=http"),
    ("X-Forwarded-Host", "admin.internal"),
    (SUBJECT_HEADER.lower(), "CN=root"),
    ("Accept", "*/*"),
    ("Connection", "keep-alive"),
    ("Keep-Alive", "timeout=5"),
    ("Upgrade", "websocket"),
    ("X-Trace", "1"),
]


def test_rewrite_strips_and_sets() -> None:
    """rewrite_headers() removes every client-supplied X-Forwarded-*, Forwarded and X-Client-Subject
    (any case) and the hop-by-hop fields, keeps the rest in order, and appends its own values."""
    with step("rewrite_headers(<client headers>, '192.0.2.7', 'CN=alice')"):
        got = rewrite_headers(CLIENT_LIES, "192.0.2.7", "CN=alice")
    want = [
        ("Host", "a.test"),
        ("Accept", "*/*"),
        ("X-Trace", "1"),
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "for=192.0.2.7;proto=https"),
        (SUBJECT_HEADER, "CN=alice"),
        ("Connection", "close"),
    ]
    assert got == want, called(
        f"rewrite_headers({CLIENT_LIES!r}, '192.0.2.7', 'CN=alice')", got, want
    )


def test_rewrite_removes_the_fields_connection_names() -> None:
    """rewrite_headers() also removes every field the client's Connection fields name (any case,
    comma-separated, several Connection lines), since they describe the client's connection
    (RFC 9110 §7.6.1)."""
    headers = [
        ("Host", "a.test"),
        ("Connection", "keep-alive , X-Hop"),
        ("x-hop", "1"),
        ("X-Keep", "k"),
        ("connection", "Secret-Token"),
        ("SECRET-TOKEN", "t"),
    ]
    with step("rewrite_headers([...], '192.0.2.7', None)"):
        got = rewrite_headers(headers, "192.0.2.7", None)
    want = [
        ("Host", "a.test"),
        ("X-Keep", "k"),
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "for=192.0.2.7;proto=https"),
        ("Connection", "close"),
    ]
    assert got == want, called(f"rewrite_headers({headers!r}, '192.0.2.7', None)", got, want)


def test_rewrite_without_subject() -> None:
    """Without a verified client certificate no X-Client-Subject is sent, even if the client sent one;
    an IPv6 client is quoted in Forwarded (RFC 7239 §6)."""
    headers = [("Host", "a.test"), (SUBJECT_HEADER, "CN=admin")]
    with step("rewrite_headers([...], '2001:db8::1', None)"):
        got = rewrite_headers(headers, "2001:db8::1", None)
    want = [
        ("Host", "a.test"),
        ("X-Forwarded-For", "2001:db8::1"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", 'for="[2001:db8::1]";proto=https'),
        ("Connection", "close"),
    ]
    assert got == want, called(f"rewrite_headers({headers!r}, '2001:db8::1', None)", got, want)
