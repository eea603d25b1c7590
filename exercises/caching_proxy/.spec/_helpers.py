"""Helpers for the caching_proxy specs: a scripted origin for the sans-IO Cache, the hishel
oracle driven over the same script, and a real origin on 127.0.0.1:0 that counts requests.

hishel (``hishel._core._spec``, RFC 9111 as a state machine) is the independent oracle for the
rows it models. It reads ``time.time()``; the oracle run patches that with the spec's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import h11
import hishel
from caching_proxy import Cache, Request, Response
from hishel._core import _spec as hishel_spec

from grader.spectools import FakeClock, called, short, step, tcp_server

T0 = 1_700_000_000  # the spec clock starts here: seconds since the epoch, a whole second
BODY = b"0123456789"


def httpdate(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def clock() -> FakeClock:
    return FakeClock(T0)


def get(target: str = "/a", *headers: tuple[str, str]) -> Request:
    return Request("GET", target, [("Host", "origin.test"), *headers])


def age_of(response: Response) -> int | str | None:
    """The Age field as an int; as the raw text when it is not delta-seconds; None if absent."""
    value = response.header("age")
    if value is None:
        return None
    return int(value) if value.isdigit() else value


# -- the sans-IO exchange ------------------------------------------------------------------------


class Script:
    """An origin as a function: counts the requests it gets and answers each with ``reply``."""

    def __init__(self, reply: Callable[[Request], Response | None]) -> None:
        self.reply = reply
        self.requests: list[Request] = []

    @property
    def hits(self) -> int:
        return len(self.requests)

    def __call__(self, request: Request) -> Response | None:
        self.requests.append(request)
        return self.reply(request)


def exchange(cache: Cache, request: Request, origin: Script) -> tuple[str, Response]:
    """What the proxy does for one request, with the origin called in line: (kind, response).

    A "stale" decision is served and its background revalidation completes before returning.
    """
    with step(f"cache.lookup({describe(request)})"):
        decision = cache.lookup(request)
    kind = decision.kind
    assert kind in ("fresh", "stale", "revalidate", "miss"), called(
        f"cache.lookup({describe(request)})",
        decision,
        "a Decision whose kind is fresh, stale, revalidate or miss",
    )
    if kind == "fresh":
        served = decision.serve
    elif kind == "stale":
        served = decision.serve
        with step("cache.complete(decision, <background revalidation answer>)"):
            cache.complete(decision, origin(decision.forward))
    else:
        answer = origin(decision.forward)
        with step(f"cache.complete(decision, {short(answer, 60)})"):
            served = cache.complete(decision, answer)
    assert isinstance(served, Response), called(
        f"the {kind} answer to {describe(request)}", served, "a Response"
    )
    return kind, served


def describe(request: Request) -> str:
    extra = ", ".join(f"{k}: {v}" for k, v in request.headers if k.lower() != "host")
    return f"{request.method} {request.target}" + (f" [{extra}]" if extra else "")


# -- the table of scenarios --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Move the clock ``advance`` seconds, send one GET; then the origin has seen ``hits``
    requests in all, and the answer's Age is ``age`` (None: no Age field, an origin answer)."""

    advance: float
    hits: int
    age: int | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Row:
    """A response the origin sends on every request, and the steps to replay against it.

    ``expires`` adds Expires = Date + expires; ``date_offset`` makes the origin's Date that many
    seconds old; ``delay`` is how long the origin takes to answer (the clock moves meanwhile).
    A request whose If-None-Match names the ETag gets a 304. ``hishel`` says whether hishel's
    RFC 9111 policy models the row (when not, ``why`` says what it leaves out).
    """

    name: str
    headers: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...]
    status: int = 200
    request: tuple[tuple[str, str], ...] = ()
    expires: int | None = None
    date_offset: int = 0
    delay: float = 0
    hishel: bool = True
    why: str = ""


def origin_reply(row: Row, now: Callable[[], float]) -> Callable[[Request], Response]:
    def reply(request: Request) -> Response:
        if row.delay:
            now.advance(row.delay)  # type: ignore[attr-defined]
        date = now() - row.date_offset
        headers = [("Date", httpdate(date)), *row.headers]
        if row.expires is not None:
            headers.append(("Expires", httpdate(date + row.expires)))
        etag = dict((k.lower(), v) for k, v in row.headers).get("etag")
        if etag is not None and request.header("if-none-match") == etag:
            keep = [
                (k, v)
                for k, v in headers
                if k.lower() in ("date", "etag", "cache-control", "expires")
            ]
            return Response(304, keep, b"")
        return Response(row.status, headers, BODY)

    return reply


