"""Hidden specs for commit_log: CRC-32C and murmur2 against published vectors and independent
oracles, the on-disk formats parsed independently, rolling, the sparse index and counted reads,
crash recovery at every byte, retention, consumer offsets, and a list model."""

from __future__ import annotations

import contextlib

import pytest
from _helpers import (
    CountingDisk,
    crc32c_bitwise,
    expected_index,
    expected_segments,
    murmur2_java,
    open_log,
    parse_index,
    parse_segment,
    partition_java,
    record_size,
    seg_name,
)
from commit_log import CommitLog, Consumer, OffsetOutOfRange, Topic, crc32c, murmur2, partition_for
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from grader.spectools import FakeClock, called, short, step

PROPERTY = settings(max_examples=150, deadline=None)


def append(log: CommitLog, key: bytes | None, value: bytes) -> int:
    with step(f"log.append({short(key)}, {short(value)})"):
        return log.append(key, value)


def read(log: CommitLog, offset: int, max_bytes: int):
    with step(f"log.read({offset}, {max_bytes})"):
        return log.read(offset, max_bytes)


def refused(call: str, error: type[Exception], action) -> None:
    """Run ``action``; fail with a readable message unless it raises ``error``."""
    try:
        got = action()
    except error:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the learner
        raise AssertionError(called(call, exc, error.__name__)) from None
    raise AssertionError(called(call, got, error.__name__))


def contents(log: CommitLog) -> list[tuple[int, bytes | None, bytes]]:
    """Every record from log_start_offset on, as (offset, key, value), read segment by segment."""
    out = []
    with step("log.log_start_offset"):
        offset = log.log_start_offset
    with step("log.next_offset"):
        end = log.next_offset
    while offset < end:
        batch = read(log, offset, 1 << 20)
        if not batch:
            raise AssertionError(
                called(f"log.read({offset}, 1 << 20) below next_offset {end}", [], "a record")
            )
        out += [(r.offset, r.key, r.value) for r in batch]
        offset = batch[-1].offset + 1
    return out


def filled(n: int, size: int = 40, **options) -> tuple[CountingDisk, CommitLog]:
    """A log of n records of exactly ``size`` bytes on disk each (key b"k", value of x's)."""
    disk = CountingDisk()
    log = open_log(disk, **options)
    for _ in range(n):
        append(log, b"k", b"x" * (size - record_size(b"k", b"")))
    return disk, log


# -- CRC-32C ----------------------------------------------------------------------------------

