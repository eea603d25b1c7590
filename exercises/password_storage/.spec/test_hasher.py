"""Hidden specs for PasswordHasher: hashing, verification, policy, pepper, legacy wrapping.

Every expected stored string is computed with ``hashlib.pbkdf2_hmac`` (``_helpers.oracle_hash``)
from the salt the spec injected. Iteration counts are small; the policy's cost is a parameter.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from _helpers import (
    SCHEME,
    WRAPPED_SCHEME,
    Comparator,
    Salts,
    b64,
    best_times,
    fake_hash,
    oracle_hash,
    oracle_parts,
    sha1_hex,
)
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from password_storage import InvalidHash, PasswordHasher

from grader.spectools import called, short, step

FAST = settings(max_examples=40, phases=[Phase.explicit, Phase.generate])
# An explicit alphabet: one- to four-byte UTF-8, NUL, space (and no Unicode table to build).
PASSWORD_CHARS = "aAzZ09 !$\x00\x7féüß€✓中🔑\U0010fffd"
COST = 50  # iterations for specs: pure-Python PBKDF2 is slow, and the policy is a parameter


def hasher(**options) -> PasswordHasher:
    options.setdefault("iterations", COST)
    with step(f"PasswordHasher({', '.join(f'{k}={short(v, 30)}' for k, v in options.items())})"):
        return PasswordHasher(**options)


def do(what: str, fn, *args):
    with step(what):
        return fn(*args)


def outcome(fn, *args) -> object:
    """What fn(*args) did: its result, or the name of the exception it raised."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # reported to the learner
        return f"{type(exc).__name__}: {exc}"


def rejected(fn, *args, error=InvalidHash) -> tuple[bool, object]:
    try:
        got = fn(*args)
    except error:
        return True, error.__name__
    except NotImplementedError:
        raise
    except Exception as exc:  # reported to the learner
        return False, f"{type(exc).__name__}: {exc}"
    return False, got


# --- hash -----------------------------------------------------------------------------------


@pytest.mark.points(4)
def test_hash_writes_pbkdf2_sha256_with_the_injected_salt():
    """hash() is $pbkdf2-sha256$i=<policy>$<salt>$<PBKDF2-HMAC-SHA256(UTF-8 password, salt), 32 bytes>."""
    for password in ["correct horse battery staple", "", "pässwörd ✓ 🔑"]:
        salts = Salts()
        h = hasher(random_bytes=salts)
        got = do(f"hasher.hash({password!r})", h.hash, password)
        want = oracle_hash(password, salts.made[0], COST) if salts.made else "a hash"
        assert got == want, called(
            f"PasswordHasher(iterations={COST}).hash({password!r})", got, want
        )


@pytest.mark.points(2)
def test_salt_comes_from_random_bytes_once_per_hash():
    """Each hash() asks random_bytes for exactly salt_size bytes, once, and stores that salt."""
    for salt_size in (16, 17, 32):
        salts = Salts()
        h = hasher(salt_size=salt_size, random_bytes=salts)
        stored = do("hasher.hash('pw')", h.hash, "pw")
        do("hasher.hash('pw')", h.hash, "pw")
        assert salts.calls == [salt_size, salt_size], called(
            f"hash('pw') twice with salt_size={salt_size}",
            f"random_bytes calls {salts.calls}",
            f"[{salt_size}, {salt_size}]",
        )
        assert stored.split("$")[3:4] == [b64(salts.made[0])], called(
            f"hash('pw') with salt_size={salt_size}", stored, f"the salt {b64(salts.made[0])!r}"
        )


@pytest.mark.points(3)
def test_equal_passwords_get_different_hashes():
    """Two hashes of the same password differ (fresh salts from secrets), and both verify."""
    h = hasher()  # the default random_bytes
    first, second = (
        do("hash('hunter2')", h.hash, "hunter2"),
        do("hash('hunter2')", h.hash, "hunter2"),
    )
    assert first != second, called(
        "hash('hunter2') twice", [first, second], "two different strings"
    )
    salts = [(oracle_parts(s) or ("", 0, b"", b""))[2] for s in (first, second)]
    assert salts[0] != salts[1] and all(len(s) == 16 for s in salts), called(
        "hash('hunter2') twice", salts, "two different 16-byte salts"
    )
    for stored in (first, second):
        ok = do(f"verify('hunter2', {stored!r})", h.verify, "hunter2", stored)
        assert ok is True, called(f"verify('hunter2', {stored!r})", ok, True)