def replay(row: Row) -> list[tuple[int, int | None, str]]:
    """Run ``row`` through the learner's Cache: per step (origin hits, Age, kind)."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)
    origin = Script(origin_reply(row, now))
    seen = []
    for s in row.steps:
        now.advance(s.advance)
        kind, served = exchange(cache, get("/a", *row.request, *s.headers), origin)
        seen.append((origin.hits, age_of(served), kind))
    return seen


def hishel_replay(row: Row, monkeypatch: Any) -> list[tuple[int, int | None]]:
    """Run ``row`` through hishel's shared-cache policy: per step (origin hits, Age or None)."""
    now = clock()
    monkeypatch.setattr(hishel_spec, "time", SimpleNamespace(time=now))
    options = hishel.CacheOptions(shared=True)
    reply = origin_reply(row, now)
    entries: list[hishel.Entry] = []
    hits, seen = 0, []
    for s in row.steps:
        now.advance(s.advance)
        headers = [("Host", "origin.test"), *row.request, *s.headers]
        request = hishel.Request("GET", "http://origin.test/a", hishel.Headers(dict(headers)))
        state: Any = hishel.IdleClient(options=options).next(request, entries)
        age = None
        if isinstance(state, hishel.FromCache):
            age = int(state.entry.response.headers["age"])
        else:
            hits += 1
            forward = state.request if isinstance(state, hishel.NeedRevalidation) else request
            answer = reply(Request("GET", "/a", list(forward.headers.items())))
            state = state.next(hishel.Response(answer.status, hishel.Headers(dict(answer.headers))))
            while isinstance(state, hishel.InvalidateEntries):
                entries = [e for e in entries if e.id not in state.entry_ids]
                state = state.next()
            if isinstance(state, hishel.StoreAndUse):
                # The new response replaces the stored one of the same variant (the same values of
                # the fields its Vary names); other variants stay.
                vary = [
                    n.strip()
                    for n in state.response.headers.get("vary", "").split(",")
                    if n.strip()
                ]

                def variant(entry: hishel.Entry, vary: list[str] = vary) -> list[str | None]:
                    return [entry.request.headers.get(name) for name in vary]

                new = hishel.Entry(uuid.uuid4(), request, state.response)
                entries = [e for e in entries if variant(e) != variant(new)] + [new]
            elif isinstance(state, hishel.NeedToBeUpdated):
                updated = {entry.id: entry for entry in state.updating_entries}
                entries = [updated.get(entry.id, entry) for entry in entries]
                age = 0
        seen.append((hits, age))
    return seen


# -- a real origin on 127.0.0.1:0 -------------------------------------------------------------


@dataclass
class Origin:
    """An HTTP/1.1 origin the spec scripts: h11 parses what the proxy sends.

    ``respond(request)`` returns (status, headers, body); ``gate``, when set, holds every
    response until the spec sets it; ``arrived`` is set whenever a request has been read.
    """

    respond: Callable[[h11.Request], tuple[int, list[tuple[str, str]], bytes]]
    requests: list[h11.Request] = field(default_factory=list)
    gate: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    address: tuple[str, int] = ("", 0)

    @property
    def hits(self) -> int:
        return len(self.requests)

    async def reached(self, hits: int) -> None:
        """Return once the origin has received ``hits`` requests in all (await it with a bound)."""
        while self.hits < hits:
            self.arrived.clear()
            await self.arrived.wait()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                request = event
            if isinstance(event, h11.EndOfMessage):
                break
        self.requests.append(request)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        status, headers, body = self.respond(request)
        headers = [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        if body:
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()


@contextlib.asynccontextmanager
async def running_origin(
    respond: Callable[[h11.Request], tuple[int, list[tuple[str, str]], bytes]],
) -> AsyncIterator[Origin]:
    origin = Origin(respond)
    async with tcp_server(origin.handle) as address:
        origin.address = address
        yield origin


def header_of(request: h11.Request, name: str) -> str | None:
    for key, value in request.headers:
        if key.decode().lower() == name.lower():
            return value.decode()
    return None


def names(values: Sequence[Any]) -> list[str]:
    return [getattr(v, "name", str(v)) for v in values]
