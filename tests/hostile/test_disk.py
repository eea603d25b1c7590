"""Hostile submissions that fill the disk the grader and the other katas share.

``RLIMIT_FSIZE`` bounds each file a run writes, not how many: without a bound on the run as a
whole, a kata writes file after file (or one file it deleted and still holds open, which no
folder shows) in its temp folder until the disk is full, and every grading beside it fails.
The supervisor measures what each run holds on disk and stops it beyond ``Limits.disk`` bytes
or ``Limits.files`` files.

The attacks stop themselves at 512 MiB (this suite runs on shared machines), far beyond the
64 MiB limit it grades with; a run that is not stopped sleeps until its kata times out
(status ``timeout``, not the ``error`` that names the limit).
"""

from __future__ import annotations

import pytest

from grader.runner import Limits

from .kit import ADD_POINTS, CORRECT, FULL, HostileCourse, with_mul

LIMIT = 64 << 20
FILES = 2_000
CAP = 512 << 20  # what an attack writes at most, whatever happens

MANY_FILES = f"""
import os, tempfile, time
chunk = bytes(8 << 20)
for n in range({CAP} // len(chunk)):
    with open(os.path.join(tempfile.gettempdir(), f"fill{{n}}"), "wb") as file:
        file.write(chunk)
time.sleep(120)
"""

DELETED_BUT_OPEN = f"""
import os, tempfile, time
chunk = bytes(8 << 20)
kept = []
for n in range({CAP} // (64 << 20)):
    path = os.path.join(tempfile.gettempdir(), f"hidden{{n}}")
    file = open(path, "wb")
    os.unlink(path)  # no folder shows it; the disk holds it until the file is closed
    kept.append(file)
    for _ in range(8):
        file.write(chunk)
        file.flush()
time.sleep(120)
"""

SMALL_FILES = f"""
import os, tempfile, time
folder = os.path.join(tempfile.gettempdir(), "many")
os.mkdir(folder)
for n in range({FILES} * 10):
    open(os.path.join(folder, str(n)), "wb").close()
time.sleep(120)
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = HostileCourse(tmp_path_factory.mktemp("disk"), timeout=25, spec_timeout=20)
    course.kata("honest", CORRECT)
    course.kata("many_files", with_mul(MANY_FILES))
    course.kata("deleted_but_open", with_mul(DELETED_BUT_OPEN))
    course.kata("small_files", with_mul(SMALL_FILES))
    return course.grade(jobs=4, limits=Limits(disk=LIMIT, files=FILES))


def kata(graded, slug):
    return graded[slug].result


@pytest.fixture(autouse=True)
def _others_intact(graded):
    yield
    honest = kata(graded, "honest")
    assert (honest.status, honest.score) == ("passed", FULL), honest


@pytest.mark.parametrize("slug", ["many_files", "deleted_but_open"])
def test_a_run_that_fills_the_disk_is_stopped_at_its_limit(graded, slug):
    result = kata(graded, slug)
    assert (result.status, result.score) == ("error", ADD_POINTS), result
    assert "the run wrote more than 64 MiB to disk and was stopped" in result.reason


def test_a_run_that_makes_too_many_files_is_stopped(graded):
    result = kata(graded, "small_files")
    assert (result.status, result.score) == ("error", ADD_POINTS), result
    assert f"the run made more than {FILES} files and was stopped" in result.reason
