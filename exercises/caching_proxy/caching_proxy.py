"""A shared HTTP cache (RFC 9111, RFC 5861) and the asyncio reverse proxy it sits in.

Two layers:

* ``Cache`` — the policy, sans-IO: a request in, a ``Decision`` out (serve this stored
  response, or send that request to the origin); the origin's answer in, the response for
  the client out. It owns a byte-bounded LRU store and reads time only from its ``clock``.
* ``CachingProxy`` — the I/O: an HTTP/1.1 server for clients, a client for the origin, request
  collapsing, and background revalidation. Every caching rule is the Cache's.

Per request::

    decision = cache.lookup(request)            # request_time = clock()
    "fresh"      -> send decision.serve
    "stale"      -> send decision.serve; later complete(decision, fetch(decision.forward))
    "revalidate" -> send complete(decision, fetch(decision.forward))   # conditional
    "miss"       -> send complete(decision, fetch(decision.forward))

Standard library only. See README.md for the rules in full.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Cache",
    "CachingProxy",
    "Decision",
    "Request",
    "Response",
    "parse_cache_control",
]

Header = tuple[str, str]


# The two message classes are given: they are the vocabulary, not the exercise.


@dataclass
class Request:
    """An HTTP request as the cache sees it: ``target`` is the origin-form path and query."""

    method: str
    target: str
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Every field called ``name`` (any case) joined with ", ", or None if there is none."""
        return _joined(self.headers, name)


