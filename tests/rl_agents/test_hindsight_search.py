"""The improvement search of the hindsight reference: its evaluator is the twin's cost."""

from __future__ import annotations

import math

import pytest

from rl_agents.hindsight import HindsightParams, hindsight, materialise_day
from rl_agents.hindsight_search import (
    PICK,
    DayModel,
    _fast_travel_factor,
    improve_day,
    plan_of,
    routes_from_sim,
)
from scenarios import Scenario
from simulation import simulate
from simulation.params import SimParams
from simulation.twin import DispatchSimulator


def _played(tiny: Scenario, seed: int, policy: str = "slots") -> tuple[Scenario, DayModel, float]:
    day = materialise_day(tiny, seed=seed)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    res = simulate(day, None, policy, seed=seed, simulator=sim)
    return day, DayModel(sim), float(res.metrics["cost_cents"])


def _evaluate(model: DayModel, routes: list, starts: list) -> float:
    evals = [model.eval_route(c, r, starts[c] if r else None) for c, r in enumerate(routes)]
    routed = {o for r in routes for _k, o, _n in r}
    return model.total(evals, [o for o in model.routable if o not in routed])[0]


def test_fast_travel_factor_is_the_worlds(tiny: Scenario) -> None:
    _day, model, _cost = _played(tiny, 1)
    fast = _fast_travel_factor(model.world)
    for t in range(0, 2 * 86400, 900):
        assert fast(float(t) + 0.5) == model.world.travel_factor(float(t) + 0.5)


@pytest.mark.parametrize(("seed", "policy"), [(1, "slots"), (2, "insertion"), (5, "greedy")])
def test_evaluator_is_the_twins_cost_of_a_played_day(
    tiny: Scenario, seed: int, policy: str
) -> None:
    day = materialise_day(tiny, seed=seed)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    res = simulate(day, None, policy, seed=seed, simulator=sim)
    model = DayModel(sim)
    routes, starts = routes_from_sim(sim)
    assert _evaluate(model, routes, starts) == pytest.approx(res.metrics["cost_cents"], abs=1e-6)
    # the same routes written as a plan replay to the same cost
    replay = simulate(day, plan_of(model, routes, starts), None, seed=seed)
    assert replay.metrics["cost_cents"] == pytest.approx(res.metrics["cost_cents"], abs=1e-6)


@pytest.mark.parametrize("interleaved", [False, True])
def test_evaluator_prices_a_split_order_delivered_parcel_by_parcel_as_the_twin(
    interleaved: bool,
) -> None:
    """A two-parcel order due by 25 min, one courier: its parcels collected together, or the
    first delivered before the second is collected (a solver plan of its two jobs can do
    that). The twin measures the order's lateness at the delivery that hands over its last
    parcel; the evaluator charged it only when one delivery handed over every parcel, so it
    priced the parcel-by-parcel route without its lateness (3,410.8 cents, the twin 3,697.8)."""
    from scenarios.geo import TimeWindow
    from tests.rl_agents.test_hindsight import _parcels_day

    day = _parcels_day(demand=[4], service_s=60)
    due = day.orders[0].model_copy(update={"time_windows": [TimeWindow(start_s=0, end_s=1500)]})
    day = day.model_copy(update={"orders": [due]})
    base = DispatchSimulator(
        day, params=SimParams(decide_on_arrival=False, decide_on_courier_free=False)
    )
    base.reset(seed=0)
    base.run()
    model = DayModel(base)
    drop = (1 - PICK, 0, -1)
    route = (
        [(PICK, 0, 0), drop, (PICK, 0, 1), drop]
        if interleaved
        else [(PICK, 0, 0), (PICK, 0, 1), drop]
    )
    plan = plan_of(model, [route], [0])
    replay = simulate(day, plan, None, seed=0).metrics
    assert replay["orders_delivered"] == 1 and replay["lateness_cost_cents"] > 0
    assert _evaluate(model, [route], [0]) == pytest.approx(replay["cost_cents"], abs=1e-6)


@pytest.mark.parametrize("seed", [1, 3])
def test_search_never_gets_worse_and_its_plan_replays_to_its_cost(
    tiny: Scenario, seed: int
) -> None:
    day, model, played = _played(tiny, seed)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    simulate(day, None, "slots", seed=seed, simulator=sim)
    routes, starts = routes_from_sim(sim)
    found = improve_day(model, [(routes, starts)], time_limit_s=60.0, seed=0, max_iterations=40)
    assert found.start_cost_cents == pytest.approx(played, abs=1e-6)
    assert found.cost_cents <= found.start_cost_cents + 1e-6
    assert found.violation == 0.0
    replay = simulate(day, plan_of(model, found.routes, found.starts), None, seed=seed)
    assert replay.metrics["cost_cents"] == pytest.approx(found.cost_cents, abs=1e-6)
    # every order is served at most once, its pickups before its delivery, on one route
    seen: set[int] = set()
    for c, route in enumerate(found.routes):
        assert not route or found.starts[c] >= model.v_shift_start[c]
        drops = [o for kind, o, _n in route if kind != PICK]
        assert len(drops) == len(set(drops)) and not seen & set(drops)
        seen |= set(drops)
        for k, (kind, o, _n) in enumerate(route):
            if kind == PICK:
                assert any(kk != PICK and oo == o for kk, oo, _ in route[k + 1 :])
            else:
                assert model.can_serve(c, o)


