"""``benchmarks/simulation.py``: its local Ray instance leaves no session files behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("simulation.py", "simulation_script") as module:
        yield module


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """``ray.init`` writes a session dir in its ``_temp_dir``; the calls, in order."""
    ray = pytest.importorskip("ray")
    calls: list[tuple[str, Any]] = []

    def init(**kwargs: Any) -> None:
        calls.append(("init", kwargs))
        if kwargs.get("_temp_dir"):  # (the real one writes to /tmp/ray without it)
            logs = Path(kwargs["_temp_dir"]) / "session_fake" / "logs"
            logs.mkdir(parents=True)
            (logs / "raylet.out").write_text("started\n")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append(("shutdown", None)))
    return calls


def test_ray_session_files_are_deleted_even_after_ctrl_c(
    script: ModuleType, system_tmp: Path, fake_ray: list[tuple[str, Any]]
) -> None:
    """ray.init had no temp dir: every run left a session directory in /tmp/ray."""
    with pytest.raises(KeyboardInterrupt), script.local_ray(2) as startup_s:
        assert startup_s >= 0
        temp_dir = Path(fake_ray[0][1]["_temp_dir"])
        assert temp_dir.parent == system_tmp and (temp_dir / "session_fake" / "logs").is_dir()
        raise KeyboardInterrupt
    assert [name for name, _ in fake_ray] == ["init", "shutdown"]
    assert fake_ray[0][1]["num_cpus"] == 2
    assert list(system_tmp.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "many"])
def test_repeats_is_a_whole_number_of_runs(
    script: ModuleType, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--repeats`` (the runs each timing target is decided on) is refused before any work."""
    with pytest.raises(SystemExit) as info:
        script.main(["--repeats", value])
    assert info.value.code == 2
    assert "argument --repeats:" in capsys.readouterr().err
