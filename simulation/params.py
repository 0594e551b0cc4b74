"""Knobs of the twin itself (the scenario's StochasticParams say what is random)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from scenarios.geo import MAX_INT, NonNegInt, NotBool, StrictModel

PosInt = Annotated[int, Field(gt=0, le=MAX_INT), NotBool]
#: Most replications (simulated days) one study runs: the HTTP service's limit and the CLI's.
MAX_REPLICATIONS = 10_000
#: Longest overtime the twin plays past the horizon end (a week).
MAX_OVERTIME_S = 7 * 24 * 3600


class SimParams(StrictModel):
    """How the twin runs: decision points, recording, how closely couriers follow a plan."""

    tick_s: PosInt | None = Field(
        default=None, description="periodic decision every tick_s seconds (None = no ticks)"
    )
    decide_on_arrival: bool = Field(
        default=True, description="stop for a decision when an order without a plan arrives"
    )
    decide_on_courier_free: bool = Field(
        default=True, description="stop for a decision when a courier runs out of stops"
    )
    num_candidates: PosInt = Field(
        default=8, description="couriers offered in DecisionState.candidates for the focus order"
    )
    max_overtime_s: Annotated[int, NotBool] = Field(
        default=6 * 3600,
        ge=0,
        le=MAX_OVERTIME_S,
        description="the day is cut off this long after the horizon end",
    )
    node_pickup_service_s: NonNegInt = Field(
        default=0, description="handover time when a courier collects a parcel at a node"
    )
    hold_to_plan: bool = Field(
        default=False,
        description="never start a planned stop before its planned start_s (plan replay)",
    )
    idle_couriers_go_home: bool = Field(
        default=False,
        description="an idle courier ends its shift and drives home as soon as no order can "
        "still be given to it: every order of the day released, none waiting and every one "
        "assigned collected (its courier hours and time available end at its return home); "
        "False: it stays available until its shift end or the day's close",
    )
    take_vehicle_breaks: bool = Field(
        default=True,
        description="every courier takes its vehicle's breaks whatever the policy: one the "
        "plan does not give it (no plan, no planned route, or a route without that break) "
        "is added to its route at the start of the day; False: only a plan's breaks are "
        "taken, as before session 55 (other twin changes of that session stay)",
    )
    record_events: bool = Field(default=False, description="keep the full event log")
    record_routes: bool = Field(
        default=False, description="keep executed stops (to export the day as a Plan)"
    )
