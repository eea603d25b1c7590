"""Entry point of the spec process: ``python -I -c <bootstrap> CONFIG_JSON``.

The grader starts one such process per kata run (``grader.runner``), already in its own
process group, with resource limits and a scrubbed environment. This module then, in order:

1. forks: the parent becomes the run's *supervisor* and never runs learner code; the child
   goes on to run the specs (see :class:`Supervisor`);
2. reads the channel key from its pipe and closes it (before any learner code exists), then
   enters the kernel sandbox the grader asked for (``grader.sandbox``: Landlock), which it and
   every process it starts keep for good;
3. seals the workspace (see :class:`SealedWorkspace`): spec modules are served from copies
   read now, and nothing else in the folder but the declared learner files can be imported
   or, from Python, overwritten;
4. installs the run-time import guard, optionally starts coverage, and runs pytest with the
   grader's own settings and plugin. Nothing from the workspace configures pytest: the ini
   file is the grader's, passed with ``-c``.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

PYTEST_PLUGINS = ("pytest_timeout", "pytest_asyncio.plugin", "_hypothesis_pytestplugin")

INI = """\
[pytest]
python_files = test_*.py
python_classes = Test*
python_functions = test_*
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout_method = {timeout_method}
"""

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
CENSUS_EVERY = 0.2  # seconds between the supervisor's counts of the run's processes
KILL_DEADLINE = 5.0  # seconds the supervisor spends killing before it gives up
DISK_EVERY = 1.0  # seconds between the supervisor's measures of what the run wrote to disk


# -- the supervisor ------------------------------------------------------------------------


def _prctl(option: int, value: int) -> bool:
    from grader import portable

    if not (portable.host().subreaper or portable.host().death_signal):
        return False
    return portable._prctl(option, value)


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process (/proc, or ``ps``; see grader.portable)."""
    from grader import portable

    return portable.process_table()


class Supervisor:
    """The parent half of the spec process: a child subreaper that runs no learner code.

    Every process the specs start stays its descendant (orphans are re-parented to a
    subreaper, not to init), whatever it does: ``setsid``, double forks, an empty
    environment. The supervisor waits for the spec process, counts the run's processes every
    CENSUS_EVERY seconds and stops the run when there are more than ``max_processes``;
    every DISK_EVERY seconds it measures what the run holds on disk (the files under
    ``folders``, and files deleted but still open in one of its processes) and stops the run
    beyond ``max_disk`` bytes or ``max_files`` files and folders (no per-file limit bounds
    either; ``max_files`` also bounds what one measure walks);
    when the spec process ends, or the grader sends SIGTERM, it stops every descendant
    (SIGSTOP, so nothing forks while it sweeps) and kills it, then reports on its status pipe.
    """

    def __init__(
        self,
        child: int,
        status_fd: int,
        max_processes: int,
        folders: tuple[str, ...] = (),
        max_disk: int = 0,
        max_files: int = 0,
    ) -> None:
        self.child = child
        self.status_fd = status_fd
        self.max_processes = max_processes
        self.folders = folders
        self.max_disk = max_disk
        self.max_files = max_files
        self.stopped = ""
        self.peak = 0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        status = self._wait()
        self._kill_descendants()
        report = {
            "supervisor": 1,
            "returncode": os.waitstatus_to_exitcode(status) if status is not None else None,
            "stopped": self.stopped,
            "peak": self.peak,
        }
        os.write(self.status_fd, (json.dumps(report) + "\n").encode())
        os._exit(0)

    def _on_term(self, signum: int, frame: object) -> None:
        _kill(self.child, signal.SIGKILL)  # the grader stops the run (time is up)

    def _wait(self) -> int | None:
        census = 0.0
        measure = time.monotonic() + DISK_EVERY
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)  # the spec process, or an adopted orphan
            except ChildProcessError:
                return None
            if pid == self.child:
                return status
            if pid:
                continue
            if time.monotonic() >= census:
                census = time.monotonic() + CENSUS_EVERY
                alive = len(self._descendants())
                self.peak = max(self.peak, alive)
                if alive > self.max_processes and not self.stopped:
                    self.stopped = (
                        f"the run had more than {self.max_processes} processes at once "
                        "(a fork bomb?) and was stopped"
                    )
                    _kill(self.child, signal.SIGKILL)
            if (
                self.max_disk
                and self.max_files
                and time.monotonic() >= measure
                and not self.stopped
            ):
                measure = time.monotonic() + DISK_EVERY
                self.stopped = self._disk_problem()
                if self.stopped:
                    _kill(self.child, signal.SIGKILL)
            time.sleep(0.02)

    def _disk_problem(self) -> str:
        """Why the run holds too much on disk, or ""."""
        written, entries = self._written()
        if entries > self.max_files:
            return f"the run made more than {self.max_files} files and was stopped"
        if written > self.max_disk:
            return f"the run wrote more than {self.max_disk >> 20} MiB to disk and was stopped"
        return ""

    def _written(self) -> tuple[int, int]:
        """(bytes, entries) the run holds: every file under ``folders``, and every regular
        file a process of the run holds open after deleting it (Linux /proc), each once."""
        seen: set[tuple[int, int]] = set()
        total, entries = 0, 0

        def count(st: os.stat_result) -> int:
            if (st.st_dev, st.st_ino) in seen:
                return 0
            seen.add((st.st_dev, st.st_ino))
            return max(st.st_size, getattr(st, "st_blocks", 0) * 512)

        stack = list(self.folders)
        while stack:
            with contextlib.suppress(OSError), os.scandir(stack.pop()) as found:
                for entry in found:
                    entries += 1
                    if entries > self.max_files:
                        return total, entries
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += count(entry.stat(follow_symlinks=False))
        if not os.path.isdir("/proc/self/fd"):
            return total, entries
        for pid in self._descendants():
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = f"/proc/{pid}/fd/{fd}"
                    with contextlib.suppress(OSError):
                        if os.readlink(link).endswith(" (deleted)"):
                            st = os.stat(link)
                            if stat.S_ISREG(st.st_mode):
                                total += count(st)
        return total, entries

    def _descendants(self) -> list[int]:
        table = _process_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, state) in table.items():
            if state not in ("Z", "X"):
                children.setdefault(parent, []).append(pid)
        found, queue = [], [os.getpid()]
        while queue:
            for pid in children.get(queue.pop(), ()):
                found.append(pid)
                queue.append(pid)
        return found

    def _kill_descendants(self) -> None:
        deadline = time.monotonic() + KILL_DEADLINE
        while time.monotonic() < deadline:
            pids = self._descendants()
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    _kill(pid, sig)
            _reap()
            if not pids:
                return
            time.sleep(0.01)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def supervise(config: dict) -> None:
    """Fork; the parent supervises the run and never returns, the child runs the specs."""
    status_fd = config["status_fd"]
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    child = os.fork()
    if child == 0:
        os.close(status_fd)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the supervisor is gone: so is the run
        return
    for fd in (config["key_fd"], config["out_fd"]):
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    workspace = Path(config["workspace"])
    folders = (str(workspace), str(workspace.parent / "tmp"))
    disk, files = int(config.get("max_disk") or 0), int(config.get("max_files") or 0)
    Supervisor(child, status_fd, config["max_processes"], folders, disk, files).run()


