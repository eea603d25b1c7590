"""Reporters: a finished :class:`~grader.scoring.Report` in, text out. Adding a format is
adding one function to ``FORMATS``.

Every format shows a spec's title and its message only: never spec code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

from .scoring import STATUSES, KataResult, Report

__all__ = [
    "FORMATS",
    "closing_line",
    "columns",
    "counts",
    "render",
    "state",
    "to_annotations",
    "write_atomic",
]

STATUS_MARK = {
    "passed": "✅ passed",
    "failed": "❌ failed",
    "not_started": "⬜ not started",
    "error": "💥 error",
    "timeout": "⏱️ timeout",
}
FOLD_AFTER = 5  # failing requirements of a kata shown open; more are folded in <details>


def _pct(score: int, max_score: int) -> str:
    return f"{100 * score / max_score:.0f}%" if max_score else "-"


def columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of cells as aligned text lines: the first row is the header, ruled off below."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(rows[0]), "  ".join("-" * w for w in widths), *map(line, rows[1:])]


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def state(status: str) -> str:
    """A kata status as the learner reads it, the same word everywhere: ``passed``,
    ``failed``, ``not started``, ``error``, ``timeout``."""
    return status.replace("_", " ")


def counts(report: Report) -> str:
    """How many katas are in each state, curriculum words, e.g. ``3 passed, 2 failed,
    4 not started`` (states no kata is in are left out)."""
    seen = [k.status for k in report.katas]
    return ", ".join(f"{seen.count(s)} {state(s)}" for s in STATUSES if s in seen) or "no katas"


def closing_line(report: Report, next_step: str = "") -> str:
    """The last line of a grading: the total, the katas per state and, for a learner, what
    to do next; e.g. ``42/120 (35%): 3 passed, 2 failed, 4 not started — next: …``."""
    line = f"{report.score}/{report.max_score} ({report.percent:.0f}%): {counts(report)}"
    return f"{line} — next: {next_step}" if next_step else line


def _not_started(report: Report) -> list[str]:
    return [k.slug for k in report.katas if k.status == "not_started" and not _missing(k)]


def _missing(k: KataResult) -> bool:
    """Not started because the files are missing (said per kata), not an untouched stub."""
    return k.status == "not_started" and bool(k.reason) and "NotImplementedError" not in k.reason


def sandbox_line(report: Report) -> str:
    """How the spec processes were confined, in one line ("" for a report that does not say)."""
    if not report.sandbox:
        return ""
    if report.sandbox.startswith("none"):
        return f"Sandbox: {report.sandbox} (learner code ran with the grader's rights)"
    return f"Sandbox: {report.sandbox} (the kernel confined learner code to its kata)"


def protections_line(report: Report) -> str:
    """The containment this system went without ("" where nothing was off: Linux)."""
    if not report.protections_off:
        return ""
    return f"Protections off on this system: {'; '.join(report.protections_off)}"


def _indent(text: str, prefix: str) -> str:
    """``text``'s second and later lines indented by ``prefix``: a message of several lines
    stays inside its spec's entry (it cannot print a line that looks like the total)."""
    return text.replace("\n", "\n" + prefix)


def to_table(report: Report) -> str:
    rows = [("kata", "pillar", "status", "score", "time")]
    for k in report.katas:
        rows.append(
            (k.slug, k.pillar, state(k.status), f"{k.score}/{k.max_score}", f"{k.duration:.1f}s")
        )
    out = columns(rows)
    out.append(f"\nTotal: {report.score}/{report.max_score} ({report.percent:.1f}%)")
    if report.sandbox:
        out.append(sandbox_line(report))
    if report.protections_off:
        out.append(protections_line(report))
    details = []
    for k in report.katas:
        if k.status == "passed" or (k.status == "not_started" and not _missing(k)):
            continue
        details.append(f"\n{k.slug}: {_indent(k.reason, '  ')}" if k.reason else f"\n{k.slug}:")
        if k.status == "not_started":
            continue
        for spec in k.failing:
            details.append(f"  ✗ {spec.title} [{spec.outcome}]")
            if spec.message:
                details.append(f"      {_indent(spec.message, '      ')}")
    untouched = _not_started(report)
    if untouched:
        details.append(f"\nNot started (the stub is untouched): {', '.join(untouched)}")
    return "\n".join(out + details) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    """The job summary: the table on top, then one section per kata that needs work (its
    failing requirements, folded when long), and the untouched katas in one line."""
    out = [
        f"## Backend katas: {report.score}/{report.max_score} ({report.percent:.1f}%)",
        "",
        "| kata | pillar | status | score |",
        "|---|---|---|---|",
    ]
    for k in report.katas:
        out.append(
            f"| {_md(k.title)} (`{k.slug}`) | {k.pillar} | {STATUS_MARK[k.status]} "
            f"| {k.score}/{k.max_score} ({_pct(k.score, k.max_score)}) |"
        )
    out += ["", closing_line(report)]
    if report.sandbox:
        out += ["", f"<sub>{_md(sandbox_line(report))}</sub>"]
    if report.protections_off:
        out += ["", f"<sub>{_md(protections_line(report))}</sub>"]
    for k in report.katas:
        if k.status == "passed" or (k.status == "not_started" and not _missing(k)):
            continue
        out += ["", f"### {_md(k.title)}: {k.score}/{k.max_score}"]
        if k.reason:
            out += ["", f"> {_md(k.reason)}"]
        failing = k.failing if k.status != "not_started" else []
        if not failing:
            continue
        rows = ["| requirement | outcome | message |", "|---|---|---|"]
        rows += [f"| {_md(s.title)} | {s.outcome} | {_md(s.message)} |" for s in failing]
        if len(failing) > FOLD_AFTER:
            summary = f"{len(failing)} failing requirements"
            out += ["", f"<details><summary>{summary}</summary>", "", *rows, "", "</details>"]
        else:
            out += ["", *rows]
    untouched = _not_started(report)
    if untouched:
        names = ", ".join(f"`{slug}`" for slug in untouched)
        out += ["", f"**Not started** (the stub is untouched): {names}"]
    return "\n".join(out) + "\n"


