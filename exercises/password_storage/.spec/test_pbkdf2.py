"""Hidden specs for pbkdf2_hmac: RFC 6070 vectors, hashlib.pbkdf2_hmac as the differential.

The oracle is OpenSSL's PBKDF2 behind ``hashlib.pbkdf2_hmac``; the learner may not call it,
which a spy checks. Iteration counts stay small: pure-Python PBKDF2 costs about a
microsecond per iteration at best.
"""

from __future__ import annotations

import hashlib

import password_storage
import pytest
from _helpers import RFC6070, best_times, spy_pbkdf2
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from password_storage import pbkdf2_hmac

from grader.spectools import called, short, step

FAST = settings(max_examples=120, phases=[Phase.explicit, Phase.generate])


def call(hash_name: str, password: bytes, salt: bytes, iterations: int, dklen=None) -> bytes:
    what = f"pbkdf2_hmac({hash_name!r}, {short(password, 30)}, {short(salt, 30)}, {iterations}, dklen={dklen})"
    with step(what):
        return pbkdf2_hmac(hash_name, password, salt, iterations, dklen)


def describe(hash_name, password, salt, iterations, dklen=None) -> str:
    return f"pbkdf2_hmac({hash_name!r}, {short(password, 30)}, {short(salt, 30)}, {iterations}, dklen={dklen})"


def raises_value_error(hash_name, password, salt, iterations, dklen=None) -> tuple[bool, object]:
    try:
        got = pbkdf2_hmac(hash_name, password, salt, iterations, dklen)
    except ValueError:
        return True, "ValueError"
    except NotImplementedError:
        raise
    except Exception as exc:  # reported to the learner
        return False, f"{type(exc).__name__}: {exc}"
    return False, got


# --- the published vectors ------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("password", "salt", "c", "dklen", "want"),
    [v[1:] for v in RFC6070],
    ids=[v[0] for v in RFC6070],
)
def test_rfc6070_vector(password, salt, c, dklen, want):
    """PBKDF2-HMAC-SHA1 reproduces the RFC 6070 §2 test vector (RFC 8018 §5.2)."""
    got = call("sha1", password, salt, c, dklen)
    assert isinstance(got, bytes) and got.hex() == want, called(
        describe("sha1", password, salt, c, dklen),
        got.hex() if isinstance(got, bytes) else got,
        want,
    )


# --- the differential against hashlib -------------------------------------------------------


@pytest.mark.points(4)
@FAST
@given(
    password=st.binary(max_size=140),
    salt=st.binary(max_size=40),
    iterations=st.integers(1, 40),
    dklen=st.integers(1, 100),
)
@example(password=b"", salt=b"", iterations=1, dklen=32)
@example(password=b"p", salt=b"s", iterations=1, dklen=1)
@example(password=b"p", salt=b"s", iterations=3, dklen=31)
@example(password=b"p", salt=b"s", iterations=3, dklen=33)
@example(password=b"p", salt=b"s", iterations=2, dklen=64)
@example(password=b"p", salt=b"s", iterations=2, dklen=65)
@example(password=b"k" * 64, salt=b"salt", iterations=2, dklen=32)  # exactly one SHA-256 block
@example(password=b"k" * 65, salt=b"salt", iterations=2, dklen=32)  # HMAC hashes the key first
@example(password="pässwörd ✓".encode(), salt=bytes(16), iterations=5, dklen=32)
def test_sha256_matches_hashlib(password, salt, iterations, dklen):
    """PBKDF2-HMAC-SHA256 gives the same bytes as hashlib.pbkdf2_hmac for any input and length."""
    got = call("sha256", password, salt, iterations, dklen)
    want = hashlib.pbkdf2_hmac("sha256", password, salt, iterations, dklen)
    assert got == want, called(describe("sha256", password, salt, iterations, dklen), got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha512", "sha3_256"])
def test_other_hashes_match_hashlib(hash_name):
    """Any hashlib hash works as the PRF, with its own digest and block sizes."""
    for password, salt, iterations, dklen in [
        (b"password", b"salt", 7, None),
        (b"x" * 200, b"NaCl", 3, 1),
        (b"pw", b"s" * 50, 2, 150),
    ]:
        got = call(hash_name, password, salt, iterations, dklen)
        want = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations, dklen)
        assert got == want, called(
            describe(hash_name, password, salt, iterations, dklen), got, want
        )


