"""The outcome of one simulated day: per-order results and the day's KPI values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from scenarios.plan import AllocationLine, Plan, PlannedStop, PlanStatus, Route, StopKind
from simulation.decisions import OrderStatus, StopType
from simulation.stats import Interval, mean_ci, rate_ci

if TYPE_CHECKING:
    from simulation.twin import DispatchSimulator

#: The version of the KPI definitions below. BUMP IT WITH EVERY CHANGE TO HOW A KPI IS
#: COMPUTED: it enters the keys of caches of simulated days (with the draws' version).
#: 1: before versions existed
#: 2: courier utilisation over the time available (overtime counted, no clipping); on-time
#:    rate over every order due (unfilled ones not on time), NaN when none is due
#: 3: at the day's cut-off a leg under way is driven to its end (its distance counted) and the
#:    drive home is busy time, leaving at the cut-off at the earliest (time, distance, cost)
#: 4: an order none of whose lines ships (every line short at pick, nothing to re-source it)
#:    is unfilled altogether (its penalty, not on time) instead of delivered empty; a plan's
#:    short allocation line ships what its node has; a planned delivery-only route waits for
#:    its orders' release (and pick)
#: 5: a driver break is not busy time (nor working time: no breakdown during it), and a
#:    courier's clock starts at its first departure: one whose route holds only breaks (it
#:    never leaves its start) counts no courier hours, no fixed cost
KPI_VERSION = 5

#: KPI values of one replication, in this order in tables.
METRICS: tuple[str, ...] = (
    "on_time_rate",
    "lateness_p50_s",
    "lateness_p95_s",
    "distance_m",
    "courier_hours",
    "cost_cents",
    "courier_utilisation",
    "node_utilisation",
    "orders_unfilled",
    "orders_failed",
    "orders_unserved",
    "orders_delivered",
    "orders_total",
    "distance_cost_cents",
    "time_cost_cents",
    "fixed_cost_cents",
    "lateness_cost_cents",
    "failed_cost_cents",
    "unserved_cost_cents",
    "mean_pick_wait_s",
    "breaks_late",
    "break_late_s",
)

#: KPIs where more is neither better nor worse: a significant change is shown, not judged
#: (a fleet cut raises utilisation while the service gets worse)
NEUTRAL = frozenset({"courier_utilisation", "node_utilisation"})

#: KPIs where smaller is better (the others: larger is better, or ``NEUTRAL``).
LOWER_IS_BETTER = frozenset(
    {
        "lateness_p50_s",
        "lateness_p95_s",
        "distance_m",
        "courier_hours",
        "cost_cents",
        "orders_unfilled",
        "orders_failed",
        "orders_unserved",
        "distance_cost_cents",
        "time_cost_cents",
        "fixed_cost_cents",
        "lateness_cost_cents",
        "failed_cost_cents",
        "unserved_cost_cents",
        "mean_pick_wait_s",
        "breaks_late",
        "break_late_s",
    }
)


def direction(kpi: str, diff: float) -> str:
    """What a significant difference of ``kpi`` is: ``better``, ``worse`` or ``changed``.

    ``changed`` for a neutral KPI (utilisation), whose changes are shown, not judged.
    """
    if kpi in NEUTRAL:
        return "changed"
    return "better" if (diff < 0) == (kpi in LOWER_IS_BETTER) else "worse"


#: The mark of a significant difference in every comparison table, by :func:`direction`.
MARKS = {"better": "▲", "worse": "▼", "changed": "◆"}


#: KPIs that may be undefined in a replication (NaN there): the on-time rate of a day on which
#: no order was due. Estimates leave those replications out (None when all are).
UNDEFINED_WHEN_EMPTY = frozenset({"on_time_rate"})

#: KPIs of the orders delivered. The twin reports them as 0 on a day that delivered no order
#: (its metrics, ``replications.csv`` and caches of simulated days keep that 0, under this
#: KPI_VERSION); every summary over replications (``simulate``'s KPIs, plan comparisons,
#: what-if studies) reads them as undefined on such a day (:func:`summary_value`), as the
#: on-time rate of a day with no order due: a day that delivered nothing read as on time
#: (a variant delivering nothing was "significantly better" in lateness than its base).
DELIVERED_KPIS = frozenset({"lateness_p50_s", "lateness_p95_s"})

#: KPIs a summary may find undefined in a replication, and why (for the tables' notes).
UNDEFINED_WHY: dict[str, str] = {
    "on_time_rate": "no order was due",
    **dict.fromkeys(sorted(DELIVERED_KPIS), "no order was delivered"),
}


def summary_value(metrics: Mapping[str, float], metric: str) -> float:
    """One replication's value of ``metric`` as a summary over replications reads it (NaN:
    undefined, a lateness of a day that delivered no order included)."""
    if metric in DELIVERED_KPIS and metrics.get("orders_delivered") == 0.0:
        return math.nan
    return metrics[metric]


#: KPIs that are shares (in [0, 1]); every other KPI is a non-negative amount.
RATES = frozenset({"on_time_rate", "courier_utilisation", "node_utilisation"})


def kpi_bounds(metric: str) -> tuple[float, float]:
    """The values a KPI can take: ``(0, 1)`` for rates, ``(0, inf)`` for the twin's others."""
    if metric in RATES:
        return (0.0, 1.0)
    return (0.0, math.inf) if metric in METRICS else (-math.inf, math.inf)


