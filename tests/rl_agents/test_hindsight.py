"""The hindsight reference: the materialised day is the same day; the offline plan replays."""

from __future__ import annotations

import math

import pytest

from rl_agents.features import open_until
from rl_agents.hindsight import HindsightParams, day_routing_problem, hindsight, materialise_day
from scenarios import Scenario
from scenarios.errors import InputError
from simulation import simulate
from simulation.world import compile_world


def test_materialised_day_is_the_same_day(tiny: Scenario) -> None:
    day = materialise_day(tiny, seed=4)
    assert day.arrivals is None
    assert len(day.orders) > len(tiny.orders)
    for policy in ("insertion", "greedy"):
        online = simulate(tiny, None, policy, seed=4).metrics
        offline = simulate(day, None, policy, seed=4).metrics
        assert offline["orders_total"] == online["orders_total"]
        # arrival times are rounded up to whole seconds: costs agree to within a few cents
        assert offline["cost_cents"] == pytest.approx(online["cost_cents"], abs=50.0)


def test_routing_problem_has_every_order_with_node_hours(tiny: Scenario) -> None:
    day = materialise_day(tiny, seed=2)
    problem, allocation = day_routing_problem(day, pricing="shift")
    world = compile_world(day)
    assert problem.arrivals is None and not problem.nodes
    assert allocation
    node_of = {n.id: n for n in world.nodes}
    for job in problem.orders:
        assert job.pickup is not None and job.penalty_cents is not None
        window = job.pickup.time_windows[0]
        node_id = (
            job.id.split("@")[1]
            if "@" in job.id
            else next(a.node_id for a in allocation if a.order_id == job.id)
        )
        closes = open_until(node_of[node_id], float(window.start_s))
        assert window.end_s <= closes or math.isinf(closes)
    by_id = {v.id: v for v in day.vehicles}
    for v in problem.vehicles:  # shift pricing: the whole shift's hours are a fixed cost
        src = by_id[v.id]
        assert v.cost_per_hour_cents == 0
        assert v.fixed_cost_cents > src.fixed_cost_cents


def test_routing_problem_needs_a_materialised_day(tiny: Scenario) -> None:
    with pytest.raises(InputError, match="materialise"):
        day_routing_problem(tiny)


def test_hindsight_is_a_replayed_offline_plan(tiny: Scenario) -> None:
    params = HindsightParams(
        engine="greedy", time_limit_s=1.0, shift_pricing="both", expert_horizon_s=None
    )
    ref = hindsight(tiny, seed=3, params=params)
    assert {r["pricing"] for r in ref.runs} == {"shift", "duration", "search"}
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    assert ref.metrics["cost_cents"] == ref.cost_cents
    greedy = simulate(tiny, None, "greedy", seed=3).metrics["cost_cents"]
    assert ref.cost_cents < greedy


def test_hindsight_keeps_the_lookahead_expert_when_it_is_cheaper(tiny: Scenario) -> None:
    params = HindsightParams(
        engine="greedy", time_limit_s=1.0, shift_pricing="duration", search_s=0.0
    )
    ref = hindsight(tiny, seed=3, params=params.model_copy(update={"expert_horizon_s": 1800.0}))
    expert = [r for r in ref.runs if r["repair"] == "expert"]
    assert len(expert) == 1 and expert[0]["cost_cents"] > 0
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    assert ref.metrics["cost_cents"] == pytest.approx(ref.cost_cents)
    without = hindsight(tiny, seed=3, params=params.model_copy(update={"expert_horizon_s": None}))
    assert ref.cost_cents == min(without.cost_cents, expert[0]["cost_cents"])


def test_played_days_of_online_policies_are_candidates(tiny: Scenario) -> None:
    """A warm-start policy's day counts, so the reference never loses to that policy."""
    params = HindsightParams(engine="greedy", time_limit_s=1.0, shift_pricing="shift")
    cold = hindsight(tiny, seed=3, params=params)
    warm = params.model_copy(update={"warm_start_policies": ("slots",), "warm_start_solve": True})
    ref = hindsight(tiny, seed=3, params=warm, known=cold)
    played = [r for r in ref.runs if r["repair"] == "played:slots"]
    solved = [r for r in ref.runs if r["pricing"] == "shift+slots"]
    assert len(played) == 1 and len(solved) == len(params.repair_policies)
    assert ref.runs[: len(cold.runs)] == cold.runs  # the known cold runs are kept, not rerun
    online = simulate(tiny, None, "slots", seed=3).metrics["cost_cents"]
    assert played[0]["cost_cents"] == pytest.approx(online, rel=1e-3)
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs) <= cold.cost_cents


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"warm_start_policies": ["nope"]}, "warm_start_policies"),
        ({"num_runs": 0}, "nothing to solve"),
    ],
)
def test_bad_hindsight_settings_are_named(settings: dict[str, object], field: str) -> None:
    """An unknown warm-start policy, or no candidate at all, is a clear error, not a crash."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        HindsightParams.model_validate(settings)
