"""Helpers for the auth_middleware specs: token minting, an echo app, a client, a challenge parser."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import httpx
import jwt  # PyJWT: the independent oracle that mints well-formed tokens

from grader.spectools import bounded, short

# 64 bytes: long enough that PyJWT raises no key-length warning even for HS512 (RFC 7518 §3.2).
KEY = bytes(range(100, 164))
OTHER_KEY = bytes(range(1, 65))

# RFC 7515 Appendix A.1 (see VECTORS.md, "JWT"): the published HS256 example.
RFC_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
)
RFC_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
RFC_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
RFC_EXP = 1300819380


def mint(claims: dict[str, Any], key: bytes = KEY, algorithm: str = "HS256", **headers: Any) -> str:
    """A token minted by PyJWT."""
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


def b64(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hs256(signing_input: str, key: bytes = KEY) -> str:
    """The base64url HS256 signature of ``signing_input`` (the exact text, whatever it is)."""
    return b64(hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest())


def sign_segments(header_b64: str, payload_b64: str, key: bytes = KEY) -> str:
    """A token made of these two segment texts, correctly HMAC-SHA256 signed over them."""
    return f"{header_b64}.{payload_b64}.{hs256(f'{header_b64}.{payload_b64}', key)}"


def sign_raw(header: bytes, payload: bytes, key: bytes = KEY) -> str:
    """A correctly HS256-signed token around arbitrary header and payload bytes."""
    return sign_segments(b64(header), b64(payload), key)


def sign_json(header: dict[str, Any], claims: dict[str, Any], key: bytes = KEY) -> str:
    """A correctly HMAC-SHA256-signed token whatever the header says (for crafted attacks)."""
    return sign_raw(json.dumps(header).encode(), json.dumps(claims).encode(), key)


def segments(token: str) -> list[str]:
    return token.split(".")


# --- the compare_digest spy -----------------------------------------------------------------


def as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("ascii", "replace")
    return None


def compared(calls: Iterable[tuple[Any, Any]], one: bytes, other: bytes) -> bool:
    """Whether some recorded call compared exactly ``one`` with ``other`` (either order)."""
    want = sorted([one, other])
    return any(sorted([as_bytes(a) or b"", as_bytes(b) or b""]) == want for a, b in calls)


# --- driving the middleware -----------------------------------------------------------------


class EchoApp:
    """The inner ASGI app: records each scope it gets and answers 200 with the claims it saw."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        state = scope.get("state") or {}
        body = json.dumps({"claims": state.get("claims")}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @property
    def calls(self) -> int:
        return len(self.scopes)

    @property
    def last_claims(self) -> Any:
        return (self.scopes[-1].get("state") or {}).get("claims") if self.scopes else None


async def request(
    app: Any,
    method: str,
    path: str,
    token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> httpx.Response:
    """One request through ``app`` with a real HTTP client (httpx over ASGITransport)."""
    all_headers = list(headers or [])
    if token is not None:
        all_headers.append(("Authorization", f"Bearer {token}"))
    what = f"{method} {path}" + (" with a bearer token" if token is not None else "")

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=all_headers)

    try:
        return await bounded(go(), 5.0, f"the response to {what}")
    except AssertionError:
        raise
    except Exception as exc:  # the middleware crashed instead of answering
        raise AssertionError(f"Sent {what}; the middleware raised {short(exc)}") from None


_PARAM = r'([A-Za-z_]+)="([^"\\]*)"'
_CHALLENGE = re.compile(rf"Bearer(?: +{_PARAM}(?: *, *{_PARAM})*)?", re.IGNORECASE)


def challenge(response: httpx.Response) -> dict[str, str] | None:
    """The parameters of a ``WWW-Authenticate: Bearer k="v", ...`` header; None if malformed."""
    value = response.headers.get("www-authenticate")
    if value is None or not _CHALLENGE.fullmatch(value.strip()):
        return None
    return dict(re.findall(_PARAM, value))
