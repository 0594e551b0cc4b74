"""SimParams.idle_couriers_go_home: an idle courier ends its shift once no order can reach it."""

from __future__ import annotations

import pytest

from scenarios import Plan, PlannedStop, Route, Scenario
from scenarios.io import load_scenario
from simulation.decisions import StopType
from simulation.evaluate import simulate
from simulation.params import SimParams
from simulation.twin import DispatchSimulator
from tests.conftest import REPO
from tests.simulation.conftest import line_scenario


def _line_plan() -> Plan:
    """v1 delivers a (x=100, back home by 210 s); v2 delivers c then b (home at 820 s)."""

    def stop(order: str, t: int) -> PlannedStop:
        return PlannedStop(order_id=order, arrival_s=t, start_s=t, departure_s=t)

    return Plan(
        routes=[
            Route(vehicle_id="v1", stops=[stop("a", 100)]),
            Route(vehicle_id="v2", stops=[stop("c", 250), stop("b", 500)]),
        ]
    )


def _day(scenario: Scenario, plan: Plan | None, **params: object) -> DispatchSimulator:
    sim = DispatchSimulator(scenario, plan=plan, params=SimParams.model_validate(params))
    simulate(scenario, plan, seed=1, simulator=sim)
    return sim


def test_an_idle_courier_goes_home_once_no_order_can_reach_it() -> None:
    # Speed 1 m/s, noise off. v1: out at 0, a served 100-110 s, home 100 m away. v2: c at
    # 250-255 s, b (window from 500 s) at 500-520 s, home 300 m away at 820 s.
    scenario = line_scenario()
    default = _day(scenario, _line_plan())
    # By default v1 waits at a until v2's route is done and the day closes (520 s).
    assert default.last_activity_s == [620.0, 820.0]
    assert default.shift_ended_s[0] != default.shift_ended_s[0]  # NaN: never ended early
    early = _day(scenario, _line_plan(), idle_couriers_go_home=True)
    # Every order is released at 0 and none waits: v1 goes home after a, v2 after b.
    assert early.last_activity_s == [210.0, 820.0]
    assert early.shift_ended_s == [110.0, 520.0]
    m_default, m_early = default.result().metrics, early.result().metrics
    assert m_default["courier_hours"] * 3600 == pytest.approx(620 + 820)
    assert m_early["courier_hours"] * 3600 == pytest.approx(210 + 820)
    # Busy 210 s and 625 s: over the horizon (no shift ends) by default, over the time each
    # was on duty (until its return home) when it ended its shift early.
    assert m_default["courier_utilisation"] == pytest.approx((210 / 5000 + 625 / 5000) / 2)
    assert m_early["courier_utilisation"] == pytest.approx((210 / 210 + 625 / 820) / 2)
    for kpi in ("distance_m", "orders_delivered", "on_time_rate", "lateness_p95_s"):
        assert m_early[kpi] == m_default[kpi], kpi


def test_an_idle_courier_stays_until_the_last_order_is_released() -> None:
    # Insertion dispatches a, b and c at 0 s; both couriers are done by 820 s. A fourth order
    # created at 2,000 s keeps them available (idle, not sent home) until it is given out.
    scenario = line_scenario()
    params = SimParams(idle_couriers_go_home=True)
    sim = DispatchSimulator(scenario, params=params)
    simulate(scenario, None, "insertion", seed=1, simulator=sim)
    assert max(sim.shift_ended_s) < 1000
    data = scenario.model_dump(mode="json")
    data["orders"].append(
        {
            "id": "late",
            "location": {"x": 100, "y": 0},
            "time_windows": [{"start_s": 2000, "end_s": 3000}],
            "service_s": 10,
            "created_s": 2000,
        }
    )
    later = Scenario.model_validate(data)
    sim = DispatchSimulator(later, params=params)
    result = simulate(later, None, "insertion", seed=1, simulator=sim)
    assert result.metrics["orders_delivered"] == 4 and result.metrics["on_time_rate"] == 1.0
    assert min(sim.shift_ended_s) >= 2000  # nobody left while an order was still to come


