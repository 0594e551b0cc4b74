"""``benchmarks/load.py``: the server it starts leaves no files behind, even when start-up fails."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import benchmark_script

#: stands in for the ``dispatchlab`` CLI: ``keys create`` prints a key (or fails with
#: FAKE_KEYS=fail); ``serve`` prints its TMPDIR and exits with status 3 (FAKE_SERVE=exit) or
#: sleeps as a server that never answers
FAKE_CLI = """
import os, sys, time
if sys.argv[1] == "keys" and os.environ.get("FAKE_KEYS") == "fail":
    print("error: database is locked", file=sys.stderr)
    sys.exit(2)
elif sys.argv[1] == "keys":
    print("dlk_fake")
elif os.environ.get("FAKE_SERVE") == "exit":
    print("temporary files in", os.environ["TMPDIR"], flush=True)
    sys.exit(3)
else:
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("load.py", "load_script") as module:
        yield module


@pytest.fixture
def fake_cli(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The script starts :data:`FAKE_CLI` instead of the service."""
    monkeypatch.setattr(script, "CLI", [sys.executable, "-c", FAKE_CLI])


def test_a_server_that_exits_at_start_leaves_no_data_dir(
    script: ModuleType, system_tmp: Path, fake_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data dir was left in /tmp, and the script waited 60 s for a server long gone."""
    monkeypatch.setenv("FAKE_SERVE", "exit")
    with pytest.raises(SystemExit) as stopped:
        script.LocalServer(1, ready_timeout_s=30)
    message = str(stopped.value)
    assert message.startswith("the server exited with status 3")
    # the server's own temporary files were in its data dir, deleted with it
    assert f"temporary files in {system_tmp}/dispatchlab-load-" in message
    assert message.rstrip().endswith("/tmp")
    assert list(system_tmp.iterdir()) == []


def test_a_failed_keys_create_is_one_message_and_leaves_no_data_dir(
    script: ModuleType, system_tmp: Path, fake_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing ``keys create`` was a CalledProcessError traceback without its output."""
    monkeypatch.setenv("FAKE_KEYS", "fail")
    with pytest.raises(SystemExit) as stopped:
        script.LocalServer(1, ready_timeout_s=30)
    message = str(stopped.value)
    assert message.startswith("'keys create' failed with status 2")
    assert "database is locked" in message
    assert list(system_tmp.iterdir()) == []


def test_ctrl_c_while_the_server_starts_stops_it_and_deletes_its_data(
    script: ModuleType, system_tmp: Path, fake_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def ctrl_c(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(script.subprocess, "Popen", popen)
    monkeypatch.setattr(script.httpx, "get", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        script.LocalServer(1)
    # `keys create`, then the server: stopped, not left running
    assert len(started) == 2 and all(p.returncode is not None for p in started)
    assert list(system_tmp.iterdir()) == []
