"""The scoring model: result records in, scores out. Pure: no files, no processes.

The expected specs come from the trusted listing (``collect`` mode, run before and apart from
learner code). A spec scores only if the run sent a signed ``result`` record saying it passed;
every expected spec without one scores nothing, whatever else the run printed or returned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "OUTCOMES",
    "SCHEMA",
    "STATUSES",
    "KataResult",
    "Observed",
    "Report",
    "Spec",
    "SpecResult",
    "score_kata",
]

SCHEMA = "backend-katas/report@1"
OUTCOMES = ("passed", "failed", "error", "timeout", "not_run")
STATUSES = ("passed", "failed", "not_started", "error", "timeout")


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    points: int = 1


@dataclass(frozen=True)
class SpecResult:
    id: str
    title: str
    points: int
    outcome: str
    message: str = ""

    @property
    def score(self) -> int:
        return self.points if self.outcome == "passed" else 0


@dataclass(frozen=True)
class KataResult:
    slug: str
    title: str
    pillar: str
    status: str
    score: int
    max_score: int
    duration: float = 0.0
    reason: str = ""
    specs: tuple[SpecResult, ...] = ()

    @property
    def failing(self) -> list[SpecResult]:
        return [s for s in self.specs if s.outcome != "passed"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = round(self.duration, 3)
        data["specs"] = [asdict(s) for s in self.specs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KataResult:
        specs = tuple(SpecResult(**s) for s in data.get("specs", ()))
        return cls(**{**data, "specs": specs})


@dataclass(frozen=True)
class Report:
    katas: tuple[KataResult, ...]
    submission: str = ""
    generated_at: str = ""
    grader_version: str = ""
    sandbox: str = ""  # how the spec processes were confined: "landlock-abi-N", "none: <why>"
    protections_off: tuple[str, ...] = ()  # containment this system lacks (grader.portable)
    schema: str = field(default=SCHEMA)

    @property
    def score(self) -> int:
        return sum(k.score for k in self.katas)

    @property
    def max_score(self) -> int:
        return sum(k.max_score for k in self.katas)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "grader_version": self.grader_version,
            "generated_at": self.generated_at,
            "submission": self.submission,
            "sandbox": self.sandbox,
            "protections_off": list(self.protections_off),
            "score": self.score,
            "max_score": self.max_score,
            "percent": round(self.percent, 2),
            "katas": [k.to_dict() for k in self.katas],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} report (schema is {data.get('schema')!r})")
        return cls(
            katas=tuple(KataResult.from_dict(k) for k in data["katas"]),
            submission=data.get("submission", ""),
            generated_at=data.get("generated_at", ""),
            grader_version=data.get("grader_version", ""),
            sandbox=data.get("sandbox", ""),
            protections_off=tuple(data.get("protections_off", ())),
        )


@dataclass(frozen=True)
class Observed:
    """What the grader saw of one run of a kata's specs (see ``grader.runner.RunResult``)."""

    records: tuple[dict, ...] = ()
    timed_out: bool = False
    returncode: int | None = 0
    rejected: int = 0
    duration: float = 0.0
    output_bytes: int = 0
    stopped: str = ""  # why the grader stopped the run early (too many processes)


def _records(observed: Observed, kind: str) -> list[dict]:
    return [r for r in observed.records if r.get("kind") == kind]


def _unfinished(spec: Spec, observed: Observed, started: set[str]) -> tuple[str, str]:
    if spec.id not in started:
        return "not_run", "the spec did not run: the run ended before it"
    if observed.timed_out:
        return "timeout", "the kata ran out of time while this spec was running"
    if observed.stopped:
        return "error", "the run was stopped while this spec was running"
    if _records(observed, "done"):
        return "error", "the spec did not finish: the run stopped while it was running"
    return "error", "the spec process died while this spec was running"


def _death(observed: Observed) -> str:
    code = observed.returncode
    if code is not None and code < 0:
        names = {
            -9: "SIGKILL",
            -11: "SIGSEGV (a crash)",
            -25: "SIGXFSZ (file size limit)",
            -24: "SIGXCPU (CPU time limit)",
            -6: "SIGABRT",
        }
        return f"the spec process was killed by {names.get(code, f'signal {-code}')}"
    return f"the spec process exited early (exit status {code})"