def to_junit(report: Report) -> str:
    suites = ET.Element(
        "testsuites", name="backend-katas", tests=str(sum(len(k.specs) for k in report.katas))
    )
    for k in report.katas:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=k.slug,
            tests=str(len(k.specs)),
            failures=str(sum(s.outcome == "failed" for s in k.specs)),
            errors=str(sum(s.outcome in ("error", "timeout") for s in k.specs)),
            skipped=str(sum(s.outcome == "not_run" for s in k.specs)),
            time=f"{k.duration:.3f}",
        )
        for s in k.specs:
            case = ET.SubElement(suite, "testcase", classname=k.slug, name=s.title)
            if s.outcome == "failed":
                ET.SubElement(case, "failure", message=s.message or "failed")
            elif s.outcome in ("error", "timeout"):
                ET.SubElement(case, "error", message=s.message or s.outcome, type=s.outcome)
            elif s.outcome == "not_run":
                ET.SubElement(case, "skipped", message=s.message or "not run")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def to_gradescope(report: Report) -> str:
    """Gradescope autograder ``results.json``."""
    tests = []
    for k in report.katas:
        for s in k.specs:
            tests.append(
                {
                    "name": f"{k.slug}: {s.title}",
                    "score": s.score,
                    "max_score": s.points,
                    "status": "passed" if s.outcome == "passed" else "failed",
                    "output": s.message,
                    "visibility": "visible",
                }
            )
    total = sum(k.duration for k in report.katas)
    lines = [f"Backend katas: {report.score}/{report.max_score} ({report.percent:.1f}%)"]
    for k in report.katas:  # a kata's reason (a forbidden import, a crash) is on no test
        reason = f": {k.reason}" if k.reason else ""
        lines.append(
            f"{k.title} ({k.slug}): {k.status.replace('_', ' ')}, {k.score}/{k.max_score}{reason}"
        )
    data = {
        "score": report.score,
        "execution_time": round(total, 3),
        "output": "\n".join(lines),
        "tests": tests,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_exercism(report: Report) -> str:
    """Exercism test-runner ``results.json``, version 3. Each kata is a task (``task_id`` is its
    position in the report, from 1), each spec a test, in the order the specs were listed.

    The status is ``error`` only when no spec ran at all (then ``message`` says why), ``pass``
    when every kata passed, ``fail`` otherwise. A test's ``output`` is for what the learner's
    code printed (at most 500 characters); the grader does not keep that per spec, so the key is
    left out, as the interface allows. ``test_code`` is left out too: specs stay hidden.
    """
    tests = []
    for task_id, k in enumerate(report.katas, 1):
        for s in k.specs:
            status = {"passed": "pass", "failed": "fail"}.get(s.outcome, "error")
            tests.append(
                {
                    "name": s.title,
                    "status": status,
                    "message": s.message or None,
                    "task_id": task_id,
                }
            )
    ran = any(s.outcome != "not_run" for k in report.katas for s in k.specs)
    if not ran:
        status = "error"
    elif all(k.status == "passed" for k in report.katas):
        status = "pass"
    else:
        status = "fail"
    data = {"version": 3, "status": status, "message": None, "tests": tests}
    if status == "error":
        reasons = [f"{k.slug}: {k.reason}" for k in report.katas if k.reason]
        data["message"] = "; ".join(reasons) or "no spec ran"
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_annotations(report: Report, per_kata: int = 3) -> str:
    """GitHub Actions workflow commands: one annotation per failing requirement (a few per kata)."""
    lines = []
    for k in report.katas:
        if k.status in ("passed", "not_started"):
            continue
        notes = [(k.title, k.reason)] if k.reason else []
        notes += [(s.title, s.message) for s in k.failing]
        for title, message in notes[:per_kata]:
            lines.append(
                f"::warning title={_escape_property(f'{k.slug}: {title}')}::"
                f"{_escape_data(message or title)}"
            )
    return "\n".join(lines) + ("\n" if lines else "")


FORMATS: dict[str, Callable[[Report], str]] = {
    "table": to_table,
    "json": to_json,
    "markdown": to_markdown,
    "junit": to_junit,
    "gradescope": to_gradescope,
    "exercism": to_exercism,
}


def render(report: Report, fmt: str) -> str:
    return FORMATS[fmt](report)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
