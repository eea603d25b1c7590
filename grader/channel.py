"""The results channel between the spec process and the grader.

Strategy: the grader never reads the child's stdout, a results file or an exit code to learn
what passed. It hands the child two pipes: one carrying a fresh random key (read once by the
grader plugin before any learner code is imported, then closed) and one for records. Every
record is a JSON line signed with HMAC-SHA256 under that key and numbered, so a line that
learner code prints, forges or replays without the key is dropped and noticed.

Learner code can find the channel's file descriptor and write to it. The reader stays cheap
whatever arrives: a line longer than MAX_LINE is dropped as it streams in (never buffered
whole), and after MAX_REJECTED bad lines the channel counts as flooded and the rest is
discarded unread. Either way the run loses records, never gains them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KEY_BYTES", "MAX_LINE", "MAX_REJECTED", "Reader", "Writer", "new_key"]

KEY_BYTES = 32
MAX_LINE = 1 << 20  # bytes; a genuine record is a few hundred
MAX_REJECTED = 10_000  # bad lines before the channel counts as flooded


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _mac(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


class Writer:
    """The child's end: signs and writes one record per call."""

    def __init__(self, fd: int, key: bytes) -> None:
        self._fd = fd
        self._key = key
        self._seq = 0

    def send(self, kind: str, **data: Any) -> None:
        self._seq += 1
        body = json.dumps({"seq": self._seq, "kind": kind, **data}, sort_keys=True).encode()
        line = json.dumps({"body": body.decode(), "mac": _mac(self._key, body)}) + "\n"
        view = memoryview(line.encode())
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


@dataclass
class Reader:
    """The grader's end: checks each line and keeps the records that are genuine and in order."""

    key: bytes
    records: list[dict] = field(default_factory=list)
    rejected: int = 0
    flooded: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    _overlong: bool = False  # inside a line already too long to keep

    def feed(self, data: bytes) -> None:
        start = 0
        while not self.flooded:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._overlong:
                self._buffer += piece
                if len(self._buffer) > MAX_LINE:
                    self._overlong = True
                    self._buffer.clear()
                    self._reject()
            if end < 0:
                return
            if not self._overlong:
                self._accept(bytes(self._buffer))
            self._buffer.clear()
            self._overlong = False
            start = end + 1

    def _reject(self) -> None:
        self.rejected += 1
        self.flooded = self.rejected >= MAX_REJECTED

    def _accept(self, line: bytes) -> None:
        try:
            outer = json.loads(line)
            body = outer["body"].encode()
            if not hmac.compare_digest(outer["mac"], _mac(self.key, body)):
                raise ValueError("bad mac")
            record = json.loads(body)
            if record["seq"] != len(self.records) + 1:
                raise ValueError("out of sequence")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            self._reject()  # RecursionError: JSON nested deeper than the decoder goes
            return
        self.records.append(record)