RFC3720 = [
    ("32-zeros", bytes(32), 0x8A9136AA),
    ("32-ones", b"\xff" * 32, 0x62A8AB43),
    ("32-incrementing", bytes(range(32)), 0x46DD794E),
    ("32-decrementing", bytes(range(31, -1, -1)), 0x113FDB5C),
    (
        "iscsi-read-pdu",
        bytes.fromhex(
            "01c00000000000000000000000000000"
            "14000000000004000000001400000018"
            "28000000000000000200000000000000"
        ),
        0xD9963A56,
    ),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("data,want", [v[1:] for v in RFC3720], ids=[v[0] for v in RFC3720])
def test_crc32c_matches_the_rfc3720_vectors(data, want):
    """crc32c gives the CRC-32C values of RFC 3720 Appendix B.4."""
    with step(f"crc32c({short(data, 40)})"):
        got = crc32c(data)
    assert got == want, called(f"crc32c({short(data, 40)})", got, want)


CHECKS = [("empty", b"", 0), ("check-123456789", b"123456789", 0xE3069283)]


@pytest.mark.points(1)
@pytest.mark.parametrize("data,want", [v[1:] for v in CHECKS], ids=[v[0] for v in CHECKS])
def test_crc32c_of_empty_input_and_the_check_string(data, want):
    """crc32c(b"") is 0 and crc32c(b"123456789") is the catalogued check value 0xE3069283."""
    with step(f"crc32c({data!r})"):
        got = crc32c(data)
    assert got == want, called(f"crc32c({data!r})", got, want)


@pytest.mark.points(2)
@PROPERTY
@given(data=st.binary(max_size=300))
@example(data=b"\x00")
@example(data=b"\x80")
@example(data=b"\xff" * 7)
@example(data=bytes(range(256)))
def test_crc32c_matches_the_bitwise_definition(data):
    """crc32c agrees with a bit-at-a-time CRC-32C (polynomial 0x1EDC6F41, reflected) on any bytes."""
    with step(f"crc32c({short(data, 60)})"):
        got = crc32c(data)
    want = crc32c_bitwise(data)
    assert got == want, called(f"crc32c({short(data, 60)})", got, want)


@pytest.mark.points(1)
@PROPERTY
@given(data=st.binary(max_size=100), cut=st.integers(0, 100))
@example(data=b"123456789", cut=0)
@example(data=b"123456789", cut=9)
def test_crc32c_continues_from_a_previous_value(data, cut):
    """crc32c(b, crc32c(a)) == crc32c(a + b), so a CRC can be computed piece by piece."""
    a, b = data[:cut], data[cut:]
    with step(f"crc32c({short(b, 40)}, crc32c({short(a, 40)}))"):
        got = crc32c(b, crc32c(a))
    want = crc32c_bitwise(data)
    assert got == want, called(f"crc32c({short(b, 40)}, crc32c({short(a, 40)}))", got, want)


# -- Kafka's partitioner ----------------------------------------------------------------------

MURMUR = [
    ("foo", b"foo", 597841616),  # kafka-python, kafka.partitioner.default.murmur2
    ("a-negative", b"a", -1563381124),
    ("123456789-negative", b"123456789", -1822237082),
    ("empty", b"", 275646681),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("key,want", [v[1:] for v in MURMUR], ids=[v[0] for v in MURMUR])
def test_murmur2_returns_what_kafka_returns(key, want):
    """murmur2 returns Kafka's Utils.murmur2 value, a signed 32-bit int (b"foo" -> 597841616)."""
    with step(f"murmur2({key!r})"):
        got = murmur2(key)
    assert got == want, called(f"murmur2({key!r})", got, want)


# kafka-python test/test_partitioner.py, test_murmur2_java_compatibility: "compare with output
# from Kafka's org.apache.kafka.clients.producer.Partitioner", 1000 partitions.
JAVA = [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)]


@pytest.mark.points(2)
@pytest.mark.parametrize("key,want", JAVA, ids=[repr(k) for k, _ in JAVA])
def test_partition_for_matches_the_java_client(key, want):
    """partition_for(key, 1000) picks the partition Kafka's Java producer picks."""
    with step(f"partition_for({key!r}, 1000)"):
        got = partition_for(key, 1000)
    assert got == want, called(f"partition_for({key!r}, 1000)", got, want)


@pytest.mark.points(2)
@PROPERTY
@given(key=st.binary(max_size=64))
@example(key=b"\x80")
@example(key=b"\xff\xff")
@example(key=b"\xfe\xfd\xfc")
@example(key=b"\xff\xff\xff\xff")
@example(key=b"\x81\x82\x83\x84\x85")
def test_murmur2_matches_kafka_on_any_key(key):
    """murmur2 equals Kafka's Java murmur2 on any key: every tail length, bytes >= 0x80."""
    with step(f"murmur2({short(key, 60)})"):
        got = murmur2(key)
    want = murmur2_java(key)
    assert got == want, called(f"murmur2({short(key, 60)})", got, want)


@pytest.mark.points(2)
@PROPERTY
@given(key=st.binary(max_size=32), partitions=st.integers(1, 10_000))
@example(key=b"a", partitions=1)
@example(key=b"a", partitions=7)
@example(key=b"123456789", partitions=3)
def test_partition_for_matches_kafka_on_any_key(key, partitions):
    """partition_for(key, n) is toPositive(murmur2(key)) % n, as Kafka's producer computes it."""
    with step(f"partition_for({short(key, 60)}, {partitions})"):
        got = partition_for(key, partitions)
    want = partition_java(key, partitions)
    assert got == want, called(f"partition_for({short(key, 60)}, {partitions})", got, want)


@pytest.mark.points(1)
def test_partition_for_rejects_zero_partitions():
    """partition_for(key, 0) raises ValueError; partition_for(key, 1) is 0."""
    with step("partition_for(b'k', 1)"):
        got = partition_for(b"k", 1)
    assert got == 0, called("partition_for(b'k', 1)", got, 0)
    refused("partition_for(b'k', 0)", ValueError, lambda: partition_for(b"k", 0))


@pytest.mark.points(2)
def test_a_topic_routes_keys_by_murmur2_and_spreads_null_keys_in_turn():
    """Topic.produce appends a keyed record to partition_for(key, n) and keyless ones round robin."""
    disk = CountingDisk()
    with step("Topic(disk, 'orders', 3)"):
        topic = Topic(disk, "orders", 3)
    counts = [0, 0, 0]
    for i in range(30):
        key = b"customer-%d" % i
        with step(f"topic.produce({key!r}, b'v')"):
            got = topic.produce(key, b"v")
        want = (partition_java(key, 3), counts[partition_java(key, 3)])
        counts[want[0]] += 1
        assert got == want, called(f"topic.produce({key!r}, b'v')", got, want)
    for i in range(6):
        with step("topic.produce(None, b'v')"):
            got = topic.produce(None, b"v")
        want = (i % 3, counts[i % 3])
        counts[i % 3] += 1
        assert got == want, called(f"topic.produce(None, b'v') number {i + 1}", got, want)
    for p in range(3):
        got = len(parse_segment(disk.files[seg_name(0, ".log", f"orders-{p}")], f"orders-{p}"))
        assert got == counts[p], called(
            f"records in orders-{p}/00000000000000000000.log", got, counts[p]
        )


@pytest.mark.points(1)
def test_an_empty_key_is_a_key():
    """A record with the empty key b'' goes to partition_for(b'', n), like any keyed record; only None is key-less."""
    disk = CountingDisk()
    with step("Topic(disk, 'orders', 3)"):
        topic = Topic(disk, "orders", 3)
    calls = [None, b"", None, b"", None]
    want_partitions = [0, partition_java(b"", 3), 1, partition_java(b"", 3), 2]
    counts = [0, 0, 0]
    for key, partition in zip(calls, want_partitions, strict=True):
        with step(f"topic.produce({key!r}, b'v')"):
            got = topic.produce(key, b"v")
        want = (partition, counts[partition])
        counts[partition] += 1
        assert got == want, called(
            f"topic.produce({key!r}, b'v') in the sequence {calls!r}", got, want
        )


@pytest.mark.points(1)
def test_keyed_records_do_not_take_a_turn_of_the_key_less_ones():
    """Key-less records go to 0, 1, ..., n - 1 in turn however many keyed records come between them."""
    disk = CountingDisk()
    with step("Topic(disk, 'orders', 3)"):
        topic = Topic(disk, "orders", 3)
    counts = [0, 0, 0]
    turn = 0
    keys = [None, b"k1", None, b"k2", b"k3", None, None, b"k4", None]
    for key in keys:
        with step(f"topic.produce({key!r}, b'v')"):
            got = topic.produce(key, b"v")
        if key is None:
            partition = turn % 3
            turn += 1
        else:
            partition = partition_java(key, 3)
        want = (partition, counts[partition])
        counts[partition] += 1
        assert got == want, called(
            f"topic.produce({key!r}, b'v') in the sequence {keys!r}", got, want
        )


@pytest.mark.points(1)
def test_a_topic_passes_its_options_to_every_partition_and_needs_one():
    """Topic(disk, name, n, **options) opens n logs <name>-<p> with those options; n = 0 raises ValueError."""
    disk = CountingDisk()
    with step("Topic(disk, 'clicks', 2, segment_bytes=100)"):
        topic = Topic(disk, "clicks", 2, segment_bytes=100)
    for _ in range(6):
        with step("topic.produce(None, b'x' * 30)"):
            topic.produce(None, b"x" * 30)  # 62 bytes: one record per segment
    got = [disk.segments(f"clicks-{p}") for p in range(2)]
    assert got == [[0, 1, 2], [0, 1, 2]], called(
        "segment bases of clicks-0 and clicks-1 after 6 key-less 62-byte records, segment_bytes=100",
        got,
        [[0, 1, 2], [0, 1, 2]],
    )
    refused("Topic(disk, 'none', 0)", ValueError, lambda: Topic(CountingDisk(), "none", 0))


# -- parameters -------------------------------------------------------------------------------

BAD = [
    ("segment_bytes", 0),
    ("index_interval_bytes", -1),
    ("retention_bytes", -1),
    ("retention_ms", -1),
]
GOOD = [
    ("segment_bytes", 1),
    ("index_interval_bytes", 0),
    ("retention_bytes", 0),
    ("retention_ms", 0),
]


@pytest.mark.points(1)
@pytest.mark.parametrize("name,bad", BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_parameters_out_of_range_are_rejected(name, bad):
    """segment_bytes >= 1, index_interval_bytes >= 0, retention_bytes and retention_ms >= 0, else ValueError."""
    refused(
        f"CommitLog(disk, {name}={bad})",
        ValueError,
        lambda: CommitLog(CountingDisk(), "log-0", **{name: bad}),
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("name,good", GOOD, ids=[f"{n}={v}" for n, v in GOOD])
def test_parameters_at_their_limit_are_accepted(name, good):
    """The smallest legal value of each parameter gives a working log."""
    disk = CountingDisk()
    log = open_log(disk, **{name: good})
    append(log, b"a", b"1")
    append(log, b"b", b"2")
    got = contents(log)
    want = [(0, b"a", b"1"), (1, b"b", b"2")]
    assert got == want, called(f"reading back two appends with {name}={good}", got, want)


# -- appends, files and formats ---------------------------------------------------------------


@pytest.mark.points(1)
def test_a_new_log_is_one_empty_segment_at_offset_zero():
    """A log opened on an empty disk has an empty 00000000000000000000.log and .index."""
    disk = CountingDisk()
    log = open_log(disk)
    got = (disk.names(), log.next_offset, log.log_start_offset)
    want = ([seg_name(0, ".index"), seg_name(0, ".log")], 0, 0)
    assert got == want, called(
        "CommitLog(disk): (disk.names(), next_offset, log_start_offset)", got, want
    )
    assert disk.files[seg_name(0, ".log")] == b"" and disk.files[seg_name(0, ".index")] == b"", (
        called("the new segment's files", disk.files, "both empty")
    )


@pytest.mark.points(2)
def test_append_returns_consecutive_offsets_and_read_returns_the_records():
    """append returns 0, 1, 2, ...; read returns each record's offset, timestamp, key and value."""
    clock = FakeClock(1700000000.0)
    disk = CountingDisk()
    log = open_log(disk, clock=clock)
    writes = [(b"a", b"1"), (None, b"no key"), (b"", b""), (b"k" * 300, b"v" * 1000)]
    for i, (key, value) in enumerate(writes):
        got = append(log, key, value)
        assert got == i, called(
            f"log.append({short(key)}, {short(value)}) as append {i + 1}", got, i
        )
        clock.advance(0.25)
    got = [(r.offset, r.timestamp, r.key, r.value) for r in read(log, 0, 1 << 20)]
    want = [(i, 1700000000000 + 250 * i, k, v) for i, (k, v) in enumerate(writes)]
    assert got == want, called("log.read(0, 1 << 20)", got, want)
    with step("log.next_offset"):
        assert log.next_offset == 4, called("log.next_offset", log.next_offset, 4)


@pytest.mark.points(2)
def test_records_follow_the_format():
    """A .log holds offset | size | crc32c(body) | body, body = timestamp | key length | key | value length | value."""
    clock = FakeClock(1234.5)
    disk = CountingDisk()
    log = open_log(disk, clock=clock)
    writes = [(b"a", b"1"), (None, b"x"), (b"", b""), (b"key", bytes(range(256)))]
    for key, value in writes:
        append(log, key, value)
    recs = parse_segment(disk.files[seg_name(0, ".log")], "00000000000000000000.log")
    got = [(r.offset, r.timestamp, r.key, r.value) for r in recs]
    want = [(i, 1234500, k, v) for i, (k, v) in enumerate(writes)]
    assert got == want, called("the records parsed from 00000000000000000000.log", got, want)


ROLLS = [("exactly-full", 0, 1), ("one-byte-short", -1, 2), ("one-byte-spare", 1, 1)]


@pytest.mark.points(2)
@pytest.mark.parametrize("delta,segments", [r[1:] for r in ROLLS], ids=[r[0] for r in ROLLS])
def test_a_segment_rolls_before_a_record_that_would_overflow_it(delta, segments):
    """A record goes to a new segment only if it would take the active one past segment_bytes."""
    size = 40
    disk, log = filled(3, size, segment_bytes=3 * size + delta)
    got = disk.segments()
    want = [s[0] for s in expected_segments([size] * 3, 3 * size + delta)]
    assert len(want) == segments and got == want, called(
        f"3 appends of {size}-byte records with segment_bytes={3 * size + delta}: segment bases",
        got,
        want,
    )


@pytest.mark.points(2)
def test_segments_are_named_by_their_base_offset_in_20_digits():
    """Each segment is <base offset, 20 digits>.log with its .index, holding exactly its records."""
    sizes = [record_size(b"k", b"v" * (i * 7 % 50)) for i in range(40)]
    disk = CountingDisk()
    log = open_log(disk, segment_bytes=200)
    for i in range(40):
        append(log, b"k", b"v" * (i * 7 % 50))
    layout = expected_segments(sizes, 200)
    names = [
        n
        for base in (s[0] for s in layout)
        for n in (seg_name(base, ".index"), seg_name(base, ".log"))
    ]
    assert disk.names() == names, called(
        "disk.names() after 40 appends, segment_bytes=200", disk.names(), names
    )
    for offsets in layout:
        recs = parse_segment(disk.files[seg_name(offsets[0], ".log")], seg_name(offsets[0], ".log"))
        got = [r.offset for r in recs]
        assert got == offsets, called(
            f"the offsets in {seg_name(offsets[0], '.log')}", got, offsets
        )


@pytest.mark.points(2)
def test_a_record_larger_than_segment_bytes_gets_a_segment_of_its_own():
    """A record bigger than segment_bytes is still appended, alone in its segment, and retention can drop it."""
    disk = CountingDisk()
    log = open_log(disk, segment_bytes=100, retention_bytes=0)
    for value in (b"x" * 500, b"a", b"b"):  # 533 bytes in the empty first segment, then 34 + 34
        append(log, b"k", value)
    got = disk.segments()
    assert got == [0, 1], called("segment bases after appends of 533, 34 and 34 bytes", got, [0, 1])
    got = [(r.offset, len(r.value)) for r in read(log, 0, 10)]
    assert got == [(0, 500)], called("log.read(0, 10): (offset, value length)", got, [(0, 500)])
    with step("log.enforce_retention() with retention_bytes=0"):
        deleted = log.enforce_retention()
    got = (deleted, disk.segments(), [(o, v) for o, _, v in contents(log)])
    want = ([0], [1], [(1, b"a"), (2, b"b")])
    assert got == want, called("(deleted, segments left, records left) after retention", got, want)


INTERVALS = [("at-limit", 0), ("one-below", -1), ("one-above", 1)]


@pytest.mark.points(3)
@pytest.mark.parametrize("delta", [d for _, d in INTERVALS], ids=[n for n, _ in INTERVALS])
def test_index_entries_follow_index_interval_bytes(delta):
    """An index entry is written once MORE than index_interval_bytes were appended since the last."""
    size, interval = 40, 80 + delta
    disk, log = filled(30, size, index_interval_bytes=interval)
    got = parse_index(disk.files[seg_name(0, ".index")], "00000000000000000000.index")
    want = expected_index([size] * 30, interval)
    assert got == want, called(
        f"the .index after 30 appends of {size}-byte records, index_interval_bytes={interval}",
        got[:6],
        want[:6],
    )


@pytest.mark.points(1)
def test_index_interval_zero_indexes_every_record_but_the_first():
    """With index_interval_bytes=0 every record after a segment's first has an index entry."""
    sizes = [record_size(b"k", b"v" * i) for i in range(12)]
    disk = CountingDisk()
    log = open_log(disk, index_interval_bytes=0, segment_bytes=300)
    for i in range(12):
        append(log, b"k", b"v" * i)
    for offsets in expected_segments(sizes, 300):
        base = offsets[0]
        got = parse_index(disk.files[seg_name(base, ".index")], seg_name(base, ".index"))
        want = expected_index([sizes[o] for o in offsets], 0)
        assert got == want, called(f"the entries of {seg_name(base, '.index')}", got, want)


@pytest.mark.points(2)
def test_a_reopened_log_holds_every_record_and_continues_the_offsets():
    """A log opened on the disk of a closed one reads every record and appends at next_offset."""
    disk, log = filled(25, 40, segment_bytes=200)
    with step("log.close()"):
        log.close()
    log = open_log(disk, segment_bytes=200)
    got = append(log, b"after", b"reopen")
    assert got == 25, called(
        "log.append(b'after', b'reopen') after a reopen of 25 records", got, 25
    )
    got = contents(log)
    want = [(i, b"k", b"x" * 7) for i in range(25)] + [(25, b"after", b"reopen")]
    assert got == want, called("every record after the reopen", got[-3:], want[-3:])


# -- reads ------------------------------------------------------------------------------------

MAX_BYTES = [
    ("exactly-three", 120, 3),
    ("one-byte-short", 119, 2),
    ("one-byte-spare", 121, 3),
    ("smaller-than-one", 10, 1),
    ("one-byte", 1, 1),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "max_bytes,count", [m[1:] for m in MAX_BYTES], ids=[m[0] for m in MAX_BYTES]
)
def test_read_returns_as_many_records_as_max_bytes_holds_and_at_least_one(max_bytes, count):
    """read stops before the record that would pass max_bytes, but always returns the first."""
    _, log = filled(10, 40)
    got = [r.offset for r in read(log, 2, max_bytes)]
    want = list(range(2, 2 + count))
    assert got == want, called(
        f"log.read(2, {max_bytes}) over 40-byte records (offsets)", got, want
    )


@pytest.mark.points(2)
def test_read_returns_records_of_one_segment_only():
    """A read returns records from the segment holding the offset, never from the next one."""
    disk, log = filled(10, 40, segment_bytes=160)  # segments of 4 records: 0, 4, 8
    for offset, want in [(2, [2, 3]), (3, [3]), (4, [4, 5, 6, 7]), (9, [9])]:
        got = [r.offset for r in read(log, offset, 1 << 20)]
        assert got == want, called(
            f"log.read({offset}, 1 << 20) with segments at 0, 4, 8", got, want
        )


@pytest.mark.points(2)
def test_reads_outside_the_log_are_refused():
    """read at next_offset returns []; below log_start_offset or past next_offset raises OffsetOutOfRange."""
    _, log = filled(3, 40)
    got = read(log, 3, 100)
    assert got == [], called("log.read(3, 100) on a log of 3 records", got, [])
    for offset in (-1, 4):
        refused(
            f"log.read({offset}, 100) on a log of 3 records",
            OffsetOutOfRange,
            lambda offset=offset: log.read(offset, 100),
        )
    refused("log.read(0, 0)", ValueError, lambda: log.read(0, 0))


def big_log() -> tuple[CountingDisk, CommitLog]:
    """Segments 0, 400 and 800 of 400 records of 40 bytes, an index entry per 3 records; reopened."""
    disk, log = filled(1200, 40, segment_bytes=16000, index_interval_bytes=100)
    return disk, open_log(disk, segment_bytes=16000, index_interval_bytes=100)


COUNTED = [1, 200, 398, 400, 401, 555, 556, 798, 800, 1000, 1198]


@pytest.mark.points(2)
def test_opening_a_log_reads_only_the_active_segments_records():
    """Opening a log scans the active segment only: older segments were complete when the log rolled."""
    disk, _ = filled(1200, 40, segment_bytes=16000, index_interval_bytes=100)
    mark = disk.mark()
    log = open_log(disk, segment_bytes=16000, index_interval_bytes=100)
    logs = sorted({name for name, _, _ in disk.reads_since(mark, ".log")})
    assert logs in ([], [seg_name(800, ".log")]), called(
        "CommitLog(disk, ...) on segments 0, 400 and 800: the .log files it read",
        logs,
        [seg_name(800, ".log")],
    )
    got = [r.offset for r in read(log, 10, 80)]
    assert got == [10, 11], called("log.read(10, 80) after the reopen", got, [10, 11])


@pytest.mark.points(3)
def test_a_read_touches_one_segment_and_a_logarithmic_number_of_index_entries():
    """A read opens one segment's .log and binary-searches its .index: at most log2(entries) + 3 entries."""
    disk, log = big_log()
    for offset in COUNTED:
        base = offset // 400 * 400
        entries = len(parse_index(disk.files[seg_name(base, ".index")], "index"))
        bound = entries.bit_length() + 2
        mark = disk.mark()
        got = [r.offset for r in read(log, offset, 100)]
        assert got == [offset, offset + 1], called(
            f"log.read({offset}, 100)", got, [offset, offset + 1]
        )
        logs = {name for name, _, _ in disk.reads_since(mark, ".log")}
        assert logs == {seg_name(base, ".log")}, called(
            f"log.read({offset}, 100) with segments at 0, 400, 800: the .log files it read",
            sorted(logs),
            [seg_name(base, ".log")],
        )
        index_bytes = sum(size for _, _, size in disk.reads_since(mark, ".index"))
        assert index_bytes <= 8 * bound, called(
            f"log.read({offset}, 100) in a segment of {entries} index entries: index entries read",
            index_bytes // 8,
            f"at most {bound}",
        )


@pytest.mark.points(3)
def test_a_read_starts_at_the_index_entry_not_at_the_segment_start():
    """A read in the middle of a segment reads about index_interval_bytes + max_bytes of its .log."""
    disk, log = big_log()
    bound = 100 + 100 + 2 * 40
    for offset in COUNTED:
        mark = disk.mark()
        got = [r.offset for r in read(log, offset, 100)]
        assert got == [offset, offset + 1], called(
            f"log.read({offset}, 100)", got, [offset, offset + 1]
        )
        log_bytes = sum(size for _, _, size in disk.reads_since(mark, ".log"))
        assert log_bytes <= bound, called(
            f"log.read({offset}, 100), index_interval_bytes=100, in a 16000-byte segment: "
            ".log bytes read",
            log_bytes,
            f"at most {bound}",
        )


# -- crash recovery ---------------------------------------------------------------------------


def damaged_log(n: int = 12) -> tuple[CountingDisk, list[int], int]:
    """A log whose active segment (base 9) holds offsets 9..n-1 of varied sizes; returns
    (disk, the records' end positions in the active segment, its base)."""
    disk = CountingDisk()
    log = open_log(disk, segment_bytes=300, index_interval_bytes=50)
    for i in range(n):
        append(log, b"k%d" % i, b"v" * (i * 13 % 40))
    base = disk.segments()[-1]
    recs = parse_segment(disk.files[seg_name(base, ".log")], "active")
    return disk, [r.position + r.size for r in recs], base


def survivors(ends: list[int], base: int, damage: int) -> list[int]:
    """The offsets of the active segment wholly before byte ``damage``."""
    return [base + i for i, end in enumerate(ends) if end <= damage]


def check_recovered(disk: CountingDisk, base: int, kept: list[int], what: str) -> None:
    log = open_log(disk, segment_bytes=300, index_interval_bytes=50)
    got = [o for o, _, _ in contents(log)]
    want = list(range(base)) + kept
    assert got == want, called(f"every offset read after {what} and a reopen", got[base:], kept)
    data = disk.files[seg_name(base, ".log")]
    recs = parse_segment(data, f"the active segment after {what} and a reopen")
    assert [r.offset for r in recs] == kept, called(
        f"the records left in the active .log after {what}", [r.offset for r in recs], kept
    )
    index = parse_index(disk.files[seg_name(base, ".index")], "the active .index")
    want_index = expected_index([r.size for r in recs], 50)
    assert index == want_index, called(
        f"the active .index after {what} and a reopen",
        index,
        f"rebuilt for the records kept: {want_index}",
    )
    with step("log.next_offset"):
        end = log.next_offset
    assert end == base + len(kept), called(f"log.next_offset after {what}", end, base + len(kept))


# damaged_log(): the active segment's records end at bytes 71, 116 and 174.
@pytest.mark.points(4)
@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 173))
@example(cut=0)
@example(cut=15)
@example(cut=16)
@example(cut=70)
@example(cut=71)
@example(cut=72)
@example(cut=71 + 16)
@example(cut=173)
def test_recovery_cuts_a_torn_tail_after_the_last_whole_record(cut):
    """A reopen after a crash that tore the active segment at any byte keeps exactly the whole records before it."""
    disk, ends, base = damaged_log()
    name = seg_name(base, ".log")
    disk.files[name] = disk.files[name][:cut]
    check_recovered(
        disk, base, survivors(ends, base, cut), f"tearing the active .log at byte {cut}"
    )


@pytest.mark.points(4)
@settings(max_examples=60, deadline=None)
@given(at=st.integers(0, 173), mask=st.integers(1, 255))
@example(at=0, mask=1)  # the first record's offset
@example(at=7, mask=1)
@example(at=8, mask=0x80)  # its size
@example(at=11, mask=1)
@example(at=12, mask=1)  # its crc
@example(at=16, mask=1)  # its timestamp
@example(at=71, mask=1)  # the second record's first byte
@example(at=71 + 30, mask=0xFF)
@example(at=173, mask=1)  # the last byte
def test_recovery_cuts_at_a_corrupt_byte(at, mask):
    """A reopen after a byte of the active segment was changed keeps exactly the whole records before it."""
    disk, ends, base = damaged_log()
    name = seg_name(base, ".log")
    data = bytearray(disk.files[name])
    data[at] ^= mask
    disk.files[name] = bytes(data)
    check_recovered(
        disk, base, survivors(ends, base, at), f"flipping bits {mask:#04x} of byte {at}"
    )


@pytest.mark.points(2)
def test_recovery_drops_a_record_out_of_sequence():
    """A valid record whose offset is not the previous + 1 (a duplicated tail) ends the segment."""
    disk, ends, base = damaged_log()
    name = seg_name(base, ".log")
    data = disk.files[name]
    last = data[ends[-2] :]
    disk.files[name] = data + last  # the last record, whole and with a good CRC, twice
    check_recovered(disk, base, survivors(ends, base, ends[-1]), "a duplicated last record")


@pytest.mark.points(2)
def test_writes_after_recovery_follow_the_valid_records():
    """After a torn tail is cut, new appends continue at the next offset and survive another reopen."""
    disk, ends, base = damaged_log()
    name = seg_name(base, ".log")
    disk.files[name] = disk.files[name][: ends[1] + 5]
    log = open_log(disk, segment_bytes=300, index_interval_bytes=50)
    got = append(log, b"new", b"record")
    assert got == base + 2, called(
        "log.append(b'new', b'record') after the recovery", got, base + 2
    )
    log = open_log(disk, segment_bytes=300, index_interval_bytes=50)
    got = contents(log)[-3:]
    want = [
        (base, b"k%d" % base, b"v" * (base * 13 % 40)),
        (base + 1, b"k%d" % (base + 1), b"v" * ((base + 1) * 13 % 40)),
        (base + 2, b"new", b"record"),
    ]
    assert got == want, called(
        "the last three records after recovery, an append and a reopen", got, want
    )


@pytest.mark.points(1)
def test_a_stale_index_is_rebuilt_on_recovery():
    """Index entries pointing past the recovered end of the active segment are dropped."""
    disk, ends, base = damaged_log()
    index = seg_name(base, ".index")
    disk.files[index] += bytes.fromhex("000000630000ffff") * 3  # garbage from a torn write
    check_recovered(disk, base, survivors(ends, base, ends[-1]), "garbage at the end of the .index")


# -- retention --------------------------------------------------------------------------------


def retained(retention_bytes: int, n: int = 12) -> tuple[CountingDisk, CommitLog, list[int]]:
    """n records of 40 bytes in segments of 3 (120 bytes each), then enforce_retention()."""
    disk, log = filled(n, 40, segment_bytes=120, retention_bytes=retention_bytes)
    with step(f"log.enforce_retention() with retention_bytes={retention_bytes}"):
        deleted = log.enforce_retention()
    return disk, log, deleted


SIZES = [
    ("at-limit", 360, [0]),
    ("one-below", 359, [0]),
    ("one-above", 361, []),
    ("zero", 0, [0, 3, 6]),
]


@pytest.mark.points(3)
@pytest.mark.parametrize("retention,deleted", [s[1:] for s in SIZES], ids=[s[0] for s in SIZES])
def test_retention_bytes_deletes_whole_old_segments(retention, deleted):
    """Oldest segments go while the log still holds retention_bytes without them; never the active one."""
    disk, log, got = retained(retention)  # segments 0, 3, 6, 9: 480 bytes
    assert got == deleted, called(
        f"log.enforce_retention(), retention_bytes={retention}, 4 segments of 120 bytes",
        got,
        deleted,
    )
    want = [b for b in (0, 3, 6, 9) if b not in deleted]
    assert disk.segments() == want, called("the segments left on the disk", disk.segments(), want)
    assert not any(n.endswith(".index") and int(n[6:-6]) in deleted for n in disk.names()), called(
        "disk.names() after retention", disk.names(), "no .index of a deleted segment"
    )
    with step("log.log_start_offset"):
        start = log.log_start_offset
    assert start == want[0], called("log.log_start_offset after retention", start, want[0])


@pytest.mark.points(2)
def test_reads_below_the_log_start_are_refused_after_retention():
    """After retention, reads below the new log_start_offset raise OffsetOutOfRange; the rest stay."""
    _, log, _ = retained(0)
    refused(
        "log.read(8, 100) after segments 0..8 were deleted",
        OffsetOutOfRange,
        lambda: log.read(8, 100),
    )
    got = [o for o, _, _ in contents(log)]
    assert got == [9, 10, 11], called("every offset left after retention_bytes=0", got, [9, 10, 11])


AGES = [
    ("at-limit", 7000, []),
    ("one-ms-under", 6999, [0]),
    ("one-ms-over", 7001, []),
    ("two-segments", 3999, [0, 3]),
    ("zero", 0, [0, 3]),
]


@pytest.mark.points(3)
@pytest.mark.parametrize("retention_ms,deleted", [a[1:] for a in AGES], ids=[a[0] for a in AGES])
def test_retention_ms_deletes_segments_whose_newest_record_is_too_old(retention_ms, deleted):
    """A segment goes when now - its largest timestamp > retention_ms, oldest first; never the active one."""
    clock = FakeClock(1000.0)
    disk = CountingDisk()
    log = open_log(disk, segment_bytes=120, retention_ms=retention_ms, clock=clock)
    for _ in range(9):  # segments 0, 3, 6; the newest record of segment 0 at 1002 s, of 3 at 1005 s
        append(log, b"k", b"x" * 7)
        clock.advance(1)
    # now 1009 s: segment 0's newest record is 7000 ms old, segment 3's 4000 ms
    with step(f"log.enforce_retention() with retention_ms={retention_ms}"):
        got = log.enforce_retention()
    assert got == deleted, called(
        f"log.enforce_retention() 7000 ms after segment 0's newest record, retention_ms={retention_ms}",
        got,
        deleted,
    )


@pytest.mark.points(2)
def test_retention_ms_works_on_segments_written_before_a_reopen():
    """Retention by time judges segments the log found on the disk by their records' timestamps."""
    clock = FakeClock(1000.0)
    disk = CountingDisk()
    log = open_log(disk, segment_bytes=120, clock=clock)
    for _ in range(9):
        append(log, b"k", b"x" * 7)
        clock.advance(1)
    clock.now = 1005.5  # segment 0 is 3.5 s old, segment 3 0.5 s
    log = open_log(disk, segment_bytes=120, retention_ms=1000, clock=clock)
    with step("log.enforce_retention() with retention_ms=1000 after a reopen"):
        got = log.enforce_retention()
    assert got == [0], called("log.enforce_retention() after a reopen", got, [0])
    log = open_log(disk, segment_bytes=120)
    with step("log.log_start_offset"):
        start = log.log_start_offset
    assert start == 3, called("log.log_start_offset after retention and a reopen", start, 3)


# -- consumer groups --------------------------------------------------------------------------


@pytest.mark.points(2)
def test_committed_offsets_survive_a_reopen():
    """commit stores a group's offset in consumer_offsets; a reopened log returns it; unknown groups get None."""
    disk, log = filled(10, 40)
    with step("log.commit('billing', 4); log.commit('audit', 10); log.commit('billing', 7)"):
        log.commit("billing", 4)
        log.commit("audit", 10)
        log.commit("billing", 7)
    got = disk.files.get("log-0/consumer_offsets")
    assert got == b"audit 10\nbilling 7\n", called(
        "the file log-0/consumer_offsets", got, b"audit 10\nbilling 7\n"
    )
    log = open_log(disk)
    with step("log.committed(...) after a reopen"):
        got = (log.committed("billing"), log.committed("audit"), log.committed("nobody"))
    assert got == (7, 10, None), called(
        "log.committed('billing'), ('audit'), ('nobody')", got, (7, 10, None)
    )


BAD_COMMITS = [
    ("empty-group", "", 0),
    ("space", "a b", 0),
    ("trailing-newline", "g\n", 0),
    ("non-ascii-letter", "caf\u00e9", 0),
    ("negative", "g", -1),
    ("past-the-end", "g", 11),
]


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "group,offset", [b[1:] for b in BAD_COMMITS], ids=[b[0] for b in BAD_COMMITS]
)
def test_commit_rejects_bad_groups_and_offsets(group, offset):
    """commit raises ValueError for a group name outside [A-Za-z0-9._-]+ or an offset outside [0, next_offset]."""
    _, log = filled(10, 40)
    with step("log.commit('g', 10) on a log of 10 records (the end: allowed)"):
        log.commit("g", 10)
    refused(
        f"log.commit({group!r}, {offset}) on a log of 10 records",
        ValueError,
        lambda: log.commit(group, offset),
    )


