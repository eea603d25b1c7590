"""A shared HTTP cache (RFC 9111, RFC 5861) and the asyncio reverse proxy it sits in.

Two layers:

* ``Cache`` — the policy, sans-IO: a request in, a ``Decision`` out (serve this stored
  response, or send that request to the origin); the origin's answer in, the response for
  the client out. It owns a byte-bounded LRU store and reads time only from its ``clock``.
* ``CachingProxy`` — the I/O: an HTTP/1.1 server for clients, a client for the origin, request
  collapsing, and background revalidation. Every caching rule is the Cache's.

Theory of operation, per request::

    decision = cache.lookup(request)            # request_time = clock()
    "fresh"      -> send decision.serve
    "stale"      -> send decision.serve; later complete(decision, fetch(decision.forward))
    "revalidate" -> send complete(decision, fetch(decision.forward))   # conditional
    "miss"       -> send complete(decision, fetch(decision.forward))

Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus

__all__ = [
    "Cache",
    "CachingProxy",
    "Decision",
    "Request",
    "Response",
    "parse_cache_control",
]

Header = tuple[str, str]

# RFC 9110 §9.2.1: the methods defined as safe. Any other method (or one we don't know)
# invalidates the target on a non-error response (RFC 9111 §4.4).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# RFC 9110 §15.1: status codes that are heuristically cacheable, so storable without explicit
# freshness (RFC 9111 §3); the list also has 206, which this cache never stores. This cache
# gives them no heuristic lifetime: stored, but stale.
HEURISTICALLY_CACHEABLE = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
# RFC 5861 §4: the errors that stale-if-error may hide.
ORIGIN_ERRORS = frozenset({500, 502, 503, 504})
# RFC 9110 §7.6.1: hop-by-hop fields, never forwarded by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_DELTA = re.compile(r"[0-9]+")
_STATUS = re.compile(r"[0-9]{3}")  # RFC 9112 §4: status-code = 3DIGIT
_HEX = re.compile(rb"[0-9A-Fa-f]+")  # RFC 9112 §7.1: chunk-size = 1*HEXDIG
HTTP_VERSIONS = frozenset({"HTTP/1.1", "HTTP/1.0"})  # what a client's request line may say
LINGER_TIMEOUT = 5.0  # seconds without a byte before a lingering close gives up
LINGER_TIME = 30.0  # seconds a lingering close reads at most


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


def _end_to_end(headers: list[Header]) -> list[Header]:
    """``headers`` without hop-by-hop fields: the fixed list, and every field that Connection
    names (RFC 9110 §7.6.1). A proxy forwards, and a cache stores (RFC 9111 §3.1), only these."""
    listed = {name.strip().lower() for name in (_joined(headers, "connection") or "").split(",")}
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in listed]


def _with(headers: list[Header], name: str, value: str) -> list[Header]:
    """``headers`` with every ``name`` field replaced by one ``name: value`` at the end."""
    return [(k, v) for k, v in headers if k.lower() != name.lower()] + [(name, value)]


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """Cache-Control directives by lower-case name: the value (unquoted) or None if it has none.

    A directive that appears twice keeps its first value (RFC 9111 §4.2.1).
    """
    directives: dict[str, str | None] = {}
    for match in re.finditer(
        r'\s*([^,=\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)', value or ""
    ):
        name, argument = match.group(1).lower(), match.group(2)
        if argument is not None:
            argument = argument.strip()
            if argument.startswith('"'):
                argument = re.sub(r"\\(.)", r"\1", argument[1:-1])
        directives.setdefault(name, argument)
    return directives


def _delta_seconds(value: str | None) -> int | None:
    """A delta-seconds value (RFC 9111 §1.2.2: digits only), or None if absent or invalid."""
    if value is None or not _DELTA.fullmatch(value):
        return None
    return int(value)


def _http_date(value: str) -> float | None:
    """An HTTP-date as seconds since the epoch, or None if it is not one."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _vary_value(request: Request, name: str) -> str | None:
    """A request field normalised for Vary matching (RFC 9111 §4.1): all lines combined,
    whitespace around list members dropped. None (absent) only matches absent."""
    value = request.header(name)
    if value is None:
        return None
    return ",".join(member.strip() for member in value.split(","))


