"""A TLS-terminating reverse proxy on asyncio and the standard library's ``ssl``.

Read the lesson (README.md) first. Standard library only. Keep the rules pure (``pick_name``,
``rfc4514``, ``forwarded_node``, ``rewrite_headers``) and the I/O in ``TLSTerminator``.

Clients speak HTTPS to the proxy; the proxy decrypts, rewrites the request head (who the
client is, that it came over TLS, which client certificate it showed) and forwards plaintext
HTTP/1.1 to one backend.

Theory of operation:

* One listening ``SSLContext`` (the *front* context) owns the ``sni_callback``. When a
  ClientHello arrives, the callback picks the certificate for the name the client asked for
  and switches the connection to that name's context (``ssl_object.context = ...``). Every
  context, the default one included, comes from the current *generation*: a dict built in
  full by ``_build`` and swapped in one assignment by ``reload``. A connection that finished
  its handshake holds its own ``SSLObject`` and keeps its certificate whatever happens to
  the generation after that.
* The pure pieces (``pick_name``, ``rfc4514``, ``forwarded_node``, ``rewrite_headers``) carry
  the rules; ``TLSTerminator`` is the I/O around them.
* One request per client connection: the proxy answers with ``Connection: close``. That keeps
  the HTTP side small, so the kata stays about TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_HEAD = 16 * 1024  # a request head longer than this: 431
CHUNK = 64 * 1024  # the most a copy loop reads at once
SUBJECT_HEADER = "X-Client-Subject"

# Fields only this proxy may set: a client's own copies are lies and are removed.
TRUST_FIELDS = frozenset(
    {
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        SUBJECT_HEADER.lower(),
    }
)
# Fields that describe one connection (RFC 9110 §7.6.1); the proxy sets its own Connection.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})

# RFC 4514 §3: the attribute type names a string representation uses. The keys are the names
# OpenSSL (and so ``getpeercert()``) gives the same attributes.
RFC4514_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate chain (leaf first) and its private key, as files."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class TLSConfig:
    """What the proxy serves.

    ``default``: the certificate for clients without SNI or with a name not in ``names``.
    ``names``: SNI name -> certificate; a key ``*.example.test`` is a wildcard for one label.
    ``alpn``: the protocols the proxy may agree on (RFC 7301), in its order of preference.
    ``client_ca``: a PEM file of the CA(s) whose client certificates are accepted; None: no mTLS.
    ``require_client_cert``: with ``client_ca``, refuse clients without a certificate.
    """

    default: Certificate
    names: Mapping[str, Certificate] = field(default_factory=dict)
    alpn: tuple[str, ...] = ("http/1.1",)
    client_ca: str | None = None
    require_client_cert: bool = False


@dataclass(frozen=True)
class Handshake:
    """One completed handshake: the SNI name asked (None if none), the ``names`` key chosen
    (None for the default certificate), the ALPN protocol agreed, the TLS version, and the
    client certificate's subject (RFC 4514) if one was verified."""

    server_name: str | None
    certificate: str | None
    alpn: str | None
    version: str | None
    subject: str | None


def pick_name(server_name: str | None, names: Mapping[str, object]) -> str | None:
    """The key of ``names`` that serves ``server_name``, or None for the default certificate.

    Names compare case-insensitively. An exact key wins; else a key ``*.rest`` serves a name
    that is exactly one label followed by ``.rest``.
    """
    # TODO: no name (None or "") -> None.
    # TODO: an exact match, ignoring case, returns that key (as spelled in names).
    # TODO: else "*." + everything after the first label, if that key exists (one label only:
    #       "*.w.test" serves "x.w.test", never "y.x.w.test" nor "w.test").
    raise NotImplementedError