class Crash(Exception):
    pass


def crashing_after(n: int, seen: list[int]):
    def handler(record) -> None:
        if len(seen) == n:
            raise Crash
        seen.append(record.offset)

    return handler


@pytest.mark.points(3)
def test_at_least_once_redelivers_a_batch_after_a_crash():
    """At least once: records are handled, then committed; a crash mid-batch redelivers the batch."""
    disk, log = filled(10, 40)
    seen: list[int] = []
    with step("Consumer(log, 'g').process(handler, max_bytes=160)"):
        consumer = Consumer(log, "g")
        with contextlib.suppress(Crash):
            consumer.process(crashing_after(2, seen), max_bytes=160)
    with step("log.committed('g')"):
        assert log.committed("g") is None, called(
            "log.committed('g') after a crash mid-batch", log.committed("g"), None
        )
    log = open_log(disk)
    with step("a new Consumer(log, 'g').process(handler, max_bytes=160)"):
        again = Consumer(log, "g")
        count = again.process(lambda record: seen.append(record.offset), max_bytes=160)
    assert (seen, count) == ([0, 1, 0, 1, 2, 3], 4), called(
        "the offsets handled: 2 before a crash, then a restarted consumer's batch",
        (seen, count),
        ([0, 1, 0, 1, 2, 3], 4),
    )
    with step("log.committed('g')"):
        got = log.committed("g")
    assert got == 4, called("log.committed('g') after the batch", got, 4)


