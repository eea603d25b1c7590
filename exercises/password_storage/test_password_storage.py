"""Visible examples for the password_storage kata. Run them with `nox -s try -- password_storage`.

They show the shape of success: an RFC 6070 vector, the stored-string layout, verification,
and a rehash on login. The hidden specs go much further (hashlib as a differential oracle,
malformed strings, the comparator, the policy at its limits, pepper, legacy rows).
"""

from __future__ import annotations

import base64
import hashlib

try:
    from password_storage import PasswordHasher, parse_hash, pbkdf2_hmac
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import PasswordHasher, parse_hash and pbkdf2_hmac "
        "from password_storage.py"
    ) from err


def test_rfc6070_vector_two_iterations():
    # RFC 6070 §2: P = "password", S = "salt", c = 2, dkLen = 20.
    got = pbkdf2_hmac("sha1", b"password", b"salt", 2, 20)
    want = bytes.fromhex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")
    assert got == want, f"Called pbkdf2_hmac('sha1', b'password', b'salt', 2, 20); returned {got!r}"


def test_sha256_agrees_with_hashlib():
    got = pbkdf2_hmac("sha256", b"hunter2", b"NaCl", 10, 40)
    want = hashlib.pbkdf2_hmac("sha256", b"hunter2", b"NaCl", 10, 40)
    assert got == want, (
        f"Called pbkdf2_hmac('sha256', b'hunter2', b'NaCl', 10, 40); returned {got!r}"
    )


def test_stored_string_layout():
    salt = bytes(range(16))
    hasher = PasswordHasher(iterations=10, random_bytes=lambda n: salt[:n])
    stored = hasher.hash("hunter2")
    digest = hashlib.pbkdf2_hmac("sha256", b"hunter2", salt, 10, 32)
    # The salt and hash are standard base64 without "=" padding.
    want = "$pbkdf2-sha256$i=10$AAECAwQFBgcICQoLDA0ODw$" + base64.b64encode(digest).decode().rstrip(
        "="
    )
    assert stored == want, f"Called hash('hunter2'); returned {stored!r}, expected {want!r}"
    parsed = parse_hash(stored)
    assert (parsed.iterations, parsed.salt, parsed.digest) == (10, salt, digest), repr(parsed)


def test_verify():
    hasher = PasswordHasher(iterations=10)
    stored = hasher.hash("correct horse battery staple")
    ok = hasher.verify("correct horse battery staple", stored)
    assert ok is True, f"Called verify(<the right password>, {stored!r}); returned {ok!r}"
    bad = hasher.verify("correct horse battery stapler", stored)
    assert bad is False, f"Called verify(<a wrong password>, {stored!r}); returned {bad!r}"


def test_rehash_on_login_when_the_policy_went_up():
    old = PasswordHasher(iterations=10).hash("pw")
    new_policy = PasswordHasher(iterations=20)
    assert new_policy.needs_rehash(old) is True, f"needs_rehash({old!r}) under i=20 was not True"
    got = new_policy.verify_and_update("pw", old)
    assert got[0] is True and str(got[1]).startswith("$pbkdf2-sha256$i=20$"), (
        f"Called verify_and_update('pw', {old!r}); returned {got!r}; expected (True, a new i=20 hash)"
    )
    again = new_policy.verify_and_update("pw", got[1])
    assert again == (True, None), (
        f"Called verify_and_update('pw', <the new hash>); returned {again!r}"
    )
    wrong = new_policy.verify_and_update("wrong", old)
    assert wrong == (False, None), f"Called verify_and_update('wrong', {old!r}); returned {wrong!r}"
