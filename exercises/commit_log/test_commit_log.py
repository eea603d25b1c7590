"""Examples of a working commit log. Run them with `nox -s try -- commit_log`."""

try:
    from commit_log import CommitLog, Consumer, MemoryDisk, crc32c, murmur2, partition_for
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import CommitLog, Consumer, MemoryDisk, crc32c, murmur2 "
        "and partition_for from commit_log.py"
    ) from err


def test_crc32c_of_32_zero_bytes():
    # RFC 3720, Appendix B.4
    got = crc32c(bytes(32))
    assert got == 0x8A9136AA, f"Called crc32c(bytes(32)); returned {got:#x}; expected 0x8a9136aa"


def test_kafka_partitioner():
    assert murmur2(b"foo") == 597841616, "Called murmur2(b'foo'); expected 597841616"
    # kafka-python's test_partitioner.py, checked against Kafka's Java producer
    got = partition_for(b"123456789", 1000)
    assert got == 566, f"Called partition_for(b'123456789', 1000); returned {got}; expected 566"


def test_append_read_and_reopen():
    disk = MemoryDisk()
    log = CommitLog(disk, "orders-0", segment_bytes=200)
    offsets = [log.append(b"order-%d" % i, b"paid") for i in range(10)]
    assert offsets == list(range(10)), f"Called log.append 10 times; returned {offsets}"
    records = log.read(3, 100)
    got = [(r.offset, r.key) for r in records]
    assert got[0] == (3, b"order-3"), f"Called log.read(3, 100); returned {got}"
    # segments are files named by the offset of their first record
    logs = [name for name in disk.names() if name.endswith(".log")]
    assert logs[0] == "orders-0/00000000000000000000.log" and len(logs) > 1, (
        f"Called disk.names() after 10 appends with segment_bytes=200; .log files: {logs}"
    )
    log.close()
    log = CommitLog(disk, "orders-0", segment_bytes=200)
    assert log.next_offset == 10, (
        f"Called log.next_offset after a reopen; returned {log.next_offset}"
    )


def test_a_torn_tail_is_cut_on_reopen():
    disk = MemoryDisk()
    log = CommitLog(disk, "log-0")
    for i in range(3):
        log.append(None, b"value %d" % i)
    name = "log-0/00000000000000000000.log"
    disk.files[name] = disk.files[name][:-5]  # a crash in the middle of the last append
    log = CommitLog(disk, "log-0")
    got = [r.value for r in log.read(0, 1000)]
    assert got == [b"value 0", b"value 1"], (
        f"Called log.read(0, 1000) after the crash; returned {got}"
    )


def test_a_consumer_group_resumes_at_its_commit():
    log = CommitLog(MemoryDisk(), "log-0")
    for i in range(5):
        log.append(None, b"%d" % i)
    seen = []
    Consumer(log, "mailer").process(lambda record: seen.append(record.offset), max_bytes=70)
    Consumer(log, "mailer").process(lambda record: seen.append(record.offset), max_bytes=70)
    assert seen == [0, 1, 2, 3], f"Two consumers of group 'mailer' handled offsets {seen}"
