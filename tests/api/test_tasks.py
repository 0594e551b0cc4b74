"""The solve functions behind the endpoints: what they change in the caller's parameters."""

from __future__ import annotations

import pytest

from api.schemas.allocations import AllocationCreate
from api.tasks.allocations import run
from solvers.allocation import AllocationParams, batch
from solvers.allocation.literature import generate_literature
from solvers.allocation.lns import PoolRace
from solvers.allocation.problem import compile_request


def test_the_service_batch_solve_races_no_helper_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_helper() -> PoolRace | None:
        raise AssertionError("the service started a helper process")

    monkeypatch.setattr(PoolRace, "spawn", staticmethod(no_helper))
    monkeypatch.setattr(batch, "RACE", True)  # off by default (batch.RACE)
    req = generate_literature(seed=7, num_orders=150, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=3.0, explain=False)
    # a solve outside the service would race (what the monkeypatch would refuse)
    assert batch._races(compile_request(req), params)
    out = run(AllocationCreate(request=req, params=params))
    assert out["status"] in {"optimal", "feasible"}
    assert out["assignments"]
