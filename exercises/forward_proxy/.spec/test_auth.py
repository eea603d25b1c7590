"""Proxy authentication with Basic credentials (RFC 9110 §11.7, §15.5.8; RFC 7617)."""

from __future__ import annotations

import base64

import forward_proxy
import httpx
import pytest
from _helpers import exchange, loopback_policy, running_proxy, tls_pair

from grader.spectools import (
    answer_with,
    bounded,
    called,
    running_h11_origin,
    spy_compare_digest,
    step,
)

USERS = {"alice": "wonder land", "bob": "pässword", "carol": "open:sesame"}


def basic(user: str, password: str, scheme: str = "Basic") -> str:
    return f"{scheme} " + base64.b64encode(f"{user}:{password}".encode()).decode()


CASES = [
    ("missing", None, 407),
    ("wrong-password", basic("alice", "wrong"), 407),
    ("unknown-user", basic("mallory", "wonder land"), 407),
    ("password-prefix", basic("alice", "wonder"), 407),
    ("not-base64", "Basic !!!", 407),
    ("no-colon", "Basic " + base64.b64encode(b"alice").decode(), 407),
    ("other-scheme", "Bearer " + base64.b64encode(b"alice:wonder land").decode(), 407),
    ("good", basic("alice", "wonder land"), 200),
    ("good-lowercase-scheme", basic("alice", "wonder land", "basic"), 200),
    ("good-utf8-password", basic("bob", "pässword"), 200),
    ("good-colon-in-password", basic("carol", "open:sesame"), 200),
]


@pytest.mark.points(3)
@pytest.mark.parametrize(("why", "credential", "status"), CASES, ids=[c[0] for c in CASES])
async def test_proxy_authorization(why: str, credential: str | None, status: int) -> None:
    """With credentials configured a request without valid Basic credentials gets 407 with a
    Proxy-Authenticate Basic challenge and is not forwarded (RFC 9110 §15.5.8, §11.7.1)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port), credentials=USERS) as (proxy, port),
    ):
        lines = [f"GET http://origin.test:{origin.port}/ HTTP/1.1", "Host: x"]
        if credential is not None:
            lines.append(f"Proxy-Authorization: {credential}")
        answer = await exchange(
            port, ("\r\n".join(lines) + "\r\n\r\n").encode(), f"GET with {why} credentials"
        )
        challenge = [v.split()[0].lower() if v else "" for v in answer.values("proxy-authenticate")]
        got = (answer.status, origin.connections, "basic" in challenge if status == 407 else True)
        want = (status, 1 if status == 200 else 0, True)
        assert got == want, called(
            f"GET with {why} credentials (status, origin connections, Basic challenge)", got, want
        )


async def test_credentials_consumed_not_forwarded() -> None:
    """Proxy-Authorization is for this proxy: the origin never sees it, while Authorization meant
    for the origin passes untouched (RFC 9110 §11.7.2)."""
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port), credentials=USERS) as (proxy, port),
    ):
        data = f"GET http://origin.test:{origin.port}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {basic('alice', 'wonder land')}\r\nAuthorization: Bearer for-origin\r\n\r\n"
        answer = await exchange(port, data.encode(), "an authenticated GET")
        got = (answer.status, origin.header("proxy-authorization"), origin.header("authorization"))
        want = (200, [], ["Bearer for-origin"])
        assert got == want, called(
            "an authenticated GET (status, Proxy-Authorization and Authorization at the origin)",
            got,
            want,
        )


@pytest.mark.points(2)
async def test_connect_needs_credentials_too() -> None:
    """CONNECT is authenticated like any request: 407 without credentials; with them httpx reaches
    the TLS origin, certificate verified."""
    server_ctx, client_ctx = tls_pair()
    async with running_h11_origin(answer_with(b"tls ok"), server_ctx) as origin:
        async with running_proxy(loopback_policy(connect=(origin.port,)), credentials=USERS) as (
            proxy,
            port,
        ):
            refused = await exchange(
                port,
                f"CONNECT origin.test:{origin.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                "CONNECT without credentials",
            )
            connections_before = origin.connections
            url = f"http://alice:wonder%20land@127.0.0.1:{port}"
            async with httpx.AsyncClient(
                proxy=url, verify=client_ctx, trust_env=False, timeout=10
            ) as client:
                with step(
                    "httpx GET https://origin.test/ through the proxy with Basic credentials"
                ):
                    answer = await bounded(
                        client.get(f"https://origin.test:{origin.port}/"), 15, "the HTTPS GET"
                    )
        got = (refused.status, connections_before, answer.status_code, answer.content)
        want = (407, 0, 200, b"tls ok")
        assert got == want, called(
            "CONNECT without credentials, then httpx with them (status, origin connections, status, body)",
            got,
            want,
        )


async def test_password_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The password is checked with hmac.compare_digest (constant time), so the time an answer
    takes says nothing about how much of a guess was right."""
    compared = spy_compare_digest(monkeypatch, forward_proxy)
    async with (
        running_h11_origin(answer_with()) as origin,
        running_proxy(loopback_policy(origin.port), credentials=USERS) as (proxy, port),
    ):
        for password in ("wonder land", "wrong guess"):
            data = (
                f"GET http://origin.test:{origin.port}/ HTTP/1.1\r\nHost: x\r\n"
                f"Proxy-Authorization: {basic('alice', password)}\r\n\r\n"
            )
            await exchange(port, data.encode(), f"GET with password {password!r}")

    def as_bytes(value: object) -> bytes:
        return value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]

    def appears(password: str) -> bool:
        # The password itself, "user:password", or its base64 token: any of them compared.
        needles = (password.encode(), basic("alice", password).split()[1].encode())
        return any(n in as_bytes(side) for pair in compared for side in pair for n in needles)

    seen = [appears(password) for password in ("wonder land", "wrong guess")]
    assert seen == [True, True], called(
        "two authenticated GETs, right and wrong password (compare_digest saw each password)",
        seen,
        [True, True],
    )
