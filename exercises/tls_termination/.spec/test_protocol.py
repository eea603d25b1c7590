"""TLS versions (RFC 8996: no TLS 1.0 or 1.1) and ALPN (RFC 7301)."""

from __future__ import annotations

import ssl

import pytest
from _helpers import connect, leaves, legacy_client, pki, stack, standard_config
from tls_termination import TLSTerminator

from grader.spectools import called, step


def test_contexts_require_tls_1_2() -> None:
    """Every server context the proxy builds refuses anything older than TLS 1.2 (RFC 8996 §4, §5)."""
    config = standard_config()
    with step("TLSTerminator.server_context(leaf, config)"):
        context = TLSTerminator.server_context(leaves()["a.test"].cert, config)
    got = context.minimum_version
    assert isinstance(context, ssl.SSLContext) and got >= ssl.TLSVersion.TLSv1_2, called(
        "TLSTerminator.server_context(...).minimum_version", got, ">= TLSVersion.TLSv1_2"
    )


@pytest.mark.points(2)
async def test_old_protocol_refused() -> None:
    """A client that speaks at most TLS 1.1 is refused (RFC 8996 §4, §5), while the same client with
    TLS 1.2 allowed gets through: the version, nothing else, is what the proxy refuses."""
    results = {}
    async with stack() as (_, proxy, port):
        for label, maximum in (
            ("TLS 1.1", ssl.TLSVersion.TLSv1_1),
            ("TLS 1.2", ssl.TLSVersion.TLSv1_2),
        ):
            try:
                tls = await connect(port, "a.test", legacy_client(maximum))
            except (ssl.SSLError, ConnectionError) as err:
                results[label] = f"refused ({type(err).__name__})"
            else:
                results[label] = tls.ssl_object.version()
                tls.close()
    want = {"TLS 1.1": "refused", "TLS 1.2": "TLSv1.2"}
    got = {k: v.split(" ")[0] if v else v for k, v in results.items()}
    assert got == want, called(
        "handshakes from a client capped at TLS 1.1, then at TLS 1.2", results, want
    )


@pytest.mark.points(2)
async def test_alpn_http11_negotiated() -> None:
    """A client offering h2 and http/1.1 agrees on http/1.1: the proxy speaks HTTP/1.1 only and must
    not select a protocol it cannot serve (RFC 7301 §3.2)."""
    async with stack() as (_, proxy, port):
        context = pki().client_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        with step("a TLS handshake offering ALPN ['h2', 'http/1.1']"):
            tls = await connect(port, "a.test", context)
        got = tls.ssl_object.selected_alpn_protocol()
        tls.close()
    assert got == "http/1.1", called(
        "a handshake offering ALPN ['h2', 'http/1.1'] (the protocol selected)", got, "http/1.1"
    )