# -- the sealed workspace ------------------------------------------------------------------


class _SpecLoader(importlib.machinery.SourceFileLoader):
    """Loads a spec module from the copy read before learner code ran, never from disk or
    from a bytecode cache (which learner code could forge)."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_data(self, path: str) -> bytes:
        return self._source if path == self.path else super().get_data(path)

    def get_code(self, fullname: str):
        return compile(self._source, self.path, "exec", dont_inherit=True)


class SealedWorkspace(importlib.abc.MetaPathFinder):
    """What the spec process may import from, and write in, the kata's workspace.

    Spec modules (every ``.py`` file there that is not a learner file: specs, helpers,
    conftest) are read once, now, and served from memory; learner files are imported from
    disk; anything else in the workspace (a module or package learner code wrote while the
    specs ran, shadowing a spec oracle or the standard library) cannot be imported. An audit
    hook refuses, from Python, to write, truncate, rename or delete a trusted file.
    """

    def __init__(self, workspace: Path, learner_files: list[str]) -> None:
        self.root = workspace.resolve()
        self.learner = {Path(f).resolve() for f in learner_files}
        self.sources = {
            p.resolve(): p.read_bytes()
            for p in self.root.rglob("*.py")
            if p.resolve() not in self.learner
        }
        self.folders = {self.root, *(p.resolve() for p in self.root.rglob("*") if p.is_dir())}
        self.trusted = {
            str(p.resolve())
            for p in self.root.rglob("*")
            if p.is_file() and p.resolve() not in self.learner
        }

    def install(self) -> None:
        sys.meta_path.insert(0, self)
        sys.addaudithook(self._audit)

    def find_spec(self, name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or self._admits(spec):
            if (
                spec is not None
                and spec.has_location
                and Path(spec.origin).resolve() in self.sources
            ):
                origin = Path(spec.origin).resolve()
                spec.loader = _SpecLoader(spec.name, spec.origin, self.sources[origin])
            return spec
        # Something the submission put in the workspace: look past the workspace instead, so
        # the genuine module (a spec oracle, the standard library) is the one imported.
        outside = [
            p
            for p in (path if path is not None else sys.path)
            if not Path(p or ".").resolve().is_relative_to(self.root)
        ]
        spec = importlib.machinery.PathFinder.find_spec(name, outside, target)
        if spec is None:
            raise ModuleNotFoundError(
                f"No module named {name!r} (only the kata's own files can be imported "
                "from its folder)",
                name=name,
            )
        return spec

    def _admits(self, spec) -> bool:
        """True for a spec module, a learner file, or anything outside the workspace."""
        if spec.has_location and spec.origin:
            origin = Path(spec.origin).resolve()
            return (
                origin in self.sources
                or origin in self.learner
                or not origin.is_relative_to(self.root)
            )
        folders = [Path(p).resolve() for p in spec.submodule_search_locations or ()]
        return not any(f.is_relative_to(self.root) and f not in self.folders for f in folders)

    # -- writes ------------------------------------------------------------------------------

    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def _audit(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (
                any(c in mode for c in "wax+")
                if isinstance(mode, str)
                else (isinstance(flags, int) and flags & self._WRITE_FLAGS)
            )
            targets = [path] if writing else []
        elif event in ("os.remove", "os.truncate"):
            targets = [args[0]] if event == "os.truncate" else [(args[0], args[1])]
        elif event in ("os.rename", "os.link", "os.symlink"):
            targets = (
                [(args[0], args[2]), (args[1], args[3])] if event == "os.rename" else [args[1]]
            )
        else:
            return
        for target in targets:
            if self._is_trusted(target):
                raise PermissionError(f"the kata's spec files are read-only: {target!r}")

    def _is_trusted(self, target) -> bool:
        path, dir_fd = target if isinstance(target, tuple) else (target, None)
        if isinstance(path, int) or path is None:
            return False
        try:
            path = os.fsdecode(path)
            if dir_fd is not None and not os.path.isabs(path):
                path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
            return os.path.realpath(path) in self.trusted
        except (OSError, TypeError, ValueError):
            return False


# -- collect mode --------------------------------------------------------------------------


class _Phantom:
    """Stands in for anything a spec takes from a learner module while the specs are listed."""

    def __getattr__(self, name: str) -> _Phantom:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Phantom()

    def __call__(self, *args: object, **kwargs: object) -> _Phantom:
        return _Phantom()

    def __getitem__(self, key: object) -> _Phantom:
        return _Phantom()

    def __iter__(self):
        return iter(())

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)


def install_phantoms(names: list[str]) -> None:
    """Listing the specs must not run learner code: each learner module is a phantom then.

    The list of specs is therefore fixed by the trusted spec files alone, before any learner
    code runs, whatever the submission contains.
    """
    import types

    class PhantomModule(types.ModuleType):
        def __getattr__(self, name: str) -> _Phantom:
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            return _Phantom()

    for name in names:
        sys.modules[name] = PhantomModule(name)


# -- the spec run --------------------------------------------------------------------------


def _read_key(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def pytest_args(config: dict) -> list[str]:
    workspace = config["workspace"]
    ini = Path(config["ini"])
    # pytest-timeout's signal method needs SIGALRM (not on Windows): threads there.
    method = "signal" if hasattr(signal, "SIGALRM") else "thread"
    ini.write_text(INI.replace("{timeout_method}", method))
    args = [
        "-c",
        str(ini),
        "--rootdir",
        workspace,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:stepwise",
        "-p",
        "no:pastebin",
        "-p",
        "no:nose",
        "--assert=plain",
        "--import-mode=prepend",
        "-q",
        "--tb=no",
        "-o",
        "console_output_style=classic",
        f"--timeout={config['spec_timeout']}",
    ]
    for plugin in PYTEST_PLUGINS:
        args += ["-p", plugin]
    if config["mode"] == "collect":
        args.append("--collect-only")
    if config.get("exitfirst"):
        args.append("--exitfirst")
    if config.get("explore_seed") is not None:
        args.append(f"--hypothesis-seed={int(config['explore_seed'])}")
    args += _collected(workspace, config.get("select") or [])
    return args


def _collected(workspace: str, select: list[str]) -> list[str]:
    """What pytest collects: the whole workspace, or only the spec files holding the selected
    specs (a mutant run imports no spec module it will not run). The ids come from the
    trusted listing; one naming no file of the workspace collects everything."""
    files = sorted({spec.split("::", 1)[0] for spec in select})
    paths = [os.path.join(workspace, f) for f in files]
    root = os.path.realpath(workspace) + os.sep
    if not files or not all(
        os.path.realpath(p).startswith(root) and os.path.isfile(p) for p in paths
    ):
        return [workspace]
    return paths


class Selection:
    """Run only the specs verify selected (``config["select"]``), in the order given,
    matched by node id after collection: an id is data here, never a command-line path, so
    no character in a parametrize id can break it. Items are dropped without
    ``pytest_deselected``, which the grader's plugin treats as interference."""

    def __init__(self, ids: list[str]) -> None:
        self.order = {spec: i for i, spec in enumerate(ids)}

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        """Keep the selected specs, in the order verify gave (the likeliest to fail first)."""
        chosen = [item for item in items if item.nodeid in self.order]
        items[:] = sorted(chosen, key=lambda item: self.order[item.nodeid])


