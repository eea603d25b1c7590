"""Age and freshness over generated exchanges, against RFC 9111 §4.2.3 computed term by term.

The oracle is the RFC's own arithmetic on whole seconds (the spec clock only moves in whole
seconds): the learner's Cache sees the same request time, response time, Date and Age.
"""

from __future__ import annotations

from _helpers import BODY, Script, clock, exchange, get, httpdate
from caching_proxy import Cache, Response
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, step


def rfc_current_age(age_value: int, date_offset: int, delay: int, resident: int) -> int:
    """RFC 9111 §4.2.3 with request_time 0, response_time = delay, date = delay - date_offset."""
    apparent_age = max(0, date_offset)
    corrected_age_value = age_value + delay
    corrected_initial_age = max(apparent_age, corrected_age_value)
    return corrected_initial_age + resident


@settings(max_examples=80)
@given(
    max_age=st.integers(0, 2000),
    age_value=st.integers(0, 600),
    date_offset=st.integers(-60, 600),
    delay=st.integers(0, 30),
    resident=st.integers(0, 1200),
)
@example(max_age=60, age_value=0, date_offset=0, delay=0, resident=59)  # one below the lifetime
@example(max_age=60, age_value=0, date_offset=0, delay=0, resident=60)  # at the lifetime: stale
@example(max_age=60, age_value=50, date_offset=0, delay=4, resident=5)  # Age + delay: 59, fresh
@example(max_age=60, age_value=50, date_offset=0, delay=4, resident=6)  # Age + delay: 60, stale
@example(max_age=60, age_value=10, date_offset=30, delay=0, resident=29)  # apparent age wins
@example(max_age=60, age_value=0, date_offset=-60, delay=0, resident=10)  # Date in the future
@example(max_age=0, age_value=0, date_offset=0, delay=0, resident=0)  # max-age=0: stale at once
def test_age_and_freshness(
    max_age: int, age_value: int, date_offset: int, delay: int, resident: int
) -> None:
    """A stored response is served fresh exactly while max-age > its current age (RFC 9111 §4.2),
    with Age equal to that current age (§4.2.3, §5.1)."""
    now = clock()
    with step("Cache(max_bytes=10_000, clock=<spec clock>)"):
        cache = Cache(max_bytes=10_000, clock=now)

    def reply(request):
        now.advance(delay)  # the origin takes `delay` seconds to answer
        headers = [
            ("Date", httpdate(now() - date_offset)),
            ("Age", str(age_value)),
            ("Cache-Control", f"max-age={max_age}"),
        ]
        return Response(200, headers, BODY)

    origin = Script(reply)
    exchange(cache, get("/a"), origin)
    now.advance(resident)
    with step("cache.lookup(GET /a)"):
        decision = cache.lookup(get("/a"))
    current_age = rfc_current_age(age_value, date_offset, delay, resident)
    fresh = max_age > current_age
    where = (
        f"GET /a answered after {delay} s with Age: {age_value}, a Date {date_offset} s old and "
        f"max-age={max_age}; cache.lookup(GET /a) {resident} s later"
    )
    got_age = None if decision.serve is None else decision.serve.header("age")
    if fresh:
        assert (decision.kind, got_age) == ("fresh", str(current_age)), called(
            f"{where} (kind, Age)", (decision.kind, got_age), ("fresh", str(current_age))
        )
    else:
        assert decision.kind == "revalidate", called(
            f"{where}: current age {current_age}, not below max-age (kind)",
            decision.kind,
            "revalidate",
        )
