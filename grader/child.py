"""Entry point of the spec process: ``python -I -c <bootstrap> CONFIG_JSON``.

The grader starts one such process per kata run (``grader.runner``), already in its own
process group, with resource limits and a scrubbed environment. This module then, in order:
reads the channel key from its pipe and closes it (before any learner code exists), installs
the run-time import guard, optionally starts coverage, and runs pytest with the grader's own
settings and plugin. Nothing from the workspace configures pytest: the ini file is the
grader's, passed with ``-c``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PYTEST_PLUGINS = ("pytest_timeout", "pytest_asyncio.plugin", "_hypothesis_pytestplugin")

INI = """\
[pytest]
python_files = test_*.py
python_classes = Test*
python_functions = test_*
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout_method = signal
"""


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


def _read_key(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def pytest_args(config: dict) -> list[str]:
    workspace = config["workspace"]
    ini = Path(config["ini"])
    ini.write_text(INI)
    args = [
        "-c", str(ini),
        "--rootdir", workspace,
        "-p", "no:cacheprovider",
        "-p", "no:stepwise",
        "-p", "no:pastebin",
        "-p", "no:nose",
        "--assert=plain",
        "--import-mode=prepend",
        "-q",
        "--tb=no",
        "-o", "console_output_style=classic",
        f"--timeout={config['spec_timeout']}",
    ]
    for plugin in PYTEST_PLUGINS:
        args += ["-p", plugin]
    if config["mode"] == "collect":
        args.append("--collect-only")
    args.append(workspace)
    return args


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    # The key is read and its pipe closed before pytest imports a single spec or learner module.
    from grader.channel import Writer

    writer = Writer(config["out_fd"], _read_key(config["key_fd"]))
    os.chdir(config["workspace"])
    sys.dont_write_bytecode = True

    from grader.plugin import GraderPlugin, guard_imports

    guard_imports(tuple(config["forbid_imports"]), config["learner_files"])
    install_phantoms(config["phantoms"])
    coverage = None
    if config.get("coverage"):
        import coverage as coverage_module

        coverage = coverage_module.Coverage(
            data_file=None, branch=True, include=config["learner_files"]
        )
        coverage.start()

    import pytest

    plugin = GraderPlugin(writer, mode=config["mode"], learner_files=config["learner_files"])
    try:
        status = int(pytest.main(pytest_args(config), plugins=[plugin]))
    except BaseException as exc:  # a learner's SystemExit or KeyboardInterrupt escaped pytest
        writer.send("crash", message=f"{type(exc).__name__} escaped the spec run")
        status = 3
    if coverage is not None:
        coverage.stop()
        try:
            coverage.json_report(outfile=config["coverage"], include=config["learner_files"])
        except Exception as exc:  # e.g. no data: the learner file never ran
            writer.send("coverage_error", message=str(exc))
    writer.send("done", exitstatus=status)
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without waiting for threads the learner left running; the grader kills the group.
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv)
