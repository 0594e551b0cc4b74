"""``benchmarks/routing_budget.py``: bad arguments are usage errors, not tracebacks."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The benchmark script, imported as a module (nothing runs on import)."""
    path = REPO / "benchmarks" / "routing_budget.py"
    spec = importlib.util.spec_from_file_location("routing_budget_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--budgets", "-1", "'-1' is not a positive number of seconds"),
        ("--budgets", "nan", "'nan' is not a positive number of seconds"),
        ("--orders", "x", "'x' is not a positive order count"),
        ("--orders", "0", "'0' is not a positive order count"),
        ("--orders", ",", "give at least one value"),
        ("--engines", "foo", "'foo' is not an engine"),
    ],
)
def test_bad_arguments_are_usage_errors(
    script: ModuleType,
    option: str,
    value: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        script.main([option, value])
    assert info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err
