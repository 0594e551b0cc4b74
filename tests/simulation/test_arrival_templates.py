"""The twin draws an arrival process's orders from ``arrivals.templates`` when it has them."""

from __future__ import annotations

from typing import Any

from scenarios import Scenario
from scenarios.stochastic import ArrivalProcess
from simulation import DispatchSimulator
from simulation.evaluate import simulate
from tests.simulation.conftest import line_scenario


def _arrivals_only(templates: list[dict[str, Any]], **arrivals: Any) -> Scenario:
    """The line scenario's fleet, no listed orders, every order drawn from ``templates``."""
    line = line_scenario()
    process = {"hourly_rate": [20.0] * 24, "promise_s": 900, "templates": templates, **arrivals}
    return Scenario.model_validate(
        {**line.model_dump(mode="json"), "orders": [], "arrivals": process}
    )


def test_an_arrivals_only_day_draws_from_its_templates_and_never_releases_them() -> None:
    """Such a day was written with a listed order created past the horizon (refused since)."""
    templates = [
        # times past the horizon: a template is never released, its times are not used
        {"id": "far", "location": {"x": 400, "y": 0}, "service_s": 30, "created_s": 10**6},
        {"id": "near", "location": {"x": 50, "y": 0}, "service_s": 10, "penalty_cents": 77},
    ]
    day = _arrivals_only(templates)
    sim = DispatchSimulator(day)
    sim.reset(seed=3)
    od = sim.orders
    assert sim.num_base_orders == 0 and len(od) > 10
    assert all(oid.startswith("arrival-") for oid in od.ids)
    where = {sim.world.locations[loc].x for loc in od.location}
    assert where == {400.0, 50.0}  # both templates drawn, nothing else
    for k in range(len(od)):
        t = od.created_s[k]
        assert od.windows[k] == ((t, t + 900.0),)
        assert od.penalty_cents[k] == (77.0 if od.template[k] == 1 else 10_000.0)
        assert od.service_s[k] == (10.0 if od.template[k] == 1 else 30.0)
    result = simulate(day, policy="insertion", seed=3)
    assert result.metrics["orders_total"] == len(od)  # every arrival released
    assert result.metrics["orders_delivered"] > 0


def test_templates_equal_to_the_listed_orders_draw_the_same_day() -> None:
    """Templates given or taken from the orders: the same seed, the same day, the same KPIs."""
    line = line_scenario(travel_time_cv=0.2, service_time_cv=0.3)
    implicit = line.model_copy(update={"arrivals": ArrivalProcess(hourly_rate=[2.0] * 24)})
    explicit = Scenario.model_validate(
        {
            **line.model_dump(mode="json"),
            "arrivals": {"hourly_rate": [2.0] * 24, "templates": line.model_dump()["orders"]},
        }
    )
    for seed in (1, 2):
        one = simulate(implicit, policy="insertion", seed=seed)
        two = simulate(explicit, policy="insertion", seed=seed)
        assert one.order_ids == two.order_ids and len(one.order_ids) > 3
        assert one.metrics == two.metrics
        assert one.completed_s.tolist() == two.completed_s.tolist()


def test_templates_bring_their_locations_and_skus_into_the_world() -> None:
    """A template's location and SKUs need not appear anywhere else in the scenario."""
    template = {
        "id": "t",
        "location": {"x": 123, "y": 45},
        "lines": [{"sku": "only-here", "quantity": 2}],
    }
    day = _arrivals_only([template])
    sim = DispatchSimulator(day)
    world = sim.world
    assert any(loc.x == 123 and loc.y == 45 for loc in world.locations)
    assert "only-here" in world.sku_index
    sim.reset(seed=1)
    assert sim.orders.lines[0] == ((world.sku_index["only-here"], 2),)
