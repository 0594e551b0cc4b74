"""``benchmarks/run_all.py`` (``make bench``) rewrites the committed tables the docs cite."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, benchmark_script


@pytest.fixture
def run_all() -> Iterator[ModuleType]:
    """The benchmark runner, imported as a module (nothing runs on import)."""
    with benchmark_script("run_all.py", "run_all_steps_script") as module:
        yield module


def test_every_routing_step_writes_the_committed_table(run_all: ModuleType) -> None:
    """Each routing step names its committed table (it wrote routing-solomon-auto-5s.md)."""
    routing = [s for s in run_all.STEPS if s.script == "routing.py"]
    assert routing, "run_all has routing steps"
    for step in routing:
        args = list(step.args)
        assert "--out-prefix" in args, step.name
        prefix = args[args.index("--out-prefix") + 1]
        budget = args[args.index("--time-limit") + 1]
        assert prefix == f"{step.name}-{budget}s"
        assert (REPO / "benchmarks" / "results" / f"{prefix}.md").is_file(), prefix


def test_routing_steps_run_the_command_of_their_committed_table(run_all: ModuleType) -> None:
    """Each table's ``Command:`` line is its step, ``--out-prefix`` included (the city tables
    had no step at all, and the lines left out the prefix that names the table)."""
    steps = {s.name: s for s in run_all.STEPS if s.script == "routing.py"}
    assert {"routing-city-1000", "routing-city-10000"} <= set(steps)
    for step in steps.values():
        args = list(step.args)
        prefix = args[args.index("--out-prefix") + 1]
        table = (REPO / "benchmarks" / "results" / f"{prefix}.md").read_text(encoding="utf-8")
        command = next(line for line in table.splitlines() if line.startswith("Command:"))
        assert command == f"Command: `python benchmarks/routing.py {' '.join(args)}`", prefix


def test_every_variant_step_runs_the_command_of_its_table(run_all: ModuleType) -> None:
    """The variant steps (``--extras``) re-make their tables with the tables' own commands."""
    extras = {s.name: s for s in run_all.EXTRAS}
    assert {"allocation-city-seeds", "rl-evaluation-reopt", "load-latency-2workers"} <= set(extras)
    assert not set(extras) & {s.name for s in run_all.STEPS}
    for name, step in extras.items():
        table = (REPO / "benchmarks" / "results" / f"{name}.md").read_text(encoding="utf-8")
        # the run's command (a re-rendered table's note, "> Re-rendered ...", names --from-results)
        lines = [line for line in table.splitlines() if not line.startswith(">")]
        command = next((line for line in lines if "python benchmarks/" in line), None)
        if command is None:  # allocation.py's tables name their --only flag in the text
            assert "--only" in step.args and name.removeprefix("allocation-") in step.args
            continue
        wanted = f"python benchmarks/{step.script} {' '.join(step.args)}"
        assert f"{wanted}`" in command, name  # after `, or after .venv/bin/


def test_a_plain_run_leaves_the_variant_steps_out(
    run_all: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--list`` shows the variant steps only with ``--extras`` or when named."""

    def listed(*argv: str) -> list[str]:
        monkeypatch.setattr("sys.argv", ["run_all.py", "--list", *argv])
        assert run_all.main() == 0
        return [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]

    plain = listed()
    assert plain == [s.name for s in run_all.STEPS]
    assert listed("--extras") == plain + [s.name for s in run_all.EXTRAS]
    assert listed("--only", "rl-speed-latency,simulation") == ["simulation", "rl-speed-latency"]


def test_ctrl_c_lets_the_running_step_finish_its_own_stop(
    run_all: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a step runs: the step gets SIGINT and time to write its rows and stop
    what it started (``subprocess.call`` killed it 0.25 s later: routing.py's rows done and
    load.py's server stop never happened), then the interrupt goes on."""
    done = tmp_path / "written"
    step_script = tmp_path / "step.py"
    step_script.write_text(
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(1.0)  # writing its table, stopping its server\n"
        f"    pathlib.Path({str(done)!r}).write_text('rows')\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        f"pathlib.Path({str(tmp_path / 'started')!r}).write_text('')\n"
        "time.sleep(60)\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(run_all, "LOCK", tmp_path / "lock")  # not the machine's CPU lock
    command = [sys.executable, str(step_script)]
    monkeypatch.setattr(run_all.Step, "command", lambda self, _: command)
    ended = threading.Event()

    def interrupt_once_started() -> None:
        while not (tmp_path / "started").exists():
            if ended.wait(0.05):
                return
        os.kill(os.getpid(), signal.SIGINT)  # to this process only, as `kill -INT` would

    timer = threading.Thread(target=interrupt_once_started)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_all._run(run_all.Step("fake", "fake.py"), tmp_path)
    finally:
        ended.set()
        timer.join()
    assert done.read_text() == "rows"
