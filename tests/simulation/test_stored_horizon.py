"""A scenario stored before its times were checked against its horizon still simulates."""

from __future__ import annotations

from scenarios import Scenario
from scenarios.saved import read_saved
from simulation.decisions import OrderStatus
from simulation.evaluate import CaseData, simulate


def test_a_stored_scenario_with_a_shift_past_its_horizon_simulates_in_a_worker() -> None:
    """The worker re-validated the scenario's JSON as new input: the job failed."""
    data = {
        "horizon": {"start_s": 0, "end_s": 3600},
        "orders": [{"id": "o1", "location": {"x": 500, "y": 0}, "service_s": 60}],
        "vehicles": [
            {
                "id": "v1",
                "start_location": {"x": 0, "y": 0},
                "shift": {"start_s": 0, "end_s": 7200},
            }
        ],
    }
    scenario, notes = read_saved(Scenario, data)
    assert [n.split(":")[0] for n in notes] == ["vehicles.0.shift.end_s"]
    sim = CaseData(scenario.model_dump_json(), None, None).simulator()
    assert sim.world.shift_end_s == [7200.0]  # kept as stored
    result = simulate(scenario, policy="insertion", seed=1, simulator=sim)
    assert result.status.tolist() == [OrderStatus.DELIVERED]
