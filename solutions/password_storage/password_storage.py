"""Password storage: PBKDF2-HMAC written on ``hmac``, PHC strings, rehash on login, legacy wrapping.

Theory of operation
-------------------
Three layers, each usable on its own:

* ``pbkdf2_hmac`` is RFC 8018 §5.2 on top of ``hmac``: the same signature and the same bytes
  as ``hashlib.pbkdf2_hmac``, so the standard library is the differential oracle.
* ``b64encode`` / ``b64decode`` / ``format_hash`` / ``parse_hash`` are the PHC string format
  (P-H-C/phc-string-format, ``phc-sf-spec.md``): ``$pbkdf2-sha256$i=<iterations>$<salt>$<hash>``
  with salt and hash in "B64", standard base64 (RFC 4648 §4) without padding. Parsing is
  strict: every stored hash has exactly one spelling, and anything else is ``InvalidHash``.
* ``PasswordHasher`` is the policy: how many iterations new hashes get, how long the salt is,
  the optional pepper, when a stored hash must be upgraded, and how legacy unsalted SHA-1 rows
  are wrapped so that no weak hash stays in the database while we wait for users to log in.

The stored string is self-describing (scheme, cost, salt), which is what makes policy changes
cheap: old hashes keep verifying with the cost they were made with, and ``verify_and_update``
replaces them, one login at a time, with hashes made under the current policy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
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
DIGEST_SIZE = 32  # bytes of PBKDF2-HMAC-SHA256 output we store (one SHA-256 block)
MAX_ITERATIONS = 2**32 - 1  # the i= parameter is an unsigned 32-bit count
MAX_BLOCKS = 2**32 - 1  # INT(i), the block index, is four octets (RFC 8018 §5.2)
MIN_SALT_SIZE = 16  # bytes; NIST SP 800-132 §5.1: at least 128 random bits

# PHC "B64": the standard alphabet (RFC 4648 §4), no "=" padding, nothing else.
_B64 = re.compile(r"[A-Za-z0-9+/]*")
# PHC decimal encoding: ASCII digits, no sign, no leading zero. (int() alone would also take
# "+7", " 7", "1_000" and "٧", Arabic-Indic seven.)
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,9}")
_SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")


class InvalidHash(ValueError):
    """A stored hash string that is malformed, or of a scheme this hasher does not know."""


# --- PBKDF2 (RFC 8018 §5.2) ---------------------------------------------------------------


def pbkdf2_hmac(
    hash_name: str, password: bytes, salt: bytes, iterations: int, dklen: int | None = None
) -> bytes:
    """PBKDF2 with HMAC-``hash_name`` as the PRF: the same contract as ``hashlib.pbkdf2_hmac``."""
    if iterations < 1:
        raise ValueError("iteration count must be at least 1")
    # Keying HMAC once and copying it per call is the whole optimisation: the key (the
    # password) is padded, or hashed when longer than a block, exactly once, so a 1 MB password
    # costs one pass over 1 MB instead of one per iteration (Django's CVE-2013-1443).
    prf = hmac.new(password, digestmod=hash_name)
    hlen = prf.digest_size
    if dklen is None:
        dklen = hlen
    if dklen < 1:
        raise ValueError("derived key length must be at least 1")
    if dklen > MAX_BLOCKS * hlen:  # step 1 of §5.2
        raise ValueError("derived key too long")

    blocks = []
    for index in range(1, -(-dklen // hlen) + 1):  # l = CEIL(dkLen / hLen) blocks
        # U_1 = PRF(P, S || INT(i)), INT(i) the four-octet big-endian block index, from 1.
        mac = prf.copy()
        mac.update(salt + index.to_bytes(4, "big"))
        u = mac.digest()
        # F = U_1 xor U_2 xor ... xor U_c, with U_j = PRF(P, U_{j-1}). Python ints XOR a
        # whole block at once.
        block = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            mac = prf.copy()
            mac.update(u)
            u = mac.digest()
            block ^= int.from_bytes(u, "big")
        blocks.append(block.to_bytes(hlen, "big"))
    return b"".join(blocks)[:dklen]  # the last block keeps only its first r octets


# --- the PHC string format ------------------------------------------------------------------


def b64encode(raw: bytes) -> str:
    """PHC B64: standard base64 (RFC 4648 §4) with the ``=`` padding removed."""
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Decode PHC B64, accepting only the one canonical spelling; ``InvalidHash`` otherwise."""
    if not _B64.fullmatch(text):
        raise InvalidHash("not B64: only A-Z a-z 0-9 + / and no padding")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:  # 4k+1 characters can't encode whole bytes
        raise InvalidHash("impossible B64 length") from None
    # Trailing bits of the last character must be zero (phc-sf-spec, "B64"); re-encoding and
    # comparing rejects every other spelling of the same bytes.
    if b64encode(raw) != text:
        raise InvalidHash("non-canonical B64")
    return raw


@dataclass(frozen=True)
class ParsedHash:
    """The parts of a stored hash string."""

    scheme: str
    iterations: int
    salt: bytes
    digest: bytes


