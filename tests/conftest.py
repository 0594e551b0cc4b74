"""Shared fixtures: paths to the bundled instances; third-party files kept in pytest's temp dir."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
INSTANCES = REPO / "data" / "instances"
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"

# No property test has a deadline: Hypothesis' default of 200 ms of wall clock per example
# timed the machine, not the code (examples of 0-15 ms failed as "Unreliable test timings"
# when the process was held up for 0.3 s, as on a machine loaded far beyond its cores); nor
# the health check that times the drawing of examples (a test's own list adds it too).
# Speed is measured by the benchmark scripts. The default run is derandomized: each property
# test draws the same examples in every run (seeded from the test's own code), so the suite's
# outcome and time repeat (a drawn example that ran a solver to its limit took one test from
# 0.6 s to 19 s in another run); ``pytest --hypothesis-profile=dispatchlab-explore`` draws new
# examples each run (and keeps failing ones in Hypothesis' example database) to look further.
# Loaded here, before any test module is imported, so that every ``@settings(...)`` of the
# tests starts from it (a test's own ``derandomize=`` still wins).
settings.register_profile(
    "dispatchlab-explore", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dispatchlab", settings.get_profile("dispatchlab-explore"), derandomize=True
)
settings.load_profile("dispatchlab")


def routing_table_args(anchors: str) -> argparse.Namespace:
    """``benchmarks/routing.py``'s parsed options for a written table (Solomon, 1 s, seed 1)."""
    return argparse.Namespace(
        set="solomon",
        engine="auto",
        time_limit=1.0,
        workers=1,
        seed=1,
        anchors=anchors,
        instances="",
        limit=0,
        out_prefix="",
        made="Made here.",
    )


@contextlib.contextmanager
def benchmark_script(file: str, name: str) -> Iterator[ModuleType]:
    """``benchmarks/<file>`` imported as module ``name`` (nothing runs on import)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


class _Parsed(Exception):
    """What a script's parser made of its arguments (raised instead of running it)."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


_PARSE_ARGS = argparse.ArgumentParser.parse_args


def _parse_and_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
    raise _Parsed(_PARSE_ARGS(self, *args, **kwargs))


class ScriptArgs:
    """Benchmark scripts, each imported once (as ``<prefix>_<name>``) until :meth:`close`,
    whose own parsers read given arguments without running the benchmark."""

    def __init__(self, prefix: str) -> None:
        """No script imported yet."""
        self.prefix = prefix
        self._loaded: dict[str, ModuleType] = {}
        self._keep = contextlib.ExitStack()

    def parse(self, name: str, args: list[str]) -> tuple[argparse.Namespace | None, Any, str]:
        """``benchmarks/<name>.py``'s parser on ``args`` (its ``main()`` stopped once they are
        parsed): (the namespace, None, "") when it takes them, (None, the exit code, what it
        wrote on stderr) when it refuses them."""
        if name not in self._loaded:
            module = benchmark_script(f"{name}.py", f"{self.prefix}_{name}")
            self._loaded[name] = self._keep.enter_context(module)
        err = io.StringIO()
        with (
            patch.object(argparse.ArgumentParser, "parse_args", _parse_and_stop),
            patch.object(sys, "argv", [f"{name}.py", *args]),
            contextlib.redirect_stderr(err),
        ):
            try:
                self._loaded[name].main()
            except _Parsed as parsed:
                return parsed.namespace, None, ""
            except SystemExit as stop:
                return None, stop.code, err.getvalue()
        raise AssertionError(f"{name}.py: main() returned without parsing its arguments")

    def close(self) -> None:
        """Forget every script imported."""
        self._keep.close()
        self._loaded.clear()


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C and SIGQUIT keep their usual effect in the tests when the run was started
    with them ignored (a non-interactive shell's background job, ``make test &``): the
    tests of interrupts and signals send them, and the processes they start inherit them."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) is signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """An xdist worker ignores SIGINT once it has reported its session finished.

    The controller then closes the worker's gateway, and execnet gives the worker's last
    steps (pytest's unconfigure: garbage collections of the whole heap, hypothesis's gc
    callback in each) 5 s before it sends the worker SIGINT: on a loaded machine that
    KeyboardInterrupt came inside a gc callback, a ``PytestUnraisableExceptionWarning`` at
    the end of a passing run. Every test and fixture has ended by then (the worker's report
    is sent); execnet still ends a worker that is not done 10 s later.
    """
    yield  # xdist's own wrapper, inside this one, has sent "workerfinished"
    if (
        hasattr(session.config, "workerinput")
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder ``tempfile`` makes its directories in (empty)."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


#: Ray binds Unix sockets under its temp dir (``<dir>/session_<date>_<pid>/sockets/...``,
#: about 64 more characters) and a socket path must stay under 108 bytes on Linux
RAY_DIR_MAX_CHARS = 40


@pytest.fixture(scope="session")
def instances_dir() -> Path:
    """Folder of the bundled public benchmark instances."""
    return INSTANCES


@pytest.fixture(scope="session", autouse=True)
def ray_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where a local Ray instance started by a test keeps its session files (not /tmp/ray).

    Ray writes a session directory (logs, sockets) under ``$RAY_TMPDIR/ray`` and never
    removes it: here that is pytest's temp dir of the run (pruned like the others), or, if
    that path is too long for Ray's sockets, a short one removed at the end of the session.
    A new local instance also wants an auth token, which Ray would generate and save as
    ~/.ray/auth_token: the tests' instances get one for the session in the environment.
    """
    base = tmp_path_factory.getbasetemp()
    short = None
    if len(str(base / "ray")) > RAY_DIR_MAX_CHARS:
        short = base = Path(tempfile.mkdtemp(prefix="dispatchlab-ray-"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RAY_TMPDIR", str(base))
            if not {"RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
                patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
            yield base / "ray"
    finally:
        if short is not None:
            shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def cli_commands_built_once() -> Iterator[None]:
    """typer builds the click command of a Typer app once per test process, not per
    invocation (``main()``, ``CliRunner.invoke``): each build evaluates every option's
    annotation again, ~0.1 s of CPU for ``dispatchlab``'s app, and the tests invoke it
    hundreds of times. A build is reused while the app has the same commands and groups."""
    import typer.main
    import typer.testing

    build = typer.main.get_command
    built: dict[int, tuple[typer.Typer, tuple[int, int], Any]] = {}

    def get_command(app: typer.Typer) -> Any:
        shape = (len(app.registered_commands), len(app.registered_groups))
        hit = built.get(id(app))
        if hit is None or hit[0] is not app or hit[1] != shape:
            hit = built[id(app)] = (app, shape, build(app))
        return hit[2]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.main, "get_command", get_command)
        patch.setattr(typer.testing, "_get_command", get_command)
        yield


@pytest.fixture(scope="session", autouse=True)
def torch_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where torch keeps its compile cache during the tests (not /tmp/torchinductor_<user>).

    torch makes that folder as soon as anything imports ``torch._dynamo``, which building an
    optimizer (any SB3 model) does.
    """
    folder = tmp_path_factory.getbasetemp() / "torchinductor"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session", autouse=True)
def matplotlib_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """matplotlib's config and font cache folder during the tests (not ~/.config, ~/.cache)."""
    folder = tmp_path_factory.getbasetemp() / "matplotlib"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLCONFIGDIR", str(folder))
        yield folder