@pytest.mark.points(2)
def test_salts_do_not_come_from_the_random_module():
    """Salts come from a CSPRNG (secrets): re-seeding Python's random module does not repeat them."""
    h = hasher()
    random.seed(1234)
    first = do("hash('pw')", h.hash, "pw")
    random.seed(1234)
    second = do("hash('pw')", h.hash, "pw")
    assert first.split("$")[3] != second.split("$")[3], called(
        "random.seed(1234); hash('pw'), twice", [first, second], "different salts"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"iterations": 1}, True),
        ({"iterations": 0}, False),
        ({"iterations": -5}, False),
        ({"iterations": 2**32 - 1}, True),
        ({"iterations": 2**32}, False),
        ({"salt_size": 16}, True),
        ({"salt_size": 15}, False),
        ({"salt_size": 17}, True),
        ({"salt_size": 0}, False),
    ],
    ids=["i=1", "i=0", "i=-5", "i=2**32-1", "i=2**32", "salt=16", "salt=15", "salt=17", "salt=0"],
)
def test_policy_limits(options, valid):
    """PasswordHasher accepts 1 <= iterations <= 2**32 - 1 and salt_size >= 16 (NIST SP 800-132); else ValueError."""
    options = {"iterations": COST, **options}
    what = f"PasswordHasher({', '.join(f'{k}={v}' for k, v in options.items())})"
    if valid:
        got = outcome(lambda: PasswordHasher(**options))
        assert isinstance(got, PasswordHasher), called(what, got, "a hasher")
        assert (got.iterations, got.salt_size) == (
            options["iterations"],
            options.get("salt_size", 16),
        ), called(
            f"{what}.iterations, .salt_size",
            (got.iterations, got.salt_size),
            (options["iterations"], options.get("salt_size", 16)),
        )
    else:
        raised, got = rejected(lambda: PasswordHasher(**options), error=ValueError)
        assert raised, called(what, got, "ValueError")


@pytest.mark.points(2)
def test_default_policy_follows_owasp():
    """The default policy is OWASP's for PBKDF2-HMAC-SHA256: 600,000 iterations and 16-byte salts."""
    h = do("PasswordHasher()", PasswordHasher)
    for stored, want in [
        (fake_hash(599_999), True),
        (fake_hash(600_000), False),
        (fake_hash(600_000, salt=bytes(15)), True),
        (fake_hash(600_000, salt=bytes(16)), False),
    ]:
        got = outcome(h.needs_rehash, stored)
        assert got is want, called(f"PasswordHasher().needs_rehash({stored!r})", got, want)


# --- verify ---------------------------------------------------------------------------------


@pytest.mark.points(4)
@FAST
@given(
    password=st.text(alphabet=PASSWORD_CHARS, max_size=30),
    other=st.text(alphabet=PASSWORD_CHARS, max_size=30),
)
@example(password="", other=" ")
@example(password="hunter2", other="hunter3")
@example(password="hunter2", other="Hunter2")
@example(password="é", other="e\u0301")  # the same letter, composed and decomposed: not equal bytes
def test_verify_accepts_the_password_and_nothing_else(password, other):
    """verify(p, hash(p)) is True; verify(q, hash(p)) is False for any other password q."""
    salts = Salts()
    h = hasher(random_bytes=salts)
    stored = do(f"hash({password!r})", h.hash, password)
    ok = do(f"verify({password!r}, hash({password!r}))", h.verify, password, stored)
    assert ok is True, called(f"verify({password!r}, {stored!r})", ok, True)
    # HMAC pads its key with zeros, so "pw" and "pw\x00" are one PBKDF2 password (README):
    # q counts as another password when PBKDF2 itself tells it apart.
    salt = salts.made[0] if salts.made else bytes(16)
    if oracle_hash(other, salt, COST) != oracle_hash(password, salt, COST):
        bad = do(f"verify({other!r}, hash({password!r}))", h.verify, other, stored)
        assert bad is False, called(f"verify({other!r}, hash({password!r}))", bad, False)


@pytest.mark.points(3)
def test_verify_reads_hashes_made_by_others():
    """verify checks a stored hash made elsewhere (hashlib), with the stored cost, not the policy's."""
    salt = bytes(range(40, 60))
    for iterations in (1, 7, COST + 30):
        stored = oracle_hash("s3cret", salt, iterations)
        h = hasher()
        ok = do(f"verify('s3cret', {stored!r})", h.verify, "s3cret", stored)
        assert ok is True, called(
            f"PasswordHasher(iterations={COST}).verify('s3cret', {stored!r})", ok, True
        )
        bad = do(f"verify('s3cret!', {stored!r})", h.verify, "s3cret!", stored)
        assert bad is False, called(f"verify('s3cret!', {stored!r})", bad, False)