@pytest.mark.points(3)
def test_at_most_once_loses_the_rest_of_a_batch_after_a_crash():
    """At most once: the batch is committed, then handled; a crash mid-batch loses its unhandled records."""
    disk, log = filled(10, 40)
    seen: list[int] = []
    with step("Consumer(log, 'g').process(handler, max_bytes=160, at_most_once=True)"):
        consumer = Consumer(log, "g")
        with contextlib.suppress(Crash):
            consumer.process(crashing_after(2, seen), max_bytes=160, at_most_once=True)
    log = open_log(disk)
    with step("a new Consumer(log, 'g').process(handler, max_bytes=160, at_most_once=True)"):
        again = Consumer(log, "g")
        again.process(lambda record: seen.append(record.offset), max_bytes=160, at_most_once=True)
    assert seen == [0, 1, 4, 5, 6, 7], called(
        "the offsets handled: 2 before a crash, then a restarted consumer's batch",
        seen,
        [0, 1, 4, 5, 6, 7],
    )


@pytest.mark.points(2)
def test_a_consumer_resumes_at_its_groups_commit_and_groups_are_independent():
    """A consumer starts at its group's committed offset, or at log_start_offset if it has none."""
    _, log = filled(10, 40)
    with step("log.commit('a', 6)"):
        log.commit("a", 6)
    with step("Consumer(log, 'a').poll(80); Consumer(log, 'b').poll(80)"):
        a = [r.offset for r in Consumer(log, "a").poll(80)]
        b = Consumer(log, "b")
        first = [r.offset for r in b.poll(80)]
        second = [r.offset for r in b.poll(80)]
    got = (a, first, second, b.position)
    want = ([6, 7], [0, 1], [2, 3], 4)
    assert got == want, called("(group a's poll, group b's two polls, b.position)", got, want)


