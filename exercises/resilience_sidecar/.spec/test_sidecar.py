"""The HTTP sidecar on 127.0.0.1: a scripted upstream behind it, raw HTTP/1.1 in front."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable, Iterator

import pytest
from _helpers import send, sidecar, upstream
from resilience_sidecar import DEADLINE_HEADER, CircuitBreaker, Resilience, RetryBudget

from grader.spectools import (
    LOCALHOST,
    FakeClock,
    FakeSleep,
    bounded,
    called,
    loop_reports,
    refused_port,
    step,
    tcp_server,
)

GET = b"GET /items/7 HTTP/1.1\r\nHost: svc\r\n\r\n"


@pytest.fixture
def dead_port() -> Iterator[Callable[[], int]]:
    """Call it for a port on 127.0.0.1 that nothing listens on, held for the whole spec
    (spectools.refused_port): connecting is refused, and no other process can take the port
    meanwhile (one found free and closed again can be another spec's server a moment later)."""
    with contextlib.ExitStack() as held:
        yield lambda: held.enter_context(refused_port())


def policy(**options):
    options.setdefault("max_attempts", 3)
    options.setdefault("per_try_timeout", 5.0)
    options.setdefault("timeout", 10.0)
    options.setdefault("backoff_base", 0.001)
    options.setdefault("backoff_cap", 0.002)
    options.setdefault("rng", random.Random(5))
    return lambda: Resilience(**options)


@pytest.mark.points(2)
async def test_a_healthy_upstream_answer_is_relayed():
    """GET through the sidecar reaches the upstream once, and its status, header and body come back."""
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        status, headers, body = await send(own, GET)
    assert (status, headers.get("x-upstream"), body) == (200, "yes", b"answer 1"), called(
        "GET /items/7 through the sidecar, upstream answering 200",
        (status, headers, body),
        (200, "x-upstream: yes", b"answer 1"),
    )
    assert len(up.requests) == 1 and up.requests[0][0].startswith("GET /items/7 HTTP/1.1\r\n"), (
        called(
            "GET /items/7 through the sidecar",
            f"upstream saw {[r[0][:40] for r in up.requests]}",
            "one GET /items/7",
        )
    )


@pytest.mark.points(2)
async def test_a_get_is_retried_on_503_but_a_post_is_not():
    """The sidecar retries a GET answered 503 and relays the 200; a POST answered 503 is relayed
    after one attempt (RFC 9110 §9.2.2: POST is not idempotent)."""
    async with upstream([503, 200]) as (up, port), sidecar(port, policy()) as own:
        status, _, body = await send(own, GET)
    assert (status, body, len(up.requests)) == (200, b"answer 2", 2), called(
        "GET through the sidecar, upstream answering 503 then 200",
        (status, body, len(up.requests)),
        (200, b"answer 2", "2 upstream requests"),
    )
    post = b"POST /orders HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello"
    async with upstream([503, 200]) as (up, port), sidecar(port, policy()) as own:
        status, _, _ = await send(own, post)
    assert (status, len(up.requests)) == (503, 1), called(
        "POST through the sidecar, upstream answering 503 then 200",
        (status, len(up.requests)),
        (503, "1 upstream request"),
    )
    assert up.requests[0][1] == b"hello", called(
        "the POST body the upstream received", up.requests[0][1], b"hello"
    )


@pytest.mark.points(2)
async def test_each_attempt_carries_the_remaining_time_in_a_header():
    """Every upstream request carries x-request-timeout-ms: the attempt's time in whole
    milliseconds (the per-try timeout, cut by the caller's deadline), replacing the caller's."""
    clock = FakeClock(0.0)  # the sidecar's clock stands still: the values are exact
    make = policy(per_try_timeout=2.0, clock=clock, sleep=FakeSleep(clock))
    async with upstream([200]) as (up, port), sidecar(port, make) as own:
        await send(own, GET)
        first = up.header(0, DEADLINE_HEADER)
        request = b"GET /x HTTP/1.1\r\nHost: svc\r\nX-Request-Timeout-Ms: 750\r\n\r\n"
        await send(own, request)
        second = up.header(1, DEADLINE_HEADER)
    assert first == ["2000"], called(
        "GET through the sidecar with per_try_timeout=2 s",
        f"upstream saw {DEADLINE_HEADER}: {first}",
        ["2000"],
    )
    assert second == ["750"], called(
        "GET through the sidecar with X-Request-Timeout-Ms: 750 from the caller",
        f"upstream saw {DEADLINE_HEADER}: {second}",
        ["750"],
    )


@pytest.mark.points(1)
async def test_the_deadline_header_is_rounded_down():
    """The deadline header never claims more time than the attempt has: 2.9996 s left is
    2999 ms, not 3000 (whole milliseconds, rounded down)."""
    clock = FakeClock(0.0)
    make = policy(max_attempts=2, clock=clock, sleep=FakeSleep(clock), backoff_cap=0.0)
    request = f"GET /x HTTP/1.1\r\nHost: svc\r\n{DEADLINE_HEADER}: 3000\r\n\r\n".encode()
    async with (
        upstream([503, 200], on_request=lambda: clock.advance(0.0004)) as (up, port),
        sidecar(port, make) as own,
    ):
        await send(own, request)
    values = [up.header(i, DEADLINE_HEADER) for i in range(len(up.requests))]
    want = [["3000"], ["2999"]]
    assert values == want, called(
        f"GET with {DEADLINE_HEADER}: 3000, the first attempt (503) taking 0.4 ms",
        f"upstream saw {values}",
        want,
    )


@pytest.mark.points(1)
async def test_the_callers_connection_field_is_not_forwarded():
    """The caller's Connection field describes the caller's own connection (RFC 9110 §7.6.1):
    the upstream sees only the sidecar's connection: close."""
    request = b"GET /x HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n"
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        await send(own, request)
    seen = up.header(0, "connection")
    assert seen == ["close"], called(
        "GET through the sidecar with Connection: keep-alive from the caller",
        f"upstream saw connection: {seen}",
        ["close"],
    )


@pytest.mark.points(2)
async def test_an_expired_caller_deadline_is_not_sent_upstream():
    """A request whose deadline header says 0 ms is answered 504 without contacting the upstream."""
    request = f"GET /x HTTP/1.1\r\nHost: svc\r\n{DEADLINE_HEADER}: 0\r\n\r\n".encode()
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        status, _, _ = await send(own, request)
    assert (status, len(up.requests)) == (504, 0), called(
        f"GET through the sidecar with {DEADLINE_HEADER}: 0",
        (status, len(up.requests)),
        (504, "0 upstream requests"),
    )


@pytest.mark.points(2)
async def test_an_unreachable_upstream_gets_502_after_every_attempt(dead_port):
    """When the upstream refuses connections, the sidecar tries max_attempts times and answers 502."""
    async with sidecar(dead_port(), policy(max_attempts=3)) as own:
        status, _, _ = await send(own, GET)
    assert status == 502, called(
        "GET through the sidecar to a port nothing listens on", status, 502
    )


@pytest.mark.points(1)
async def test_an_upstream_that_hangs_gets_504():
    """An upstream that never answers is cut at the per-try timeout; the sidecar answers 504."""
    async with (
        upstream(["hang"]) as (up, port),
        sidecar(port, policy(max_attempts=2, per_try_timeout=0.3)) as own,
    ):
        status, _, _ = await send(own, GET)
    assert (status, len(up.requests)) == (504, 2), called(
        "GET through the sidecar, upstream never answering, per_try_timeout=0.3 s, max_attempts=2",
        (status, len(up.requests)),
        (504, "2 upstream requests"),
    )


@pytest.mark.points(1)
async def test_an_open_circuit_answers_503_without_contacting_the_upstream():
    """Once the breaker is open, requests are answered 503 and never reach the upstream."""
    make = policy(
        max_attempts=1,
        breaker=CircuitBreaker(
            failure_threshold=1.0, window_size=2, minimum_calls=2, reset_timeout=300.0
        ),
    )
    async with upstream([500]) as (up, port), sidecar(port, make) as own:
        statuses = [(await send(own, GET))[0] for _ in range(4)]
    assert (statuses, len(up.requests)) == ([500, 500, 503, 503], 2), called(
        "4 GETs through the sidecar, upstream answering 500, breaker opening after 2 failures",
        (statuses, len(up.requests)),
        ([500, 500, 503, 503], "2 upstream requests"),
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("caller_ms", "max_attempts", "seen", "status"),
    [
        (3000, 4, ["3000", "2000", "1000"], 504),
        (3000, 2, ["3000", "2000"], 503),
        (1000, 3, ["1000"], 504),
    ],
    ids=["deadline-runs-out", "attempts-run-out", "one-try-fits"],
)
async def test_the_deadline_header_is_decremented_by_time_spent(
    caller_ms, max_attempts, seen, status
):
    """Each retry carries the caller's deadline minus the time already spent, in whole ms; once
    nothing is left the sidecar answers 504 without another attempt.

    The sidecar's clock is fake, but each attempt is still cancelled after its time in real
    seconds, so every attempt here gets at least 1 s: ample on a loaded machine.
    """
    clock = FakeClock(0.0)  # from 0, every time here is exact in binary
    make = policy(max_attempts=max_attempts, clock=clock, sleep=FakeSleep(clock), backoff_cap=0.0)
    request = f"GET /x HTTP/1.1\r\nHost: svc\r\n{DEADLINE_HEADER}: {caller_ms}\r\n\r\n".encode()
    async with (
        upstream([503], on_request=lambda: clock.advance(1.0)) as (up, port),
        sidecar(port, make) as own,
    ):
        got, _, _ = await send(own, request)
    values = [up.header(i, DEADLINE_HEADER) for i in range(len(up.requests))]
    want = [[value] for value in seen]
    assert (values, got) == (want, status), called(
        f"GET with {DEADLINE_HEADER}: {caller_ms}, max_attempts={max_attempts}, "
        "each upstream 503 taking 1 s on the sidecar's clock",
        f"upstream saw {values}, then the sidecar answered {got}",
        f"{want}, then {status}",
    )


@pytest.mark.points(2)
async def test_a_dead_upstream_behind_the_sidecar_gets_no_retry_storm():
    """Through the sidecar, N GETs to an upstream that always resets make at most
    N + floor(retry_ratio * N + min_retries_per_second * ttl) upstream attempts, and each gets 502."""
    clock = FakeClock()
    budget = RetryBudget(retry_ratio=0.25, min_retries_per_second=0.5, ttl=4.0, clock=clock)
    make = policy(
        max_attempts=4, budget=budget, clock=clock, sleep=FakeSleep(clock), backoff_cap=0.0
    )
    async with upstream(["reset"]) as (up, port), sidecar(port, make) as own:
        statuses = [(await send(own, GET))[0] for _ in range(8)]
    want = 8 + math.floor(0.25 * 8 + 0.5 * 4.0)
    assert statuses == [502] * 8 and len(up.requests) == want, called(
        "8 GETs through the sidecar to an upstream that always resets, max_attempts=4, "
        "RetryBudget(retry_ratio=0.25, min_retries_per_second=0.5, ttl=4)",
        f"answers {statuses} after {len(up.requests)} upstream attempts",
        f"8 x 502 after {want} upstream attempts",
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("method", "script", "attempts", "status"),
    [
        ("GET", ["reset", 200], 2, 200),
        ("POST", ["reset", 200], 1, 502),
        ("GET", ["garbage", 200], 2, 200),
        ("DELETE", ["garbage"], 2, 502),
    ],
    ids=["GET-reset-then-200", "POST-reset", "GET-not-http-then-200", "DELETE-never-http"],
)
async def test_a_response_that_never_came_is_a_failure_after_sending(
    method, script, attempts, status
):
    """An upstream that closes without a response, or answers something that is not HTTP/1.x,
    failed after the request was sent: idempotent methods are retried, others get 502."""
    request = f"{method} /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n".encode()
    async with upstream(script) as (up, port), sidecar(port, policy(max_attempts=2)) as own:
        got, _, _ = await send(own, request)
    assert (got, len(up.requests)) == (status, attempts), called(
        f"{method} through the sidecar, upstream answering {script}",
        (got, len(up.requests)),
        (status, f"{attempts} upstream attempts"),
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /x HTTP/1.1\r\nHost: svc\r\nContent-Length: abc\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: -5\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost svc\r\n\r\n",
        f"GET /x HTTP/1.1\r\nHost: svc\r\n{DEADLINE_HEADER}: soon\r\n\r\n".encode(),
    ],
    ids=[
        "content-length-not-a-number",
        "negative-content-length",
        "field-without-colon",
        "deadline-not-a-number",
    ],
)
async def test_a_malformed_request_gets_400_and_never_reaches_the_upstream(request_bytes):
    """A request the sidecar cannot parse is answered 400 Bad Request and not forwarded."""
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        got, _, _ = await send(own, request_bytes)
    assert (got, len(up.requests)) == (400, 0), called(
        f"the sidecar with {request_bytes!r}", (got, len(up.requests)), (400, "0 upstream requests")
    )