@pytest.mark.points(2)
def test_verify_rejects_malformed_stored_hashes():
    """verify raises InvalidHash for a malformed or unknown stored hash; it never answers True or False."""
    good = oracle_hash("pw", bytes(16), 3)
    h = hasher()
    for stored in [
        good[:-2],
        good.replace("i=3", "i=03"),
        "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
        "",
    ]:
        raised, got = rejected(h.verify, "pw", stored)
        assert raised, called(f"verify('pw', {stored!r})", got, "InvalidHash")


@pytest.mark.points(3)
def test_verify_compares_once_with_the_comparator():
    """verify calls compare(stored, computed) exactly once on the whole 32-byte digests, wherever a mismatch is."""
    salt = bytes(16)
    right = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 3, 32)
    for position in (None, 0, 15, 31):
        stored_digest = bytearray(right)
        if position is not None:
            stored_digest[position] ^= 0x80
        stored = f"${SCHEME}$i=3${b64(salt)}${b64(bytes(stored_digest))}"
        compare = Comparator()
        h = hasher(compare=compare)
        ok = do(f"verify('pw', {stored!r})", h.verify, "pw", stored)
        where = "matching digests" if position is None else f"digests differing at byte {position}"
        assert ok is (position is None), called(f"verify('pw', <{where}>)", ok, position is None)
        pairs = [
            (bytes(a), bytes(b))
            for a, b in compare.calls
            if isinstance(a, bytes | bytearray | memoryview)
            and isinstance(b, bytes | bytearray | memoryview)
        ]
        assert (
            len(compare.calls) == 1
            and pairs
            and sorted(pairs[0]) == sorted([bytes(stored_digest), right])
        ), called(
            f"verify('pw', <{where}>)",
            f"compare called {len(compare.calls)} time(s) with {short(compare.calls, 100)}",
            "one call compare(stored_digest, computed_digest) with both 32-byte digests",
            show_expected=True,
        )


@pytest.mark.points(1)
def test_verify_trusts_the_comparator_verdict():
    """verify's answer is the comparator's verdict: no == behind its back."""
    stored = oracle_hash("pw", bytes(16), 3)
    for verdict in (True, False):
        h = hasher(compare=Comparator(lambda a, b, v=verdict: v))
        for password in ("pw", "not pw"):
            got = do(f"verify({password!r}, ...)", h.verify, password, stored)
            assert got is verdict, called(
                f"verify({password!r}, hash('pw')) with a comparator answering {verdict}",
                got,
                verdict,
            )


# --- unknown users --------------------------------------------------------------------------


@pytest.mark.points(2)
def test_unknown_user_is_refused_after_one_comparison():
    """verify_unknown_user is always False, after one compare of two 32-byte digests, like a verify."""
    for password in ("", "pw", "correct horse battery staple"):
        compare = Comparator(lambda a, b: True)  # even a comparator saying "equal" changes nothing
        h = hasher(compare=compare)
        got = do(f"verify_unknown_user({password!r})", h.verify_unknown_user, password)
        assert got is False, called(f"verify_unknown_user({password!r})", got, False)
        lengths = [
            (len(a), len(b))
            for a, b in compare.calls
            if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray)
        ]
        assert lengths == [(32, 32)], called(
            f"verify_unknown_user({password!r})",
            f"compare called with {short(compare.calls, 100)}",
            "one compare of two 32-byte digests, as verify does",
        )


@pytest.mark.points(2)
def test_unknown_user_costs_what_a_verify_costs():
    """verify_unknown_user takes about as long as verify at the policy's cost (within 4x either way)."""
    h = hasher(iterations=2000)
    stored = oracle_hash("pw", bytes(16), 2000)
    do("verify_unknown_user('guess')", h.verify_unknown_user, "guess")
    do(f"verify('guess', {stored!r})", h.verify, "guess", stored)
    unknown_time, known_time = best_times(
        lambda: h.verify_unknown_user("guess"), lambda: h.verify("guess", stored)
    )
    ratio = unknown_time / known_time
    assert 0.25 <= ratio <= 4, (
        f"Called verify_unknown_user('guess') and verify('guess', <an i=2000 hash>) with "
        f"PasswordHasher(iterations=2000); the unknown user took {ratio:.2f}x the time of the "
        "known one (allowed: 0.25x to 4x). A faster answer tells an attacker the user does not exist."
    )


