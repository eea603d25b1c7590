"""Host the katas on Gradescope: build the autograder zip, and grade inside Gradescope's image.

Gradescope's autograder contract (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
the zip holds ``setup.sh`` (run once, as root, when the image is built) and ``run_autograder``
(run for every submission, in ``/autograder``); the zip is unpacked in ``/autograder/source``,
the learner's files are in ``/autograder/submission``, and the results go to
``/autograder/results/results.json``.

The zip carries this grader, ``pyproject.toml`` and the chosen katas *with* their hidden specs
(the image is the instructor's, never shown to learners) but no solutions. ``run_autograder``
calls :func:`autograde`, which grades with the same ``grade()`` as ``kata grade`` and writes the
``gradescope`` report, so a score on Gradescope is the score of ``kata grade``.
"""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .grading import grade
from .kata import Kata, KataError, discover, select
from .release import GRADER, PYPROJECT, files_under
from .report import render, write_atomic
from .workspace import Source

__all__ = ["autograde", "main", "submission_source"]

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same course builds the same zip, byte for byte

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image: find (or install)
# Python >= 3.11, then install the grader and its dependencies into /autograder/venv.
set -euo pipefail

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
        PYTHON="$candidate"
        break
    fi
done
if [ -z "$PYTHON" ]; then  # Ubuntu 22.04 ships 3.10: take 3.11 from the deadsnakes archive
    apt-get update
    apt-get install -y software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y python3.11 python3.11-venv
    PYTHON=python3.11
fi
"$PYTHON" -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet /autograder/source
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission with the hidden
# specs in /autograder/source and write /autograder/results/results.json.
# AUTOGRADER and KATA_PYTHON exist so the zip can be tried outside Gradescope.
set -euo pipefail
AUTOGRADER="${AUTOGRADER:-/autograder}"
PYTHON="${KATA_PYTHON:-$AUTOGRADER/venv/bin/python}"
cd "$AUTOGRADER/source"
exec "$PYTHON" -c 'import sys; from grader.gradescope import autograde; sys.exit(autograde(sys.argv[1]))' "$AUTOGRADER"
"""

README = """\
# Backend katas: Gradescope autograder

Built by `kata package-gradescope`. Upload this zip as the autograder of a programming
assignment (base image: Ubuntu 22.04 or newer). Learners submit either their repository
(`exercises/<slug>/<file>`) or just the files each kata declares.
"""


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    archive.writestr(info, data)


def _kata_files(kata: Kata) -> list[tuple[str, Path]]:
    """The kata's folder with its hidden specs; caches left out."""
    return [
        (f"exercises/{kata.slug}/{p.relative_to(kata.exercise_dir).as_posix()}", p)
        for p in files_under(kata.exercise_dir)
    ]


def main(*, root: Path, outfile: Path, slugs: Sequence[str] = ()) -> Path:
    """Write the Gradescope autograder zip for the katas ``slugs`` (default: all) to ``outfile``."""
    katas = select(discover(root), list(slugs))
    if not katas:
        raise KataError(f"{root}: no katas to package")
    for kata in katas:
        kata.spec_files()  # a kata without specs would grade nothing: refuse it now
    entries = [(f"grader/{p.relative_to(GRADER).as_posix()}", p) for p in files_under(GRADER)]
    entries += [item for kata in katas for item in _kata_files(kata)]
    entries.append(("pyproject.toml", PYPROJECT))
    outfile = outfile.resolve()
    outfile.parent.mkdir(parents=True, exist_ok=True)
    partial = outfile.with_name(f".{outfile.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            _add(archive, "setup.sh", SETUP_SH.encode(), executable=True)
            _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
            _add(archive, "README.md", README.encode())
            for name, path in sorted(entries):
                _add(archive, name, path.read_bytes())
        partial.replace(outfile)
    finally:
        partial.unlink(missing_ok=True)
    return outfile


# -- inside Gradescope's image ------------------------------------------------------------


def submission_source(folder: Path) -> Source:
    """A Gradescope submission: a learner's repository (``exercises/<slug>/<file>``), a folder
    per kata (``<slug>/<file>``) or the bare files uploaded at the top."""
    folder = folder.resolve()
    return Source(
        "gradescope submission",
        lambda kata: [folder / "exercises" / kata.slug, folder / kata.slug, folder],
    )


def _failure(reason: str) -> str:
    output = f"The autograder could not grade this submission: {reason}"
    return json.dumps({"score": 0, "output": output, "tests": []}, indent=2) + "\n"


def autograde(home: str | Path = "/autograder") -> int:
    """Grade ``home/submission`` with the katas of ``home/source``; write the results file.

    Always exits 0 with a results file: a submission that cannot be graded scores 0 with the
    reason in the top-level output, rather than an autograder failure with no feedback."""
    home = Path(home)
    try:
        katas = discover(home / "source")
        text = render(grade(katas, submission_source(home / "submission")), "gradescope")
    except KataError as err:
        text = _failure(str(err))
    write_atomic(home / "results" / "results.json", text)
    return 0
