"""Bearer-token authentication and per-route authorization, as ASGI middleware.

Theory of operation
-------------------
Two layers, each usable on its own:

* ``verify_jwt`` is pure: a token string, a key and the current time in; the claims out, or
  ``InvalidToken`` with a short reason. It never reads a clock or the network, so it is tested
  with plain values and reused by anything that holds a token.
* ``AuthMiddleware`` is the thin ASGI adapter: it picks the first ``Rule`` that matches the
  request, pulls the bearer token from the ``Authorization`` header, asks ``verify_jwt``, and
  either answers 400/401/403 itself or calls the inner app with the claims in
  ``scope["state"]["claims"]``.

The verifier is strict on purpose. A JWT arrives from an attacker; every field of it is
attacker-chosen, including the header that *names the algorithm*. So the algorithm is fixed
by the server (HS256 only, RFC 8725 §3.1), the base64url text must be the one canonical
encoding of its bytes, and every failure is the same exception, never a stray ``KeyError``
that would turn into a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AuthMiddleware", "InvalidToken", "Rule", "b64url_decode", "verify_jwt"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The base64url alphabet (RFC 4648 §5); JWS forbids the "=" padding (RFC 7515 §2).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# Characters allowed inside a quoted error_description (RFC 6750 §3): printable ASCII
# except the double quote and the backslash.
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class InvalidToken(Exception):
    """The token is missing a part, malformed, badly signed, expired or not for us."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the verifier ---------------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2), accepting only the canonical encoding."""
    if not _BASE64URL.fullmatch(segment):
        raise InvalidToken("segment is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:  # a length of 4k+1 characters can't encode whole bytes
        raise InvalidToken("segment has an impossible base64url length") from None
    # The last character may carry unused low bits; only all-zero is canonical. Re-encoding
    # and comparing rejects every other spelling of the same bytes, so one token has exactly
    # one text form (blocklists and caches keyed by the token string can rely on it).
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise InvalidToken("segment is not canonical base64url")
    return raw


def verify_jwt(
    token: str,
    key: bytes,
    *,
    now: float,
    leeway: float = 0,
    issuer: str | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Verify an HS256 JWT (compact JWS) and return its claims, or raise ``InvalidToken``."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("token must have three dot-separated segments")
    header_b64, payload_b64, signature_b64 = parts

    header = _json_object(b64url_decode(header_b64), "header")
    # RFC 7515 §4.1.11: "crit" names extensions the recipient MUST understand, or reject the
    # token. This verifier understands none, so a "crit" of any shape makes the token invalid
    # (an empty list is forbidden too). Ignoring it would accept, say, an RFC 7797 "b64": false
    # token whose signature covers bytes other than the ones we read.
    if "crit" in header:
        raise InvalidToken("critical header extensions are not supported")
    # The server decides the algorithm, never the token: "none", HS512 or RS256 in the header
    # are all refused before any key is touched (RFC 8725 §2.1 and §3.1).
    if header.get("alg") != "HS256":
        raise InvalidToken("algorithm must be HS256")

    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    expected = hmac.new(key, signing_input, hashlib.sha256).digest()
    # compare_digest takes the same time wherever the first differing byte is, so response
    # times don't tell an attacker how many leading bytes of a forged MAC were right.
    if not hmac.compare_digest(expected, b64url_decode(signature_b64)):
        raise InvalidToken("signature does not match")

    # Only now are the claims trusted enough to read.
    claims = _json_object(b64url_decode(payload_b64), "payload")
    _check_times(claims, now, leeway)
    _check_issuer(claims, issuer)
    _check_audience(claims, audience)
    return claims


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise InvalidToken(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"{what} is not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """The claim as seconds since the epoch, None when absent (RFC 7519 §2, NumericDate)."""
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int subclass in Python: {"exp": true} must not mean "expires at 1".
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} is not a number")
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        raise InvalidToken(f"{name} is out of range") from None
    # NaN compares false with everything, so a NaN exp would never expire.
    if not math.isfinite(seconds):
        raise InvalidToken(f"{name} is not finite")
    return seconds


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    # Leeway always widens the window: it forgives clock skew between issuer and us.
    expires = _numeric_date(claims, "exp")
    if expires is not None and now >= expires + leeway:  # RFC 7519 §4.1.4: now must be before
        raise InvalidToken("token has expired")
    not_before = _numeric_date(claims, "nbf")
    if not_before is not None and now < not_before - leeway:  # §4.1.5: on or after is fine
        raise InvalidToken("token is not valid yet")


def _check_issuer(claims: Mapping[str, Any], issuer: str | None) -> None:
    if issuer is not None and claims.get("iss") != issuer:
        raise InvalidToken("issuer does not match")


def _check_audience(claims: Mapping[str, Any], audience: str | None) -> None:
    if audience is None:
        # RFC 7519 §4.1.3: a token addressed to someone must be refused by a recipient that
        # can't find itself among the addressees.
        if "aud" in claims:
            raise InvalidToken("token has an audience and none is configured")
        return
    aud = claims.get("aud")
    addressees = [aud] if isinstance(aud, str) else aud  # one string, or a list of them
    if not isinstance(addressees, list) or audience not in addressees:
        raise InvalidToken("audience does not match")


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may call the routes under ``path_prefix``.

    The middleware tries the rules in list order and uses the first that matches (first-match,
    as in a firewall or Spring Security), so put the specific rules before the general ones.
    """

    path_prefix: str
    methods: Collection[str] | None = None  # None: every method
    roles: Collection[str] = frozenset()  # any one of them suffices
    scopes: Collection[str] = frozenset()  # all of them are needed
    public: bool = False  # no token needed at all

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule covers ``method`` on ``path`` (prefix compared by whole segments)."""
        if self.methods is not None and method.upper() not in {m.upper() for m in self.methods}:
            return False
        # "/admin" covers "/admin" and "/admin/users" but not "/administrator".
        prefix = self.path_prefix.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")

    def allows(self, claims: Mapping[str, Any]) -> bool:
        """Whether verified ``claims`` carry a listed role (if any) and every listed scope."""
        if self.roles and not set(self.roles) & _roles(claims):
            return False
        return set(self.scopes) <= _scopes(claims)


def _roles(claims: Mapping[str, Any]) -> set[str]:
    # Only a JSON array counts: testing `"admin" in "superadmin"` on a string would be true.
    roles = claims.get("roles")
    if not isinstance(roles, list):
        return set()
    return {role for role in roles if isinstance(role, str)}


def _scopes(claims: Mapping[str, Any]) -> set[str]:
    # OAuth 2.0 "scope": one string of space-separated scope tokens (RFC 8693 §4.2, RFC 9068).
    scope = claims.get("scope")
    return set(scope.split()) if isinstance(scope, str) else set()


# --- the ASGI middleware --------------------------------------------------------------------


class AuthMiddleware:
    """ASGI 3 middleware: bearer JWT authentication, then per-route authorization."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        key: bytes,
        rules: Sequence[Rule],
        realm: str = "api",
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.key = key
        self.rules = tuple(rules)
        self.realm = realm
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and the rest are not ours to judge
            await self.app(scope, receive, send)
            return

        rule = next((r for r in self.rules if r.matches(scope["method"], scope["path"])), None)
        if rule is not None and rule.public:
            await self.app(scope, receive, send)
            return

        values = [value for name, value in scope["headers"] if name.lower() == b"authorization"]
        if len(values) > 1:
            # Which one would the app behind us read? RFC 6750 §3.1: a request that repeats a
            # parameter is malformed, 400 invalid_request (a new token would not help).
            await self._refuse(send, 400, "invalid_request", "more than one Authorization header")
            return
        try:
            token = _bearer_token(values)
            if token is None:
                # No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
                await self._refuse(send, 401)
                return
            claims = verify_jwt(
                token,
                self.key,
                now=self.clock(),
                leeway=self.leeway,
                issuer=self.issuer,
                audience=self.audience,
            )
        except InvalidToken as exc:
            await self._refuse(send, 401, "invalid_token", exc.reason)
            return

        # Deny by default: a path that no rule names is open to nobody.
        if rule is None or not rule.allows(claims):
            needed = sorted(rule.scopes) if rule is not None else []
            await self._refuse(
                send, 403, "insufficient_scope", "token does not grant this route", needed
            )
            return

        # Copy before changing: the scope (and its state) belongs to the server and to any
        # middleware outside us (ASGI spec, "Middleware").
        inner = dict(scope)
        inner["state"] = {**scope.get("state", {}), "claims": claims}
        await self.app(inner, receive, send)

    async def _refuse(
        self,
        send: Send,
        status: int,
        error: str | None = None,
        description: str = "",
        scopes: Sequence[str] = (),
    ) -> None:
        """Answer with a Bearer challenge (RFC 6750 §3) and a small JSON body."""
        params = [f'realm="{_quotable(self.realm)}"']
        if error is not None:
            params += [f'error="{error}"', f'error_description="{_quotable(description)}"']
        if scopes:
            params.append(f'scope="{_quotable(" ".join(scopes))}"')
        body = json.dumps({"error": error or "unauthorized", "error_description": description})
        payload = body.encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"www-authenticate", ("Bearer " + ", ".join(params)).encode("ascii")),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _bearer_token(values: Sequence[bytes]) -> str | None:
    """The bearer token in the (one or no) Authorization value; None without bearer credentials."""
    if not values:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":  # auth schemes are case-insensitive (RFC 9110 §11.1)
        return None  # Basic or another scheme: for us, no credentials
    return token.strip()


def _quotable(text: str) -> str:
    """``text`` with every character that can't sit in a quoted-string parameter removed."""
    return _NOT_QUOTABLE.sub("", text)
