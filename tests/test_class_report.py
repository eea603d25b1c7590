"""`class-report.html`: one self-contained page (heat map, specs most failed, score
distribution), checked as text and rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader import batch
from grader.class_report import struggles, to_html
from grader.scoring import KataResult, Report, SpecResult

from .conftest import ADDER_SOLUTION, ADDER_STUB

PARTIAL = ADDER_STUB.replace(
    "raise NotImplementedError\n\n\ndef mul", "return a + b\n\n\ndef mul", 1
)
CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)


def _report(*katas: tuple[str, str, list[str]]) -> Report:
    results = []
    for slug, status, outcomes in katas:
        specs = tuple(
            SpecResult(f"{slug}::t{i}", f"{slug} requirement {i}", 1, outcome)
            for i, outcome in enumerate(outcomes)
        )
        score = sum(s.score for s in specs)
        results.append(
            KataResult(slug, slug.title(), "kernel", status, score, len(specs), 0.1, "", specs)
        )
    return Report(tuple(results), "x", "2026-01-01T00:00:00+00:00", "0.1.0")


def _rows() -> list[batch.Row]:
    return [
        batch.Row("ann", _report(("k1", "passed", ["passed"] * 3), ("k2", "failed", ["failed", "passed", "failed"]))),
        batch.Row("bo<b>", _report(("k1", "failed", ["passed", "failed", "failed"]), ("k2", "not_started", ["failed"] * 3))),
        batch.Row("cy", _report(("k1", "failed", ["passed", "failed", "not_run"]), ("k2", "failed", ["passed", "passed", "failed"]))),
    ]  # fmt: skip


def test_specs_are_ordered_by_how_many_learners_fail_them():
    rows = _rows()
    assert [(s.title, s.failed, s.attempted) for s in struggles(rows, "k1")] == [
        ("k1 requirement 1", 2, 3),
        ("k1 requirement 2", 1, 2),  # cy's run never reached it: not counted
    ]
    # bo never started k2: no signal
    assert [(s.title, s.failed) for s in struggles(rows, "k2")] == [
        ("k2 requirement 2", 2),
        ("k2 requirement 0", 1),
    ]


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    rows = _rows()
    page = to_html(rows, batch.summarize(rows))
    assert page.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script|<link""", page, re.I)
    assert "http:" not in page and "https:" not in page
    assert "bo&lt;b&gt;" in page and "bo<b>" not in page
    assert page.count('class="cell') == 6


def test_errors_are_marked_and_long_lists_are_folded():
    many = [
        batch.Row(f"l{i}", _report(("k", "error" if i == 0 else "failed", ["failed"] * 12)))
        for i in range(2)
    ]
    page = to_html(many, batch.summarize(many))
    assert '">0 ⚠</td>' in page
    assert "<details><summary>4 more</summary>" in page  # 12 failing specs, 8 shown
    assert page.index("k requirement 7") < page.index("<details>") < page.index("k requirement 8")


class _Dom(HTMLParser):
    """What a test needs of the rendered DOM: heat-map cells, struggle rows, histogram bins."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.learners: list[str] = []
        self.requirements: dict[str, list[str]] = {}
        self.bins: list[int] = []
        self._table: str | None = None
        self._req = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "struggle" in (a.get("class") or ""):
            self._table = a["data-kata"]
            self.requirements[self._table] = []
        if tag == "tr" and "data-learner" in a:
            self.learners.append(a["data-learner"])
        if tag == "td" and "cell" in (a.get("class") or ""):
            self.cells.append(a)
        if tag == "td" and a.get("class") == "req":
            self._req = True
        if tag == "div" and a.get("class") == "bin":
            self.bins.append(int(a["data-count"]))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        self._req = self._req and tag != "td"

    def handle_data(self, data):
        if self._req and self._table:
            self.requirements[self._table].append(data)


def _png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct colours (RGB) of an 8-bit PNG, decoded by hand (the
    five scanline filters of the PNG spec, section 9) so no imaging library is needed."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and body[12] == 0, "8-bit, not interlaced"
            channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, bpp = zlib.decompress(idat), width * channels, channels
    previous, colours = bytearray(stride), set()
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:  # every 4th row is plenty to tell a drawn page from a blank one
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium (or chromium-browser, google-chrome) on PATH; "
    "`.ci/run` installs Debian's chromium package",
)
def test_a_browser_renders_the_class_report_of_three_learners(course, tmp_path):
    course.add_adder()
    subs = tmp_path / "subs"
    for name, text in (("ann", ADDER_SOLUTION), ("bob", PARTIAL), ("cy", ADDER_STUB)):
        (subs / name / "exercises" / "adder").mkdir(parents=True)
        (subs / name / "exercises" / "adder" / "adder.py").write_text(text)
    out = tmp_path / "grades"
    batch.main(root=course.root, submissions=subs, output_dir=out, jobs=2)
    page = out / "class-report.html"
    url = page.resolve().as_uri()

    dumped = _chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    assert dom.learners == ["ann", "bob", "cy"]
    assert [(c["data-kata"], c.get("data-score")) for c in dom.cells] == [
        ("adder", "6"),
        ("adder", "5"),
        ("adder", "0"),
    ]
    assert "not_started" in dom.cells[2]["class"]
    assert dom.cells[0]["style"].replace(" ", "") == "background:hsl(120,70%,55%)"
    assert dom.requirements == {"adder": ["mul(4, 5) returns 20."]}  # bob's one failure
    assert sum(dom.bins) == 3 and dom.bins[0] == 1 and dom.bins[-1] == 1

    shot = tmp_path / "shot.png"
    taken = _chromium(
        f"--screenshot={shot}", "--window-size=900,700", url, profile=tmp_path / "profile-png"
    )
    assert shot.is_file(), taken.stderr[-2000:]
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (900, 700)
    assert len(colours) > 20, "the screenshot is blank"
    assert bytes((255, 255, 255)) in colours  # the page's white background