#: Binomial rates and the KPI counting their trials (a day's on-time rate is over its orders
#: due, ``orders_total``): a rate at 0 or 1 on every day gets a Clopper-Pearson interval.
RATE_TRIALS: dict[str, str] = {"on_time_rate": "orders_total"}


def kpi_interval(
    metric: str,
    values: Sequence[float] | NDArray[np.float64],
    trials: Sequence[float] | NDArray[np.float64] | None = None,
) -> Interval:
    """Mean and 95% CI of a KPI over replications, as every table reports it.

    The t-interval cut to the KPI's values (:func:`simulation.stats.mean_ci`); for a binomial
    rate (:data:`RATE_TRIALS`) :func:`simulation.stats.rate_ci`, which replaces the collapsed
    interval of a rate at 0 or 1 on every day by the Clopper-Pearson interval (over the
    pooled ``trials`` when given).
    """
    if metric in RATE_TRIALS:
        return rate_ci(values, trials)
    return mean_ci(values, bounds=kpi_bounds(metric))


ExecutedStop = tuple[int, int, int, float, float, float]


def _named_break(k: int) -> int | None:
    """A recorded break index as a plan's ``break_index`` (-1: none, None)."""
    return k if k >= 0 else None


def courier_utilisation(sim: DispatchSimulator, c: int) -> float:
    """Courier ``c``'s busy time over the time it was available: its shift plus overtime.

    Available = from the shift start (not before the horizon start; earlier if the courier
    left earlier) to the shift end (not after the horizon end, which also ends a shift with
    no end; later if the courier worked on: its last activity, which for a courier out at the
    day's cut-off is its arrival home after finishing what it was doing). A courier that ended
    its shift early (``SimParams.idle_couriers_go_home``) was available until then, and until
    its return home after it. Busy time (driving, the drive home included, serving, broken
    down; a driver break is not busy) lies inside that interval, so the share is in [0, 1]
    without clipping; a courier with no available time and no work has 0.
    """
    w = sim.world
    start = max(w.horizon_start_s, w.shift_start_s[c])
    end = min(w.horizon_end_s, w.shift_end_s[c])
    ended = sim.shift_ended_s[c]
    if not math.isnan(ended):
        end = min(end, ended)
    first = sim.first_departure_s[c]
    if not math.isnan(first):
        start = min(start, first)
        last = sim.last_activity_s[c]
        end = max(end, sim.busy_end_s[c], last if not math.isnan(last) else -math.inf)
    available = end - start
    return sim.busy_s[c] / available if available > 0 else 0.0