@pytest.mark.points(1)
def test_a_consumer_at_the_end_waits_for_new_records():
    """A caught-up consumer's poll returns [] and keeps its position; a new append is its next record."""
    _, log = filled(3, 40)
    with step("consumer = Consumer(log, 'g'); consumer.poll(); consumer.poll()"):
        consumer = Consumer(log, "g")
        first = [r.offset for r in consumer.poll(1 << 20)]
        second = consumer.poll(1 << 20)
    got = (first, second, consumer.position)
    assert got == ([0, 1, 2], [], 3), called(
        "(poll, poll again, position)", got, ([0, 1, 2], [], 3)
    )
    append(log, b"late", b"record")
    with step("consumer.poll() after an append"):
        got = [r.offset for r in consumer.poll(1 << 20)]
    assert got == [3], called("consumer.poll() after a 4th append", got, [3])


@pytest.mark.points(2)
def test_a_consumer_behind_the_log_start_jumps_to_it():
    """A consumer whose position was deleted by retention continues at log_start_offset."""
    disk, log = filled(12, 40, segment_bytes=120)
    with step("log.commit('slow', 1)"):
        log.commit("slow", 1)
    log = open_log(disk, segment_bytes=120, retention_bytes=0)
    with step("log.enforce_retention()"):
        log.enforce_retention()
    with step("Consumer(log, 'slow').poll(1 << 20)"):
        got = [r.offset for r in Consumer(log, "slow").poll(1 << 20)]
    assert got == [9, 10, 11], called(
        "Consumer(log, 'slow').poll() after retention deleted offset 1", got, [9, 10, 11]
    )