class SpecContexts:
    """Record each spec's lines under its own coverage context, so verify knows which specs
    execute a given line. Switching from a hook covers every thread and task of the spec."""

    def __init__(self, coverage) -> None:
        self.coverage = coverage

    def pytest_runtest_setup(self, item) -> None:
        self.coverage.switch_context(item.nodeid)

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        self.coverage.switch_context("")


def _confine(paths: dict, writer) -> None:
    """Enter the Landlock sandbox, or end the run: the grader said the kernel has one, so a
    refusal is an error, never a silent run without it."""
    from grader import sandbox

    try:
        network = paths.get("network_fd")  # the TCP layer the grader made once
        if network is not None:
            sandbox.enter(network)
            os.close(network)
        sandbox.confine(paths["write"], paths["read"], network=network is None)
    except OSError as err:
        writer.send("crash", message=f"the spec process could not enter its sandbox: {err}")
        os._exit(70)


def explore_plugin(pytest_module):
    """``kata verify --explore``: random (seeded) inputs and ten times the examples, so a
    property that finds its edge case only by luck shows it. Never used to grade."""

    class Explore:
        @pytest_module.hookimpl(trylast=True)  # after the grader's profile, to extend it
        def pytest_configure(self, config) -> None:
            from hypothesis import settings

            base = settings.get_profile("grader")
            settings.register_profile(
                "explore", parent=base, derandomize=False, max_examples=base.max_examples * 10
            )
            settings.load_profile("explore")

    return Explore()


