"""``benchmarks/routing_budget.py``: bad arguments are usage errors, not tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("routing_budget.py", "routing_budget_script") as module:
        yield module


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
