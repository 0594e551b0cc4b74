"""``benchmarks/routing.py`` and ``benchmarks/load.py``: a misspelt name in a comma list option
is a usage error (exit 2) before anything runs, not a crash after a solve or an empty table."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import benchmark_script


@pytest.fixture
def scripts() -> Iterator[dict[str, ModuleType]]:
    """The two benchmark scripts, imported as modules (nothing runs on import)."""
    with (
        benchmark_script("routing.py", "routing_lists_script") as routing,
        benchmark_script("load.py", "load_lists_script") as load,
    ):
        yield {"routing": routing, "load": load}


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        # ran our solver on the first instance, then stopped with "unknown anchor pyvpr"
        (
            "routing",
            ["--set", "solomon", "--anchors", "pyvrp,pyvpr"],
            "argument --anchors: unknown pyvpr; one of pyvrp, ortools, vroom",
        ),
        # routed the city as delivered jobs under the name "pickp"
        (
            "routing",
            ["--set", "city", "--city-jobs", "pickp"],
            "argument --city-jobs: unknown pickp; one of delivery, pickup",
        ),
        ("routing", ["--set", "city", "--city-jobs", ","], "argument --city-jobs: give at least"),
        # ran no phase and wrote an empty load-latency table over the last one
        (
            "load",
            ["--phases", "alocations"],
            "argument --phases: unknown alocations; one of allocations, routes",
        ),
        ("load", ["--phases", ""], "argument --phases: give at least one"),
    ],
)
def test_a_misspelt_name_is_a_usage_error_before_anything_runs(
    scripts: dict[str, ModuleType],
    script: str,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = scripts[script]
    for name in ("run_city", "load_scenario", "LocalServer", "write_results"):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} ran"))
    with pytest.raises(SystemExit) as info:
        module.main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