@dataclass
class _Entry:
    target: str
    vary: tuple[tuple[str, str | None], ...]  # the secondary key: (field, normalised value)
    response: Response
    request_time: float
    response_time: float

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str | None], ...]]:
        return (self.target, self.vary)

    @property
    def size(self) -> int:
        return len(self.response.body)

    @property
    def directives(self) -> dict[str, str | None]:
        return parse_cache_control(self.response.header("cache-control"))


@dataclass
class Decision:
    """What ``Cache.lookup`` decided for one request.

    ``kind`` is "fresh" (send ``serve``), "stale" (send ``serve`` now and revalidate with
    ``forward`` in the background), "revalidate" (send ``forward``, a conditional request when
    the stored response has validators) or "miss" (send ``forward``). ``request_time`` is when
    the lookup happened; pass the decision back to ``Cache.complete`` with the origin's answer.
    """

    kind: str
    request: Request
    request_time: float
    serve: Response | None = None
    forward: Request | None = None
    entry: _Entry | None = field(default=None, repr=False)


class Cache:
    """A shared HTTP cache: storing (RFC 9111 §3), freshness and age (§4.2), validation
    (§4.3), invalidation (§4.4), stale-while-revalidate and stale-if-error (RFC 5861), in a
    store of at most ``max_bytes`` body bytes that evicts the least recently used response."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        # Every stored response, least recently used first, keyed by (target, secondary key)...
        self._lru: OrderedDict[tuple, _Entry] = OrderedDict()
        # ...and the same responses by target (the primary key), then secondary key.
        self._variants: dict[str, dict[tuple, _Entry]] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """The body bytes stored now: never more than ``max_bytes``."""
        return self._size

    def __len__(self) -> int:
        return len(self._lru)

    # -- lookup: can a stored response answer this request? (§4) --------------------------

    def lookup(self, request: Request) -> Decision:
        """Decide how to answer ``request``: from the store, by revalidating, or from the origin."""
        now = self.clock()
        decision = Decision("miss", request, now, forward=request)
        # Only GET is answered from the store. A client's own conditional request bypasses the
        # cache (answering it would mean evaluating its preconditions, §4.3.2: a SHOULD).
        if request.method != "GET" or _is_conditional(request):
            return decision
        entry = self._select(request)
        if entry is None:
            return decision
        self._touch(entry)  # a lookup that finds a response is a use
        decision.entry = entry
        asked = parse_cache_control(request.header("cache-control"))
        stored = entry.directives
        if "no-cache" not in asked and "no-cache" not in stored and self._is_fresh(entry, now):
            decision.kind, decision.forward = "fresh", None
            decision.serve = self._served(entry, now)
            return decision
        decision.kind, decision.forward = "revalidate", _conditional(request, entry.response)
        if "no-cache" not in asked and self._stale_allowed(entry, now, "stale-while-revalidate"):
            decision.kind, decision.serve = "stale", self._served(entry, now)
        return decision

    def _select(self, request: Request) -> _Entry | None:
        """The newest stored response for this target whose Vary fields match (§4.1)."""
        matches = [
            entry
            for entry in self._variants.get(request.target, {}).values()
            if all(_vary_value(request, name) == value for name, value in entry.vary)
        ]
        return max(matches, key=lambda entry: entry.response_time, default=None)

    # -- complete: the origin answered (or didn't) ------------------------------------------

    def complete(self, decision: Decision, response: Response | None) -> Response:
        """Take the origin's answer to ``decision.forward`` (None: the origin could not be
        reached); update the store; return the response for the client."""
        now = self.clock()
        request, entry = decision.request, decision.entry
        if response is None or response.status in ORIGIN_ERRORS:
            if entry is not None and self._stale_allowed(entry, now, "stale-if-error"):
                self._touch(entry)
                return self._served(entry, now)
            return response or Response(502, [("Content-Type", "text/plain")], b"bad gateway\n")
        if response.header("date") is None:
            # RFC 9110 §6.6.1: a recipient with a clock adds the Date it received the response at.
            response = replace(response, headers=[*response.headers, ("Date", _format_date(now))])
        if request.method not in SAFE_METHODS and 200 <= response.status < 400:
            self._invalidate(request, response)
        if response.status == 304 and entry is not None:
            return self._freshen(entry, response, decision.request_time, now)
        if self._storable(request, response):
            self._store(request, response, decision.request_time, now)
        return response

    def _freshen(
        self, entry: _Entry, update: Response, request_time: float, now: float
    ) -> Response:
        """A 304 validated ``entry``: take its header fields (§3.2, §4.3.4) and restart its age."""
        # The stored Age described the old exchange; the 304 brings its own, if any.
        headers = [(k, v) for k, v in entry.response.headers if k.lower() != "age"]
        for name, value in _end_to_end(update.headers):
            if name.lower() != "content-length":  # the 304 describes no body (§3.2)
                headers = _with(headers, name, value)
        entry.response = replace(entry.response, headers=headers)
        entry.request_time, entry.response_time = request_time, now
        if entry.key in self._lru:
            self._touch(entry)  # (a no-op if a newer response took its place meanwhile)
        else:
            self._insert(entry)  # evicted while we asked the origin: it is good again, keep it
        return self._served(entry, now)

    # -- storing (§3) -------------------------------------------------------------------------

    def _storable(self, request: Request, response: Response) -> bool:
        stored = parse_cache_control(response.header("cache-control"))
        asked = parse_cache_control(request.header("cache-control"))
        if request.method != "GET":
            return False
        if response.status < 200 or response.status in (206, 304):
            return False  # not final, or a status this cache doesn't know how to store
        if "no-store" in stored or "no-store" in asked or "private" in stored:
            return False
        if request.header("authorization") is not None and not (
            {"must-revalidate", "public", "s-maxage"} & stored.keys()  # §3.5
        ):
            return False
        if response.header("vary") is not None and "*" in _vary_names(response):
            return False  # §4.1: Vary: * never matches a later request; storing it is waste
        return bool(
            {"public", "max-age", "s-maxage"} & stored.keys()
            or response.header("expires") is not None
            or response.status in HEURISTICALLY_CACHEABLE
        )

    def _store(self, request: Request, response: Response, request_time: float, now: float) -> None:
        vary = tuple((name, _vary_value(request, name)) for name in _vary_names(response))
        stored = replace(response, headers=_end_to_end(response.headers))
        entry = _Entry(request.target, vary, stored, request_time, now)
        self._remove(entry.key)
        self._insert(entry)

    def _insert(self, entry: _Entry) -> None:
        if entry.size > self.max_bytes:
            return  # never evict everything for a response that can't fit anyway
        while self._size + entry.size > self.max_bytes:
            self._remove(next(iter(self._lru)))  # the least recently used goes first
        self._lru[entry.key] = entry
        self._variants.setdefault(entry.target, {})[entry.vary] = entry
        self._size += entry.size

    def _remove(self, key: tuple) -> None:
        entry = self._lru.pop(key, None)
        if entry is None:
            return
        self._size -= entry.size
        variants = self._variants[entry.target]
        del variants[entry.vary]
        if not variants:
            del self._variants[entry.target]

    def _touch(self, entry: _Entry) -> None:
        """Mark ``entry`` as just used, if it is still stored (a background revalidation can
        finish after its response was evicted or replaced)."""
        if self._lru.get(entry.key) is entry:
            self._lru.move_to_end(entry.key)

    def _invalidate(self, request: Request, response: Response) -> None:
        """§4.4: the target of an unsafe request goes, and so may Location and Content-Location,
        but only when they name a resource of this same origin."""
        targets = {request.target}
        host = request.header("host")
        for name in ("location", "content-location"):
            uri = response.header(name)
            if uri is None:
                continue
            if uri.startswith("/") and not uri.startswith("//"):
                targets.add(uri)
                continue
            same_origin = re.fullmatch(r"https?://([^/?#]+)(.*)", uri)
            if same_origin and host is not None and same_origin.group(1).lower() == host.lower():
                targets.add(same_origin.group(2) or "/")
        for target in targets:
            for entry in list(self._variants.get(target, {}).values()):
                self._remove(entry.key)

    # -- freshness and age (§4.2) ---------------------------------------------------------------

    def _lifetime(self, entry: _Entry) -> float:
        """§4.2.1: s-maxage, else max-age, else Expires - Date; else 0 (no heuristics here).
        An invalid value makes the response stale, as §4.2.1 encourages."""
        stored = entry.directives
        for directive in ("s-maxage", "max-age"):
            if directive in stored:
                return _delta_seconds(stored[directive]) or 0
        expires = entry.response.header("expires")
        if expires is not None:
            expires_at = _http_date(expires)  # §5.3: an invalid date (like "0") is in the past
            if expires_at is None:
                return 0
            return max(0.0, expires_at - self._date(entry))
        return 0

    def _age(self, entry: _Entry, now: float) -> float:
        """§4.2.3, term by term."""
        age_value = _delta_seconds(entry.response.header("age")) or 0
        date_value = self._date(entry)
        apparent_age = max(0.0, entry.response_time - date_value)
        response_delay = entry.response_time - entry.request_time
        corrected_age_value = age_value + response_delay
        corrected_initial_age = max(apparent_age, corrected_age_value)
        resident_time = now - entry.response_time
        return corrected_initial_age + resident_time

    def _date(self, entry: _Entry) -> float:
        """The stored Date; complete() added one if missing, but it may still be unreadable."""
        return _http_date(entry.response.header("date") or "") or entry.response_time

    def _is_fresh(self, entry: _Entry, now: float) -> bool:
        return self._lifetime(entry) > self._age(entry, now)  # §4.2: strictly greater

    def _stale_allowed(self, entry: _Entry, now: float, directive: str) -> bool:
        """RFC 5861: serve stale for up to N seconds past the lifetime, unless a directive
        forbids any stale use (§4.2.4: no-cache, must-revalidate, proxy-revalidate, s-maxage)."""
        stored = entry.directives
        if {"no-cache", "must-revalidate", "proxy-revalidate", "s-maxage"} & stored.keys():
            return False
        window = _delta_seconds(stored.get(directive))
        staleness = self._age(entry, now) - self._lifetime(entry)
        return window is not None and staleness <= window

    def _served(self, entry: _Entry, now: float) -> Response:
        """A copy of the stored response with its current Age (§5.1: whole seconds)."""
        age = str(int(self._age(entry, now)))
        return replace(entry.response, headers=_with(entry.response.headers, "Age", age))


def _vary_names(response: Response) -> list[str]:
    return [
        name.strip().lower() for name in (response.header("vary") or "").split(",") if name.strip()
    ]


def _is_conditional(request: Request) -> bool:
    return any(request.header(name) is not None for name in ("if-none-match", "if-modified-since"))


def _conditional(request: Request, stored: Response) -> Request:
    """The request with the stored response's validators as preconditions (§4.3.1)."""
    headers = list(request.headers)
    etag, modified = stored.header("etag"), stored.header("last-modified")
    if etag is not None:
        headers = _with(headers, "If-None-Match", etag)
    if modified is not None:
        headers = _with(headers, "If-Modified-Since", modified)
    return replace(request, headers=headers)


