"""Password storage: PBKDF2-HMAC written on ``hmac``, PHC strings, rehash on login, legacy wrapping.

Three layers:

* ``pbkdf2_hmac`` — RFC 8018 §5.2, built on ``hmac`` (not on ``hashlib.pbkdf2_hmac``: the
  kata is to write it). Same signature and same output as ``hashlib.pbkdf2_hmac``.
* ``b64encode`` / ``b64decode`` / ``format_hash`` / ``parse_hash`` — the PHC string format:
  ``$pbkdf2-sha256$i=<iterations>$<salt>$<hash>``, salt and hash in standard base64 without
  padding.
* ``PasswordHasher`` — the policy: hash, verify (constant-time), needs_rehash,
  verify_and_update (rehash on login), an optional pepper, and wrapping of legacy unsalted
  SHA-1 rows.

Standard library only (``hmac``, ``hashlib`` for SHA-1/SHA-256, ``secrets``, ``base64``...).
See README.md for the rules in full.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "SCHEME",
    "WRAPPED_SCHEME",
    "InvalidHash",
    "ParsedHash",
    "PasswordHasher",
    "b64decode",
    "b64encode",
    "format_hash",
    "parse_hash",
    "pbkdf2_hmac",
]

SCHEME = "pbkdf2-sha256"
WRAPPED_SCHEME = "pbkdf2-sha256-wrapped-sha1"


class InvalidHash(ValueError):
    """A stored hash string that is malformed, or of a scheme this hasher does not know."""


def pbkdf2_hmac(
    hash_name: str, password: bytes, salt: bytes, iterations: int, dklen: int | None = None
) -> bytes:
    """PBKDF2 (RFC 8018 §5.2) with HMAC-``hash_name`` as the PRF; ``dklen`` bytes of output.

    The same contract as ``hashlib.pbkdf2_hmac`` (which you may not call): ``hash_name`` is a
    hashlib name ("sha1", "sha256", "sha512"...); ``dklen`` None means the digest size.

    TODO: ValueError when iterations < 1, when dklen < 1, when hash_name is unknown, and
          ("derived key too long") when dklen > (2**32 - 1) * hLen — before any work.
    TODO: l = ceil(dklen / hLen) blocks T_1 .. T_l; T_i = U_1 xor U_2 xor ... xor U_c where
          U_1 = HMAC(P, S || INT(i)) and U_j = HMAC(P, U_{j-1}); INT(i) is the block index as
          4 bytes, big-endian, starting at 1.
    TODO: the output is T_1 || ... || T_l cut to dklen bytes.
    TODO: key the HMAC with the password once and .copy() it for each call: a long password
          must not be re-hashed on every iteration (the cost must not grow with its length).
    """
    raise NotImplementedError


def b64encode(raw: bytes) -> str:
    """PHC "B64": standard base64 (RFC 4648 §4: A-Z a-z 0-9 + /) without "=" padding.

    TODO: e.g. b"\\xfb\\xff" -> "+/8" (never "-_8", never "+/8=").
    """
    raise NotImplementedError


def b64decode(text: str) -> bytes:
    """Decode PHC B64; raise ``InvalidHash`` unless ``text`` is the one canonical spelling.

    TODO: only the characters A-Z a-z 0-9 + / (no "=", "-", "_", spaces, newlines).
    TODO: a length of 4k+1 characters is impossible: reject it.
    TODO: the unused low bits of the last character must be zero (re-encode and compare).
    TODO: never let binascii.Error (or anything else) escape: raise InvalidHash.
    """
    raise NotImplementedError


@dataclass(frozen=True)
class ParsedHash:
    """The parts of a stored hash string."""

    scheme: str
    iterations: int
    salt: bytes
    digest: bytes


def format_hash(parsed: ParsedHash) -> str:
    """``$<scheme>$i=<iterations>$<B64 salt>$<B64 digest>``.

    TODO: iterations in plain decimal; salt and digest with b64encode.
    """
    raise NotImplementedError


def parse_hash(stored: str) -> ParsedHash:
    """Split a stored hash string into its parts; ``InvalidHash`` unless it is exactly right.

    TODO: exactly "$" scheme "$" params "$" salt "$" hash (five "$"-separated fields, the
          first empty); scheme SCHEME or WRAPPED_SCHEME, nothing else.
    TODO: params exactly "i=<n>": n in decimal digits with no sign, spaces, underscores or
          leading zero, 1 <= n <= 2**32 - 1.
    TODO: salt: canonical B64, at least one byte. hash: canonical B64 of exactly 32 bytes.
    """
    raise NotImplementedError


class PasswordHasher:
    """Hash and verify passwords under one policy, and upgrade old hashes on login.

    ``iterations`` and ``salt_size`` are the policy for new hashes; ``pepper`` (a secret kept
    outside the database) is mixed into every hash this hasher makes or checks;
    ``random_bytes(n)`` makes salts; ``compare(stored_digest, computed_digest)`` compares
    digests. Keep ``iterations`` and ``salt_size`` as public attributes.

    TODO: ValueError unless 1 <= iterations <= 2**32 - 1; ValueError if salt_size < 16.
    """

    def __init__(
        self,
        *,
        iterations: int = 600_000,
        salt_size: int = 16,
        pepper: bytes | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        compare: Callable[[bytes, bytes], bool] = hmac.compare_digest,
    ) -> None:
        raise NotImplementedError

    def hash(self, password: str) -> str:
        """A new ``$pbkdf2-sha256$`` hash of ``password`` with a fresh random salt.

        TODO: salt = random_bytes(salt_size), called once per hash (never ``random``).
        TODO: digest = PBKDF2-HMAC-SHA256(secret, salt, iterations, 32 bytes), where secret is
              the password's UTF-8 bytes, or HMAC-SHA256(pepper, those bytes) with a pepper.
        """
        raise NotImplementedError

    def wrap_legacy(self, sha1_hex: str) -> str:
        """Wrap a legacy row (``hashlib.sha1(password).hexdigest()``) without knowing the password.

        TODO: 40 hex digits (either case) or InvalidHash. The secret is the row in lowercase,
              as ASCII bytes (peppered like any other secret); scheme WRAPPED_SCHEME.
        """
        raise NotImplementedError

    def verify(self, password: str, stored: str) -> bool:
        """Whether ``password`` matches ``stored``; ``InvalidHash`` if ``stored`` is malformed.

        TODO: recompute with the stored salt and iteration count (not the policy's).
        TODO: WRAPPED_SCHEME: the secret is sha1(password).hexdigest() as ASCII bytes.
        TODO: call compare(stored_digest, computed_digest) exactly once, on the whole 32-byte
              digests, whatever they hold; never ==, never an early return on the first byte.
        """
        raise NotImplementedError

    def verify_unknown_user(self, password: str) -> bool:
        """Do the work of a ``verify`` under the current policy for a user who does not exist.

        TODO: always return False, but only after the same work as a verify at the policy's
              cost: one PBKDF2 derivation with self.iterations, and one compare(...) call of
              two 32-byte digests. A login that skips the hash answers faster for unknown
              users, which tells an attacker which usernames exist.
        """
        raise NotImplementedError

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` falls short of the current policy.

        TODO: True for WRAPPED_SCHEME, for fewer iterations than the policy, or for a salt
              shorter than salt_size. A costlier hash than the policy is NOT rehashed.
        """
        raise NotImplementedError

    def verify_and_update(self, password: str, stored: str) -> tuple[bool, str | None]:
        """``(ok, new_hash)``: ``new_hash`` is a fresh hash to store, or None.

        TODO: a wrong password -> (False, None), whatever the stored hash.
        TODO: right password and needs_rehash -> (True, self.hash(password)); else (True, None).
        """
        raise NotImplementedError
