"""``Order.priority``: routing uses only the order of the priorities (their ranks), never their
size, so every value of its bound (10**12 either side of 0) routes as small ones do; past the
bound the scenario is bad input naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios import Scenario, Vehicle
from scenarios.geo import MAX_INT
from scenarios.plan import PlanStatus
from solvers.routing import RoutingParams, build_problem, solve_routes
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import UNHURRIED_S, make_city


def crowded(priorities: list[int]) -> Scenario:
    """Eight mandatory orders of one unit, one vehicle of capacity 4: four are left out, the
    lowest priorities first."""
    city = make_city(len(priorities))
    one = [Vehicle(id="v0", start_location=city.vehicles[0].start_location, capacity=[4])]
    orders = [
        o.model_copy(update={"priority": p}) for o, p in zip(city.orders, priorities, strict=True)
    ]
    return city.model_copy(update={"orders": orders, "vehicles": one})


SMALL = [3, 0, 7, 1, 6, 2, 5, 4]
#: the same order of priorities at the ends of the bound
EXTREME = [-MAX_INT + 3, -MAX_INT, MAX_INT, -MAX_INT + 1, MAX_INT - 1, 0, MAX_INT - 2, 5]


@pytest.mark.parametrize(
    "params",
    [
        {"engine": "greedy"},
        {"engine": "pyvrp", "max_iterations": 50},
        {"engine": "ortools", "max_solutions": 50},
    ],
    ids=["greedy", "pyvrp", "ortools"],
)
def test_extreme_priorities_route_as_small_ones_in_the_same_order(
    params: dict[str, object],
) -> None:
    """Each engine weighs leaving a mandatory order out by 1 + the rank of its priority (the
    penalties stay in int64 whatever the values): the plan with priorities at the ends of the
    bound is the plan with 0..7 in the same order, and leaves the four lowest out."""
    run = RoutingParams(seed=1, time_limit_s=UNHURRIED_S, **params)
    small, extreme = crowded(SMALL), crowded(EXTREME)
    plan = solve_routes(small, run)
    assert validate_plan(small, plan).ok and plan.status is PlanStatus.INFEASIBLE
    assert {u.order_id for u in plan.unassigned} == {"o0", "o1", "o3", "o5"}
    again = solve_routes(extreme, run)
    assert validate_plan(extreme, again).ok
    assert again.model_dump(exclude={"runtime_s"}) == plan.model_dump(exclude={"runtime_s"})


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-MAX_INT, MAX_INT), min_size=1, max_size=8))
def test_only_the_order_of_the_priorities_reaches_the_solvers(priorities: list[int]) -> None:
    """The routing problem holds the ranks of the mandatory orders' priorities, the same for
    any values in the same order."""
    ranks = sorted(set(priorities))
    dense = [ranks.index(p) for p in priorities]
    got = [o.priority_rank for o in build_problem(crowded(priorities)).orders]
    assert got == [o.priority_rank for o in build_problem(crowded(dense)).orders] == dense


@pytest.mark.parametrize("value", [MAX_INT + 1, -MAX_INT - 1, 10**30])
def test_a_priority_past_its_bound_is_bad_input_naming_it(value: int) -> None:
    data = crowded(SMALL).model_dump(mode="json")
    data["orders"][2]["priority"] = value
    with pytest.raises(ValidationError) as err:
        Scenario.model_validate(data)
    [error] = err.value.errors()
    assert error["loc"] == ("orders", 2, "priority")


def test_the_route_cli_refuses_a_priority_past_its_bound_with_exit_2(tmp_path: Path) -> None:
    data = crowded(SMALL).model_dump(mode="json")
    data["orders"][2]["priority"] = 10**13
    path = tmp_path / "city.json"
    path.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["route", str(path), "--engine", "greedy", "-q", "--out", "-"])
    assert res.exit_code == 2
    assert "orders.2.priority" in " ".join(res.output.split())