@pytest.mark.points(1)
async def test_close_stops_listening(dead_port):
    """After close(), the sidecar's port refuses connections; a second close() is harmless."""
    from resilience_sidecar import Sidecar

    car = Sidecar((LOCALHOST, dead_port()), policy()())
    with step("Sidecar.close() before start()"):
        await bounded(car.close(), 5.0, "Sidecar.close() before start()")
    _, port = await bounded(car.start(LOCALHOST, 0), 5.0, "Sidecar.start()")
    await bounded(car.close(), 5.0, "Sidecar.close()")
    await bounded(car.close(), 5.0, "a second Sidecar.close()")
    try:
        _, writer = await asyncio.open_connection(LOCALHOST, port)
        writer.close()
        refused = False
    except OSError:
        refused = True
    assert refused, called(
        f"connect to 127.0.0.1:{port} after Sidecar.close()", "accepted", "refused"
    )


@pytest.mark.points(1)
async def test_close_ends_open_connections_and_their_handlers_quietly(dead_port):
    """close() with one client connected and idle (it sent nothing) and one half-way through a
    request head returns within a few loop turns, both clients then see EOF (or a reset), and
    the event loop has nothing to report: each handler close() cancels ends without raising.

    Since Python 3.12 Server.wait_closed() waits for every accepted connection to close
    (CPython gh-79033), so a close() that does not end its handlers first waits forever there;
    on 3.11 it returns at once but leaves the connections open. A start_server handler that ends
    in CancelledError is logged by Python 3.11.7 and 3.12.1, not by 3.13: loop_reports reports
    it on every version.
    """
    from resilience_sidecar import Sidecar

    car = Sidecar((LOCALHOST, dead_port()), policy()())
    _, port = await bounded(car.start(LOCALHOST, 0), 5.0, "Sidecar.start()")
    clients = []
    try:
        async with loop_reports() as reports:
            for _ in range(2):
                clients.append(await asyncio.open_connection(LOCALHOST, port))
            half = clients[1][1]
            half.write(b"GET /items/7 HTTP/1.1\r\nHost: sv")  # no blank line yet
            await half.drain()
            for _ in range(50):  # counted turns: the sidecar accepts both and starts reading
                await asyncio.sleep(0)
            await bounded(car.close(), 5.0, "Sidecar.close() to return with two clients connected")
            seen = []
            for reader, _ in clients:
                try:
                    rest = await bounded(reader.read(), 5.0, "EOF on a client open during close()")
                except ConnectionError:
                    rest = b""
                seen.append(rest)
        assert seen == [b"", b""], called(
            "Sidecar.close() with one client idle and one half-way through a request head; "
            "then reading each client to EOF (bytes before EOF)",
            seen,
            [b"", b""],
        )
    finally:
        for _, writer in clients:
            writer.close()
    assert not reports, reports.message(
        "Sidecar.close() with one client idle and one half-way through a request head",
        "a connection handler cancelled by close() should end quietly: catch CancelledError "
        "where it waits, close the connection, and return",
    )


