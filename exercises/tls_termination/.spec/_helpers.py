"""Helpers for the tls_termination specs: a trustme PKI written to PEM files, a backend on
127.0.0.1:0 that h11 parses and that records every request (grader.spectools.H11Origin), the
learner's proxy on port 0, and TLS clients that report which certificate they were served.

Handshakes are CPU-heavy on a loaded runner: each spec makes only a few, and the PKI is made
once per process (certificates are immutable, so sharing them keeps specs independent).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import tempfile
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from tls_termination import Certificate, TLSConfig, TLSTerminator

from grader.spectools import LOCALHOST, H11Origin, answer_with, bounded, running_h11_origin, step


@dataclass(frozen=True)
class Leaf:
    """A leaf certificate on disk, with its serial number and subject."""

    cert: Certificate
    serial: int
    subject: x509.Name
    leaf: trustme.LeafCert


class Pki:
    """One trustme CA (and a stranger CA) writing PEM files into a private folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tls_kata_"))
        self.ca = trustme.CA()
        self.stranger = trustme.CA()
        self.ca_file = str(self.folder / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._count = 0

    def issue(
        self, *names: str, common_name: str | None = None, ca: trustme.CA | None = None
    ) -> Leaf:
        leaf = (ca or self.ca).issue_cert(*names, common_name=common_name)
        self._count += 1
        cert_file = self.folder / f"leaf{self._count}.pem"
        key_file = self.folder / f"leaf{self._count}.key"
        for blob in leaf.cert_chain_pems:
            blob.write_to_path(str(cert_file), append=True)
        leaf.private_key_pem.write_to_path(str(key_file))
        parsed = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
        return Leaf(
            Certificate(str(cert_file), str(key_file)), parsed.serial_number, parsed.subject, leaf
        )

    def client_context(self, *, ca: trustme.CA | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        (ca or self.ca).configure_trust(context)
        return context


@functools.cache
def pki() -> Pki:
    return Pki()


@functools.cache
def leaves() -> dict[str, Leaf]:
    """The standard set: a default certificate and certificates for a.test, b.test, *.w.test."""
    p = pki()
    return {
        "default": p.issue("default.test"),
        "a.test": p.issue("a.test"),
        "b.test": p.issue("b.test"),
        "*.w.test": p.issue("*.w.test"),
        "client": p.issue("alice.client.test", common_name="alice"),
    }


def standard_config(**options: object) -> TLSConfig:
    ls = leaves()
    names = {name: ls[name].cert for name in ("a.test", "b.test", "*.w.test")}
    return TLSConfig(default=ls["default"].cert, names=names, **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_proxy(
    config: TLSConfig, backend_port: int
) -> AsyncIterator[tuple[TLSTerminator, int]]:
    """The learner's proxy on 127.0.0.1:0 in front of the backend on ``backend_port``."""
    with step("TLSTerminator(config, ('127.0.0.1', backend_port))"):
        proxy = TLSTerminator(config, (LOCALHOST, backend_port))
    with step("await proxy.start('127.0.0.1', 0)"):
        _, port = await bounded(proxy.start(LOCALHOST, 0), 10, "proxy.start()")
    try:
        yield proxy, port
    finally:
        with step("await proxy.close()"):
            await bounded(proxy.close(), 10, "proxy.close()")


@contextlib.asynccontextmanager
async def stack(
    config: TLSConfig | None = None, content: bytes = b"backend says hi"
) -> AsyncIterator[tuple[H11Origin, TLSTerminator, int]]:
    """The backend (grader.spectools.H11Origin: h11 reads what the proxy sends, it answers 200
    with ``content``) and the learner's proxy in front of it."""
    async with (
        running_h11_origin(answer_with(content)) as backend,
        running_proxy(config or standard_config(), backend.port) as (proxy, port),
    ):
        yield backend, proxy, port


@dataclass
class Tls:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def ssl_object(self) -> ssl.SSLObject:
        return self.writer.get_extra_info("ssl_object")

    @property
    def serial(self) -> int:
        der = self.ssl_object.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number

    async def request(self, raw: bytes, what: str) -> bytes:
        """Send ``raw``, read the answer until the proxy closes."""
        self.writer.write(raw)
        await self.writer.drain()
        return await bounded(read_all(self.reader), 15, f"the proxy's answer to {what}")

    def close(self) -> None:
        self.writer.close()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            chunks.append(data)
    return b"".join(chunks)


async def connect(port: int, server_name: str | None, context: ssl.SSLContext | None = None) -> Tls:
    """A TLS connection to the proxy; ``server_name`` is sent as SNI and verified (None: no SNI,
    only the chain is verified). Raises what the handshake raises."""
    if context is None:
        context = pki().client_context()
        if server_name is None:
            context.check_hostname = False
    reader, writer = await bounded(
        asyncio.open_connection(
            LOCALHOST, port, ssl=context, server_hostname=server_name, ssl_handshake_timeout=15
        ),
        20,
        f"the TLS handshake for {server_name!r}",
    )
    return Tls(reader, writer)


def get_request(host: str = "a.test", path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def status_of(raw: bytes) -> int:
    parts = raw.split(b"\r\n", 1)[0].split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def legacy_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers TLS 1.0 up to ``maximum``, at OpenSSL security level 0 (below it this
    OpenSSL refuses to speak TLS 1.0/1.1 at all)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki().ca.configure_trust(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context
