"""The destination policy, sans-IO: Policy.allowed(port, address, tunnel=...) for the address
classes an SSRF reaches for. Expected values follow the IANA special-purpose address registries
(RFC 6890 and the RFCs each block cites); a public address is one of them that is globally
reachable unicast."""

from __future__ import annotations

import ipaddress

import pytest
from forward_proxy import Policy
from hypothesis import example, given
from hypothesis import strategies as st

from grader.spectools import called, step

REFUSED = [
    ("10.0.0.1", "rfc1918-10/8"),
    ("10.255.255.255", "rfc1918-10/8-last"),
    ("172.16.0.0", "rfc1918-172.16/12-first"),
    ("172.31.255.255", "rfc1918-172.16/12-last"),
    ("192.168.1.1", "rfc1918-192.168/16"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback-127/8"),
    ("169.254.169.254", "cloud-metadata-link-local"),
    ("169.254.0.1", "link-local-v4"),
    ("0.0.0.0", "unspecified-v4"),
    ("100.64.0.1", "shared-cgnat-100.64/10"),
    ("224.0.0.1", "multicast-v4"),
    ("255.255.255.255", "broadcast"),
    ("::1", "loopback-v6"),
    ("::", "unspecified-v6"),
    ("fc00::1", "unique-local-fc00/7"),
    ("fd12:3456::1", "unique-local-fd"),
    ("fe80::1", "link-local-v6"),
    ("ff02::1", "multicast-v6"),
    ("::ffff:127.0.0.1", "v4-mapped-loopback"),
    ("::ffff:10.0.0.1", "v4-mapped-private"),
    ("::ffff:169.254.169.254", "v4-mapped-metadata"),
    ("not-an-address", "a-name-not-an-address"),
    ("", "empty"),
]
ALLOWED = [
    ("93.184.215.14", "public-v4"),
    ("8.8.8.8", "public-v4-dns"),
    ("172.15.255.255", "just-below-172.16/12"),
    ("172.32.0.0", "just-above-172.16/12"),
    ("9.255.255.255", "just-below-10/8"),
    ("11.0.0.0", "just-above-10/8"),
    ("100.63.255.255", "just-below-100.64/10"),
    ("100.128.0.0", "just-above-100.64/10"),
    ("169.253.255.255", "just-below-169.254/16"),
    ("2606:4700:4700::1111", "public-v6"),
    ("::ffff:8.8.8.8", "v4-mapped-public"),
]


def check(policy: Policy, port: int, address: str, tunnel: bool = False) -> bool:
    call = f"{policy!r}.allowed({port}, {address!r}, tunnel={tunnel})"
    with step(call):
        return policy.allowed(port, address, tunnel=tunnel)


@pytest.mark.points(2)
@pytest.mark.parametrize(("address", "why"), REFUSED, ids=[why for _, why in REFUSED])
def test_internal_destinations_refused(address: str, why: str) -> None:
    """A private, loopback, link-local, shared, multicast or unspecified address is refused, on
    an allowed port, for forwarding and for tunnels (OWASP SSRF)."""
    policy = Policy(ports=frozenset({80}), connect_ports=frozenset({443}))
    for port, tunnel in ((80, False), (443, True)):
        got = check(policy, port, address, tunnel)
        assert got is False, called(
            f"Policy().allowed({port}, {address!r}, tunnel={tunnel}) [{why}]", got, False
        )


@pytest.mark.parametrize(("address", "why"), ALLOWED, ids=[why for _, why in ALLOWED])
def test_public_destinations_allowed(address: str, why: str) -> None:
    """A public unicast address is allowed on an allowed port, including the first address past
    each internal block."""
    policy = Policy()
    for port, tunnel in ((80, False), (443, True)):
        got = check(policy, port, address, tunnel)
        assert got is True, called(
            f"Policy().allowed({port}, {address!r}, tunnel={tunnel}) [{why}]", got, True
        )


def test_default_ports() -> None:
    """By default forwarding goes to port 80 only and CONNECT to port 443 only (RFC 9110 §9.3.6:
    restrict CONNECT to known ports)."""
    policy = Policy()
    got = {
        (port, tunnel): check(policy, port, "93.184.215.14", tunnel)
        for port in (22, 25, 80, 443, 8080)
        for tunnel in (False, True)
    }
    want = {(port, tunnel): (port == 443 if tunnel else port == 80) for port, tunnel in got}
    assert got == want, called(
        "Policy().allowed(port, public address, tunnel) for ports 22, 25, 80, 443, 8080", got, want
    )


def test_configured_ports() -> None:
    """The port lists are the ones configured: one for forwarding, one for tunnels, never mixed."""
    policy = Policy(ports=frozenset({8080}), connect_ports=frozenset({8443, 5222}))
    got = {
        (port, tunnel): check(policy, port, "93.184.215.14", tunnel)
        for port in (80, 443, 5222, 8080, 8443)
        for tunnel in (False, True)
    }
    want = {
        (port, tunnel): (port in (8443, 5222) if tunnel else port == 8080) for port, tunnel in got
    }
    assert got == want, called(
        "Policy(ports={8080}, connect_ports={8443, 5222}).allowed(...)", got, want
    )


def test_allow_networks_open_only_their_block() -> None:
    """allow_networks admits internal addresses inside the configured blocks, and only those;
    an IPv4-mapped IPv6 address counts as the IPv4 address it carries."""
    policy = Policy(ports=frozenset({80}), allow_networks=("127.0.0.1/32", "10.1.0.0/16"))
    cases = {
        "127.0.0.1": True,
        "::ffff:127.0.0.1": True,
        "127.0.0.2": False,
        "10.1.200.3": True,
        "10.2.0.1": False,
        "192.168.0.1": False,
        "::1": False,
        "8.8.8.8": True,
    }
    got = {address: check(policy, 80, address) for address in cases}
    assert got == cases, called(
        "Policy(allow_networks=('127.0.0.1/32', '10.1.0.0/16')).allowed(80, ...)", got, cases
    )
    port_still_counts = check(policy, 81, "127.0.0.1")
    assert port_still_counts is False, called(
        "the same policy .allowed(81, '127.0.0.1')", port_still_counts, False
    )


BLOCKS = {
    "10.0.0.0/8": False,
    "172.16.0.0/12": False,
    "192.168.0.0/16": False,
    "127.0.0.0/8": False,
    "169.254.0.0/16": False,
    "100.64.0.0/10": False,
    "fc00::/7": False,
    "fe80::/10": False,
    "8.0.0.0/8": True,
    "1.0.0.0/8": True,
    "2001:4860::/32": True,
}


@given(
    block=st.sampled_from(sorted(BLOCKS)),
    offset=st.integers(min_value=0, max_value=2**128),
    mapped=st.booleans(),
)
@example(block="172.16.0.0/12", offset=2**20 - 1, mapped=False)
@example(block="169.254.0.0/16", offset=0, mapped=True)
@example(block="10.0.0.0/8", offset=0, mapped=True)
def test_every_address_of_a_block(block: str, offset: int, mapped: bool) -> None:
    """Every address of an internal block is refused and every address of a public block allowed,
    also written as an IPv4-mapped IPv6 address."""
    network = ipaddress.ip_network(block)
    address = network[offset % network.num_addresses]
    text = str(address)
    if mapped and address.version == 4:
        text = f"::ffff:{address}"
    got = check(Policy(), 80, text)
    assert got is BLOCKS[block], called(
        f"Policy().allowed(80, {text!r}) [in {block}]", got, BLOCKS[block]
    )
