"""Certificates chosen per SNI name (RFC 6066 §3), verified by real clients: the standard
library's ssl and httpx."""

from __future__ import annotations

import ssl

import httpx
import pytest
from _helpers import connect, get_request, leaves, pki, stack

from grader.spectools import LOCALHOST, bounded, called, step


@pytest.mark.points(3)
async def test_each_name_gets_its_certificate() -> None:
    """Each SNI name is served its own certificate (the spec's client verifies it), a wildcard
    covers one label, and a client without SNI gets the default certificate (RFC 6066 §3)."""
    ls = leaves()
    cases = [
        ("a.test", "a.test"),
        ("b.test", "b.test"),
        ("x.w.test", "*.w.test"),
        (None, "default"),
    ]
    async with stack() as (_, proxy, port):
        for server_name, key in cases:
            with step(
                f"a TLS handshake with SNI {server_name!r} (verifying the served certificate)"
            ):
                tls = await connect(port, server_name)
            got = tls.serial
            tls.close()
            assert got == ls[key].serial, called(
                f"handshake with SNI {server_name!r} (serial of the served certificate)",
                got,
                f"the serial of the {key} certificate",
            )


@pytest.mark.points(2)
async def test_httpx_verifies_per_name() -> None:
    """httpx, verifying certificates as a browser does, gets 200 through the proxy for a.test and
    b.test, and the backend sees each request's Host."""
    async with stack() as (backend, _, port):
        got = []
        async with httpx.AsyncClient(
            verify=pki().client_context(), trust_env=False, timeout=15
        ) as client:
            for name in ("a.test", "b.test"):
                with step(f"httpx GET https://{name}/hello through the proxy"):
                    answer = await bounded(
                        client.get(
                            f"https://{LOCALHOST}:{port}/hello",
                            headers={"Host": name},
                            extensions={"sni_hostname": name},
                        ),
                        20,
                        f"httpx GET https://{name}/hello",
                    )
                got.append((answer.status_code, answer.content, backend.header("host")))
    want = [(200, b"backend says hi", ["a.test"]), (200, b"backend says hi", ["b.test"])]
    assert got == want, called(
        "httpx GET https://a.test/hello then https://b.test/hello (status, body, Host at the backend)",
        got,
        want,
    )


async def test_unknown_name_is_refused_by_the_client() -> None:
    """A client asking for a name the proxy has no certificate for gets the default certificate,
    so a verifying client refuses it (the hostname does not match)."""
    ls = leaves()
    async with stack() as (_, proxy, port):
        try:
            tls = await connect(port, "c.test")
        except ssl.SSLCertVerificationError as err:
            got = f"SSLCertVerificationError ({err.verify_message})"
        else:
            got = f"a verified connection, serial {tls.serial}"
            tls.close()
        context = pki().client_context()
        context.check_hostname = False  # the chain is still verified; only the name is not
        with step("a TLS handshake with SNI 'c.test', not checking the name"):
            tls = await connect(port, "c.test", context)
        served = tls.serial
        tls.close()
    assert got.startswith("SSLCertVerificationError"), called(
        "a TLS handshake with SNI 'c.test'",
        got,
        "the client refuses the certificate: it does not name c.test",
    )
    assert served == ls["default"].serial, called(
        "a handshake with SNI 'c.test' (serial of the served certificate)",
        served,
        "the serial of the default certificate",
    )


@pytest.mark.points(2)
async def test_handshakes_are_recorded() -> None:
    """proxy.handshakes records, per completed handshake, the SNI name, the certificate key chosen
    (None for the default), the ALPN protocol and the TLS version."""
    async with stack() as (_, proxy, port):
        for server_name in ("X.W.Test", None):
            context = pki().client_context()
            context.set_alpn_protocols(["http/1.1"])
            if server_name is None:
                context.check_hostname = False
            with step(f"GET / over a TLS connection with SNI {server_name!r}"):
                tls = await connect(port, server_name, context)
                # the answer proves the proxy's side of the handshake is done and recorded
                await tls.request(get_request(), f"GET / with SNI {server_name!r}")
            tls.close()
        with step("proxy.handshakes"):
            got = [(h.server_name, h.certificate, h.alpn, h.version) for h in proxy.handshakes]
    want = [("X.W.Test", "*.w.test", "http/1.1", "TLSv1.3"), (None, None, "http/1.1", "TLSv1.3")]
    assert got == want, called(
        "proxy.handshakes after handshakes with SNI 'X.W.Test' and none", got, want
    )
