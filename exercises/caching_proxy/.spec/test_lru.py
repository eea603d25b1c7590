"""The store: at most max_bytes of bodies, the least recently used response evicted first.

Checked directly (cache.size, len(cache), and which lookups hit) against an OrderedDict model.
"""

from __future__ import annotations

from collections import OrderedDict

from _helpers import Script, clock, exchange, get, httpdate
from caching_proxy import Cache, Response
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, step

MAX = 300


def sized_origin(now, sizes: dict[str, int]) -> Script:
    def reply(request):
        headers = [("Date", httpdate(now())), ("Cache-Control", "max-age=1000")]
        return Response(200, headers, b"x" * sizes[request.target])

    return Script(reply)


def new_cache(max_bytes: int = MAX):
    now = clock()
    with step(f"Cache(max_bytes={max_bytes}, clock=<spec clock>)"):
        cache = Cache(max_bytes=max_bytes, clock=now)
    return now, cache


def test_least_recently_used_goes_first() -> None:
    """When a new response needs room, the least recently *used* response is evicted, not the
    oldest stored."""
    now, cache = new_cache()
    origin = sized_origin(now, {"/a": 100, "/b": 100, "/c": 100, "/d": 100})
    for target in ("/a", "/b", "/c", "/a", "/d"):
        exchange(cache, get(target), origin)
    kinds = {target: exchange(cache, get(target), origin)[0] for target in ("/a", "/c", "/d")}
    kinds["/b"] = exchange(cache, get("/b"), origin)[0]
    want = {"/a": "fresh", "/c": "fresh", "/d": "fresh", "/b": "miss"}
    assert kinds == want, called(
        "GET /a /b /c (100 bytes each), GET /a, GET /d with max_bytes=300; then GET each (kinds)",
        kinds,
        want,
    )


def test_a_lookup_that_finds_a_stale_response_is_a_use() -> None:
    """Finding a stale response to revalidate it counts as a use of it, like serving it: the least
    recently used response is evicted before it."""
    now, cache = new_cache()

    def reply(request):
        lifetime = "10" if request.target == "/a" else "1000"
        headers = [("Date", httpdate(now())), ("Cache-Control", f"max-age={lifetime}")]
        return Response(200, headers, b"x" * (150 if request.target == "/c" else 100))

    origin = Script(reply)
    exchange(cache, get("/a"), origin)
    exchange(cache, get("/b"), origin)
    now.advance(20)
    with step("cache.lookup(GET /a) once /a is stale (the revalidation not completed)"):
        first = cache.lookup(get("/a")).kind
    assert first == "revalidate", called("cache.lookup(GET /a) stale by 10 s", first, "revalidate")
    exchange(cache, get("/c"), origin)
    with step("cache.lookup(GET /b)"):
        b = cache.lookup(get("/b")).kind
    with step("cache.lookup(GET /a)"):
        a = cache.lookup(get("/a")).kind
    assert (a, b) == ("revalidate", "miss"), called(
        "GET /a (max-age=10), GET /b (100 bytes each); 20 s later lookup(GET /a); GET /c (150 "
        f"bytes, max_bytes={MAX}); then lookup(GET /a), lookup(GET /b) (kinds)",
        (a, b),
        ("revalidate", "miss"),
    )


def test_too_big_is_not_stored() -> None:
    """A response larger than max_bytes is not stored, and evicts nothing."""
    now, cache = new_cache()
    origin = sized_origin(now, {"/a": 100, "/big": MAX + 1})
    exchange(cache, get("/a"), origin)
    exchange(cache, get("/big"), origin)
    got = (
        cache.size,
        exchange(cache, get("/a"), origin)[0],
        exchange(cache, get("/big"), origin)[0],
    )
    assert got == (100, "fresh", "miss"), called(
        f"GET /a (100 bytes), GET /big ({MAX + 1} bytes) with max_bytes={MAX}; (size, then GET /a, GET /big)",
        got,
        (100, "fresh", "miss"),
    )


def test_replacing_an_entry_frees_its_bytes() -> None:
    """Storing a new response for a stored key replaces it: its bytes are counted once."""
    now, cache = new_cache()
    sizes = {"/a": 200}
    origin = sized_origin(now, sizes)
    exchange(cache, get("/a"), origin)
    sizes["/a"] = 250
    now.advance(1000)
    exchange(cache, get("/a"), origin)
    assert (cache.size, len(cache)) == (250, 1), called(
        "GET /a (200 bytes), then again once stale (250 bytes): (cache.size, len(cache))",
        (cache.size, len(cache)),
        (250, 1),
    )


KEYS = "abcdefgh"


@settings(max_examples=60)
@given(
    sizes=st.lists(st.integers(0, MAX + 1), min_size=len(KEYS), max_size=len(KEYS)),
    plan=st.lists(st.sampled_from(KEYS), max_size=40),
)
@example(
    sizes=[100, 100, 100, 1, 0, 0, 0, 0], plan=list("abcd")
)  # exactly full, then one byte over
@example(sizes=[MAX, MAX + 1, 1, 0, 0, 0, 0, 0], plan=list("abcab"))  # exactly max_bytes; one above
@example(sizes=[MAX - 1, 1, 1, 0, 0, 0, 0, 0], plan=list("abac"))  # one below, then fills up
@example(sizes=[0] * len(KEYS), plan=list("abcdefgh"))  # empty bodies
@example(sizes=[150, 150, 150, 0, 0, 0, 0, 0], plan=list("abacab"))
def test_lru_model(sizes: list[int], plan: list[str]) -> None:
    """Stored bytes never exceed max_bytes, and what is stored is exactly what an LRU of that many
    bytes would hold."""
    now, cache = new_cache()
    size_of = {f"/{k}": s for k, s in zip(KEYS, sizes, strict=True)}
    origin = sized_origin(now, size_of)
    model: OrderedDict[str, int] = OrderedDict()
    for number, key in enumerate(plan, 1):
        target = f"/{key}"
        kind, _ = exchange(cache, get(target), origin)
        want = "fresh" if target in model else "miss"
        if target in model:
            model.move_to_end(target)
        elif size_of[target] <= MAX:
            while sum(model.values()) + size_of[target] > MAX:
                model.popitem(last=False)
            model[target] = size_of[target]
        where = f"max_bytes={MAX}, sizes {size_of}; GET {' '.join(plan[:number])}"
        assert kind == want, called(f"{where}: the last GET's kind", kind, want)
        got = (cache.size, len(cache))
        assert got == (sum(model.values()), len(model)), called(
            f"{where}: (cache.size, len(cache))", got, (sum(model.values()), len(model))
        )
