"""Visible examples for the auth_middleware kata. Run them with `nox -s try -- auth_middleware`.

They use the standard library only: tokens are signed here with hmac, and the middleware is
driven with hand-made ASGI messages, so you can read exactly what goes over the interface.
The hidden specs go much further (forgeries, boundaries, every status code and header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

try:
    from auth_middleware import AuthMiddleware, InvalidToken, Rule, verify_jwt
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import AuthMiddleware, InvalidToken, Rule and verify_jwt "
        "from auth_middleware.py"
    ) from err

KEY = b"a 32-byte-or-longer secret for tests!"
NOW = 1_700_000_000

# RFC 7515 Appendix A.1: the published HS256 example and its key.
RFC_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
)
RFC_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_token(claims: dict, alg: str = "HS256", key: bytes = KEY) -> str:
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def test_rfc7515_example_token_verifies():
    claims = verify_jwt(RFC_TOKEN, RFC_KEY, now=1300819379)
    assert claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}, (
        f"Called verify_jwt(RFC 7515 A.1 token, now=1300819379); returned {claims!r}"
    )


def test_expired_token_is_rejected():
    with pytest.raises(InvalidToken):
        verify_jwt(RFC_TOKEN, RFC_KEY, now=1300819380)


def test_alg_none_is_rejected():
    header = b64(json.dumps({"alg": "none"}).encode())
    payload = b64(json.dumps({"sub": "mallory"}).encode())
    with pytest.raises(InvalidToken):
        verify_jwt(f"{header}.{payload}.", KEY, now=NOW)


def test_a_token_claiming_hs512_is_rejected():
    with pytest.raises(InvalidToken):
        verify_jwt(make_token({"sub": "alice"}, alg="HS512"), KEY, now=NOW)


# --- the middleware, driven by hand -----------------------------------------------------------


async def echo_app(scope, receive, send):
    """The inner app: answers 200 with the claims the middleware handed over."""
    body = json.dumps(scope.get("state", {}).get("claims")).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def call(app, path: str, token: str | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through an ASGI app; returns (status, headers, body)."""
    headers = [(b"host", b"example.test")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start.get("headers", [])), body


def middleware():
    rules = [Rule("/admin", roles={"admin"}), Rule("/public", public=True), Rule("/")]
    return AuthMiddleware(echo_app, key=KEY, rules=rules, realm="demo", clock=lambda: NOW)


async def test_valid_token_reaches_the_app_with_its_claims():
    claims = {"sub": "alice", "roles": ["admin"], "exp": NOW + 60}
    status, _, body = await call(middleware(), "/admin/users", make_token(claims))
    assert status == 200, f"GET /admin/users with an admin token; got {status}, expected 200"
    assert json.loads(body) == claims, f"the app saw claims {body!r}, expected {claims!r}"


async def test_no_token_gets_401_with_a_bare_challenge():
    status, headers, _ = await call(middleware(), "/admin")
    assert status == 401, f"GET /admin without a token; got {status}, expected 401"
    got = headers.get(b"www-authenticate")
    assert got == b'Bearer realm="demo"', f"WWW-Authenticate was {got!r}"


async def test_wrong_role_gets_403_insufficient_scope():
    status, headers, _ = await call(middleware(), "/admin", make_token({"roles": ["user"]}))
    assert status == 403, f"GET /admin with roles ['user']; got {status}, expected 403"
    got = headers.get(b"www-authenticate", b"")
    assert b'error="insufficient_scope"' in got, f"WWW-Authenticate was {got!r}"


async def test_public_route_needs_no_token():
    status, _, _ = await call(middleware(), "/public/logo.png")
    assert status == 200, f"GET /public/logo.png without a token; got {status}, expected 200"
