"""Client certificates (mutual TLS): verified against the configured CA, the subject passed on."""

from __future__ import annotations

import ssl

import pytest
from _helpers import connect, get_request, leaves, pki, stack, standard_config, status_of
from tls_termination import SUBJECT_HEADER

from grader.spectools import called, step


def client_with_cert(leaf) -> ssl.SSLContext:
    context = pki().client_context()
    leaf.leaf.configure_cert(context)
    return context


@pytest.mark.points(3)
async def test_verified_subject_reaches_the_backend() -> None:
    """A client certificate from the configured CA is verified, and the backend gets its subject as
    an RFC 4514 string in X-Client-Subject (a forged one from the client replaced)."""
    client = leaves()["client"]
    want = client.subject.rfc4514_string()
    config = standard_config(client_ca=pki().ca_file, require_client_cert=True)
    async with stack(config) as (backend, proxy, port):
        with step("GET / over TLS with a client certificate"):
            tls = await connect(port, "a.test", client_with_cert(client))
            answer = await tls.request(
                get_request(extra=f"{SUBJECT_HEADER}: CN=root\r\n"),
                "GET / with a client certificate",
            )
            tls.close()
        recorded = [h.subject for h in proxy.handshakes]
    got = (
        status_of(answer),
        backend.header(SUBJECT_HEADER) if backend.requests else None,
        recorded,
    )
    assert got == (200, [want], [want]), called(
        "GET / with alice's client certificate (status, X-Client-Subject at the backend, handshakes' subject)",
        got,
        (200, [want], [want]),
    )


async def test_optional_client_certificate() -> None:
    """With client certificates optional, a client without one gets through and the backend sees no
    X-Client-Subject at all, even a forged one."""
    config = standard_config(client_ca=pki().ca_file, require_client_cert=False)
    async with stack(config) as (backend, _, port):
        with step("GET / over TLS without a client certificate (optional)"):
            tls = await connect(port, "a.test")
            answer = await tls.request(
                get_request(extra=f"{SUBJECT_HEADER}: CN=root\r\n"),
                "GET / without a client certificate",
            )
            tls.close()
    got = (status_of(answer), backend.header(SUBJECT_HEADER) if backend.requests else None)
    assert got == (200, []), called(
        "GET / without a client certificate, forged X-Client-Subject (status, X-Client-Subject at the backend)",
        got,
        (200, []),
    )


async def _refused(context: ssl.SSLContext, what: str) -> tuple[str, int]:
    config = standard_config(client_ca=pki().ca_file, require_client_cert=True)
    async with stack(config) as (backend, _, port):
        try:
            tls = await connect(port, "a.test", context)
            answer = await tls.request(get_request(), what)
            tls.close()
        except (ssl.SSLError, ConnectionError) as err:
            outcome = f"refused ({type(err).__name__})"
        else:
            outcome = f"answered {answer[:40]!r}" if answer else "refused (closed)"
    return outcome, len(backend.requests)


@pytest.mark.points(2)
async def test_required_certificate_missing_is_refused() -> None:
    """With client certificates required, a client without one is refused in the handshake and
    nothing reaches the backend (RFC 8446 §4.4.2.4)."""
    outcome, requests = await _refused(pki().client_context(), "GET / without a client certificate")
    assert outcome.startswith("refused") and requests == 0, called(
        "GET / without a client certificate (required)", (outcome, requests), ("refused", 0)
    )


async def test_certificate_from_another_ca_is_refused() -> None:
    """A client certificate issued by a CA the proxy does not trust is refused."""
    stranger = pki().issue("mallory.client.test", common_name="mallory", ca=pki().stranger)
    outcome, requests = await _refused(
        client_with_cert(stranger), "GET / with a stranger's certificate"
    )
    assert outcome.startswith("refused") and requests == 0, called(
        "GET / with a certificate from an untrusted CA", (outcome, requests), ("refused", 0)
    )
