"""docs/routing.md stays true: its Python example runs, its thresholds are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenarios.plan import PlanStatus
from solvers.routing import solve as solve_module
from solvers.routing.engines.pyvrp_engine import (
    GREEDY_START_TASKS,
    START_S_PER_TASK,
    TRIM_CANDIDATES,
)
from solvers.routing.polish import BOUND_WORK, EXACT_STOPS, SWAP_NEIGHBOURS, VALUE_WORK

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "routing.md"


def test_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    namespace: dict[str, object] = {}
    monkeypatch.chdir(REPO)  # the example loads a path relative to the repository
    exec(compile(block.group(1), str(DOC), "exec"), namespace)
    plan = namespace["plan"]
    assert getattr(plan, "status", None) is PlanStatus.FEASIBLE


def test_thresholds_in_the_text_are_the_code_s() -> None:
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    assert solve_module.PYVRP_AUTO_MAX_BYTES == 4 * 2**30 and "fit in 4 GiB" in text
    assert solve_module.ORTOOLS_AUTO_MAX_NODES == 2_500 and "up to 2,500 visits" in text
    assert GREEDY_START_TASKS == 1_200 and "from 1,200 visits on" in text
    assert TRIM_CANDIDATES == 32 and "Among the 32 orders whose visits take the" in text
    assert solve_module.REPAIR_SHARE == 0.03 and "keeps 3 % of the budget" in text
    assert solve_module.POLISH_SHARE == 0.1 and "(10 % of the budget when a vehicle" in text
    assert START_S_PER_TASK == 5e-5 and "the build estimate + 0.05 ms per visit" in text
    assert solve_module.REPAIR_GRACES == 2 and "0.05 s of CPU grace each, two of them" in text
    assert EXACT_STOPS == 6 and "every order of its visits up to 6 stops" in text
    assert SWAP_NEIGHBOURS == 8 and "(each with its 8 nearest orders)" in text
    assert (BOUND_WORK, VALUE_WORK) == (1, 10) and "(1 per bound, 10 per schedule:" in text
    assert solve_module.POLISH_WORK_PER_S == 40_000 and "`POLISH_WORK_PER_S` (40,000:" in text
    assert solve_module.POLISH_WORK_PER_VISIT == 2_500 and "`POLISH_WORK_PER_VISIT` (2,500)" in text
    assert solve_module.POLISH_WORK_MIN == 10**6 and "`POLISH_WORK_MIN` (1,000,000)" in text
    quoted = "taken off its route to make room for a driver break"
    assert solve_module.BUMPED.startswith(quoted) and f'"{quoted}"' in text
