"""``dispatchlab route``: plan JSON in the source's units, clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app

runner = CliRunner()


def test_route_solomon_writes_plan_json(instances_dir: Path, tmp_path: Path) -> None:
    """The search stops after its iterations (0.2-0.3 s idle), not on the clock: at a 0.5 s
    limit a loaded machine left PyVRP no time to start, or killed it in its first iteration,
    and the greedy plan answered (engine 'greedy (fallback from pyvrp)')."""
    out = tmp_path / "plan.json"
    res = runner.invoke(
        app,
        [
            "route",
            str(instances_dir / "solomon" / "C101.txt"),
            "--time-limit",
            "60",
            "--max-iterations",
            "100",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "feasible"
    assert plan["engine"] == "pyvrp"
    assert {"routes", "unassigned", "distance", "num_vehicles", "runtime_s"} <= set(plan)
    ids = [st["order_id"] for r in plan["routes"] for st in r["stops"]]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 101)]  # customer numbers
    assert plan["num_vehicles"] == len(plan["routes"])
    # DIMACS distance in the file's units: the C101 optimum is 827.3
    assert 827.3 <= plan["distance"] < 900
    first = plan["routes"][0]["stops"][0]
    assert first["start"] >= first["arrival"]


def test_route_lilim_uses_task_numbers(instances_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    res = runner.invoke(
        app,
        [
            "route",
            str(instances_dir / "lilim" / "lc101.txt"),
            "--engine",
            "greedy",
            "-q",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    stops = [st for r in plan["routes"] for st in r["stops"]]
    assert len(stops) == 106  # 53 pickups + 53 deliveries, each its own task number
    assert len({st["order_id"] for st in stops}) == 106
    pickup = next(st for st in stops if st["kind"] == "pickup")
    assert pickup["order_id"] != pickup["order"]


def test_route_max_iterations_makes_the_plan_a_function_of_the_seed(
    instances_dir: Path, tmp_path: Path
) -> None:
    c101 = str(instances_dir / "solomon" / "C101.txt")
    plans = []
    for run in range(2):
        out = tmp_path / f"plan{run}.json"
        args = ["route", c101, "--max-iterations", "100", "--time-limit", "60", "--seed", "3"]
        res = runner.invoke(app, [*args, "-q", "--out", str(out)])
        assert res.exit_code == 0, res.output
        plan = json.loads(out.read_text())
        assert plan["engine"] == "pyvrp"
        plans.append(plan["routes"])
    assert plans[0] == plans[1]
    res = runner.invoke(app, ["route", c101, "--max-iterations", "0"])
    assert res.exit_code == 2
    assert "--max-iterations" in res.output


def test_route_errors_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["route", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2
    assert "file not found" in res.output
    bad = tmp_path / "x.txt"
    bad.write_text("hello\n")
    res = runner.invoke(app, ["route", str(bad), "--engine", "magic"])
    assert res.exit_code == 2
    assert "unknown engine" in res.output


def test_route_answers_a_small_scenario_whole_when_every_clock_says_time_is_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A starved process (every clock of the routing layer past its deadline, each
    construction's grace gone at its first look): the plan came back ``infeasible`` with no
    route; a small problem is now constructed whole, and the greedy plan answers."""
    from scenarios.io.json_io import write_json
    from tests.solvers.routing.conftest import make_city, starve_clocks, with_pickups

    s = with_pickups(make_city())
    scenario = tmp_path / "city.json"
    write_json(s, scenario)
    starve_clocks(monkeypatch)
    out = tmp_path / "plan.json"
    res = runner.invoke(
        app, ["route", str(scenario), "--time-limit", "0.3", "-q", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "feasible" and plan["unassigned"] == []
    assert plan["engine"] == "greedy (no time left for pyvrp)"
    served = {st["order"] for r in plan["routes"] for st in r["stops"] if st["kind"] == "delivery"}
    assert served == {o.id for o in s.orders}


def test_route_marks_a_plan_the_time_limit_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optional orders the time limit cut off leave the plan ``feasible``: the plan JSON now
    says ``time_limited`` (read back by ``read_plan``), and the summary says a longer
    ``--time-limit`` may serve them."""
    from scenarios.io import read_plan
    from scenarios.io.json_io import write_json
    from tests.solvers.routing.conftest import starve_clocks
    from tests.solvers.routing.test_starved_clock import optional_city

    scenario = tmp_path / "city.json"
    write_json(optional_city(), scenario)
    calm = tmp_path / "calm.json"
    res = runner.invoke(app, ["route", str(scenario), "--engine", "greedy", "--out", str(calm)])
    assert res.exit_code == 0, res.output
    assert json.loads(calm.read_text())["time_limited"] is False
    starve_clocks(monkeypatch)
    out = tmp_path / "plan.json"
    res = runner.invoke(app, ["route", str(scenario), "--time-limit", "0.3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "feasible" and plan["time_limited"] is True
    assert "a longer --time-limit may serve them" in " ".join(res.output.split())
    assert read_plan(out).time_limited


def test_route_imports_what_the_solve_needs_before_its_time_limit_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first solve of a process imported the engines and, on a road network, SciPy's
    shortest paths (0.26-0.33 s) inside its time limit; the service imports them as it starts,
    and now ``dispatchlab route`` before its solve, so the limit is spent alike."""
    import solvers.routing
    from scenarios.io.json_io import write_json
    from solvers.routing import solve as solve_module
    from tests.solvers.routing.conftest import make_city

    calls: list[str] = []
    preload = solve_module.import_first_call_modules
    solve = solvers.routing.solve_routes_with_stats

    def imported() -> None:
        calls.append("import")
        preload()

    def solved(*args: object, **kwargs: object) -> object:
        calls.append("solve")
        return solve(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solve_module, "import_first_call_modules", imported)
    monkeypatch.setattr(solvers.routing, "solve_routes_with_stats", solved)
    scenario = tmp_path / "city.json"
    write_json(make_city(), scenario)
    res = runner.invoke(app, ["route", str(scenario), "--engine", "greedy", "-q", "--out", "-"])
    assert res.exit_code == 0, res.output
    assert calls == ["import", "solve"]


def test_the_service_preloads_what_a_first_solve_imports() -> None:
    """The service's preload (outside any time limit) covers every module a solve imports
    on its first call."""
    from api.main import ROUTING_PRELOAD
    from solvers.routing.solve import FIRST_CALL_MODULES

    assert set(FIRST_CALL_MODULES) <= set(ROUTING_PRELOAD)
