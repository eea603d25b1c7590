"""Helpers for the password_storage specs: oracles, injected salts and comparators, spies.

The oracles are independent of the learner's code: ``hashlib.pbkdf2_hmac`` (OpenSSL's
PBKDF2) for derived keys, ``base64`` for PHC B64, and the published RFC 6070 vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

SCHEME = "pbkdf2-sha256"
WRAPPED_SCHEME = "pbkdf2-sha256-wrapped-sha1"

# RFC 6070 §2: PBKDF2-HMAC-SHA1 test vectors (P, S, c, dkLen, DK). The fourth vector of the
# RFC (c = 16777216) is left out: pure-Python PBKDF2 needs tens of seconds for it.
RFC6070 = [
    ("c=1", b"password", b"salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    ("c=2", b"password", b"salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    ("c=4096", b"password", b"salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"),
    (
        "c=4096, dkLen=25, long P and S",
        b"passwordPASSWORDpassword",
        b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
        4096,
        25,
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
    ),
    (
        "c=4096, dkLen=16, NUL bytes",
        b"pass\0word",
        b"sa\0lt",
        4096,
        16,
        "56fa6aa75548099dcc37d7f03425e0c3",
    ),
]


def b64(raw: bytes) -> str:
    """PHC B64 by the standard library: standard base64, padding removed."""
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def oracle_hash(
    password: str | bytes,
    salt: bytes,
    iterations: int,
    *,
    pepper: bytes | None = None,
    scheme: str = SCHEME,
) -> str:
    """The stored string a correct hasher writes, computed with hashlib.pbkdf2_hmac."""
    secret = password.encode("utf-8") if isinstance(password, str) else password
    if pepper is not None:
        secret = hmac.new(pepper, secret, hashlib.sha256).digest()
    digest = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, 32)
    return f"${scheme}$i={iterations}${b64(salt)}${b64(digest)}"


def fake_hash(iterations: int, salt: bytes = bytes(range(16)), scheme: str = SCHEME) -> str:
    """A well-formed stored string with a made-up digest (for needs_rehash: nothing derived)."""
    return f"${scheme}$i={iterations}${b64(salt)}${b64(bytes(range(32)))}"


def sha1_hex(password: str) -> str:
    """What the legacy system stored: unsalted SHA-1, lowercase hex."""
    return hashlib.sha1(password.encode("utf-8")).hexdigest()


class Salts:
    """An injected ``random_bytes``: distinct, predictable salts, and a log of the calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.made: list[bytes] = []
        self._counter = itertools.count(1)

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        seed = next(self._counter)
        salt = bytes((seed * 37 + i * 11 + 0xA5) % 256 for i in range(n))
        self.made.append(salt)
        return salt


class Comparator:
    """An injected ``compare``: records every call, answers like hmac.compare_digest (or as told)."""

    def __init__(self, verdict: Callable[[bytes, bytes], bool] | None = None) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self._verdict = verdict or hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self._verdict(a, b)


def spy_pbkdf2(monkeypatch: Any, module: ModuleType) -> list[str]:
    """Route every way of reaching the library PBKDF2 through a recorder; return its log.

    Covers ``hashlib.pbkdf2_hmac``, ``_hashlib.pbkdf2_hmac`` and any name in ``module`` bound
    to the real function (``from hashlib import pbkdf2_hmac as x``). The recorder still
    answers correctly, so only the call itself gives the learner away.
    """
    import _hashlib

    real = hashlib.pbkdf2_hmac
    calls: list[str] = []

    def spy(hash_name: str, *args: Any, **kwargs: Any) -> bytes:
        calls.append(hash_name)
        return real(hash_name, *args, **kwargs)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", spy)
    monkeypatch.setattr(_hashlib, "pbkdf2_hmac", spy)
    for name, value in list(vars(module).items()):
        if value is real:
            monkeypatch.setattr(module, name, spy)
    return calls


_STORED = re.compile(r"\$([a-z0-9-]+)\$i=([1-9][0-9]*)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")


def oracle_parts(stored: Any) -> tuple[str, int, bytes, bytes] | None:
    """(scheme, iterations, salt, digest) of a stored string, read by the spec; None if malformed."""
    match = _STORED.fullmatch(stored) if isinstance(stored, str) else None
    if match is None:
        return None
    scheme, iterations, salt, digest = match.groups()

    def unb64(text: str) -> bytes:
        return base64.b64decode(text + "=" * (-len(text) % 4))

    return scheme, int(iterations), unb64(salt), unb64(digest)


def best_times(*fns: Callable[[], object], runs: int = 7) -> list[float]:
    """The least CPU time each function took over ``runs`` turns, for ratios within one run.

    CPU time of this thread (``time.thread_time``), not wall time: on a loaded machine a
    preempted run waits without its clock advancing. Turns interleave the functions, so
    frequency changes and cache effects hit all of them alike.
    """
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for index, fn in enumerate(fns):
            start = time.thread_time()
            fn()
            best[index] = min(best[index], time.thread_time() - start)
    return best