@pytest.mark.points(1)
def test_default_length_is_the_digest_size():
    """dklen=None gives one digest's worth of output: 20 bytes for SHA-1, 32 for SHA-256, 64 for SHA-512."""
    for hash_name, size in [("sha1", 20), ("sha256", 32), ("sha512", 64)]:
        got = call(hash_name, b"password", b"salt", 2)
        assert isinstance(got, bytes) and len(got) == size, called(
            describe(hash_name, b"password", b"salt", 2), got, f"{size} bytes"
        )


# --- arguments ------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("iterations", "dklen", "valid"),
    [(1, 32, True), (0, 32, False), (-1, 32, False), (2, 1, True), (2, 0, False), (2, -5, False)],
    ids=["c=1", "c=0", "c=-1", "dklen=1", "dklen=0", "dklen=-5"],
)
def test_iterations_and_length_must_be_positive(iterations, dklen, valid):
    """An iteration count or a key length below 1 raises ValueError; 1 is allowed (RFC 8018 §5.2)."""
    what = describe("sha256", b"pw", b"salt", iterations, dklen)
    if valid:
        got = call("sha256", b"pw", b"salt", iterations, dklen)
        want = hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", iterations, dklen)
        assert got == want, called(what, got, want)
    else:
        raised, got = raises_value_error("sha256", b"pw", b"salt", iterations, dklen)
        assert raised, called(what, got, "ValueError")


@pytest.mark.points(1)
def test_unknown_hash_is_a_value_error():
    """An unknown hash name raises ValueError, as hashlib does."""
    raised, got = raises_value_error("sha257", b"pw", b"salt", 1)
    assert raised, called(describe("sha257", b"pw", b"salt", 1), got, "ValueError")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("hash_name", "hlen"), [("sha1", 20), ("sha256", 32)], ids=["sha1", "sha256"]
)
def test_derived_key_too_long(hash_name, hlen):
    """dklen above (2**32 - 1) * hLen raises ValueError before any work (RFC 8018 §5.2 step 1)."""
    dklen = (2**32 - 1) * hlen + 1
    raised, got = raises_value_error(hash_name, b"pw", b"salt", 1, dklen)
    assert raised, called(
        describe(hash_name, b"pw", b"salt", 1, dklen), got, 'ValueError("derived key too long")'
    )


# --- written by hand, and without a DoS ------------------------------------------------------


@pytest.mark.points(3)
def test_does_not_call_hashlib_pbkdf2(monkeypatch):
    """pbkdf2_hmac and PasswordHasher never call hashlib.pbkdf2_hmac: the kata is to write PBKDF2 on hmac."""
    want = hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 3, 40)
    calls = spy_pbkdf2(monkeypatch, password_storage)
    got = call("sha256", b"password", b"salt", 3, 40)
    assert got == want, called(describe("sha256", b"password", b"salt", 3, 40), got, want)
    assert not calls, (
        f"Called pbkdf2_hmac('sha256', ...); it called hashlib.pbkdf2_hmac {len(calls)} time(s). "
        "Build PBKDF2 from hmac (RFC 8018 §5.2): the library function is off limits in this kata."
    )
    hasher = password_storage.PasswordHasher(iterations=3)
    with step("PasswordHasher(iterations=3): hash('pw'), then verify('pw', <that hash>)"):
        ok = hasher.verify("pw", hasher.hash("pw"))
    assert ok is True, called("verify('pw', hash('pw'))", ok, True)
    assert not calls, (
        f"Called PasswordHasher.hash and .verify; they called hashlib.pbkdf2_hmac {len(calls)} "
        "time(s). Derive with your own pbkdf2_hmac: the library function is off limits here."
    )


@pytest.mark.points(2)
def test_long_password_costs_no_more_per_iteration():
    """A 64 KiB password costs about what a 1-byte one does: HMAC is keyed once, not per iteration."""
    long_password, short_password = b"x" * 65536, b"x"
    call("sha256", long_password, b"salt", 1)  # warm up, and fail readably if it raises
    short_time, long_time = best_times(
        lambda: pbkdf2_hmac("sha256", short_password, b"salt", 1000),
        lambda: pbkdf2_hmac("sha256", long_password, b"salt", 1000),
    )
    assert long_time <= 4 * short_time + 0.002, (
        f"Called pbkdf2_hmac('sha256', <64 KiB password>, b'salt', 1000); it took "
        f"{long_time / short_time:.1f}x the time of a 1-byte password (allowed: 4x). Key the HMAC "
        "with the password once and copy it, or every login with a huge password re-hashes it "
        "1000 times (Django's CVE-2013-1443)."
    )