@dataclass
class SimulationResult:
    """One replication: KPI values (``metrics``), per-order outcomes, optional logs."""

    seed: int
    metrics: dict[str, float]
    status: NDArray[np.int8]
    completed_s: NDArray[np.float64]
    lateness_s: NDArray[np.float64]
    base_on_time: NDArray[np.bool_]
    num_events: int
    order_ids: list[str] = field(default_factory=list)
    vehicle_ids: list[str] = field(default_factory=list)
    events: list[tuple[float, str, int, int]] | None = None
    executed: list[list[ExecutedStop]] | None = None
    executed_locations: list[Any] | None = None
    #: per courier, for each break of ``executed`` in order, the index in its vehicle's
    #: ``breaks`` of the break it took (-1: none of them); None: not recorded
    executed_breaks: list[list[int]] | None = None

    @property
    def num_orders(self) -> int:
        """Orders of the day (base and new)."""
        return int(self.status.shape[0])

    @classmethod
    def from_simulator(cls, sim: DispatchSimulator) -> SimulationResult:
        """Collect the KPIs of a finished simulator."""
        w = sim.world
        status = np.asarray(sim.status, dtype=np.int8)
        completed = np.asarray(sim.completed_s, dtype=np.float64)
        late = np.asarray(sim.lateness_s, dtype=np.float64)
        released = ~np.isnan(np.asarray(sim.released_s, dtype=np.float64))
        delivered = status == OrderStatus.DELIVERED
        on_time = delivered & (late <= 0.0)
        unfilled_full = status == OrderStatus.UNFILLED
        # Every order released is due: one never delivered (no courier, nothing in stock,
        # cut off) is not on time. With no order due the rate is undefined (NaN).
        num_due = int(released.sum())
        lat_delivered = late[delivered]
        costs = w.scenario.costs
        penalties = np.asarray(sim.orders.penalty_cents, dtype=np.float64)
        unserved = status == OrderStatus.UNSERVED
        unserved_cost = float(penalties[unserved].sum()) + float(penalties[unfilled_full].sum())
        end_of_day = float(sim.env.now)
        start = w.horizon_start_s
        span_end = max(w.horizon_end_s, end_of_day)
        hours = 0.0
        time_cost = 0.0
        util = []
        for c in range(w.num_vehicles):
            first = sim.first_departure_s[c]
            if not math.isnan(first):
                active = max(0.0, sim.last_activity_s[c] - first)
                hours += active / 3600.0
                time_cost += w.cost_per_hour_cents[c] * active / 3600.0
            util.append(courier_utilisation(sim, c))
        busy = 0.0
        capacity = 0.0
        for n, node in enumerate(w.nodes):
            if node.virtual:
                continue
            busy += sim.picker_busy_s[n]
            capacity += node.pickers * node.open_s(start, span_end)
        unfilled_orders = int(
            sum(1 for o, k in enumerate(sim.unfilled_lines) if k > 0 or unfilled_full[o])
        )
        total_cost = (
            sim.cost_distance
            + time_cost
            + sim.cost_fixed
            + sim.cost_lateness
            + sim.cost_failed
            + unserved_cost
        )
        metrics = {
            "on_time_rate": float(on_time.sum()) / num_due if num_due else math.nan,
            "lateness_p50_s": float(np.percentile(lat_delivered, 50))
            if lat_delivered.size
            else 0.0,
            "lateness_p95_s": float(np.percentile(lat_delivered, 95))
            if lat_delivered.size
            else 0.0,
            "distance_m": float(sum(sim.distance_m)),
            "courier_hours": hours,
            "cost_cents": total_cost,
            "courier_utilisation": float(np.mean(util)) if util else 0.0,
            "node_utilisation": busy / capacity if capacity > 0 else 0.0,
            "orders_unfilled": float(unfilled_orders),
            "orders_failed": float((status == OrderStatus.FAILED).sum()),
            "orders_unserved": float(unserved.sum()),
            "orders_delivered": float(delivered.sum()),
            "orders_total": float(released.sum()),
            "distance_cost_cents": sim.cost_distance,
            "time_cost_cents": time_cost,
            "fixed_cost_cents": sim.cost_fixed,
            "lateness_cost_cents": sim.cost_lateness,
            "failed_cost_cents": sim.cost_failed,
            "unserved_cost_cents": unserved_cost,
            "mean_pick_wait_s": float(np.mean(sim.pick_waits_s)) if sim.pick_waits_s else 0.0,
            # Planned breaks started after their window's latest start, and by how much in all.
            "breaks_late": float(len(sim.break_violations)),
            "break_late_s": float(
                sum(start - latest for _, _, start, latest in sim.break_violations)
            ),
        }
        _ = costs
        nb = sim.num_base_orders
        seed = sim._seed if sim._seed is not None else -1
        return cls(
            seed=seed,
            metrics=metrics,
            status=status,
            completed_s=completed,
            lateness_s=late,
            base_on_time=on_time[:nb].copy(),
            num_events=sim._num_steps,
            order_ids=list(sim.orders.ids),
            vehicle_ids=list(w.vehicle_ids),
            events=list(sim.events) if sim.params.record_events else None,
            executed=[list(x) for x in sim.executed] if sim.params.record_routes else None,
            executed_locations=list(w.locations) if sim.params.record_routes else None,
            executed_breaks=[list(x) for x in sim.executed_breaks]
            if sim.params.record_routes
            else None,
        )

    def to_plan(self, sim: DispatchSimulator) -> Plan:
        """The day as executed, written as a Plan (needs ``record_routes=True``)."""
        if self.executed is None:
            raise ValueError("run with SimParams(record_routes=True) to export the executed plan")
        w = sim.world
        routes = []
        for c, stops in enumerate(self.executed):
            planned = []
            at = w.vehicle_start_loc[c]  # where the courier is (a break is taken there)
            # which of its vehicle's breaks each break is: a late one may start in another's
            # window (matched by window on a replay, their labels swapped)
            named = iter(self.executed_breaks[c] if self.executed_breaks is not None else ())
            for kind, o, node, arrival, start, depart in stops:
                if kind == StopType.BREAK:
                    # Its length kept whole, so the replay matches it to its vehicle's break.
                    begin = round(start)
                    length = math.ceil(depart - start - 1e-6)
                    planned.append(
                        PlannedStop(
                            kind=StopKind.BREAK,
                            location=w.locations[at],
                            arrival_s=min(round(arrival), begin),  # (standing since)
                            start_s=begin,
                            departure_s=max(round(depart), begin + length),
                            break_index=_named_break(next(named, -1)),
                        )
                    )
                    continue
                if kind == StopType.PICKUP:
                    loc = w.nodes[node].location if node >= 0 else sim.orders.pickup_location[o]
                else:
                    loc = sim.orders.location[o]
                at = loc
                planned.append(
                    PlannedStop(
                        order_id=self.order_ids[o],
                        kind=StopKind.PICKUP if kind == StopType.PICKUP else StopKind.DELIVERY,
                        location=w.locations[loc],
                        arrival_s=round(arrival),
                        start_s=round(start),
                        departure_s=round(depart),
                    )
                )
            # A courier that never left has no route (an unused vehicle takes no break). A
            # break taken where the courier stood before it first left starts before its
            # route (the twin replays it so: from the shift start, the departure held).
            if any(ps.kind != StopKind.BREAK for ps in planned):
                first = sim.first_departure_s[c]
                routes.append(
                    Route(
                        vehicle_id=w.vehicle_ids[c],
                        stops=planned,
                        start_s=round(first) if not math.isnan(first) else 0,
                        end_s=round(sim.last_activity_s[c]),
                    )
                )
        # The day's allocation (parcels at real nodes of the scenario's own orders), so a replay
        # ships the same lines from the same nodes (without it a plan's first pickup node
        # ships every line, and parcels are ready at other times or short).
        sku_ids = {k: sku for sku, k in w.sku_index.items()}
        allocation = [
            AllocationLine(
                order_id=self.order_ids[o], sku=sku_ids[sku], node_id=w.nodes[n].id, quantity=qty
            )
            for (o, n), lines in sorted(sim._parcel_lines.items())
            if o < sim.num_base_orders and not w.nodes[n].virtual
            for _line, sku, qty, _short in lines
        ]
        return Plan(status=PlanStatus.FEASIBLE, allocation=allocation, routes=routes, engine="twin")
