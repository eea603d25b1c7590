"""Cursor semantics: a client that loops with after=cursor sees every message once, in order."""

from __future__ import annotations

import asyncio

import pytest
from _helpers import (
    bounded,
    called,
    exchange,
    running,
)
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

# One step of a schedule: publish k messages (over HTTP or in process), or poll once (with
# limit=k or without a limit). Every poll uses timeout=0, so a step never waits.
STEP = st.one_of(
    st.tuples(st.just("publish"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("poll"), st.integers(1, 4), st.booleans()),
)


class Follower:
    """A client that follows the log with after=cursor and records what it was sent.

    It speaks raw HTTP/1.1 over asyncio streams, its answers parsed with h11: a schedule costs
    a few milliseconds, not the set-up of an HTTP client library per example.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.cursor = 0
        self.delivered: list[str] = []
        self.problems: list[str] = []

    async def poll(self, limit: int | None) -> bool:
        """Poll once; True if the answer moved the cursor forward."""
        query = f"after={self.cursor}&timeout=0" + (f"&limit={limit}" if limit else "")
        data = f"GET /messages?{query} HTTP/1.1\r\nHost: spec\r\n\r\n".encode()
        reply = await exchange(self.port, data, f"GET /messages?{query}", timeout=2.0)
        if reply.status == 204:
            return False
        try:
            data = reply.json()
            ids = [m["id"] for m in data["messages"]]
            cursor = data["cursor"]
        except (ValueError, KeyError, TypeError) as error:
            self.problems.append(
                f"GET ?{query} answered {reply.status} {reply.body[:80]!r} ({error})"
            )
            return False
        if reply.status != 200 or not ids or cursor != ids[-1]:
            self.problems.append(
                f"GET ?{query} answered {reply.status} with ids {ids}, cursor {cursor}"
            )
            return False
        self.delivered += [m["body"] for m in data["messages"]]
        moved = data["cursor"] > self.cursor
        self.cursor = data["cursor"]
        return moved


async def _follow(schedule: list[tuple[str, int, bool]]) -> tuple[list[str], Follower]:
    published: list[str] = []
    async with running(poll_timeout=30.0, max_batch=3) as srv:
        follower = Follower(srv.port)
        for kind, n, flag in schedule:
            if kind == "poll":
                await follower.poll(n if flag else None)
                continue
            for _ in range(n):
                body = f"m{len(published) + 1}"
                published.append(body)
                if flag:
                    post = (
                        "POST /messages HTTP/1.1\r\nHost: spec\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n{body}"
                    ).encode()
                    await exchange(srv.port, post, f"POST /messages {body!r}", timeout=2.0)
                else:
                    srv.server.publish(body)
        for _ in range(len(published) + 1):  # drain: at most one poll per message, plus one
            if not await follower.poll(None):
                break
    return published, follower


@pytest.mark.points(4)
# No shrinking: a failing schedule is at most 10 steps, and a broken server must not keep
# Hypothesis replaying it past the spec's time limit. The explicit examples are the
# boundaries: nothing at all, a poll before any message, a limit exactly the messages there
# are, one more and one fewer than max_batch=3, publishes landing between limited polls.
@settings(max_examples=20, phases=[Phase.explicit, Phase.generate])
@given(schedule=st.lists(STEP, max_size=10))
@example(schedule=[])
@example(schedule=[("poll", 1, False), ("publish", 1, False)])
@example(schedule=[("publish", 3, False), ("poll", 3, True)])
@example(schedule=[("publish", 3, True), ("poll", 2, True), ("poll", 4, True)])
@example(schedule=[("publish", 3, False), ("publish", 1, True), ("poll", 4, False)])
@example(
    schedule=[("publish", 2, False), ("poll", 1, True), ("publish", 2, True), ("poll", 1, True)]
)
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
    async with running(poll_timeout=30.0) as srv:

        async def publisher(name: str) -> dict[int, str]:
            ids = {}
            for i in range(per_publisher):
                body = f"{name}-{i}"
                post = (
                    "POST /messages HTTP/1.1\r\nHost: spec\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}"
                ).encode()
                reply = await exchange(srv.port, post, f"POST /messages {body!r}")
                ids[reply.json()["id"]] = body
            return ids

        async def follow() -> list[tuple[int, str]]:
            seen: list[tuple[int, str]] = []
            cursor = 0
            for _ in range(total):  # every useful answer carries at least one message
                if len(seen) >= total:
                    break
                query = f"after={cursor}&limit=7&timeout=3"
                get = f"GET /messages?{query} HTTP/1.1\r\nHost: spec\r\n\r\n".encode()
                reply = await exchange(srv.port, get, f"GET /messages?{query}", timeout=5.0)
                if reply.status != 200 or not reply.json()["messages"]:
                    break
                data = reply.json()
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