WIRE = [
    ("relayed-200", [200], "GET", 200),
    ("relayed-after-retry", [503, 200], "GET", 200),
    ("post-503-relayed", [503], "POST", 503),
    ("reset-502", ["reset"], "POST", 502),
    ("malformed-400", [200], "BAD", 400),
]


@pytest.mark.points(1)
@pytest.mark.parametrize(("name", "script", "method", "status"), WIRE, ids=[w[0] for w in WIRE])
async def test_every_answer_is_valid_http_with_one_framing(name, script, method, status):
    """Every answer of the sidecar parses as HTTP/1.1 (h11 as the client), with one Content-Length
    matching its body and no Transfer-Encoding (RFC 9112 §6.3)."""
    import h11
    from _helpers import h11_read, send_raw

    if method == "BAD":
        request, method = b"GET /x HTTP/1.1\r\nHost: svc\r\nContent-Length: x\r\n\r\n", "GET"
    else:
        request = f"{method} /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\n".encode()
    async with upstream(script) as (_, port), sidecar(port, policy(max_attempts=2)) as own:
        raw = await send_raw(own, request)
    try:
        got, headers, body = h11_read(raw, method)
    except h11.RemoteProtocolError as error:
        raise AssertionError(
            called(
                f"h11 reading the sidecar's answer {raw[:80]!r}",
                f"error: {error}",
                "a valid response",
            )
        ) from None
    # h11 folds repeated equal Content-Length fields into one: count them on the wire too.
    lengths = [v for k, v in headers if k == b"content-length"]
    fields = raw.partition(b"\r\n\r\n")[0].lower().count(b"\r\ncontent-length:")
    encodings = [v for k, v in headers if k == b"transfer-encoding"]
    ok = got == status and lengths == [str(len(body)).encode()] and fields == 1 and not encodings
    assert ok, called(
        f"{name}: the sidecar's answer read by h11",
        (
            got,
            f"content-length {lengths} in {fields} field(s)",
            f"transfer-encoding {encodings}",
            f"{len(body)} body bytes",
        ),
        (status, "one content-length field equal to the body", "no transfer-encoding"),
    )