def test_search_starts_from_the_start_the_twin_prices_cheapest(tiny: Scenario) -> None:
    """Given the replayed costs, they rank the starts; ties go to the lower evaluator
    objective, then to the earlier start; without them the evaluator ranks."""
    day = materialise_day(tiny, seed=2)
    starts = []
    for policy in ("slots", "greedy"):
        sim = DispatchSimulator(day, params=SimParams(record_routes=True))
        simulate(day, None, policy, seed=2, simulator=sim)
        starts.append(routes_from_sim(sim))
    model = DayModel(sim)
    own = [_evaluate(model, routes, st) for routes, st in starts]
    assert own[0] < own[1]  # the evaluator prefers slots' day

    def start(replayed: list[float] | None, of: list = starts) -> tuple[int, float]:
        found = improve_day(
            model, of, time_limit_s=60.0, seed=0, max_iterations=1, replayed_cents=replayed
        )
        return found.start_index, found.start_cost_cents

    assert start(None) == (0, pytest.approx(own[0], abs=1e-6))
    assert start([2.0, 1.0]) == (1, pytest.approx(own[1], abs=1e-6))
    assert start([1.0, 2.0])[0] == 0
    assert start([5.0, 5.0])[0] == 0  # a tie: the lower evaluator objective
    assert start([5.0, 5.0], [starts[1], starts[0]])[0] == 1
    assert start([5.0, 5.0], [starts[0], starts[0]])[0] == 0  # the same day twice: the first
    with pytest.raises(ValueError, match="2 costs for 1 starts"):
        start([1.0, 2.0], starts[:1])
    with pytest.raises(ValueError, match="no start"):
        start(None, [])


def test_search_is_deterministic_with_a_seed(tiny: Scenario) -> None:
    day, model, _cost = _played(tiny, 2)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    simulate(day, None, "slots", seed=2, simulator=sim)
    start = [routes_from_sim(sim)]
    a = improve_day(model, start, time_limit_s=60.0, seed=7, max_iterations=25)
    b = improve_day(model, start, time_limit_s=60.0, seed=7, max_iterations=25)
    assert a.routes == b.routes and a.starts == b.starts and a.cost_cents == b.cost_cents


def test_search_empties_a_needless_route(tiny: Scenario) -> None:
    """A day spread over every courier: the search pays fewer couriers' hours."""
    day, model, _cost = _played(tiny, 4)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    simulate(day, None, "greedy", seed=4, simulator=sim)
    routes, starts = routes_from_sim(sim)
    found = improve_day(model, [(routes, starts)], time_limit_s=60.0, seed=0, max_iterations=60)
    assert found.cost_cents < found.start_cost_cents
    used = sum(1 for r in routes if r)
    assert sum(1 for r in found.routes if r) <= used


def test_reference_with_search_beats_or_matches_its_warm_start(tiny: Scenario) -> None:
    params = HindsightParams(
        engine="greedy",
        time_limit_s=1.0,
        shift_pricing="shift",
        warm_start_policies=("slots",),
        search_s=2.0,
    )
    ref = hindsight(tiny, seed=3, params=params)
    played = next(r for r in ref.runs if r["repair"] == "played:slots")
    search = next(r for r in ref.runs if r["pricing"] == "search")
    assert search["cost_cents"] == pytest.approx(search["evaluated_cents"], abs=1e-6)
    assert search["cost_cents"] <= played["cost_cents"] + 1e-6
    assert ref.cost_cents == min(r["cost_cents"] for r in ref.runs)
    assert math.isclose(ref.metrics["cost_cents"], ref.cost_cents)


def test_search_off_keeps_the_old_cache_key_and_on_gets_a_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rl_agents.evaluate as ev
    from rl_agents.evaluate import _key

    monkeypatch.setattr(ev, "DRAWS_VERSION", 2)  # keys are per version of the twin's draws
    monkeypatch.setattr(ev, "KPI_VERSION", 1)  # and of its KPI definitions
    monkeypatch.setattr("rl_agents.hindsight.HINDSIGHT_VERSION", 1)  # and of the replayed day
    old = "1a352fea244b73f7"  # the key of {"time_limit_s": 30} before the search existed
    assert _key("{}", {"time_limit_s": 30.0, "search_s": 0}) == old
    assert _key("{}", {"time_limit_s": 30.0}) != old
    assert _key("{}", {"time_limit_s": 30.0, "search_s": 10}) != _key("{}", {"time_limit_s": 30.0})
    assert HindsightParams(time_limit_s=30.0).search_budget_s == 30.0


def test_a_lost_parcel_is_a_violation_not_a_crash(tiny: Scenario) -> None:
    """A pickup after its node has closed for good loses the parcel: priced, never chosen."""
    from rl_agents.hindsight_search import best_start

    day, model, _cost = _played(tiny, 1)
    sim = DispatchSimulator(day, params=SimParams(record_routes=True))
    simulate(day, None, "slots", seed=1, simulator=sim)
    routes, starts = routes_from_sim(sim)
    c = next(c for c, r in enumerate(routes) if r)
    node = next(n for kind, _o, n in routes[c] if kind == PICK)
    model.node_avail[node] = lambda _t: math.inf  # the node never opens again
    e = best_start(model, c, routes[c], starts[c])
    assert e.violation >= 1.0e6