def rfc4514(subject: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    """The RFC 4514 string of a subject as ``SSLObject.getpeercert()["subject"]`` gives it.

    ``subject`` lists the RDNs in certificate order, each a tuple of (type, value) pairs, with
    OpenSSL's long type names ("commonName"). The string lists the RDNs in reverse order,
    joined by ","; the pairs of one RDN joined by "+"; each pair as ``TYPE=value``.
    """
    # TODO: type names through RFC4514_NAMES ("commonName" -> "CN"); others as they are.
    # TODO: escape " + , ; < > \ with a backslash; a leading space or "#" and a trailing
    #       space too (RFC 4514 §2.4).
    # TODO: write every control character (below " ", and DEL) and every non-ASCII character
    #       as \XX hex pairs of its UTF-8 bytes: the string goes into a header.
    raise NotImplementedError


def forwarded_node(ip: str) -> str:
    """The node of a ``Forwarded: for=`` parameter (RFC 7239 §6): an IPv4 address as it is, an
    IPv6 address in brackets and quotes."""
    # TODO: "192.0.2.1" -> 192.0.2.1; "2001:db8::1" -> "[2001:db8::1]" with the quotes.
    raise NotImplementedError


def rewrite_headers(headers: Headers, client_ip: str, subject: str | None) -> Headers:
    """The request fields the backend gets.

    Removed (names compare case-insensitively): every field in ``TRUST_FIELDS`` and
    ``HOP_BY_HOP``, and every field the client's ``Connection`` names. Kept: the rest, in
    order. Added at the end: ``X-Forwarded-For``, ``X-Forwarded-Proto: https``,
    ``Forwarded: for=...;proto=https``, ``X-Client-Subject`` when a client certificate was
    verified, and ``Connection: close``.
    """
    # TODO: never trust the client's X-Forwarded-*, Forwarded or X-Client-Subject: drop them all.
    raise NotImplementedError


class TLSTerminator:
    """Terminates TLS for ``backend`` (host, port) with the certificates of ``config``.

    ``handshakes`` records every completed handshake, in order. One request per client
    connection: the answer carries ``Connection: close``.
    """

    def __init__(self, config: TLSConfig, backend: tuple[str, int]) -> None:
        # TODO: build every context now (a bad certificate raises here), keep the backend,
        #       an empty handshakes list, and what close() needs.
        raise NotImplementedError

    @staticmethod
    def server_context(cert: Certificate, config: TLSConfig) -> ssl.SSLContext:
        """A server context for one certificate: TLS 1.2 or newer, the ALPN list, and client
        certificates verified against ``config.client_ca`` when it is set."""
        # TODO: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); minimum_version TLS 1.2 (RFC 8996).
        # TODO: load_cert_chain; set_alpn_protocols; with client_ca: load_verify_locations and
        #       verify_mode CERT_REQUIRED or CERT_OPTIONAL.
        raise NotImplementedError

    def reload(self, config: TLSConfig) -> None:
        """Serve ``config`` to new handshakes; open connections keep theirs. If any certificate
        fails to load, raise and keep serving the old configuration."""
        # TODO: build every new context first; swap them in only when all loaded.
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 picks a free one); return the address bound."""
        # TODO: one listening context whose sni_callback sets ssl_object.context to the chosen
        #       name's context, or the current default one (always switch: think of reload).
        # TODO: per connection: record a Handshake; read the request head (at most MAX_HEAD
        #       bytes, else 431); 400 if malformed; 501 for Transfer-Encoding; 502 if the
        #       backend is unreachable; forward the head with rewrite_headers() and the
        #       Content-Length body; relay the answer without its hop-by-hop fields and the
        #       fields its Connection names, with Connection: close; close.
        # TODO: copy the body up while you read the answer (a client that sent
        #       Expect: 100-continue waits for the 100 before it sends its body).
        # TODO: forward each 1xx head (same fields removed, no Connection: close) to an
        #       HTTP/1.1 client, none to an HTTP/1.0 client, then the final one; 101 is a 502.
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening and close every open connection. Calling it twice is harmless."""
        raise NotImplementedError
