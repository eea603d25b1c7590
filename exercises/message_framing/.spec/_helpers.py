"""Spec helpers for message_framing: an independent encoder, chunkings, and growth timing.

The oracle encoders here are written from the wire format alone (``struct.pack(">I", n)``,
``payload + b"\\n"``), so decoder specs never trust the learner's own encoder.
"""

from __future__ import annotations

import gc
import math
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import Phase, settings
from hypothesis import strategies as st

from grader.spectools import short


def examples(n: int) -> settings:
    """Hypothesis settings for a property spec: ``n`` examples, no "explain" phase.

    The explain phase re-runs a failing example under a tracer: slow (seconds), and what it
    reports are lines of the specs, which a learner never sees.
    """
    return settings(
        max_examples=n, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
    )


def frame(payload: bytes) -> bytes:
    """The length-prefixed frame of ``payload``: 4-byte unsigned big-endian length, payload."""
    return struct.pack(">I", len(payload)) + payload


def split(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``stream`` at the given offsets (any order, repeats allowed: they give empty chunks)."""
    points = sorted(min(max(c, 0), len(stream)) for c in cuts)
    edges = [0, *points, len(stream)]
    return [stream[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# Offsets to cut a stream at, for properties that also take explicit @examples (a st.data()
# draw cannot be given as an example). ``cut`` folds each offset into the stream's length.
cuts = st.lists(st.integers(0, 1 << 16), max_size=40)


def cut(stream: bytes, offsets: Iterable[int]) -> list[bytes]:
    """Cut ``stream`` at ``offset % (len(stream) + 1)`` for each offset: an offset within the
    stream is kept as it is, so an explicit example reads as the reads it means."""
    return split(stream, [offset % (len(stream) + 1) for offset in offsets])


def in_pieces(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def show_chunks(chunks: Sequence[bytes]) -> str:
    return short([bytes(c) for c in chunks], 200)


def feed_all(decoder: Any, chunks: Sequence[bytes]) -> list[bytes]:
    """Feed every chunk in order; return all frames, concatenated in order."""
    frames: list[bytes] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    return frames


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Call fn; return ("returned", value) or ("raised", the exception)."""
    try:
        return "returned", fn(*args, **kwargs)
    except NotImplementedError:
        raise  # an untouched stub: let the grader see it as "not started"
    except Exception as exc:  # noqa: BLE001 - judged by the caller, shown to the learner
        return "raised", exc


def describe(result: tuple[str, Any]) -> str:
    kind, value = result
    if kind == "raised":
        return f"{type(value).__name__}({str(value)[:80]!r})"
    return short(value)


def expect_raise(
    exc_type: type[BaseException], call: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> BaseException:
    """Call fn and demand that it raises ``exc_type``; fail with a readable message otherwise."""
    result = outcome(fn, *args, **kwargs)
    if result[0] == "raised" and isinstance(result[1], exc_type):
        return result[1]
    verb = "raised" if result[0] == "raised" else "returned"
    raise AssertionError(
        f"Called {call}; {verb} {describe(result)}; expected it to raise {exc_type.__name__}"
    )


def expect_return(call: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call fn and demand that it returns; an exception fails with a readable message."""
    result = outcome(fn, *args, **kwargs)
    if result[0] == "raised":
        raise AssertionError(f"Called {call}; raised {describe(result)}; expected it to return")
    return result[1]


# -- growth timing --------------------------------------------------------------------------
#
# A decoder must cost O(bytes), whatever the chunking. The specs feed the same number of bytes
# two ways: as STREAMS independent streams of n / STREAMS bytes each (the linear baseline) and
# as one stream of n bytes. A linear decoder takes about the same CPU time for both (measured:
# 0.8x to 1.6x on a loaded 2-core machine, the long stream paying a little for leaving the
# cache); one that copies or rescans its buffer per read or per frame takes about STREAMS
# times longer for the long stream (measured: 17x to 40x, under the same load).
#
# Nothing here is an absolute time. The two are measured interleaved in the same process, so
# both see the same machine; CPU time (process_time) does not count time spent waiting for a
# core; the best of a few runs drops a stray hiccup; and BOUND leaves 4x room for noise on
# top of the 2x a linear decoder may need, while staying far below what a quadratic one takes.

STREAMS = 64  # the baseline splits the bytes into this many independent streams
SLACK = 2.0  # a linear decoder takes at most this many times the baseline on a quiet machine
NOISE = 4.0  # room for a busy machine (other processes thrashing the caches)
BOUND = SLACK * NOISE  # the pass mark: the long stream within BOUND x the baseline
CUTOFF = 1.25 * BOUND  # a long run is abandoned past CUTOFF x the baseline
REPEATS = 5  # interleaved runs at most; the spec passes at the first run within BOUND


def cpu_seconds(
    make: Callable[[], Any], streams: Sequence[Sequence[bytes]], budget: float = math.inf
) -> tuple[float, int]:
    """CPU time to feed each stream to its own fresh decoder, and the frames decoded.

    Gives up (returns inf) once ``budget`` seconds are spent, checked between feeds.
    """
    decoders = [make() for _ in streams]
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        deadline = start + budget
        count = 0
        for decoder, chunks in zip(decoders, streams, strict=True):
            for i, chunk in enumerate(chunks):
                count += len(decoder.feed(chunk))
                if not i % 64 and time.process_time() > deadline:
                    return math.inf, count
        return time.process_time() - start, count
    finally:
        gc.enable()


def assert_linear(
    what: str,
    make: Callable[[], Any],
    whole: Sequence[bytes],
    parts: Sequence[Sequence[bytes]],
    *,
    whole_frames: int,
    part_frames: int,
) -> None:
    """Fail unless feeding ``whole`` (one long stream) costs at most BOUND x feeding ``parts``.

    ``parts`` are STREAMS short streams holding the same bytes; the long one decodes into
    ``whole_frames`` frames, each short one into ``part_frames``. Runs are interleaved (a
    baseline, then the long stream, REPEATS times at most) and the spec passes as soon as one
    long run is within BOUND x the best baseline so far. A long run is abandoned at CUTOFF x
    the baseline, and two abandoned runs end the spec, so a quadratic decoder fails in a
    bounded time (about 2 x CUTOFF baselines).
    """
    cpu_seconds(make, parts[:1])  # warm up: first-run allocations are not the decoder's cost
    baseline = best = math.inf
    cut_off = 0
    for _ in range(REPEATS):
        seconds, got = cpu_seconds(make, parts)
        assert got == STREAMS * part_frames, (
            f"Called feed() for each chunk of {STREAMS} streams of {what}; "
            f"decoded {got} frames; expected {STREAMS * part_frames}"
        )
        baseline = min(baseline, seconds)
        seconds, got = cpu_seconds(make, [whole], budget=CUTOFF * baseline)
        if seconds < math.inf:
            assert got == whole_frames, (
                f"Called feed() for each chunk of one stream of {what}; "
                f"decoded {got} frames; expected {whole_frames}"
            )
        best = min(best, seconds)
        if best <= BOUND * baseline:
            return
        cut_off += seconds == math.inf
        if cut_off == 2:
            break  # twice beyond any noise: no need to keep paying for a slow decoder
    size = sum(map(len, whole))
    ratio = f"over {CUTOFF:g}x" if best == math.inf else f"{best / baseline:.1f}x"
    raise AssertionError(
        f"Called feed() for each chunk of {what}: one stream of {size} bytes cost {ratio} the "
        f"CPU time of {STREAMS} streams of {size // STREAMS} bytes (the same bytes in all), at "
        f"best of the interleaved runs; expected at most {BOUND:g}x (a linear decoder "
        "needs about 1x). Something is copied or scanned again each time data arrives or a "
        "frame leaves, so the cost grows with the square of the stream's length."
    )