@pytest.mark.points(1)
def test_a_live_consumer_overtaken_by_retention_jumps_to_the_log_start_at_its_next_poll():
    """A consumer whose position retention deletes while it is running continues at log_start_offset at its next poll."""
    disk, log = filled(12, 40, segment_bytes=120, retention_bytes=0)
    with step("consumer = Consumer(log, 'slow'); consumer.poll(40)"):
        consumer = Consumer(log, "slow")
        first = [r.offset for r in consumer.poll(40)]
    assert first == [0], called("consumer.poll(40) on a fresh consumer", first, [0])
    with step("log.enforce_retention() with retention_bytes=0 while the consumer is at offset 1"):
        log.enforce_retention()
    start = log.log_start_offset
    with step("consumer.poll(1 << 20)"):
        got = [r.offset for r in consumer.poll(1 << 20)]
    want = list(range(start, 12))
    assert got == want, called(
        f"consumer.poll() after retention moved the log start from 0 to {start}", got, want
    )


# -- the list model ---------------------------------------------------------------------------

MODEL_OPTIONS = {"segment_bytes": 120, "index_interval_bytes": 40, "retention_bytes": 300}
KEYS = st.sampled_from([None, b"", b"a", b"key"])


class LogVersusList(RuleBasedStateMachine):
    """Appends, reads, retention, reopens and crashes that tear or corrupt the active segment,
    checked against a list of records and a model of the segment layout.

    Few rules, each doing several things: Hypothesis' swarm testing switches whole rules off
    per run, and a model needs appends, retention and crashes in the same run."""

    def __init__(self) -> None:
        super().__init__()
        self.disk = CountingDisk()
        self.clock = FakeClock(1000.0)
        self.trace: list[str] = []
        self.log = self.open("CommitLog(disk, 'log-0', segment_bytes=120, ...)")
        self.records: dict[int, tuple[bytes | None, bytes, int]] = {}
        # The layout: per segment [base, [(offset, size on disk), ...]], oldest first.
        self.segments: list[list] = [[0, []]]
        self.committed: dict[str, int] = {}

    def step(self, text: str):
        self.trace.append(text)
        return step("; ".join(self.trace[-5:]))

    def open(self, text: str) -> CommitLog:
        with self.step(text):
            return CommitLog(self.disk, "log-0", clock=self.clock, **MODEL_OPTIONS)

    @property
    def next(self) -> int:
        base, recs = self.segments[-1]
        return base + len(recs)

    def active_bytes(self) -> int:
        return sum(size for _, size in self.segments[-1][1])

    @rule(
        writes=st.lists(st.tuples(KEYS, st.binary(max_size=30)), min_size=1, max_size=4),
        ms=st.integers(0, 3000),
        retain=st.booleans(),
    )
    def append(self, writes, ms, retain):
        """Append a few records, then maybe enforce retention."""
        for key, value in writes:
            self.clock.advance(ms / 1000)
            with self.step(f"append({short(key)}, {short(value, 20)})"):
                got = self.log.append(key, value)
            assert got == self.next, called("; ".join(self.trace[-5:]), got, self.next)
            size = record_size(key, value)
            if self.segments[-1][1] and self.active_bytes() + size > MODEL_OPTIONS["segment_bytes"]:
                self.segments.append([self.next, []])
            self.records[self.next] = (key, value, int(self.clock() * 1000))
            self.segments[-1][1].append((self.next, size))
        if retain:
            self.retention()

    def retention(self) -> None:
        with self.step("enforce_retention()"):
            got = self.log.enforce_retention()
        excess = sum(size for _, recs in self.segments for _, size in recs) - 300
        want = []
        while len(self.segments) > 1:
            size = sum(s for _, s in self.segments[0][1])
            if excess - size < 0:
                break
            excess -= size
            base, recs = self.segments.pop(0)
            want.append(base)
            for o, _ in recs:
                del self.records[o]
        assert got == want, called("; ".join(self.trace[-5:]), got, want)

    @rule(data=st.data(), max_bytes=st.integers(1, 200))
    def read(self, data, max_bytes):
        start = self.segments[0][0]
        offset = data.draw(st.integers(start, self.next), label="offset")
        with self.step(f"read({offset}, {max_bytes})"):
            got = [
                (r.offset, r.key, r.value, r.timestamp) for r in self.log.read(offset, max_bytes)
            ]
        want, used = [], 0
        for _, recs in self.segments:
            for o, size in recs:
                if o >= offset and (not want or used + size <= max_bytes):
                    want.append((o, *self.records[o]))
                    used += size
                elif want:
                    break
            if want:
                break
        assert got == want, called("; ".join(self.trace[-5:]), got, want)

    @rule(group=st.sampled_from(["a", "b"]), data=st.data())
    def commit(self, group, data):
        offset = data.draw(st.integers(0, self.next), label="offset")
        with self.step(f"commit({group!r}, {offset})"):
            self.log.commit(group, offset)
        self.committed[group] = offset

    @rule(
        data=st.data(),
        how=st.sampled_from(["close", "crash", "torn", "torn", "corrupt", "corrupt"]),
        mask=st.integers(1, 255),
    )
    def reopen(self, data, how, mask):
        """Close and reopen; or reopen after a crash, clean or with the active tail torn or corrupt."""
        base, recs = self.segments[-1]
        if how == "close":
            with self.step("close()"):
                self.log.close()
            self.log = self.open("CommitLog(disk, ...)")
            return
        if how == "crash" or not recs:
            self.log = self.open("crash: CommitLog(disk, ...) without close()")
            return
        at = data.draw(st.integers(0, self.active_bytes() - 1), label="byte")
        name = seg_name(base, ".log")
        damaged = bytearray(self.disk.files[name])
        if how == "torn":
            del damaged[at:]
        else:
            damaged[at] ^= mask
        self.disk.files[name] = bytes(damaged)
        what = (
            f"tearing it at byte {at}"
            if how == "torn"
            else f"flipping bits {mask:#04x} of byte {at}"
        )
        self.log = self.open(f"crash, the active .log damaged by {what}; CommitLog(disk, ...)")
        kept, end = [], 0
        for o, size in recs:
            end += size
            if end > at:
                del self.records[o]
            else:
                kept.append((o, size))
        self.segments[-1][1] = kept

    @invariant()
    def keeps_every_commit(self):
        for group in ("a", "b"):
            with self.step(f"committed({group!r})"):
                got = self.log.committed(group)
            self.trace.pop()
            want = self.committed.get(group)
            assert got == want, called(
                "; ".join([*self.trace[-5:], f"committed({group!r})"]), got, want
            )

    @invariant()
    def holds_exactly_the_model(self):
        got = [(o, k, v) for o, k, v in contents(self.log)]
        want = [(o, k, v) for o, (k, v, _) in sorted(self.records.items())]
        assert got == want, called("; ".join([*self.trace[-5:], "every record"]), got, want)
        bases = [base for base, _ in self.segments]
        assert self.disk.segments() == bases, called(
            "; ".join([*self.trace[-5:], "the segments on the disk"]), self.disk.segments(), bases
        )
        for base, recs in self.segments:
            index = parse_index(self.disk.files[seg_name(base, ".index")], seg_name(base, ".index"))
            want_index = expected_index([size for _, size in recs], 40)
            assert index == want_index, called(
                "; ".join([*self.trace[-5:], f"the entries of {seg_name(base, '.index')}"]),
                index,
                want_index,
            )


STATEFUL = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.points(5)
def test_model_based():
    """Any mix of append, read, commit, retention, reopen and crashes that tear or corrupt the tail behaves like a list."""
    run_state_machine_as_test(LogVersusList, settings=STATEFUL)
