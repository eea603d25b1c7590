"""Sessions for learners (test, grade), instructors (grade) and maintainers (tests, verify, lint).

Every session runs on the interpreter nox itself runs on (Python >= 3.11), in a reused
virtualenv; the project is installed once and again only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["grade"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent


def install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with ``extras``, skipped when nothing changed since."""
    spec = f".[{','.join(extras)}]" if extras else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec.encode()).hexdigest()
    stamp = Path(session.virtualenv.location) / ".backend-katas-installed"
    if stamp.is_file() and stamp.read_text() == digest:
        return
    session.install("-q", "-e", spec)
    stamp.write_text(digest)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade your katas against the hidden specs (args go to `kata grade`)."""
    install(session)
    session.run("kata", "grade", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """Run the visible tests of one kata: nox -s test -- SLUG."""
    if not session.posargs:
        session.error("name a kata: nox -s test -- SLUG (see `nox -s list`)")
    install(session)
    session.run("kata", "test", *session.posargs)


@nox.session(name="list")
def list_(session: nox.Session) -> None:
    """The curriculum in order, with your state per kata."""
    install(session)
    session.run("kata", "list", *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """Prove each kata's specs: solution full x3, stub zero, mutants killed, coverage >= 90%."""
    install(session)
    session.run("kata", "verify", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """All tests: the grader's own tests, then verify of every kata."""
    install(session, "dev")
    session.run("pytest", "tests", *session.posargs)
    session.run("kata", "verify")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the code; actionlint on the GitHub workflows."""
    install(session, "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    workflows = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
    session.run("actionlint", *workflows, "docs/instructor-workflow.yml")