def _format_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


# -- the proxy --------------------------------------------------------------------------------


@dataclass
class _Upload:
    """A request body still in the client's socket: the client sent ``Expect: 100-continue``.

    RFC 9110 §10.1.1: a proxy that gets such a request MUST forward its head to the next
    server at once (or answer it itself), not wait for the body: the client may be waiting for
    a 100 (Continue) before it sends any. The body is then copied to the origin as it arrives,
    and the origin's 100 goes back to the client like any other interim response.
    """

    reader: asyncio.StreamReader  # the client's
    length: int
    complete: bool = False  # every byte of the body was read from the client

    async def pump(self, origin: asyncio.StreamWriter) -> None:
        """Copy the body from the client to the origin as it arrives."""
        left = self.length
        with contextlib.suppress(ConnectionError):
            while left:
                chunk = await self.reader.read(min(left, 65536))
                if not chunk:
                    return  # the client gave up: the origin's answer (or timeout) decides
                origin.write(chunk)
                left -= len(chunk)
                await origin.drain()
            self.complete = True


@dataclass
class _Client:
    """The client connection a request came on, as the origin exchange needs it: where the
    origin's interim responses go, and the request body still to be read, if any."""

    writer: asyncio.StreamWriter
    http10: bool  # the request line said HTTP/1.0
    upload: _Upload | None = None

    def relay_interim(self, status: int, fields: list[Header]) -> None:
        """RFC 9110 §15.2: a proxy MUST forward the 1xx responses it did not ask for itself
        (this one adds no Expect), ahead of the final response; but a server MUST NOT send a
        1xx to an HTTP/1.0 client, which knows none. Hop-by-hop fields stay on their hop."""
        if not self.http10:
            self.writer.write(_head(f"HTTP/1.1 {status} {_reason(status)}", _end_to_end(fields)))


