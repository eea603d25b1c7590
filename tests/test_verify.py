"""`kata verify` as maintainers run it: mutants as edits, covering specs, explore, load."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import mutants
from grader.cli import main
from grader.grading import grade_kata
from grader.kata import discover
from grader.verify import Slots, cpu_load, cpu_seconds
from grader.workspace import Source

from .conftest import ADDER_SOLUTION, ADDER_SPEC

# Each verify grades a small kata eight or nine times: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(300)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def adder(course):
    course.add_adder()
    (kata,) = discover(course.root)
    return course, kata


def write_mutants(course, text: str) -> None:
    (course.root / "solutions" / "adder" / "mutants.toml").write_text(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[mutant]]\nname = 'x'\n", "'bug' must say the mistake"),
        ("[[mutant]]\nname = 'Bad Name'\nbug = 'b'\n", "'name' must be a lower-case identifier"),
        ("[[mutant]]\nname = 'x'\nbug = 'b'\n", "no edits"),
        ("[[mutant]]\nname = 'x'\nbug = 'b'\n[[mutant.edit]]\nold = 'a'\n", "'new' must be text"),
        (
            "[[mutant]]\nname = 'x'\nbug = 'b'\n[[mutant.edit]]\nfile = 'other.py'\n"
            "old = 'a'\nnew = 'b'\n",
            "not one of the kata's files",
        ),
        ("[[mutant]]\nname = 'x'\nbug = 'b'\nold = 'a'\nnew = 'b'\n", "unknown key(s) new, old"),
        ("mutant = 3\n", "array of tables"),
        ("[[mutant]\n", "not valid TOML"),
        (
            "[[mutant]]\nname = 'x'\nbug = 'b'\n[[mutant.edit]]\nold='a'\nnew='b'\n"
            "[[mutant]]\nname = 'x'\nbug = 'c'\n[[mutant.edit]]\nold='a'\nnew='c'\n",
            "used twice",
        ),
    ],
    ids=[
        "no-bug",
        "bad-name",
        "no-edit",
        "no-new",
        "undeclared-file",
        "edit-keys-on-mutant",
        "not-a-table",
        "broken-toml",
        "duplicate-name",
    ],
)
def test_a_malformed_mutants_file_names_the_file_and_the_mutant(adder, text, says):
    course, kata = adder
    write_mutants(course, text)
    with pytest.raises(mutants.MutantError) as err:
        mutants.load(kata)
    assert "mutants.toml" in str(err.value) and says in str(err.value), str(err.value)


def test_an_edit_whose_text_occurs_twice_is_refused(adder):
    course, kata = adder
    write_mutants(
        course, "[[mutant]]\nname = 'x'\nbug = 'b'\n[[mutant.edit]]\nold = 'def '\nnew = 'def  '\n"
    )
    (mutant,) = mutants.load(kata)
    with pytest.raises(mutants.MutantError, match="occurs 2 times"):
        mutants.mutated_text(kata, mutant)


def test_edits_apply_in_order_and_leave_the_solution_alone(adder, tmp_path):
    course, kata = adder
    write_mutants(
        course,
        "[[mutant]]\nname = 'x'\nbug = 'b'\n"
        "[[mutant.edit]]\nold = 'a + b'\nnew = 'a - b'\n"
        "[[mutant.edit]]\nold = 'a - b'\nnew = 'b - a'\n",
    )
    (mutant,) = mutants.load(kata)
    folder = mutants.apply(kata, mutant, tmp_path / "m")
    assert (folder / "adder.py").read_text() == ADDER_SOLUTION.replace("a + b", "b - a")
    assert (kata.solution_dir / "adder.py").read_text() == ADDER_SOLUTION


def test_the_verify_report_names_the_spec_that_killed_each_mutant(adder, capsys, tmp_path):
    course, _ = adder
    report = tmp_path / "verify.json"
    code, out, _ = run(capsys, "--root", str(course.root), "verify", "--json", str(report))
    assert code == 0, out
    (kata,) = json.loads(report.read_text())
    assert kata["ok"] and kata["solution"]["runs"] == 3 and kata["solution"]["flakes"] == 0
    assert kata["coverage"] == {"lines": 100.0, "branches": 100.0}
    by_name = {m["name"]: m for m in kata["mutants"]}
    assert by_name["mul_is_add"]["killed_by"] == "test_adder.py::test_mul"
    assert by_name["mul_is_add"]["scope"] == "1 covering spec(s)"
    assert by_name["off_by_one"]["killed_by"].startswith("test_adder.py::test_add")


def test_a_mutant_whose_lines_no_spec_runs_runs_every_spec_and_says_so(course, capsys, tmp_path):
    solution = ADDER_SOLUTION + "\n\ndef unused(a):\n    return a\n"
    course.add_adder(
        solution=solution,
        mutants={
            "off_by_one": ("add is off by one.", "a + b", "a + b + 1"),
            "mul_is_add": ("mul adds.", "a * b", "a + b"),
            "dead": ("dead code changes.", "return a\n", "return -a\n"),
        },
    )
    report = tmp_path / "verify.json"
    code, out, _ = run(
        capsys, "--root", str(course.root), "verify", "--runs", "1", "--json", str(report)
    )
    assert code == 1, out  # the dead mutant survives, and the coverage bar is missed
    (kata,) = json.loads(report.read_text())
    dead = next(m for m in kata["mutants"] if m["name"] == "dead")
    assert dead["scope"] == "all specs: no spec executes the edited lines"
    assert not dead["killed"]
    assert "mutant dead survived" in out


def test_all_specs_runs_every_spec_on_every_mutant(adder, capsys, tmp_path):
    course, _ = adder
    report = tmp_path / "verify.json"
    code, _, _ = run(
        capsys,
        "--root",
        str(course.root),
        "verify",
        "--runs",
        "1",
        "--all-specs",
        "--json",
        str(report),
    )
    assert code == 0
    (kata,) = json.loads(report.read_text())
    assert {m["scope"] for m in kata["mutants"]} == {"all specs (--all-specs)"}
    assert all(m["killed"] for m in kata["mutants"])


def test_explore_reports_a_spec_that_holds_only_under_the_fixed_seed(course, capsys):
    # A "property" that only holds with the grader's derandomized profile: explore must see
    # it fail on the solution, since explore runs ten times the examples from random seeds.
    spec = ADDER_SPEC + (
        "\n\ndef test_profile():\n"
        '    """The grader profile is in force."""\n'
        "    from hypothesis import settings\n"
        "    from adder import add\n"
        "    add(1, 1)\n"
        "    assert settings().derandomize, 'random inputs'\n"
    )
    course.add_adder(specs={"test_adder.py": spec})
    code, out, _ = run(capsys, "--root", str(course.root), "verify", "--explore", "2")
    assert code == 1
    assert "the solution lost test_adder.py::test_profile with seed" in out
    code, out, _ = run(capsys, "--root", str(course.root), "verify", "--runs", "1")
    assert code == 0, out  # under the grader's own profile the same spec passes


def test_explore_finds_nothing_on_a_sound_kata(adder, capsys):
    course, _ = adder
    code, out, _ = run(capsys, "--root", str(course.root), "verify", "--explore", "1")
    assert code == 0, out
    assert "adder: nothing found" in out


def test_cpu_load_runs_the_burners_while_the_body_runs_and_reaps_them():
    with cpu_load(2) as burners:
        assert len(burners) == 2
        assert all(b.poll() is None for b in burners), "a burner stopped early"
    assert all(b.returncode is not None for b in burners), "a burner outlived the body"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_cpu_load_burners_die_with_a_verify_that_is_killed():
    import signal
    import subprocess
    import time

    code = (
        "import sys, time; from grader.verify import cpu_load\n"
        "with cpu_load(2) as burners:\n"
        "    print(*(b.pid for b in burners), flush=True); time.sleep(600)\n"
    )
    verify = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in verify.stdout.readline().split()]
    verify.send_signal(signal.SIGKILL)
    verify.wait()
    alive = pids
    for _ in range(500):  # polled, not timed: each burner gets SIGTERM as its parent dies
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and _state(p) not in "ZX"]
        if not alive:
            break
        time.sleep(0.01)
    assert len(pids) == 2 and not alive, f"burners {alive} outlived the killed verify"


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat[stat.rindex(")") + 2]


def test_cpu_load_defaults_to_one_burner_per_core():
    with cpu_load() as burners:
        assert len(burners) == (os.cpu_count() or 1)


def test_a_covering_spec_with_any_characters_in_its_id_is_selected(course, capsys, tmp_path):
    spec = ADDER_SPEC + (
        "\n\n@pytest.mark.parametrize('b', [2], ids=['RFC 9110 §8.6 a/b [x]::y'])\n"
        "def test_mul_odd_id(b):\n"
        '    """mul(3, b) is 3 * b."""\n'
        "    got = mul(3, b)\n"
        "    assert got == 3 * b, f'Called mul(3, {b}); returned {got!r}'\n"
    )
    course.add_adder(
        specs={"test_adder.py": spec.replace("def test_mul(", "def _unused_mul(")},
    )
    report = tmp_path / "verify.json"
    code, out, _ = run(
        capsys, "--root", str(course.root), "verify", "--runs", "1", "--json", str(report)
    )
    (kata,) = json.loads(report.read_text())
    mul = next(m for m in kata["mutants"] if m["name"] == "mul_is_add")
    assert mul["scope"] == "1 covering spec(s)", mul
    assert mul["killed_by"] == "test_adder.py::test_mul_odd_id[RFC 9110 \\xa78.6 a/b [x]::y]", mul
    assert code == 0, out


def test_visible_tests_that_never_finish_are_a_verdict_not_a_crash(adder, monkeypatch):
    from grader import verify

    _, kata = adder

    def hang(*args, **kwargs):
        raise verify.subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(verify.subprocess, "run", hang)
    assert verify._visible_tests(kata, lambda k: k.solution_dir) == verify.VISIBLE_TIMEOUT


def test_two_edits_far_apart_run_the_specs_covering_each_not_every_spec(course, capsys, tmp_path):
    # The `def mul` line between the two edits runs at import time; it is not edited.
    course.add_adder()
    (course.root / "solutions" / "adder" / "mutants.toml").write_text(
        '[[mutant]]\nname = "both"\nbug = "add and mul are both off."\n'
        '[[mutant.edit]]\nold = "a + b"\nnew = "a + b + 1"\n'
        '[[mutant.edit]]\nold = "a * b"\nnew = "a * b + 1"\n'
        '[[mutant]]\nname = "off_by_one"\nbug = "add is off by one."\n'
        '[[mutant.edit]]\nold = "a + b"\nnew = "a + b + 1"\n'
        '[[mutant]]\nname = "mul_is_add"\nbug = "mul adds."\n'
        '[[mutant.edit]]\nold = "a * b"\nnew = "a + b"\n'
    )
    report = tmp_path / "verify.json"
    code, out, _ = run(
        capsys, "--root", str(course.root), "verify", "--runs", "1", "--json", str(report)
    )
    assert code == 0, out
    (kata,) = json.loads(report.read_text())
    both = next(m for m in kata["mutants"] if m["name"] == "both")
    assert both["scope"].endswith("covering spec(s)"), both["scope"]


def _mutant_run(kata, tmp_path, solution: str, select: list[str], *, exitfirst: bool = True):
    """Grade ``solution`` (as adder.py) the way verify grades a mutant: selected specs,
    stopping at the first failure (``exitfirst=False``: as a grade runs them)."""
    folder = tmp_path / "mutant"
    folder.mkdir(exist_ok=True)
    (folder / "adder.py").write_text(solution)
    source = Source("mutant", lambda k: [folder, k.solution_dir])
    return asyncio.run(grade_kata(kata, source, select=select, exitfirst=exitfirst))


def test_a_mutant_run_takes_the_selected_specs_in_the_order_given(adder, tmp_path):
    # add subtracts: test_add and test_async_add both fail; file order would meet test_add first
    _, kata = adder
    select = ["test_adder.py::test_async_add", "test_adder.py::test_add"]
    graded = _mutant_run(kata, tmp_path, ADDER_SOLUTION.replace("a + b", "a - b"), select)
    outcomes = {s.id: s.outcome for s in graded.result.specs}
    assert outcomes["test_adder.py::test_async_add"] == "failed", outcomes
    assert outcomes["test_adder.py::test_add"] != "failed", outcomes  # not run: stopped before


PROPERTY_SPEC = '''\
from hypothesis import given, strategies as st

from adder import add

CALLS = []


@given(st.integers(min_value=0, max_value=10**6))
def test_add_one(x):
    """add(x, 1) is x + 1."""
    CALLS.append(x)
    assert add(x, 1) == x + 1, f"call {len(CALLS)}"
'''


def test_a_mutant_run_stops_at_the_first_failing_example_without_shrinking(course, tmp_path):
    course.add_adder(specs={"test_adder.py": PROPERTY_SPEC})
    (kata,) = discover(course.root)
    wrong = ADDER_SOLUTION.replace("return a + b", "return a + b + (a > 5000)")

    def calls(exitfirst: bool) -> int:
        graded = _mutant_run(
            kata, tmp_path, wrong, ["test_adder.py::test_add_one"], exitfirst=exitfirst
        )
        (result,) = graded.result.specs
        assert result.outcome == "failed", result
        return int(re.search(r"call (\d+)", result.message).group(1))

    first_failure, graded = calls(exitfirst=True), calls(exitfirst=False)
    assert first_failure < graded, (first_failure, graded)  # a grade shrinks: many more calls


LINUX_PROC = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")


async def _sleeper() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")


async def _hold(slots: Slots, entered: list[str], name: str, release: asyncio.Event) -> None:
    """A job: take a slot, start a process that sleeps, say so, and hold until ``release``."""
    async with slots() as started:
        proc = await _sleeper()
        try:
            started(proc.pid)
            entered.append(name)
            await release.wait()
        finally:
            proc.kill()
            await proc.wait()


async def _turns_until(condition, limit: float = 30.0) -> None:
    """Await until ``condition()`` (the watcher samples every quarter second); fail at ``limit``."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), limit)


