"""A run given a work budget (PyVRP ``max_iterations``, OR-Tools ``max_solutions``) gives the
same plan for the same seed, unless the clock cuts it: then its answer says so
(``time_limited`` and a note naming the phase), in the Python API, the CLI and ``/v1/routes``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app
from scenarios import Scenario
from scenarios.plan import PlanStatus
from solvers.routing import RoutingParams, solve_routes_with_stats
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import UNHURRIED_S

#: PyVRP's budget here: its one iteration ends in milliseconds, far within UNHURRIED_S.
BUDGETED = {"engine": "pyvrp", "seed": 1, "time_limit_s": UNHURRIED_S, "max_iterations": 1}
POLISH_NOTE = "time limit reached in the break-aware post-optimisation"
SEARCH_NOTE = "time limit reached in the search"


def city_with_breaks() -> Scenario:
    """A seeded 20-order city day whose couriers have breaks: the break-aware pass makes 7
    moves on PyVRP's plan (with one iteration) when nothing hurries it."""
    from scenarios.generate import generate_city

    city = generate_city(seed=24, num_orders=20, num_nodes=3, num_couriers=4)
    assert any(v.breaks for v in city.vehicles)
    return city


def slow_polish_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the break-aware pass's clock advance 1 s at each look (a machine far slower, or
    far more loaded, than the one the budget was set on): its deadline, some 55 s away,
    comes after about 55 looks, long before its work budget. The readings are counted."""
    import solvers.routing.polish as polish_module

    start, readings = time.perf_counter(), [0]

    def perf_counter() -> float:
        readings[0] += 1
        return start + 1.0 * readings[0]

    monkeypatch.setattr(polish_module, "time", SimpleNamespace(perf_counter=perf_counter))
    return readings


def test_a_budgeted_run_the_clock_cuts_in_its_polish_says_time_limited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, the pass stopped at its deadline gave another plan than the unhurried run
    (18,447 m against 19,248 m here) and the answer said nothing (``time_limited`` false, an
    audit at load ~15 saw two identical ``/v1/routes`` calls differ): the same seed and
    budget did not mean the same plan, and the caller could not tell."""
    city = city_with_breaks()
    params = RoutingParams(**BUDGETED)
    calm, calm_stats = solve_routes_with_stats(city, params)
    assert not calm.time_limited
    readings = slow_polish_clock(monkeypatch)
    cut, stats = solve_routes_with_stats(city, params)
    assert readings[0] > 0 and validate_plan(city, cut).ok
    assert cut.status is PlanStatus.FEASIBLE
    assert cut.model_dump(exclude={"runtime_s"}) != calm.model_dump(exclude={"runtime_s"})
    assert cut.time_limited
    assert not calm_stats.clock_notes
    [note] = stats.clock_notes
    assert note.startswith(POLISH_NOTE) and note in stats.notes


def test_a_run_on_the_clock_alone_is_not_marked_for_stopping_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a work budget the clock is the budget: a pass (or a search) that ends on it
    stops where it was meant to, and the plan is not marked ``time_limited`` for that."""
    slow_polish_clock(monkeypatch)
    params = RoutingParams(engine="pyvrp", seed=1, time_limit_s=0.5)
    plan, stats = solve_routes_with_stats(city_with_breaks(), params)
    assert not plan.time_limited and not stats.clock_notes


@pytest.mark.parametrize(
    "budget",
    [{"engine": "pyvrp", "max_iterations": 10**9}, {"engine": "ortools", "max_solutions": 10**9}],
)
def test_a_search_the_clock_stops_before_its_budget_says_time_limited(
    c101_25: Scenario, budget: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget no search reaches in 0.5 s: the clock ends it. Before, only ``stats.detail``
    (OR-Tools) said so; the plan was not marked, and PyVRP's said nothing. (PyVRP's stall
    stop is off here: on a fast machine its 1,450 iterations without a new best came within
    0.5 s, and a search that stalls is rightly not marked.)"""
    from solvers.routing.engines import pyvrp_engine

    monkeypatch.setattr(pyvrp_engine, "STALL_STOP", False)
    params = RoutingParams(seed=1, time_limit_s=0.5, **budget)
    plan, stats = solve_routes_with_stats(c101_25, params)
    assert validate_plan(c101_25, plan).ok
    assert plan.time_limited and stats.clock_cut
    assert any(n.startswith(SEARCH_NOTE) for n in stats.clock_notes)
    assert f"{10**9}" in stats.clock_notes[0]


def test_the_route_cli_says_what_the_clock_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dispatchlab route --max-iterations``: the plan JSON says ``time_limited`` and the
    summary names the phase the clock cut."""
    from scenarios.io.json_io import write_json

    scenario = tmp_path / "city.json"
    write_json(city_with_breaks(), scenario)
    args = ["route", str(scenario), "--engine", "pyvrp", "--seed", "1", "--max-iterations", "1"]
    args += ["--time-limit", str(UNHURRIED_S)]
    runner = CliRunner()
    calm = tmp_path / "calm.json"
    res = runner.invoke(app, [*args, "--out", str(calm)])
    assert res.exit_code == 0, res.output
    assert json.loads(calm.read_text())["time_limited"] is False
    assert "time limited" not in res.output
    slow_polish_clock(monkeypatch)
    out = tmp_path / "plan.json"
    res = runner.invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["time_limited"] is True
    assert f"time limited: {POLISH_NOTE}" in " ".join(res.output.split())


def test_the_pass_s_work_budget_grows_with_the_instance_not_past_it_with_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pass of a budgeted run had 10 % of the limit at 40,000 units a second: 345.6
    million units at the largest limit (86,400 s), hours of a pass long past finding anything
    worth it. Its budget is now the smaller of that and what the instance warrants; at the
    tests' 60 s limit it is the same as before."""
    import solvers.routing.polish as polish_module
    from solvers.routing import build_problem
    from solvers.routing import solve as solve_module

    city = city_with_breaks()
    problem = build_problem(city)
    visits = len(problem.tasks)
    assert solve_module.polish_work(problem, UNHURRIED_S) == 240_000
    floor = solve_module.POLISH_WORK_MIN
    assert solve_module.polish_work(problem, 86_400) == max(floor, 2_500 * visits) == floor
    budgets: list[int | None] = []
    polish_routes = polish_module.polish_routes

    def spy(*args: object, max_work: int | None = None, **kwargs: object) -> object:
        budgets.append(max_work)
        return polish_routes(*args, max_work=max_work, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(polish_module, "polish_routes", spy)
    params = RoutingParams(**{**BUDGETED, "time_limit_s": 86_400.0})
    plan, _ = solve_routes_with_stats(city, params)
    assert budgets and set(budgets) == {floor}
    assert not plan.time_limited and validate_plan(city, plan).ok
