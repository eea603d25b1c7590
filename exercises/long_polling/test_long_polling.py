"""Examples of what the long-polling server must do. Run: nox -s try -- long_polling"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

try:
    from long_polling import LongPollServer
except ImportError as err:
    raise ImportError(
        "MISSING CLASS --> could not import LongPollServer from long_polling.py"
    ) from err


@contextlib.asynccontextmanager
async def serve(**options: object) -> AsyncIterator[tuple[LongPollServer, str]]:
    server = LongPollServer(**options)
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.close()


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=5.0)


async def test_post_then_get() -> None:
    async with serve() as (_, url), http_client() as http:
        posted = await http.post(f"{url}/messages", content=b"hello")
        assert posted.status_code == 201, (
            f"POST /messages: status {posted.status_code}; expected 201"
        )
        assert posted.json() == {"id": 1}, f"POST /messages: {posted.json()}; expected {{'id': 1}}"

        got = await http.get(f"{url}/messages?after=0")
        want = {"messages": [{"id": 1, "body": "hello"}], "cursor": 1}
        assert got.json() == want, f"GET /messages?after=0: {got.json()}; expected {want}"


async def test_nothing_new_before_the_timeout_is_204() -> None:
    async with serve() as (server, url), http_client() as http:
        server.publish("seen already")
        got = await http.get(f"{url}/messages?after=1&timeout=0.05")
        assert got.status_code == 204, f"GET ?after=1&timeout=0.05: {got.status_code}; expected 204"
        assert got.content == b"", f"a 204 has no body; got {got.content!r}"


async def test_a_parked_poll_wakes_on_publish() -> None:
    parked = asyncio.Event()

    def on_waiting(count: int) -> None:
        if count == 1:
            parked.set()

    async with serve(on_waiting=on_waiting) as (server, url), http_client() as http:
        poll = asyncio.create_task(http.get(f"{url}/messages?after=0"))
        await asyncio.wait_for(parked.wait(), 2.0)  # the server reports: one poll waiting
        assert server.waiting == 1, f"server.waiting: {server.waiting}; expected 1"
        server.publish("news")
        got = await asyncio.wait_for(poll, 2.0)
        want = {"messages": [{"id": 1, "body": "news"}], "cursor": 1}
        assert got.json() == want, f"parked GET then publish: {got.json()}; expected {want}"


async def test_errors() -> None:
    async with serve() as (_, url), http_client() as http:
        for method, path, status in [
            ("GET", "/nowhere", 404),
            ("DELETE", "/messages", 405),
            ("GET", "/messages?after=-1", 400),
            ("GET", "/messages?after=abc", 400),
        ]:
            got = await http.request(method, f"{url}{path}")
            assert got.status_code == status, (
                f"{method} {path}: {got.status_code}; expected {status}"
            )