@LINUX_PROC
def test_a_job_whose_process_sleeps_lends_its_slot_to_the_next():
    async def main():
        slots, entered, release = Slots(1, elastic=True), [], asyncio.Event()
        first = asyncio.ensure_future(_hold(slots, entered, "sleeper", release))
        await _turns_until(lambda: entered == ["sleeper"])
        second = asyncio.ensure_future(_hold(slots, entered, "next", release))
        await _turns_until(lambda: entered == ["sleeper", "next"])  # the sleeper still runs
        release.set()
        await asyncio.gather(first, second)
        return slots.lent

    assert asyncio.run(main()) >= 1


def test_plain_slots_are_never_lent():
    async def main():
        slots, entered, release = Slots(1), [], asyncio.Event()
        first = asyncio.ensure_future(_hold(slots, entered, "sleeper", release))
        await _turns_until(lambda: entered == ["sleeper"])
        second = asyncio.ensure_future(_hold(slots, entered, "next", release))
        await asyncio.sleep(4 * Slots.IDLE_WINDOW)  # long past the moment an elastic one lends
        waiting = entered == ["sleeper"]
        release.set()
        await asyncio.gather(first, second)
        return waiting, slots.lent

    assert asyncio.run(main()) == (True, 0)


@LINUX_PROC
def test_no_more_than_twice_the_slots_run_at_once():
    async def main():
        slots, entered, release = Slots(1, elastic=True), [], asyncio.Event()
        jobs = [asyncio.ensure_future(_hold(slots, entered, "a", release))]
        await _turns_until(lambda: slots.lent == 1)
        jobs.append(asyncio.ensure_future(_hold(slots, entered, "b", release)))
        await _turns_until(lambda: slots.lent == 2)  # both sleep, both lent their slot
        jobs.append(asyncio.ensure_future(_hold(slots, entered, "c", release)))
        for _ in range(100):
            await asyncio.sleep(0)
        running = list(entered)
        release.set()
        await asyncio.gather(*jobs)
        return running, entered

    running, entered = asyncio.run(main())
    assert running == ["a", "b"], running  # a free core, but two jobs run already
    assert entered == ["a", "b", "c"]


@LINUX_PROC
def test_cpu_seconds_grow_while_a_process_computes_and_are_none_once_it_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        first = cpu_seconds(proc.pid)
        deadline = 0
        while (cpu_seconds(proc.pid) or 0) <= (first or 0) + 0.05 and deadline < 600:
            time.sleep(0.05)
            deadline += 1
        assert cpu_seconds(proc.pid) > first
    finally:
        proc.kill()
        proc.wait()
    assert cpu_seconds(proc.pid) is None
