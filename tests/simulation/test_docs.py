"""The policy-hook example in docs/simulation.md runs as written."""

from __future__ import annotations

import re

from scenarios import Scenario
from tests.conftest import REPO

TEXT = (REPO / "docs" / "simulation.md").read_text(encoding="utf-8")
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_policy_hook_example_runs(small_city: Scenario) -> None:
    example = next(code for code in PYTHON if "next_decision" in code)
    namespace: dict[str, object] = {"scenario": small_city}
    exec(compile(example, "docs/simulation.md", "exec"), namespace)
    result = namespace["result"]
    assert getattr(result, "metrics")["orders_delivered"] > 0  # noqa: B009