def test_a_courier_gone_off_duty_is_off_shift_for_policies() -> None:
    # v1 ends its shift at 110 s and drives home until 210 s: at the 150 s tick it is no
    # longer offered to policies (it was on shift, and quotable, until it got home).
    scenario = line_scenario()
    sim = DispatchSimulator(
        scenario, plan=_line_plan(), params=SimParams(idle_couriers_go_home=True, tick_s=150)
    )
    sim.reset(seed=1)
    state = sim.next_decision()
    assert state is not None and state.time_s == 150
    assert list(state.courier_on_shift) == [False, True]
    b = sim.orders.ids.index("b")
    assert sim.quote(b, 0).reason == "courier is off shift" and not sim.can_append(b, 0)
    while sim.next_decision() is not None:
        pass
    assert sim.result().metrics["orders_delivered"] == 3
    assert sim.last_activity_s == [210.0, 820.0]


def test_an_order_not_collected_yet_keeps_idle_couriers_available() -> None:
    # The orders' parcels are picked at a node, one at a time (one picker, 600 s a line), and
    # insertion gives them out at 0 s. Until an order is collected a re-plan could still move
    # it to an idle courier (ReplaceRoutes), so no courier ends its shift before the last
    # parcel is on board; after that each leaves once it is done, before the day closes.
    data = line_scenario().model_dump(mode="json")
    data["skus"] = [{"id": "tea"}]
    data["nodes"] = [
        {
            "id": "n",
            "location": {"x": 0, "y": 0},
            "inventory": {"tea": 10},
            "pickers": 1,
            "pick_time_s_per_line": 600,
            "pack_time_s_per_order": 0,
        }
    ]
    for order in data["orders"]:
        order["lines"] = [{"sku": "tea", "quantity": 1}]
        order["time_windows"] = [{"start_s": 0, "end_s": 5000}]
    scenario = Scenario.model_validate(data)
    params = SimParams(idle_couriers_go_home=True, record_routes=True)
    sim = DispatchSimulator(scenario, params=params)
    result = simulate(scenario, None, "insertion", seed=1, simulator=sim)
    assert result.metrics["orders_delivered"] == 3
    pickups = [st for stops in sim.executed for st in stops if st[0] == StopType.PICKUP]
    last_collected = max(depart for *_, depart in pickups)
    assert last_collected >= 1800  # the third parcel is ready at 1,800 s
    assert min(sim.shift_ended_s) >= last_collected


#: The KPIs the option may move: the idle couriers' drives home (and their hours) only.
HOURS = {
    "courier_hours",
    "time_cost_cents",
    "cost_cents",
    "courier_utilisation",
    "node_utilisation",
}


@pytest.mark.parametrize(
    ("policy", "saves"),
    # on this day nearest keeps orders waiting for an idle courier to the end: none leaves;
    # re-plans every 30 min in the default run (~40 of them), every 10 min (~3x the re-plans,
    # the same path) with -m slow
    [
        ("nearest", False),
        ("insertion", True),
        ("reopt:30", True),
        pytest.param("reopt:10", True, marks=pytest.mark.slow),
    ],
)
def test_the_option_changes_the_hours_not_the_dispatch(policy: str, saves: bool) -> None:
    # Solomon C101: 100 orders known at 0 s, 25 couriers on shift all day. Nobody is sent
    # home while an order could still reach it, so every policy dispatches the same day
    # (a re-plan included: it may move an order until it is collected).
    scenario = load_scenario(REPO / "data" / "instances" / "solomon" / "C101.txt")
    default = simulate(scenario, None, policy, seed=3).metrics
    early = simulate(scenario, None, policy, seed=3, params=SimParams(idle_couriers_go_home=True))
    m = early.metrics
    assert {k: v for k, v in m.items() if k not in HOURS} == {
        k: v for k, v in default.items() if k not in HOURS
    }
    if saves:
        assert m["courier_hours"] < default["courier_hours"]
        assert m["courier_utilisation"] > default["courier_utilisation"]
    else:
        assert m["courier_hours"] == default["courier_hours"]
    assert m["cost_cents"] == pytest.approx(default["cost_cents"])  # C101: no hourly price