DEADLINES = [
    (b"5000", 200),
    (b"05000", 200),
    (b" \t5000 ", 200),
    (b"+5000", 400),
    (b"-5", 400),
    (b"5_000", 400),
    (b"5 000", 400),
    (b"\xa05000", 400),  # U+00A0 in latin-1: str.strip() takes it for a space
    ("\u0665\u0660\u0660\u0660".encode(), 400),  # Arabic-Indic 5000 in UTF-8
]


@pytest.mark.points(1)
@pytest.mark.parametrize(("value", "status"), DEADLINES, ids=[repr(d[0]) for d in DEADLINES])
async def test_the_deadline_header_is_ascii_digits_only(value, status):
    """The caller's deadline header is 1*DIGIT (ASCII digits, leading zeros allowed, spaces and
    tabs around it ignored): a sign, an underscore, an inner space, U+00A0 or non-ASCII digits
    get 400 and are not forwarded (int() accepts several of those)."""
    request = f"GET /x HTTP/1.1\r\nHost: svc\r\n{DEADLINE_HEADER}:".encode() + value + b"\r\n\r\n"
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        got, _, _ = await send(own, request)
    want = (status, 1 if status == 200 else 0)
    assert (got, len(up.requests)) == want, called(
        f"GET with {DEADLINE_HEADER}:{value!r} (status, upstream requests)",
        (got, len(up.requests)),
        want,
    )


