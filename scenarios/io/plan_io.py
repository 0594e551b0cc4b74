"""Reading plan files: a ``Plan`` JSON, or the plan JSON ``dispatchlab route --out`` writes.

The route output (``solvers.routing.output.plan_to_dict``) reports distances and times in the
source's units and names the visited task; :class:`RouteOutput` reads it back and
:meth:`RouteOutput.to_plan` turns it into the :class:`~scenarios.plan.Plan` it was written
from (seconds and metres again). Stop locations are not in that file: the twin takes a
delivery at its order's location, a pickup at its order's pickup location and a break where
the courier is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from scenarios.errors import InputError, input_error_from_validation
from scenarios.geo import Id, NonNegInt, PosInt, StrictModel
from scenarios.io.json_io import from_json, loads, read_bytes
from scenarios.plan import TIME_LIMITED_DESCRIPTION, Plan, PlanStatus, StopKind, Unassigned

#: A distance or time in the source's units (an integer, or a decimal when the divisor is > 1).
SourceValue = Annotated[float, Field(ge=0.0)]


class RouteOutputUnits(StrictModel):
    """How the file's numbers convert back: metres = distance x divisor, seconds likewise."""

    distance_divisor: PosInt = 1
    time_divisor: PosInt = 1


class RouteOutputStop(StrictModel):
    """One stop of the route output: a pickup/delivery, or a break (``start`` to ``end``)."""

    kind: StopKind = StopKind.DELIVERY
    order_id: Id | None = Field(default=None, description="the visited task as in the file")
    order: Id | None = Field(default=None, description="the order (job) the task belongs to")
    arrival: SourceValue | None = None
    start: SourceValue
    departure: SourceValue | None = None
    end: SourceValue | None = Field(default=None, description="end of a break")
    break_index: NonNegInt | None = Field(
        default=None,
        description="a break: the index in its vehicle's breaks of the break it takes",
    )
    load_after: list[int] = Field(default_factory=list)
    pinned: bool = False


class RouteOutputRoute(StrictModel):
    """One route of the route output."""

    vehicle_id: Id
    start: SourceValue = 0
    end: SourceValue = 0
    distance: SourceValue = 0
    cost_cents: NonNegInt = 0
    stops: list[RouteOutputStop] = Field(default_factory=list)


class RouteOutput(StrictModel):
    """The plan JSON of ``dispatchlab route --out`` (see docs/routing.md, "Plan JSON")."""

    instance: str | None = None
    status: PlanStatus = PlanStatus.FEASIBLE
    time_limited: bool = Field(default=False, description=TIME_LIMITED_DESCRIPTION)
    engine: str | None = None
    seed: int | None = None
    runtime_s: SourceValue = 0.0
    distance: SourceValue = 0
    num_vehicles: NonNegInt = 0
    cost_cents: int = 0
    units: RouteOutputUnits
    routes: list[RouteOutputRoute] = Field(default_factory=list)
    unassigned: list[Unassigned] = Field(default_factory=list)

    def to_plan(self) -> Plan:
        """The Plan in seconds and metres (every value rounded back to its integer).

        Raises InputError naming the field of a stop that lacks what its kind needs, and
        pydantic's ValidationError (``routes.{r}.stops.{s}.start_s``...) for a value the Plan
        cannot take.
        """
        ddiv, tdiv = self.units.distance_divisor, self.units.time_divisor

        def secs(value: float) -> int:
            return round(value * tdiv)

        routes: list[dict[str, Any]] = []
        for r, route in enumerate(self.routes):
            stops: list[dict[str, Any]] = []
            for s, st in enumerate(route.stops):
                where = f"routes.{r}.stops.{s}"
                if st.kind is StopKind.BREAK:
                    end = st.end if st.end is not None else st.departure
                    if end is None:
                        raise InputError(f"{where}.end", "Field required")
                    # as written (since session 61), else the load of the stop before (a
                    # break before the first stop: the start load, not known here)
                    load = st.load_after or (list(stops[-1]["load_after"]) if stops else [])
                    stops.append(
                        {
                            "kind": StopKind.BREAK,
                            "arrival_s": secs(st.start),
                            "start_s": secs(st.start),
                            "departure_s": secs(end),
                            "load_after": list(load),
                            "break_index": st.break_index,
                        }
                    )
                    continue
                order = st.order or st.order_id
                if order is None:
                    raise InputError(f"{where}.order", "a pickup or delivery needs an order")
                if st.break_index is not None:
                    raise InputError(
                        f"{where}.break_index",
                        f"names a vehicle break, which only a break stop takes (this stop is a "
                        f"{st.kind.value})",
                    )
                if st.departure is None:
                    raise InputError(f"{where}.departure", "Field required")
                stops.append(
                    {
                        "order_id": order,
                        "kind": st.kind,
                        "task_id": st.order_id,
                        "arrival_s": secs(st.arrival if st.arrival is not None else st.start),
                        "start_s": secs(st.start),
                        "departure_s": secs(st.departure),
                        "load_after": st.load_after,
                        "pinned": st.pinned,
                    }
                )
            start_s, end_s = secs(route.start), secs(route.end)
            routes.append(
                {
                    "vehicle_id": route.vehicle_id,
                    "stops": stops,
                    "start_s": start_s,
                    "end_s": end_s,
                    "distance_m": round(route.distance * ddiv),
                    "duration_s": max(0, end_s - start_s),
                    "cost_cents": route.cost_cents,
                }
            )
        return Plan.model_validate(
            {
                "status": self.status,
                "time_limited": self.time_limited,
                "routes": routes,
                "unassigned": self.unassigned,
                "distance_m": round(self.distance * ddiv),
                "cost_cents": self.cost_cents,
                "engine": self.engine,
                "runtime_s": self.runtime_s,
                "seed": self.seed,
            }
        )


def is_route_output(text: str | bytes) -> bool:
    """True when ``text`` is a JSON object in the route output format (it has ``units``)."""
    try:
        data = loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "units" in data


def plan_from_json(text: str | bytes, *, source: str | None = None) -> Plan:
    """A Plan from a ``Plan`` JSON or from the route output; bad input names the field."""
    if is_route_output(text):
        route_output = from_json(RouteOutput, text, source=source)
        try:
            return route_output.to_plan()
        except InputError as err:
            raise InputError(err.field, err.reason, source=source) from None
        except ValidationError as err:
            raise input_error_from_validation(err, source=source) from None
    return from_json(Plan, text, source=source)


def read_plan(path: str | Path) -> Plan:
    """Read a plan file: ``Plan`` JSON or the output of ``dispatchlab route --out``."""
    return plan_from_json(read_bytes(path), source=str(path))