@dataclass
class Response:
    """An HTTP response: status code, header fields in order, and the whole body."""

    status: int
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Every field called ``name`` (any case) joined with ", ", or None if there is none."""
        return _joined(self.headers, name)


def _joined(headers: list[Header], name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name.lower()]
    return ", ".join(values) if values else None


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """Cache-Control directives by lower-case name: the value (unquoted) or None if it has none.

    ``parse_cache_control('max-age=60, No-Cache="Set-Cookie, X"')`` is
    ``{"max-age": "60", "no-cache": "Set-Cookie, X"}``; None or "" gives ``{}``.

    TODO: directives are separated by commas; skip empty members and whitespace around them.
    TODO: names are case-insensitive (return them in lower case).
    TODO: a value is a token or a quoted-string (a comma inside quotes is part of the value;
          a backslash escapes the next character). Return it without the quotes.
    TODO: a directive that appears twice keeps its first value (RFC 9111 §4.2.1).
    """
    raise NotImplementedError


@dataclass
class Decision:
    """What ``Cache.lookup`` decided for one request.

    ``kind`` is "fresh" (send ``serve``), "stale" (send ``serve`` now and revalidate with
    ``forward`` in the background), "revalidate" (send ``forward``, a conditional request when
    the stored response has validators) or "miss" (send ``forward``). ``request_time`` is when
    the lookup happened; pass the decision back to ``Cache.complete`` with the origin's answer.
    ``entry`` is yours: whatever ``complete`` needs to find the stored response again.
    """

    kind: str
    request: Request
    request_time: float
    serve: Response | None = None
    forward: Request | None = None
    entry: Any = field(default=None, repr=False)


class Cache:
    """A shared HTTP cache: storing (RFC 9111 §3), freshness and age (§4.2), validation
    (§4.3), invalidation (§4.4), stale-while-revalidate and stale-if-error (RFC 5861), in a
    store of at most ``max_bytes`` body bytes that evicts the least recently used response."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        """``clock()`` is the current time in seconds since the epoch: read time only from it.

        TODO: keep the stored responses in least-recently-used order; count their body bytes.
        """
        raise NotImplementedError

    @property
    def size(self) -> int:
        """The body bytes stored now: never more than ``max_bytes``."""
        raise NotImplementedError

    def __len__(self) -> int:
        """How many responses are stored (each variant of a Vary counts once)."""
        raise NotImplementedError

    def lookup(self, request: Request) -> Decision:
        """Decide how to answer ``request``: from the store, by revalidating, or from the origin.

        TODO: only GET is answered from the store; any other method, and a GET carrying
              If-None-Match or If-Modified-Since, is a "miss" forwarded as it is.
        TODO: the stored response for request.target whose Vary fields match (RFC 9111 §4.1):
              values compared after joining repeated fields and trimming around commas; a
              field absent on one side matches only absent on the other. Newest wins.
        TODO: finding one is a use (LRU).
        TODO: lifetime (§4.2.1): s-maxage, else max-age, else Expires - Date, else 0 (no
              heuristics). A repeated directive: the first counts. An invalid number, or an
              Expires that isn't a date ("0"), means 0.
        TODO: current age (§4.2.3): max(apparent age, Age + response delay) + resident time,
              from the Date and Age fields and the request and response times you recorded.
        TODO: "fresh" when lifetime > current age (§4.2) and neither side says no-cache:
              serve a copy with Age = whole seconds of the current age (§4.2.3, §5.1).
        TODO: otherwise forward a conditional request: If-None-Match = the stored ETag,
              If-Modified-Since = the stored Last-Modified (§4.3.1) -> "revalidate"; or
              "stale" (serve now, forward in the background) when stale by at most the
              response's stale-while-revalidate seconds, the request has no no-cache, and
              no-cache, must-revalidate, proxy-revalidate and s-maxage are all absent.
        """
        raise NotImplementedError

    def complete(self, decision: Decision, response: Response | None) -> Response:
        """Take the origin's answer to ``decision.forward`` (None: the origin could not be
        reached); update the store; return the response for the client.

        TODO: None or 500/502/503/504: the stored response if it is stale by at most its
              stale-if-error seconds (same exclusions as stale-while-revalidate), else the
              origin's error, or 502 Bad Gateway when there was no answer.
        TODO: no Date? Add one: the time it was received (RFC 9110 §6.6.1).
        TODO: an unsafe method (not GET, HEAD, OPTIONS, TRACE) with a 2xx/3xx answer
              invalidates every stored response for the target, and for Location and
              Content-Location when they are of the same origin (RFC 9111 §4.4).
        TODO: a 304 to a revalidation: replace the stored header fields with the 304's
              (not Content-Length), restart its age, return the stored response (§4.3.4),
              even if it was evicted while the origin was asked (then store it again).
        TODO: store what §3 allows (GET; final status, not 206/304; no no-store in request or
              response; no private; Authorization only with public, s-maxage or
              must-revalidate; not Vary: *; public, max-age, s-maxage, Expires, or a
              heuristically cacheable status). It replaces the same target and variant.
        TODO: evict least recently used responses until it fits; never store a response
              bigger than max_bytes (and evict nothing for it).
        """
        raise NotImplementedError


class CachingProxy:
    """An HTTP/1.1 reverse proxy for one origin, answering through a ``Cache``.

    One request per client connection (the proxy answers with ``Connection: close``); bodies
    framed by Content-Length only. Concurrent misses for one target wait for a single origin
    request (collapsing); a stale-while-revalidate hit revalidates once, in the background.
    """

    def __init__(
        self, origin: tuple[str, int], cache: Cache, *, origin_timeout: float = 5.0
    ) -> None:
        """``origin`` is (host, port); ``cache`` is the policy every answer goes through: the
        proxy calls ``cache.lookup`` as soon as it has read a request (and again after waiting
        on another request's fetch). ``origin_timeout``: seconds before an origin that hasn't
        answered counts as unreachable."""
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on (host, port); return the address actually bound."""
        raise NotImplementedError

    async def settle(self) -> None:
        """Wait until every background revalidation has finished."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening and cancel background revalidations (then ``settle()`` returns)."""
        raise NotImplementedError

    async def handle(self, request: Request) -> Response:
        """Answer one request through the cache (what a client connection does).

        TODO: "fresh" -> decision.serve. "stale" -> decision.serve, and start one background
              revalidation for the target unless one is already running.
        TODO: a GET that must go to the origin while another request for the same target is
              already there waits for it, then looks up again (request collapsing).
        TODO: talk to the origin on a new connection: the request line, the fields except
              hop-by-hop ones (Keep-Alive, Transfer-Encoding, ..., Connection and every field
              it names), Content-Length, Connection: close; read the status line, the fields
              and the body: relay each interim 1xx head first (hop-by-hop fields removed) to
              the client the fetch is for, unless its request said HTTP/1.0 (RFC 9110 §15.2);
              a 101 -> None. A cached answer or a background revalidation relays none.
              Then decode a chunked body (Transfer-Encoding: chunked wins over
              Content-Length), else Content-Length, else read to the close. Any failure, or
              no answer within origin_timeout seconds -> None for cache.complete.
        TODO: the same hop-by-hop rule for what goes back to the client.
        TODO: a request with Expect: 100-continue and a body: do not wait for the body (the
              client may be waiting for a 100 before it sends it). Forward the head to the
              origin at once, copy the body to the origin as it arrives, and relay the
              origin's 100 Continue to the client (RFC 9110 §10.1.1, §15.2). Answered before
              the whole body was read: close in stages, as below. An HTTP/1.0 request's
              100-continue is ignored (§10.1.1): read its body first, as for any request.
        TODO: a request answered 400 or 501 before its body was read: write the answer,
              write_eof(), read and drop what the client still sends (5 s without a byte, 30 s
              in all), then close (RFC 9112 §9.6); a plain close resets a client still sending.
        """
        raise NotImplementedError