# --- the policy: needs_rehash and verify_and_update -----------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("stored", "want"),
    [
        (fake_hash(999), True),
        (fake_hash(1000), False),
        (fake_hash(1001), False),
        (fake_hash(1000, salt=bytes(15)), True),
        (fake_hash(1000, salt=bytes(16)), False),
        (fake_hash(1000, salt=bytes(17)), False),
        (fake_hash(1000, scheme=WRAPPED_SCHEME), True),
        (fake_hash(5000, scheme=WRAPPED_SCHEME), True),
    ],
    ids=[
        "i=999 (below)",
        "i=1000 (at policy)",
        "i=1001 (above)",
        "salt 15 bytes",
        "salt 16 bytes",
        "salt 17 bytes",
        "wrapped legacy",
        "wrapped legacy, costlier",
    ],
)
def test_needs_rehash_exactly_when_below_policy(stored, want):
    """needs_rehash is True for fewer iterations, a shorter salt, or a wrapped legacy hash; never for a costlier one."""
    h = hasher(iterations=1000, salt_size=16)
    got = outcome(h.needs_rehash, stored)
    assert got is want, called(
        f"PasswordHasher(iterations=1000).needs_rehash({stored!r})", got, want
    )


@pytest.mark.points(1)
def test_needs_rehash_rejects_malformed_hashes():
    """needs_rehash raises InvalidHash for a malformed stored hash."""
    raised, got = rejected(hasher().needs_rehash, "$pbkdf2-sha256$i=10$$")
    assert raised, called("needs_rehash('$pbkdf2-sha256$i=10$$')", got, "InvalidHash")


@pytest.mark.points(3)
def test_verify_and_update_rehashes_an_outdated_hash():
    """A right password on an outdated hash gives (True, a new hash under the current policy)."""
    old = oracle_hash("pw", bytes(range(16)), COST - 10)
    salts = Salts()
    h = hasher(random_bytes=salts)
    got = do(f"verify_and_update('pw', {old!r})", h.verify_and_update, "pw", old)
    want = (True, oracle_hash("pw", salts.made[0], COST)) if salts.made else (True, "a new hash")
    assert got == want, called(
        f"PasswordHasher(iterations={COST}).verify_and_update('pw', {old!r})", got, want
    )


@pytest.mark.points(2)
def test_verify_and_update_leaves_a_current_hash():
    """A right password on a hash that meets the policy (or exceeds it) gives (True, None)."""
    h = hasher()
    for stored in (oracle_hash("pw", bytes(16), COST), oracle_hash("pw", bytes(16), COST + 1)):
        got = do(f"verify_and_update('pw', {stored!r})", h.verify_and_update, "pw", stored)
        assert got == (True, None), called(
            f"verify_and_update('pw', {stored!r})", got, (True, None)
        )


@pytest.mark.points(3)
def test_wrong_password_never_rehashes():
    """A wrong password gives (False, None), even on an outdated or wrapped hash: no rehash of a wrong guess."""
    h = hasher()
    for stored in (
        oracle_hash("pw", bytes(16), 1),
        oracle_hash("pw", bytes(16), COST),
        oracle_hash(sha1_hex("pw"), bytes(16), 3, scheme=WRAPPED_SCHEME),
    ):
        got = do(f"verify_and_update('guess', {stored!r})", h.verify_and_update, "guess", stored)
        assert got == (False, None), called(
            f"verify_and_update('guess', {stored!r})", got, (False, None)
        )


# --- pepper ---------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_pepper_is_hmac_before_pbkdf2():
    """With a pepper, the PBKDF2 input is HMAC-SHA256(pepper, UTF-8 password)."""
    pepper = b"kept in a vault, not in the database"
    for password in ("pw", "x" * 100):
        salts = Salts()
        h = hasher(pepper=pepper, random_bytes=salts)
        got = do(f"hash({password!r}) with a pepper", h.hash, password)
        want = oracle_hash(password, salts.made[0], COST, pepper=pepper) if salts.made else "a hash"
        assert got == want, called(
            f"PasswordHasher(pepper=...).hash({short(password, 20)})", got, want
        )


