"""``class-report.html``: where a class struggles, as one picture. Rows of a batch in, one
self-contained HTML page out (inline CSS, no script, no font, no image, nothing fetched), so it
can be mailed, attached to a CI run or opened from disk years later.

Three parts, in the order an instructor reads them:

* a heat map, learners x katas, each cell the kata's score coloured from red (0%) through
  yellow to green (100%), marked ⚠ for an error and ◷ for a timeout; grey for a kata not
  started, hatched for a missing submission;
* per kata, every spec that some learner failed, ordered by how many learners fail it: its
  title is the requirement, so the top of each list is the lesson to re-teach (learners who
  never started the kata, and specs a run never reached, carry no signal and are not counted;
  past the first eight, the list is folded);
* the distribution of the learners' totals, in ten-point bins.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # batch builds the page; the page only reads what batch hands it
    from .batch import ClassSummary, Row

__all__ = ["SpecStruggle", "struggles", "to_html"]

SHOWN = 8  # specs shown open per kata; the rest are folded
BINS = 10  # bins of the score distribution (0-9%, 10-19%, ..., 90-100%)


@dataclass(frozen=True)
class SpecStruggle:
    title: str
    failed: int  # learners who started the kata and failed this spec
    attempted: int  # learners who started the kata and whose run reached this spec


def struggles(rows: Sequence[Row], slug: str) -> list[SpecStruggle]:
    """The specs of kata ``slug`` that some learner failed, most failed first (ties: the
    order of the specs)."""
    failed: Counter[str] = Counter()
    attempted: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for row in rows:
        for k in row.report.katas:
            if k.slug != slug or k.status == "not_started":
                continue
            for spec in k.specs:
                titles.setdefault(spec.id, spec.title)
                if spec.outcome == "not_run":
                    continue
                attempted[spec.id] += 1
                failed[spec.id] += spec.outcome != "passed"
    order = {spec_id: i for i, spec_id in enumerate(titles)}
    ranked = sorted((s for s in failed if failed[s]), key=lambda s: (-failed[s], order[s]))
    return [SpecStruggle(titles[s], failed[s], attempted[s]) for s in ranked]


def _colour(fraction: float) -> str:
    """Red (0) through yellow (0.5) to green (1), as an HSL colour."""
    return f"hsl({round(120 * max(0.0, min(1.0, fraction)))}, 70%, 55%)"


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem;
       color: #1f2328; background: #fff; max-width: 80rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; }
.lead { color: #59636e; margin: 0 0 1rem; }
table { border-collapse: collapse; }
th, td { padding: .3rem .5rem; text-align: left; }
#heatmap th.kata { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
                   vertical-align: bottom; font-weight: 500; }
#heatmap td.cell { width: 3.2rem; height: 1.8rem; text-align: center; color: #111;
                   border: 2px solid #fff; font-variant-numeric: tabular-nums; }
#heatmap td.not_started { background: #e6e8eb; color: #59636e; }
#heatmap td.missing { background: repeating-linear-gradient(45deg, #e6e8eb 0 4px, #fff 4px 8px); }
#heatmap td.total { font-weight: 600; font-variant-numeric: tabular-nums; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .25rem; }
.bar { background: #d1242f; height: .8rem; display: inline-block; vertical-align: middle; }
.struggle th { white-space: nowrap; }
.struggle td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.struggle td.w { width: 12rem; }
#distribution { display: flex; align-items: flex-end; gap: 4px; height: 10rem;
                border-bottom: 1px solid #59636e; padding-top: 1rem; }
#distribution .bin { flex: 1; background: #0969da; position: relative; min-height: 1px; }
#distribution .bin span { position: absolute; top: -1.2rem; width: 100%; text-align: center;
                          font-size: .8rem; }
#bins { display: flex; gap: 4px; font-size: .75rem; color: #59636e; }
#bins div { flex: 1; text-align: center; }
"""