def first_failure_plugin(pytest_module):
    """A mutant run (``exitfirst``) needs one failing spec, not the smallest failing input:
    hypothesis stops at the first failing example it generates (no shrinking). The examples
    tried, and so whether one fails, are those of a grade. Never used to grade."""

    class FirstFailure:
        @pytest_module.hookimpl(trylast=True)  # after the grader's profile, to extend it
        def pytest_configure(self, config) -> None:
            from hypothesis import Phase, settings

            base = settings.get_profile("grader")
            phases = [phase for phase in base.phases if phase is not Phase.shrink]
            settings.register_profile("first-failure", parent=base, phases=phases)
            settings.load_profile("first-failure")

    return FirstFailure()


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    from grader import portable

    portable.force(config.get("host"))
    if config.get("status_fd") is not None:
        supervise(config)
    # The key is read and its pipe closed before pytest imports a single spec or learner module.
    from grader.channel import Writer
    from grader.portable import child_fd

    writer = Writer(child_fd(config["out_fd"]), _read_key(child_fd(config["key_fd"])))
    args = pytest_args(config)  # writes the ini file: before the sandbox forbids it
    if config.get("sandbox"):
        _confine(config["sandbox"], writer)
    os.chdir(config["workspace"])
    sys.dont_write_bytecode = True
    SealedWorkspace(Path(config["workspace"]), config["learner_files"]).install()

    from grader.imports import guard_imports
    from grader.plugin import GraderPlugin

    plugin = GraderPlugin(writer, mode=config["mode"], learner_files=config["learner_files"])
    guard_imports(tuple(config["forbid_imports"]), config["learner_files"], plugin.forbidden_import)
    install_phantoms(config["phantoms"])
    coverage = None
    if config.get("coverage"):
        import coverage as coverage_module

        coverage = coverage_module.Coverage(
            data_file=None, branch=True, include=config["learner_files"], config_file=False
        )
        coverage.set_option("json:show_contexts", True)
        coverage.start()

    import pytest

    try:
        plugins: list = [plugin] if coverage is None else [plugin, SpecContexts(coverage)]
        if config.get("explore_seed") is not None:
            plugins.append(explore_plugin(pytest))
        if config.get("select"):
            plugins.append(Selection(config["select"]))
        if config.get("exitfirst"):
            plugins.append(first_failure_plugin(pytest))
        status = int(pytest.main(args, plugins=plugins))
    except BaseException as exc:  # a learner's SystemExit or KeyboardInterrupt escaped pytest
        plugin.send("crash", message=f"{type(exc).__name__} escaped the spec run")
        status = 3
    if coverage is not None:
        coverage.stop()
        try:
            coverage.json_report(outfile=config["coverage"], include=config["learner_files"])
        except Exception as exc:  # e.g. no data: the learner file never ran
            plugin.send("coverage_error", message=str(exc))
    plugin.finish(status)
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without waiting for threads the learner left running; the supervisor kills the rest.
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv)