LENGTHS = [("5", 200), ("05", 200), ("+5", 400), ("5_0", 400), ("-5", 400)]


@pytest.mark.points(1)
@pytest.mark.parametrize(("value", "status"), LENGTHS, ids=[d[0] for d in LENGTHS])
async def test_content_length_is_ascii_digits_only(value, status):
    """Content-Length is 1*DIGIT (RFC 9110 §8.6): a sign or an underscore gets 400 and is not
    forwarded (int() accepts both); leading zeros are allowed."""
    request = f"POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: {value}\r\n\r\nhello".encode()
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        got, _, _ = await send(own, request)
    bodies = [body for _, body in up.requests]
    want = (status, [b"hello"] if status == 200 else [])
    assert (got, bodies) == want, called(
        f"POST with Content-Length: {value} and the 5 bytes 'hello' (status, bodies upstream)",
        (got, bodies),
        want,
    )


@pytest.mark.points(1)
async def test_fields_the_callers_connection_names_are_not_forwarded():
    """Every field the caller's Connection fields name (comma-separated, any case, several lines)
    describes the caller's hop and is not forwarded; the rest is (RFC 9110 §7.6.1)."""
    request = (
        b"GET /x HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive , X-Hop\r\nx-hop: 1\r\n"
        b"X-Keep: k\r\nconnection: Secret-Token\r\nSECRET-TOKEN: t\r\n\r\n"
    )
    async with upstream([200]) as (up, port), sidecar(port, policy()) as own:
        await send(own, request)
    got = (up.header(0, "x-hop"), up.header(0, "secret-token"), up.header(0, "x-keep"))
    want = ([], [], ["k"])
    assert got == want, called(
        "GET with Connection: keep-alive , X-Hop / connection: Secret-Token (upstream's x-hop, "
        "secret-token, x-keep values)",
        got,
        want,
    )


@pytest.mark.points(1)
async def test_fields_the_upstreams_connection_names_are_not_relayed():
    """Every field the upstream's Connection field names describes the upstream's hop and is not
    relayed to the caller; the rest of its answer is (RFC 9110 §7.6.1)."""

    async def naming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: close , X-Upstream-Hop\r\n"
            b"x-upstream-hop: secret\r\nX-End: 1\r\n\r\nok"
        )
        await writer.drain()

    async with tcp_server(naming) as (_, port), sidecar(port, policy()) as own:
        status, headers, body = await send(own, GET)
    got = (status, "x-upstream-hop" in headers, headers.get("x-end"), body)
    want = (200, False, "1", b"ok")
    assert got == want, called(
        "GET, upstream answering Connection: close , X-Upstream-Hop and x-upstream-hop: secret "
        "(status, x-upstream-hop relayed, X-End, body)",
        got,
        want,
    )
