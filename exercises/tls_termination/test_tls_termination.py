"""Visible examples for the tls_termination kata. Run them with `nox -s try -- tls_termination`.

They use the standard library plus trustme (to make a CA and certificates on the fly). The
hidden specs go much further: httpx clients, wildcards, old TLS versions, ALPN, mTLS, forged
forwarding fields, reload under open connections, RFC 4514 subjects against cryptography.
"""

from __future__ import annotations

import asyncio
import ssl

import trustme

try:
    from tls_termination import Certificate, TLSConfig, TLSTerminator, pick_name, rewrite_headers
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import Certificate, TLSConfig, TLSTerminator, pick_name and rewrite_headers from tls_termination.py"
    ) from err


def test_pick_name_exact_then_wildcard():
    names = {"a.test": 1, "*.w.test": 2}
    got = [pick_name(n, names) for n in ("a.test", "A.Test", "x.w.test", "y.x.w.test", None)]
    assert got == ["a.test", "a.test", "*.w.test", None, None], (
        f"Called pick_name(...) for five names; returned {got!r}"
    )


def test_client_forwarding_fields_are_replaced():
    got = rewrite_headers([("Host", "a.test"), ("X-Forwarded-For", "10.0.0.1")], "192.0.2.7", None)
    want = [
        ("Host", "a.test"),
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "for=192.0.2.7;proto=https"),
        ("Connection", "close"),
    ]
    assert got == want, f"Called rewrite_headers(...); returned {got!r}; expected {want!r}"


def write(leaf: trustme.LeafCert, folder) -> Certificate:
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(cert_file), append=True)
    leaf.private_key_pem.write_to_path(str(key_file))
    return Certificate(str(cert_file), str(key_file))


async def test_https_request_reaches_the_backend_in_plaintext(tmp_path):
    seen = []

    async def backend(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(backend, "127.0.0.1", 0)
    backend_port = server.sockets[0].getsockname()[1]
    ca = trustme.CA()
    (tmp_path / "a").mkdir()
    config = TLSConfig(default=write(ca.issue_cert("a.test"), tmp_path / "a"))
    proxy = TLSTerminator(config, ("127.0.0.1", backend_port))
    _, port = await proxy.start("127.0.0.1", 0)
    try:
        client = ssl.create_default_context()
        ca.configure_trust(
            client
        )  # the client verifies the proxy's certificate: never verify=False
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="a.test"
        )
        writer.write(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(-1), 10)
        writer.close()
    finally:
        await proxy.close()
        server.close()
    assert answer.startswith(b"HTTP/1.1 200"), f"the proxy answered {answer!r}"
    assert answer.endswith(b"\r\n\r\nhi"), f"the proxy answered {answer!r}"
    request = seen[0].decode()
    assert request.startswith("GET /x HTTP/1.1\r\n"), f"the backend got {request!r}"
    assert "X-Forwarded-Proto: https\r\n" in request, f"the backend got {request!r}"
    assert "X-Forwarded-For: 127.0.0.1\r\n" in request, f"the backend got {request!r}"
