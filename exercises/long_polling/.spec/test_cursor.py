"""Cursor semantics: a client that loops with after=cursor sees every message once, in order."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import (
    bounded,
    called,
    client,
    collect_garbage,  # noqa: F401  (autouse fixture)
    running,
)
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

# One step of a schedule: publish k messages (over HTTP or in process), or poll once (with
# limit=k or without a limit). Every poll uses timeout=0, so a step never waits.
STEP = st.one_of(
    st.tuples(st.just("publish"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("poll"), st.integers(1, 4), st.booleans()),
)


class Follower:
    """A client that follows the log with after=cursor and records what it was sent."""

    def __init__(self, http, url: str) -> None:
        self.http, self.url = http, url
        self.cursor = 0
        self.delivered: list[str] = []
        self.problems: list[str] = []

    async def poll(self, limit: int | None) -> bool:
        """Poll once; True if the answer moved the cursor forward."""
        query = f"after={self.cursor}&timeout=0" + (f"&limit={limit}" if limit else "")
        resp = await bounded(self.http.get(f"{self.url}/messages?{query}"), 2.0, f"GET ?{query}")
        if resp.status_code == 204:
            return False
        data = resp.json()
        ids = [m["id"] for m in data["messages"]]
        if resp.status_code != 200 or not ids or data["cursor"] != ids[-1]:
            self.problems.append(
                f"GET ?{query} answered {resp.status_code} with ids {ids}, cursor {data['cursor']}"
            )
            return False
        self.delivered += [m["body"] for m in data["messages"]]
        moved = data["cursor"] > self.cursor
        self.cursor = data["cursor"]
        return moved


async def _follow(schedule: list[tuple[str, int, bool]]) -> tuple[list[str], Follower]:
    published: list[str] = []
    async with running(poll_timeout=30.0, max_batch=3) as srv, client() as http:
        follower = Follower(http, srv.url)
        for kind, n, flag in schedule:
            if kind == "poll":
                await follower.poll(n if flag else None)
                continue
            for _ in range(n):
                body = f"m{len(published) + 1}"
                published.append(body)
                if flag:
                    await bounded(
                        http.post(f"{srv.url}/messages", content=body.encode()), 2.0, "POST"
                    )
                else:
                    srv.server.publish(body)
        for _ in range(len(published) + 1):  # drain: at most one poll per message, plus one
            if not await follower.poll(None):
                break
    return published, follower


@pytest.mark.points(4)
# No shrinking: a failing schedule is at most 10 steps, and a broken server must not keep
# Hypothesis replaying it past the spec's time limit.
@settings(max_examples=25, phases=[Phase.explicit, Phase.generate])
@given(schedule=st.lists(STEP, max_size=10))
def test_following_the_cursor_delivers_each_message_exactly_once(schedule) -> None:
    """Polling with after=cursor, publishes and polls interleaved, delivers each message once."""
    published, follower = asyncio.run(_follow(schedule))
    assert not follower.problems, f"schedule {schedule}: {follower.problems[0]}"
    assert follower.delivered == published, called(
        f"schedule {schedule} (bodies delivered by following the cursor)",
        follower.delivered,
        published,
    )


@pytest.mark.points(4)
async def test_a_follower_racing_concurrent_publishers_misses_nothing() -> None:
    """A long-polling follower sees every message once, in id order, while 4 clients publish."""
    per_publisher, publishers = 25, 4
    total = per_publisher * publishers
    async with running(poll_timeout=30.0) as srv, client() as http:

        async def publisher(name: str) -> dict[int, str]:
            ids = {}
            async with client() as own:
                for i in range(per_publisher):
                    body = f"{name}-{i}"
                    resp = await own.post(f"{srv.url}/messages", content=body.encode())
                    ids[resp.json()["id"]] = body
            return ids

        async def follow() -> list[tuple[int, str]]:
            seen: list[tuple[int, str]] = []
            cursor = 0
            for _ in range(total):  # every useful answer carries at least one message
                if len(seen) >= total:
                    break
                resp = await http.get(f"{srv.url}/messages?after={cursor}&limit=7&timeout=3")
                if resp.status_code != 200 or not resp.json()["messages"]:
                    break
                data = resp.json()
                seen += [(m["id"], m["body"]) for m in data["messages"]]
                cursor = data["cursor"]
            return seen

        follower = asyncio.create_task(follow())
        results = await bounded(
            asyncio.gather(*(publisher(f"p{n}") for n in range(publishers))), 8.0, "the publishers"
        )
        seen = await bounded(follower, 5.0, f"the follower to see {total} messages")
        published = {k: v for ids in results for k, v in ids.items()}
        assert len(published) == total, called(
            f"{total} POSTs from 4 clients (distinct ids returned)", len(published), total
        )
        want = sorted(published.items())
        first_bad = next(
            (i for i, pair in enumerate(zip(seen, want, strict=False)) if pair[0] != pair[1]),
            min(len(seen), len(want)),
        )
        assert seen == want, called(
            f"the follower's message #{first_bad + 1} of {len(want)} as (id, body)",
            seen[first_bad] if first_bad < len(seen) else "nothing more",
            want[first_bad] if first_bad < len(want) else "nothing more",
        )