@pytest.mark.points(2)
def test_pepper_is_needed_to_verify():
    """A peppered hash verifies only with the same pepper: not with none, not with another."""
    stored = oracle_hash("pw", bytes(16), 5, pepper=b"pepper-1")
    for pepper, want in [(b"pepper-1", True), (b"pepper-2", False), (None, False)]:
        h = hasher(pepper=pepper)
        got = do(
            f"verify('pw', <hash peppered with b'pepper-1'>) with pepper={pepper!r}",
            h.verify,
            "pw",
            stored,
        )
        assert got is want, called(
            f"PasswordHasher(pepper={pepper!r}).verify('pw', <peppered hash>)", got, want
        )


# --- legacy rows ----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_wrap_legacy_is_pbkdf2_of_the_hex_row():
    """wrap_legacy(row) is $pbkdf2-sha256-wrapped-sha1$ over the row's lowercase hex text, no password needed."""
    row = sha1_hex("letmein")
    for given_row in (row, row.upper()):
        salts = Salts()
        h = hasher(random_bytes=salts)
        got = do(f"wrap_legacy({given_row!r})", h.wrap_legacy, given_row)
        want = (
            oracle_hash(row, salts.made[0], COST, scheme=WRAPPED_SCHEME) if salts.made else "a hash"
        )
        assert got == want, called(f"wrap_legacy({given_row!r})", got, want)


@pytest.mark.points(3)
def test_wrapped_row_verifies_and_upgrades_on_login():
    """A wrapped row verifies the original password, and the first login replaces it with a plain hash."""
    h = hasher()
    wrapped = do("wrap_legacy(sha1('letmein'))", h.wrap_legacy, sha1_hex("letmein"))
    bad = do("verify('letmeout', wrapped)", h.verify, "letmeout", wrapped)
    assert bad is False, called("verify('letmeout', <wrapped sha1('letmein')>)", bad, False)
    ok, new = do("verify_and_update('letmein', wrapped)", h.verify_and_update, "letmein", wrapped)
    assert ok is True and isinstance(new, str), called(
        "verify_and_update('letmein', <wrapped sha1('letmein')>)", (ok, new), "(True, a new hash)"
    )
    assert new.startswith(f"${SCHEME}$i={COST}$"), called(
        "verify_and_update('letmein', <wrapped row>)", new, f"a ${SCHEME}$i={COST}$... hash"
    )
    again = do("verify_and_update('letmein', new)", h.verify_and_update, "letmein", new)
    assert again == (True, None), called(
        "verify_and_update('letmein', <the upgraded hash>)", again, (True, None)
    )


@pytest.mark.points(2)
def test_wrapped_rows_are_peppered_too():
    """With a pepper, a wrapped row's PBKDF2 input is HMAC-SHA256(pepper, hex row)."""
    salts = Salts()
    h = hasher(pepper=b"pepper", random_bytes=salts)
    wrapped = do("wrap_legacy(sha1('pw'))", h.wrap_legacy, sha1_hex("pw"))
    want = (
        oracle_hash(sha1_hex("pw"), salts.made[0], COST, pepper=b"pepper", scheme=WRAPPED_SCHEME)
        if salts.made
        else "a hash"
    )
    assert wrapped == want, called(
        "PasswordHasher(pepper=b'pepper').wrap_legacy(sha1('pw'))", wrapped, want
    )
    ok = do("verify('pw', wrapped)", h.verify, "pw", wrapped)
    assert ok is True, called("verify('pw', <peppered wrapped row>)", ok, True)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "row",
    [
        sha1_hex("pw")[:39],
        sha1_hex("pw") + "0",
        "g" * 40,
        " " + sha1_hex("pw")[1:],
        "",
        "0x" + sha1_hex("pw")[2:],
    ],
    ids=["39 digits", "41 digits", "not hex", "leading space", "empty", "0x prefix"],
)
def test_wrap_legacy_rejects_what_is_not_a_sha1_row(row):
    """wrap_legacy raises InvalidHash unless the row is exactly 40 hexadecimal digits."""
    raised, got = rejected(hasher().wrap_legacy, row)
    assert raised, called(f"wrap_legacy({row!r})", got, "InvalidHash")


@pytest.mark.points(2)
def test_an_unwrapped_legacy_row_is_not_a_password_hash():
    """verify refuses a bare SHA-1 row with InvalidHash: legacy rows are only accepted wrapped."""
    row = sha1_hex("pw")
    raised, got = rejected(hasher().verify, "pw", row)
    assert raised, called(f"verify('pw', {row!r})", got, "InvalidHash")
