"""Sessions for learners (list, try, watch, grade), instructors (grade) and maintainers
(tests, verify, lint).

Every session runs on the interpreter nox itself runs on (Python >= 3.11). The learner's
sessions (and ``verify``) share one virtualenv, ``.nox/kata``, built on first use; the
maintainers' ``tests`` and ``lint`` share ``.nox/dev`` (the grader plus the dev extras). A
virtualenv is built once and installed again only when pyproject.toml changes: nox's own
per-session virtualenvs would build three copies of the same thing, one per session name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["grade"]
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "none"  # we build the two virtualenvs ourselves (below)

ROOT = Path(__file__).parent
VENVS = ROOT / ".nox"
# The kata command has the last word in these sessions (its closing line says where you
# stand); nox's "Session grade was successful" after a table of failures would contradict it.
LEARNER = frozenset({"list", "try", "watch", "grade"})


class _Quiet(logging.Filter):
    """Drop two nox log lines that only get in a learner's way: nox looks for uv on every run
    ("uv binary not found.") although no session here uses it, and a learner session's
    "was successful" would follow a table of failures."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("uv binary not found"):
            return False
        name, _, rest = message.removeprefix("Session ").partition(" ")
        return not (rest.startswith("was successful") and name in LEARNER)


logging.getLogger("nox").addFilter(_Quiet())


def _bin(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def venv(session: nox.Session, name: str, *extras: str) -> dict[str, str]:
    """The shared virtualenv ``.nox/<name>`` with the project installed (editable) with
    ``extras``, built or updated only when needed; the environment that runs its commands
    (its scripts first on PATH)."""
    location = VENVS / name
    spec = f".[{','.join(extras)}]" if extras else "."
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + spec.encode() + sys.version.encode()
    ).hexdigest()
    stamp = location / ".backend-katas-installed"
    python = _bin(location) / ("python.exe" if os.name == "nt" else "python")
    if not (stamp.is_file() and stamp.read_text() == digest and python.exists()):
        session.log(
            f"installing the grader once into .nox/{name} (about 30 s, quiet while pip works; "
            "later runs reuse it)"
        )
        session.run(sys.executable, "-m", "venv", "--clear", str(location), external=True)
        session.run(
            str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", spec,
            external=True,
        )  # fmt: skip
        stamp.write_text(digest)
    path = os.pathsep.join([str(_bin(location)), os.environ.get("PATH", "")])
    return {"PATH": path, "VIRTUAL_ENV": str(location)}


def run(session: nox.Session, env: dict[str, str], command: str, *args: str) -> None:
    """Run ``command`` of the virtualenv whose environment is ``env``."""
    program = shutil.which(command, path=env["PATH"].split(os.pathsep)[0]) or command
    session.run(program, *args, env=env, external=True)


def kata(session: nox.Session, *args: str) -> None:
    """Run ``kata ARGS`` in the learners' shared virtualenv."""
    run(session, venv(session, "kata"), "kata", *args)


# -- learners ----------------------------------------------------------------------------


@nox.session(name="list")
def list_(session: nox.Session) -> None:
    """Start here: the curriculum in order, with your state per kata."""
    kata(session, "list", *session.posargs)


@nox.session(name="try")
def try_(session: nox.Session) -> None:
    """Run the visible examples of one kata: nox -s try -- SLUG [pytest args]."""
    if not session.posargs:
        session.error("name a kata: nox -s try -- SLUG (see `nox -s list`)")
    kata(session, "try", *session.posargs)


@nox.session
def watch(session: nox.Session) -> None:
    """Re-run examples and grade one kata on every save: nox -s watch -- SLUG (Ctrl-C stops)."""
    if not session.posargs:
        session.error("name a kata: nox -s watch -- SLUG (see `nox -s list`)")
    kata(session, "watch", *session.posargs)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade your katas against the hidden specs: nox -s grade [-- SLUG ...] (args: kata grade)."""
    kata(session, "grade", *session.posargs)


# -- maintainers -------------------------------------------------------------------------


@nox.session
def verify(session: nox.Session) -> None:
    """Prove each kata's specs: solution full x3, stub zero, mutants killed, coverage >= 90%."""
    kata(session, "verify", *session.posargs)


@nox.session(default=False)
def stress(session: nox.Session) -> None:
    """Maintainers: every kata's solution 20 times with every core busy (flake hunt; slow)."""
    kata(session, "verify", "--repeat", "20", "--load", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Maintainers: the grader's own tests, then verify of every kata (minutes)."""
    env = venv(session, "dev", "dev")
    run(session, env, "pytest", "tests", *session.posargs)
    run(session, env, "kata", "verify")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the code; actionlint on the GitHub workflows."""
    env = venv(session, "dev", "dev")
    run(session, env, "ruff", "check", ".")
    run(session, env, "ruff", "format", "--check", ".")
    workflows = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
    run(session, env, "actionlint", *workflows, "docs/instructor-workflow.yml")
