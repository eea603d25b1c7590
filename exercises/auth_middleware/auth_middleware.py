"""Bearer-token authentication and per-route authorization, as ASGI middleware.

Two layers:

* ``verify_jwt`` — pure: a token string, a key and the current time in; the claims out, or
  ``InvalidToken``. Verify the HS256 JWT by hand with ``base64``, ``json``, ``hmac`` and
  ``hashlib`` (no JWT library: the kata is to write one).
* ``AuthMiddleware`` — the ASGI 3 adapter: picks the route's ``Rule``, reads the bearer token,
  calls ``verify_jwt``, and answers 400 / 401 / 403 itself or calls the inner app.

Standard library only. See README.md for the rules in full.
"""

from __future__ import annotations

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


class InvalidToken(Exception):
    """The token is missing a part, malformed, badly signed, expired or not for us.

    ``reason`` is a short human-readable explanation. The middleware puts it in the
    ``error_description`` of the WWW-Authenticate header, so keep it printable ASCII without
    double quotes or backslashes.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment (RFC 7515 §2); raise ``InvalidToken`` otherwise.

    TODO: accept only the characters A-Z a-z 0-9 - _ (no "=", "+", "/", spaces, newlines).
    TODO: a length of 4k+1 characters is impossible: reject it.
    TODO: accept only the canonical spelling: the unused low bits of the last character must be
          zero (re-encode the bytes and compare with the input).
    TODO: never let binascii.Error (or anything else) escape: raise InvalidToken.
    """
    raise NotImplementedError


def verify_jwt(
    token: str,
    key: bytes,
    *,
    now: float,
    leeway: float = 0,
    issuer: str | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Verify an HS256 JWT in compact form and return its claims; raise ``InvalidToken`` if not valid.

    ``now`` is the current time in seconds since the epoch (the caller owns the clock);
    ``leeway`` (seconds) forgives clock skew on ``exp`` and ``nbf``.

    TODO: exactly three "."-separated segments: header, payload, signature (base64url each).
    TODO: the header is a JSON object whose "alg" is exactly "HS256". Reject "none", "HS512",
          "RS256", "hs256", a missing alg, anything else. "typ" is optional and not checked.
    TODO: a header with "crit" (of any value) is rejected: it lists extensions the recipient
          MUST understand (RFC 7515 §4.1.11), and this verifier understands none.
    TODO: signature = HMAC-SHA256(key, ASCII bytes of "<header segment>.<payload segment>");
          compare it with hmac.compare_digest, never with ==.
    TODO: the payload is a JSON object (the claims). Only read it after the signature checks.
    TODO: "exp" (if present) must be a finite number (not a bool, string, NaN...);
          the token is expired when now >= exp + leeway.
    TODO: "nbf" (if present) likewise; the token is not yet valid when now < nbf - leeway.
    TODO: issuer given -> "iss" must equal it.
    TODO: audience given -> "aud" must equal it (a string) or contain it (a list of strings);
          audience None -> a token that has "aud" at all is rejected (RFC 7519 §4.1.3).
    TODO: every failure raises InvalidToken(reason) — never KeyError, ValueError, ...
    """
    raise NotImplementedError


@dataclass(frozen=True)
class Rule:
    """Who may call the routes under ``path_prefix``.

    ``methods``: the HTTP methods the rule covers (None: all of them).
    ``roles``:   if non-empty, the token's "roles" claim (a JSON array of strings) must hold
                 at least ONE of these.
    ``scopes``:  the token's "scope" claim (a space-separated string) must hold ALL of these.
    ``public``:  no token is needed (and none is looked at).

    The middleware tries the rules in list order and the FIRST rule that matches decides.
    """

    path_prefix: str
    methods: Collection[str] | None = None
    roles: Collection[str] = frozenset()
    scopes: Collection[str] = frozenset()
    public: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule covers ``method`` on ``path``.

        TODO: the method must be in ``methods`` (compare in upper case), unless it is None.
        TODO: the prefix matches whole path segments: "/admin" (or "/admin/") covers "/admin",
              "/admin/" and "/admin/users", never "/administrator". "/" covers every path.
        """
        raise NotImplementedError

    def allows(self, claims: Mapping[str, Any]) -> bool:
        """Whether verified ``claims`` satisfy this rule's roles and scopes.

        TODO: roles: any one of ``self.roles`` in claims["roles"] (only if it is a list).
        TODO: scopes: every one of ``self.scopes`` among claims["scope"].split() (only if it is
              a string). Whole scope tokens: "reports:readonly" does not grant "reports:read".
        """
        raise NotImplementedError


class AuthMiddleware:
    """ASGI 3 middleware: bearer JWT authentication, then per-route authorization.

    ``key`` is the HS256 secret; ``rules`` the route table (first match wins; a path no rule
    matches is denied); ``realm`` goes in every WWW-Authenticate challenge; ``issuer``,
    ``audience`` and ``leeway`` are passed to ``verify_jwt``; ``clock()`` gives ``now``.
    """

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
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection.

        TODO: scope["type"] other than "http" (e.g. "lifespan"): call the app unchanged.
        TODO: public rule -> call the app unchanged, whatever the Authorization header says.
        TODO: token from the one "authorization" header "Bearer <token>" (scheme in any case).
              No header, or another scheme (Basic ...) -> 401 with
                  WWW-Authenticate: Bearer realm="<realm>"            (no error code)
              Two Authorization headers -> 400 with (RFC 6750 §3.1)
                  WWW-Authenticate: Bearer realm="<realm>", error="invalid_request",
                                    error_description="..."
              verify_jwt raises -> 401 with
                  WWW-Authenticate: Bearer realm="<realm>", error="invalid_token",
                                    error_description="<reason>"
        TODO: valid token but no rule matches, or the rule does not allow the claims -> 403 with
                  WWW-Authenticate: Bearer realm="<realm>", error="insufficient_scope",
                                    error_description="..."
        TODO: otherwise call the app with a copy of the scope whose "state" (a new dict that
              keeps the existing entries) has "claims" = the verified claims.
        TODO: the app is never called for a request that got 400, 401 or 403.
        """
        raise NotImplementedError