def format_hash(parsed: ParsedHash) -> str:
    """``$<scheme>$i=<iterations>$<B64 salt>$<B64 digest>``."""
    return (
        f"${parsed.scheme}$i={parsed.iterations}"
        f"${b64encode(parsed.salt)}${b64encode(parsed.digest)}"
    )


def parse_hash(stored: str) -> ParsedHash:
    """Split a stored hash into its parts, strictly; ``InvalidHash`` for anything else."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[0] != "":
        raise InvalidHash("expected $<scheme>$i=<iterations>$<salt>$<hash>")
    _, scheme, params, salt_text, digest_text = parts
    if scheme not in (SCHEME, WRAPPED_SCHEME):
        raise InvalidHash("unknown scheme")
    name, _, value = params.partition("=")
    if name != "i" or not _DECIMAL.fullmatch(value):
        raise InvalidHash("parameters must be exactly i=<decimal iteration count>")
    iterations = int(value)
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise InvalidHash("iteration count out of range")
    salt = b64decode(salt_text)
    digest = b64decode(digest_text)
    if not salt:
        raise InvalidHash("empty salt")
    if len(digest) != DIGEST_SIZE:
        raise InvalidHash("hash must be 32 bytes")
    return ParsedHash(scheme, iterations, salt, digest)


# --- the policy -----------------------------------------------------------------------------


class PasswordHasher:
    """Hash and verify passwords under one policy, and upgrade old hashes on login.

    ``iterations`` and ``salt_size`` are the policy for new hashes; ``pepper`` (a secret kept
    outside the database) is mixed into every hash this hasher makes or checks;
    ``random_bytes(n)`` makes salts; ``compare(stored, computed)`` compares digests.
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
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise ValueError("iterations must be between 1 and 2**32 - 1")
        if salt_size < MIN_SALT_SIZE:
            raise ValueError("salt_size must be at least 16 bytes")
        self.iterations = iterations
        self.salt_size = salt_size
        self._pepper = pepper
        self._random_bytes = random_bytes
        self._compare = compare

    def hash(self, password: str) -> str:
        """A new ``$pbkdf2-sha256$`` hash of ``password`` with a fresh random salt."""
        return self._make(SCHEME, password.encode("utf-8"))

    def wrap_legacy(self, sha1_hex: str) -> str:
        """Wrap a legacy unsalted ``sha1(password).hexdigest()`` row, without the password."""
        if not _SHA1_HEX.fullmatch(sha1_hex):
            raise InvalidHash("a legacy row is 40 hexadecimal digits")
        # The inner value is what the old system stored: lowercase hex text. Verification
        # recomputes exactly that from the password, so wrapped rows need no password today.
        return self._make(WRAPPED_SCHEME, sha1_hex.lower().encode("ascii"))

    def verify(self, password: str, stored: str) -> bool:
        """Whether ``password`` matches ``stored``; ``InvalidHash`` if ``stored`` is malformed."""
        parsed = parse_hash(stored)
        secret = password.encode("utf-8")
        if parsed.scheme == WRAPPED_SCHEME:
            secret = hashlib.sha1(secret).hexdigest().encode("ascii")
        computed = self._derive(secret, parsed.salt, parsed.iterations)
        # One comparison of the whole digests, in time that does not depend on where they
        # first differ: the response time tells an attacker nothing about the stored hash.
        return bool(self._compare(parsed.digest, computed))

    def verify_unknown_user(self, password: str) -> bool:
        """Do the work of a ``verify`` under the current policy for a user who does not exist.

        Always False. A login that skips the hash when the user is unknown answers faster, and
        the difference tells an attacker which usernames exist (OWASP Authentication Cheat
        Sheet, "Authentication and Error Messages").
        """
        computed = self._derive(password.encode("utf-8"), bytes(self.salt_size), self.iterations)
        self._compare(bytes(DIGEST_SIZE), computed)
        return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` falls short of the current policy (so a login should replace it)."""
        parsed = parse_hash(stored)
        return (
            parsed.scheme != SCHEME
            or parsed.iterations < self.iterations  # never downgrade a costlier hash
            or len(parsed.salt) < self.salt_size
        )

    def verify_and_update(self, password: str, stored: str) -> tuple[bool, str | None]:
        """Verify, and when the password is right but ``stored`` is outdated, a new hash.

        Returns ``(ok, new_hash)``: ``new_hash`` is None unless the caller should store it.
        """
        if not self.verify(password, stored):
            return False, None  # never rehash on a wrong password: that would lock the user out
        if self.needs_rehash(stored):
            return True, self.hash(password)
        return True, None

    def _make(self, scheme: str, secret: bytes) -> str:
        salt = self._random_bytes(self.salt_size)
        digest = self._derive(secret, salt, self.iterations)
        return format_hash(ParsedHash(scheme, self.iterations, salt, digest))

    def _derive(self, secret: bytes, salt: bytes, iterations: int) -> bytes:
        if self._pepper is not None:
            # A pre-hashing pepper (OWASP): HMAC keyed by the pepper, so the database alone
            # is not enough to test a single guess.
            secret = hmac.new(self._pepper, secret, hashlib.sha256).digest()
        return pbkdf2_hmac("sha256", secret, salt, iterations, DIGEST_SIZE)