def _heatmap(rows: Sequence[Row], columns: dict[str, tuple[str, int]], possible: int) -> list[str]:
    e = html.escape
    out = ['<table id="heatmap">', "<tr><th>learner</th>"]
    out += [f'<th class="kata" title="{e(t)}">{e(slug)}</th>' for slug, (t, _) in columns.items()]
    out.append("<th>total</th></tr>")
    for row in rows:
        katas = {k.slug: k for k in row.report.katas}
        cells = []
        for slug, (_, max_score) in columns.items():
            k = katas.get(slug)
            if k is None or row.status == "missing":
                cells.append(
                    f'<td class="cell missing" data-kata="{e(slug)}" title="missing"></td>'
                )
                continue
            fraction = k.score / max_score if max_score else 0.0
            state = k.status.replace("_", " ")
            tip = e(f"{row.id} · {slug}: {k.score}/{max_score}, {state}")
            common = f'data-kata="{e(slug)}" data-score="{k.score}" title="{tip}"'
            if k.status == "not_started":
                cells.append(f'<td class="cell not_started" {common}>–</td>')
            else:
                style = f"background: {_colour(fraction)}"
                label = f"{round(100 * fraction)}"
                if k.status in ("error", "timeout"):  # it says why, not just a red zero
                    label = f"{label} {'⚠' if k.status == 'error' else '◷'}"
                cells.append(f'<td class="cell {k.status}" {common} style="{style}">{label}</td>')
        total = row.report.score
        percent = f"{100 * total / possible:.0f}%" if possible else "-"
        out.append(
            f'<tr data-learner="{e(row.id)}"><th>{e(row.id)}</th>{"".join(cells)}'
            f'<td class="total">{total}/{possible} ({percent})</td></tr>'
        )
    out.append("</table>")
    legend = "".join(
        f'<span style="background: {_colour(f / 100)}">{f}%</span>' for f in (0, 25, 50, 75, 100)
    )
    out.append(
        f'<p class="legend">{legend}<span style="background:#e6e8eb">not started</span>'
        '<span class="missing" style="background: repeating-linear-gradient(45deg, #e6e8eb 0 '
        '4px, #fff 4px 8px)">missing</span><span>⚠ error</span><span>◷ timeout</span></p>'
    )
    return out


def _struggles(rows: Sequence[Row], summary: ClassSummary) -> list[str]:
    e = html.escape
    out = []
    for k in summary.katas:
        specs = struggles(rows, k.slug)
        out.append(
            f'<h3 id="kata-{e(k.slug)}">{e(k.title)} (<code>{e(k.slug)}</code>): '
            f"{k.passed}/{k.learners} passed, median {k.median:g}/{k.max_score}</h3>"
        )
        if not specs:
            out.append('<p class="lead">No learner who started this kata failed a spec.</p>')
            continue
        out.append(f'<table class="struggle" data-kata="{e(k.slug)}">')
        out.append("<tr><th>requirement</th><th>learners failing</th><th></th></tr>")
        for i, s in enumerate(specs):
            if i == SHOWN:
                out.append(
                    f"</table><details><summary>{len(specs) - SHOWN} more</summary><table "
                    f'class="struggle" data-kata="{e(k.slug)}">'
                )
            width = 100 * s.failed / s.attempted if s.attempted else 0
            out.append(
                f'<tr><td class="req">{e(s.title)}</td><td class="n">{s.failed} of {s.attempted}'
                f'</td><td class="w"><span class="bar" style="width: {width:.0f}%"></span></td></tr>'
            )
        out.append("</table></details>" if len(specs) > SHOWN else "</table>")
    return out


def _distribution(rows: Sequence[Row], possible: int) -> list[str]:
    counts = [0] * BINS
    for row in rows:
        percent = 100 * row.report.score / possible if possible else 0.0
        counts[min(BINS - 1, int(percent // (100 / BINS)))] += 1
    peak = max(counts) or 1
    bars = "".join(
        f'<div class="bin" data-count="{n}" style="height: {100 * n / peak:.0f}%">'
        f"<span>{n or ''}</span></div>"
        for n in counts
    )
    step = 100 // BINS
    labels = "".join(
        f"<div>{i * step}–{i * step + step - 1 + (i == BINS - 1)}%</div>" for i in range(BINS)
    )
    return [f'<div id="distribution">{bars}</div>', f'<div id="bins">{labels}</div>']


def to_html(rows: Sequence[Row], summary: ClassSummary) -> str:
    """The class report: heat map, specs most failed per kata, score distribution."""
    columns: dict[str, tuple[str, int]] = {k.slug: (k.title, k.max_score) for k in summary.katas}
    possible = summary.max_score
    median = 100 * summary.median_total / possible if possible else 0.0
    body = [
        "<h1>Class report</h1>",
        f'<p class="lead">{summary.learners} learner(s), {len(columns)} kata(s); median total '
        f"{summary.median_total:g}/{possible} ({median:.0f}%).</p>",
        "<h2>Learners × katas</h2>",
        '<p class="lead">Each cell: the kata\'s score in percent.</p>',
        *_heatmap(rows, columns, possible),
        "<h2>Where the class struggles</h2>",
        '<p class="lead">Per kata, the requirements learners fail, most failed first: the '
        "lessons to teach again. Learners who never started a kata are not counted.</p>",
        *_struggles(rows, summary),
        "<h2>Score distribution</h2>",
        '<p class="lead">Learners per band of total score.</p>',
        *_distribution(rows, possible),
    ]
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Class report: backend katas</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