def score_kata(
    kata: Any,
    expected: list[Spec],
    observed: Observed | None,
    *,
    missing: list[str] = (),
    refused: list[str] = (),
    violations: list[str] = (),
) -> KataResult:
    """Score one kata. ``kata`` needs ``slug``, ``title``, ``pillar``; ``observed`` is None when
    the specs were not run (missing files, forbidden imports)."""
    observed = observed or Observed()
    results = {r["id"]: r for r in _records(observed, "result")}
    started = {r["id"] for r in _records(observed, "start")}
    specs = []
    for spec in expected:
        record = results.get(spec.id)
        if record is not None and record.get("outcome") in OUTCOMES[:-1]:
            outcome, message = record["outcome"], str(record.get("message", ""))
        else:
            outcome, message = _unfinished(spec, observed, started)
        specs.append(SpecResult(spec.id, spec.title, spec.points, outcome, message))
    max_score = sum(s.points for s in expected)
    status, reason = _status(specs, results, observed, missing, refused, violations)
    if _records(observed, "tamper") or _records(observed, "forbidden_import"):
        specs = [
            s
            if s.outcome != "passed"
            else SpecResult(s.id, s.title, s.points, "failed", f"not counted: {reason}")
            for s in specs
        ]
    score = sum(s.score for s in specs)
    if observed.rejected:
        reason = (reason + "; " if reason else "") + (
            f"{observed.rejected} forged or corrupt result line(s) were ignored"
        )
    if status in ("not_started", "error") and observed is not None and not observed.records:
        specs = [SpecResult(s.id, s.title, s.points, "not_run", reason) for s in specs]
        score = 0
    return KataResult(
        slug=kata.slug,
        title=kata.title,
        pillar=kata.pillar,
        status=status,
        score=score,
        max_score=max_score,
        duration=observed.duration,
        reason=reason,
        specs=tuple(specs),
    )


def _hit_stub(record: dict) -> bool:
    """The spec failed on the stub's NotImplementedError (raised, or caught and reported)."""
    return record.get("exc_type") == "NotImplementedError" or "NotImplementedError" in str(
        record.get("message", "")
    )


def _status(specs, results, observed, missing, refused, violations) -> tuple[str, str]:
    if missing:
        return "not_started", f"the submission has no {', '.join(missing)}"
    if refused:
        return "error", "; ".join(refused)
    if violations:
        return "failed", "; ".join(violations)
    tamper = _records(observed, "tamper")
    if tamper:
        return "error", "the submission interfered with the grader: " + tamper[0]["message"]
    forbidden = _records(observed, "forbidden_import")
    if forbidden:
        return "failed", "; ".join(r["message"] for r in forbidden)
    ran = sum(1 for s in specs if s.outcome != "not_run")
    if observed.stopped:
        return "error", f"{observed.stopped} after {ran} of {len(specs)} specs"
    collect_errors = _records(observed, "collect_error")
    if collect_errors and not results:
        return "error", "the specs could not import your code: " + collect_errors[0]["message"]
    if observed.timed_out:
        return "timeout", "the kata ran out of time (its wall-clock limit) and was stopped"
    score = sum(s.score for s in specs)
    if specs and score == sum(s.points for s in specs):
        return "passed", ""
    failures = [r for r in results.values() if r.get("outcome") != "passed"]
    if score == 0 and len(failures) == len(specs) and all(map(_hit_stub, failures)):
        return "not_started", "every spec hit NotImplementedError: the stub is untouched"
    if not _records(observed, "done"):
        return "error", f"{_death(observed)} after {ran} of {len(specs)} specs"
    crashes = _records(observed, "crash")
    if crashes:
        return "error", crashes[0]["message"]
    if collect_errors:
        return "failed", "some specs could not import your code: " + collect_errors[0]["message"]
    interrupted = _records(observed, "interrupted")
    if interrupted:
        return "error", f"{interrupted[0]['message']}: {ran} of {len(specs)} specs ran"
    if ran < len(specs):
        return "failed", f"the run ended after {ran} of {len(specs)} specs; the rest did not run"
    return "failed", ""