class _BadMessage(Exception):
    """A message the proxy can't read: answered with ``status`` (origin side: 502)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


class CachingProxy:
    """An HTTP/1.1 reverse proxy for one origin, answering through a ``Cache``.

    One request per client connection (the proxy answers with ``Connection: close``); bodies
    framed by Content-Length only. Concurrent misses for one target wait for a single origin
    request (collapsing); a stale-while-revalidate hit revalidates once, in the background.
    """

    def __init__(
        self, origin: tuple[str, int], cache: Cache, *, origin_timeout: float = 5.0
    ) -> None:
        self.origin = origin
        self.cache = cache
        self.origin_timeout = origin_timeout
        self._server: asyncio.Server | None = None
        self._inflight: dict[str, asyncio.Future[None]] = {}  # target -> its one origin fetch
        self._background: dict[str, asyncio.Task[None]] = {}  # target -> its revalidation
        self._connections: dict[int, _Client] = {}  # id(request) -> the connection it came on

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on (host, port); return the address actually bound."""
        self._server = await asyncio.start_server(self._client, host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def settle(self) -> None:
        """Wait until every background revalidation has finished."""
        while self._background:
            await asyncio.gather(*self._background.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop listening and cancel background revalidations."""
        if self._server is not None:
            self._server.close()
        for task in list(self._background.values()):
            task.cancel()
        await asyncio.gather(*self._background.values(), return_exceptions=True)

    async def handle(self, request: Request) -> Response:
        """Answer one request through the cache (what a client connection does)."""
        # The connection the request came on (none when called directly): a fetch made for it
        # relays the origin's interim responses there; a background revalidation relays none.
        client = self._connections.get(id(request))
        while True:
            decision = self.cache.lookup(request)
            if decision.kind == "fresh":
                return decision.serve
            if decision.kind == "stale":
                self._revalidate_later(decision)
                return decision.serve
            if request.method != "GET":
                return self.cache.complete(decision, await self._fetch(decision.forward, client))
            leader = self._inflight.get(request.target)
            if leader is None:
                break
            await asyncio.shield(leader)  # a fetch for this target is under way: wait, look again
        done = asyncio.get_running_loop().create_future()
        self._inflight[request.target] = done
        try:
            return self.cache.complete(decision, await self._fetch(decision.forward, client))
        finally:
            del self._inflight[request.target]
            done.set_result(None)

    def _revalidate_later(self, decision: Decision) -> None:
        target = decision.request.target
        if target in self._background:
            return  # one background revalidation per target at a time

        async def revalidate() -> None:
            try:
                self.cache.complete(decision, await self._fetch(decision.forward))
            finally:
                del self._background[target]

        self._background[target] = asyncio.create_task(revalidate())

    async def _fetch(self, request: Request, client: _Client | None = None) -> Response | None:
        """Send ``request`` to the origin on a new connection; None if that fails. ``client``:
        the connection of the request it is for, which gets the origin's interim responses."""
        try:
            return await asyncio.wait_for(self._exchange(request, client), self.origin_timeout)
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            _BadMessage,
        ):
            return None

    async def _exchange(self, request: Request, client: _Client | None) -> Response:
        upload = client.upload if client is not None else None  # a body sent after the head
        length = upload.length if upload is not None else len(request.body)
        reader, writer = await asyncio.open_connection(*self.origin)
        pump: asyncio.Task[None] | None = None
        try:
            headers = [
                (k, v) for k, v in _end_to_end(request.headers) if k.lower() != "content-length"
            ]
            if length or request.method in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Length", str(length)))
            headers.append(("Connection", "close"))
            writer.write(
                _head(f"{request.method} {request.target} HTTP/1.1", headers) + request.body
            )
            await writer.drain()
            if upload is not None:
                pump = asyncio.create_task(upload.pump(writer))
            status, fields = await _read_status(reader)
            while 100 <= status < 200:
                # RFC 9110 §15.2: interim responses (100 Continue to the client's Expect,
                # 103 Early Hints) come before the final one; each goes to the client now.
                if status == 101:
                    # §7.8: a server switches only to a protocol the request's Upgrade named,
                    # and this proxy removed Upgrade (hop-by-hop): the origin is broken.
                    raise _BadMessage("101 Switching Protocols without an Upgrade")
                if client is not None:
                    client.relay_interim(status, fields)
                status, fields = await _read_status(reader)
            response = Response(status, fields)
            if request.method == "HEAD" or status in (204, 304):
                return response
            # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length. We spoke HTTP/1.1, so
            # the origin may send chunked, and every HTTP/1.1 recipient must decode it (§6.1):
            # Transfer-Encoding is hop-by-hop, so the client gets the decoded body.
            codings = response.header("transfer-encoding")
            length = response.header("content-length")
            if codings is not None:
                if codings.strip().lower() != "chunked":
                    raise _BadMessage(f"Transfer-Encoding: {codings}")  # we sent no TE
                response.body = await _read_chunked(reader)
            elif length is None:
                response.body = await reader.read()  # delimited by the close
            elif _DELTA.fullmatch(length):
                response.body = await reader.readexactly(int(length))
            else:
                raise _BadMessage(f"Content-Length: {length}")
            return response
        finally:
            if pump is not None:  # the origin answered (or failed) before taking the whole body
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request, pending, http10 = await _read_request(reader)
            except _BadMessage as error:
                writer.write(
                    _response_bytes(Response(error.status, body=f"{error}\n".encode()), "GET")
                )
                await _linger(reader, writer)
                return
            upload = _Upload(reader, pending) if pending else None
            self._connections[id(request)] = _Client(writer, http10, upload)
            try:
                response = await self.handle(request)
            finally:
                del self._connections[id(request)]
            writer.write(_response_bytes(response, request.method))
            if upload is not None and not upload.complete:
                # Answered before the body was read (from the cache, or the origin's early
                # answer): the client may still send it, so close in stages (RFC 9112 §9.6).
                await _linger(reader, writer)
                return
            await writer.drain()
        except (
            ConnectionError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # the client went away, lingered too long, or sent a head we won't buffer
        finally:
            writer.close()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 9112 §9.6: after an early answer, half-close and read what the client still sends.

    A client still sending the body we refused (a chunked upload from urllib or requests sends
    it all before reading) would otherwise meet a closed socket: the kernel answers its data with
    a reset, and the client fails on a write without ever reading our answer. Bounded like
    nginx's lingering_timeout (5 s without a byte) and lingering_time (30 s in all).
    """
    await writer.drain()
    writer.write_eof()
    deadline = asyncio.get_running_loop().time() + LINGER_TIME
    async with asyncio.timeout_at(deadline):
        while await asyncio.wait_for(reader.read(65536), LINGER_TIMEOUT):
            pass


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[Header]]:
    head = await reader.readuntil(b"\r\n\r\n")  # over 64 KiB: LimitOverrunError
    first, *lines = head[:-4].decode("latin-1").split("\r\n")
    fields = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadMessage(line)
        fields.append((name, value.strip()))
    return first, fields


async def _read_status(reader: asyncio.StreamReader) -> tuple[int, list[Header]]:
    """A response head from the origin: its status code and fields."""
    status_line, fields = await _read_head(reader)
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _STATUS.fullmatch(parts[1]):
        raise _BadMessage(status_line)
    return int(parts[1]), fields


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112 §7.1), decoded: chunk extensions skipped, trailers dropped."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size = line[:-2].split(b";", 1)[0].strip(b" \t")  # chunk-size [ chunk-ext ]
        if not _HEX.fullmatch(size):
            raise _BadMessage(f"chunk-size line {line!r}")
        if int(size, 16) == 0:
            break
        body += await reader.readexactly(int(size, 16))
        if await reader.readexactly(2) != b"\r\n":
            raise _BadMessage("chunk data not followed by CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # a trailer field: dropped (RFC 9112 §7.1.2 lets the decoder discard them)
    return bytes(body)


async def _read_request(reader: asyncio.StreamReader) -> tuple[Request, int, bool]:
    """The request, how many body bytes are left in ``reader`` (those of a request with
    ``Expect: 100-continue``, which go to the origin only once the head has, RFC 9110 §10.1.1),
    and whether the request line said HTTP/1.0."""
    request_line, fields = await _read_head(reader)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[1].startswith("/") or parts[2] not in HTTP_VERSIONS:
        raise _BadMessage(request_line)
    http10 = parts[2] == "HTTP/1.0"
    request = Request(parts[0], parts[1], fields)
    if request.header("transfer-encoding") is not None:
        raise _BadMessage("chunked request bodies are not supported", 501)
    length = request.header("content-length")
    if length is not None:
        if not _DELTA.fullmatch(length):
            raise _BadMessage(f"Content-Length: {length}")
        # §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
        if int(length) and not http10 and _expects_continue(request):
            return request, int(length), http10
        request.body = await reader.readexactly(int(length))
    return request, 0, http10


def _expects_continue(request: Request) -> bool:
    expect = request.header("expect") or ""
    return "100-continue" in (member.strip().lower() for member in expect.split(","))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(first_line: str, headers: list[Header]) -> bytes:
    lines = [first_line, *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response_bytes(response: Response, method: str) -> bytes:
    headers = _end_to_end(response.headers)
    if method != "HEAD" and response.status not in (204, 304):
        # The body we send is the body we hold; HEAD and 304 keep the origin's Content-Length,
        # which describes the body a GET would have got (RFC 9110 §8.6).
        headers = _with(headers, "Content-Length", str(len(response.body)))
        body = response.body
    else:
        body = b""
    status_line = f"HTTP/1.1 {response.status} {_reason(response.status)}"
    return _head(status_line, [*headers, ("Connection", "close")]) + body
