"""Examples of a working write-ahead log. Run them with `nox -s try -- wal_recovery`."""

import struct
import zlib

try:
    from wal_recovery import DiskFS, WalStore, decode_records, encode_changes, encode_record
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import DiskFS, WalStore, decode_records, encode_changes and "
        "encode_record from wal_recovery.py"
    ) from err


def test_a_record_is_length_crc_payload():
    record = encode_record(b"hello")
    want = struct.pack(">II", 5, zlib.crc32(b"hello")) + b"hello"
    assert record == want, f"Called encode_record(b'hello'); returned {record!r}; expected {want!r}"


def test_decode_stops_at_a_torn_tail():
    log = encode_record(b"one") + encode_record(b"two")[:-1]
    got = decode_records(log)
    assert got == ([b"one"], 11), f"Called decode_records(one + torn two); returned {got!r}"


def test_changes_are_compact_sorted_json():
    got = encode_changes({"b": "2", "a": None})
    assert got == b'{"a":null,"b":"2"}', (
        f"Called encode_changes({{'b': '2', 'a': None}}); returned {got!r}"
    )


def test_commits_survive_a_reopen(tmp_path):
    store = WalStore.open(DiskFS(tmp_path))
    store.commit({"user:1": "ada", "user:2": "alan"})
    store.commit({"user:2": None})
    store.checkpoint()
    store.commit({"user:3": "grace"})
    got = WalStore.open(DiskFS(tmp_path)).snapshot()
    want = {"user:1": "ada", "user:3": "grace"}
    assert got == want, (
        f"Called WalStore.open(...).snapshot() after reopening; returned {got!r}; expected {want!r}"
    )
