"""Request limits that need the parsed body: orders per request, time limits, unsafe fields."""

from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Any, Protocol

from fastapi import HTTPException

from api.core.config import Settings
from scenarios.errors import InputError, fields_under
from scenarios.model import Scenario
from scenarios.travel import RoadNetworkTravel
from solvers.routing.params import RoutingParams

MAX_GRID_NODES_HTTP = 250_000


class _HasLines(Protocol):
    """An order with lines (of a scenario, or of an allocation request)."""

    @property
    def lines(self) -> Sized:
        """Its order lines."""
        ...


class _Windowed(Protocol):
    """A pickup (or an order) with time windows."""

    @property
    def time_windows(self) -> Sized:
        """Its time windows."""
        ...


class _OrderLike(_Windowed, Protocol):
    """An order: its time windows, skills and pickup (a scenario's, or its JSON)."""

    @property
    def required_skills(self) -> Sized:
        """The skills it needs."""
        ...

    @property
    def pickup(self) -> _Windowed | None:
        """Its pickup, if it has one."""
        ...


class _VehicleLike(Protocol):
    """A vehicle: its breaks and skills (a scenario's, or its JSON)."""

    @property
    def breaks(self) -> Sized:
        """Its breaks."""
        ...

    @property
    def skills(self) -> Sized:
        """Its skills."""
        ...


def check_windows_and_breaks(
    settings: Settings,
    *,
    orders: tuple[str, Iterable[_OrderLike]] | None = None,
    vehicles: tuple[str, Iterable[_VehicleLike]] | None = None,
) -> None:
    """422 naming the field when an order (or its pickup) has more time windows than
    ``max_time_windows``, or a vehicle more breaks than ``max_breaks``, or either more
    skills than ``max_skills``: each a (field, items) pair, None when not checked.

    None was counted: a request of 300,000 windows on one order (or breaks on one
    vehicle) fit in the body limit and held a worker while the solver modelled each one;
    a million skills on one courier (10 MB) held a synchronous route of a 1 s limit 10 s.
    """
    if orders is not None:
        most = settings.max_time_windows
        for i, order in enumerate(orders[1]):
            n = len(order.time_windows)
            pickup = order.pickup
            if n > most:
                raise InputError(
                    f"{orders[0]}.{i}.time_windows",
                    f"{n} time windows; at most {most} per order (max_time_windows)",
                )
            if pickup is not None and len(pickup.time_windows) > most:
                raise InputError(
                    f"{orders[0]}.{i}.pickup.time_windows",
                    f"{len(pickup.time_windows)} time windows; at most {most} per pickup "
                    "(max_time_windows)",
                )
            if len(order.required_skills) > settings.max_skills:
                raise InputError(
                    f"{orders[0]}.{i}.required_skills",
                    f"{len(order.required_skills)} skills; at most {settings.max_skills} per "
                    "order (max_skills)",
                )
    if vehicles is not None:
        most = settings.max_breaks
        for i, vehicle in enumerate(vehicles[1]):
            if len(vehicle.breaks) > most:
                raise InputError(
                    f"{vehicles[0]}.{i}.breaks",
                    f"{len(vehicle.breaks)} breaks; at most {most} per vehicle (max_breaks)",
                )
            if len(vehicle.skills) > settings.max_skills:
                raise InputError(
                    f"{vehicles[0]}.{i}.skills",
                    f"{len(vehicle.skills)} skills; at most {settings.max_skills} per vehicle "
                    "(max_skills)",
                )


def check_orders(settings: Settings, scenario: Scenario, *, field: str, sync: bool) -> None:
    """413 when the request holds more orders than allowed (fewer for synchronous answers)."""
    check_order_count(settings, len(scenario.orders), field=field, sync=sync)


def check_order_count(settings: Settings, n: int, *, field: str, sync: bool) -> None:
    """413 when ``n`` orders are more than allowed (fewer for synchronous answers)."""
    if n > settings.max_orders:
        raise HTTPException(413, f"{field}: {n} orders; at most {settings.max_orders} per request")
    if sync and n > settings.max_orders_sync:
        raise HTTPException(
            413,
            f"{field}: {n} orders; at most {settings.max_orders_sync} in a synchronous "
            f"request (send mode 'async' or 'auto' for a job)",
        )


def check_size(
    settings: Settings,
    *,
    nodes: tuple[str, int] | None = None,
    lines: tuple[str, Iterable[_HasLines]] | None = None,
    vehicles: tuple[str, int] | None = None,
    capacity_dims: tuple[str, int] | None = None,
) -> None:
    """422 naming the field when a request holds more fulfilment nodes, order lines (all
    orders together), vehicles or capacity dimensions than the service takes (``max_nodes``,
    ``max_order_lines``, ``max_vehicles``, ``max_capacity_dims``): each a (field, count or
    orders) pair, None when not checked.

    Only the orders were counted: one request of 100,000 nodes, or one order of 300,000
    lines, fit in the body limit and held a worker for as long as it took to compile; so
    did a scenario of thousands of capacity dimensions (one routing dimension each).
    """
    if capacity_dims is not None and capacity_dims[1] > settings.max_capacity_dims:
        raise InputError(
            capacity_dims[0],
            f"{capacity_dims[1]} capacity dimensions; at most {settings.max_capacity_dims} "
            "per scenario (max_capacity_dims)",
        )
    if nodes is not None and nodes[1] > settings.max_nodes:
        raise InputError(
            nodes[0],
            f"{nodes[1]} nodes; at most {settings.max_nodes} per request (max_nodes)",
        )
    if lines is not None:
        total = sum(len(order.lines) for order in lines[1])
        if total > settings.max_order_lines:
            raise InputError(
                lines[0],
                f"{total} order lines in all; at most {settings.max_order_lines} per "
                "request (max_order_lines)",
            )
    if vehicles is not None and vehicles[1] > settings.max_vehicles:
        raise InputError(
            vehicles[0],
            f"{vehicles[1]} vehicles; at most {settings.max_vehicles} per request (max_vehicles)",
        )


def check_arrivals(settings: Settings, scenario: Scenario, *, field: str) -> None:
    """413 when the twin would play more orders than allowed: the listed ones plus those its
    arrival process is expected to add over the horizon (surge factors above 1 included), or
    when the process has more templates than ``max_orders``.

    A few bytes of ``hourly_rate`` and ``surges`` asked for hundreds of millions of orders
    per simulated day, which the job drew into memory until the machine ran out.
    """
    arrivals = scenario.arrivals
    if arrivals is None:
        return
    if len(arrivals.templates) > settings.max_orders:  # compiled by the twin like orders
        raise HTTPException(
            413,
            f"{field}.arrivals.templates: {len(arrivals.templates)} templates; at most "
            f"{settings.max_orders} per request",
        )
    expected = arrivals.expected_arrivals(scenario.horizon.start_s, scenario.horizon.end_s)
    n = len(scenario.orders)
    if n + expected > settings.max_orders:
        raise HTTPException(
            413,
            f"{field}.arrivals: {n} orders and about {expected:.4g} arrivals over the horizon; "
            f"at most {settings.max_orders} orders per request",
        )


def check_scenario_lists(
    settings: Settings, scenario: Scenario, *, field: str, nodes_and_lines: bool = True
) -> None:
    """422 naming the field when ``scenario`` holds more nodes, order lines, vehicles or
    capacity dimensions (:func:`check_size`), or more time windows per order or breaks per
    vehicle (:func:`check_windows_and_breaks`), than the service takes; ``nodes_and_lines``
    False leaves its nodes and order lines to the caller's own checks."""
    check_size(
        settings,
        nodes=(f"{field}.nodes", len(scenario.nodes)) if nodes_and_lines else None,
        lines=(f"{field}.orders", scenario.orders) if nodes_and_lines else None,
        vehicles=(f"{field}.vehicles", len(scenario.vehicles)),
        capacity_dims=(f"{field}.capacity_dims", len(scenario.capacity_dims)),
    )
    check_windows_and_breaks(
        settings,
        orders=(f"{field}.orders", scenario.orders),
        vehicles=(f"{field}.vehicles", scenario.vehicles),
    )


def check_played_scenario(settings: Settings, scenario: Scenario, *, field: str) -> None:
    """422/413 for a scenario the twin plays in a job: fields a remote caller may not use,
    more orders than a job may hold, or more arrivals (see :func:`check_arrivals`), or no
    orders and no arrivals at all; more nodes, order lines or vehicles than a request may
    hold, or capacity dimensions than a scenario may (:func:`check_size`, before anything
    walks them), more time windows per order or breaks per vehicle
    (:func:`check_windows_and_breaks`)."""
    check_scenario_lists(settings, scenario, field=field)
    if scenario.arrivals is not None:  # drawn by the twin as orders
        check_windows_and_breaks(
            settings, orders=(f"{field}.arrivals.templates", scenario.arrivals.templates)
        )
    check_scenario(scenario, field=field)
    check_orders(settings, scenario, field=f"{field}.orders", sync=False)
    check_arrivals(settings, scenario, field=field)
    check_twin_input(scenario, field=field)
    from simulation import world

    try:  # a day without orders: the job played days of zeros
        world.check_has_demand(scenario, why=world.NOTHING_TO_PLAY)
    except InputError as err:
        raise InputError(f"{field}.{err.field}", err.reason) from None


def check_twin_input(scenario: Scenario, *, field: str) -> None:
    """422 for a day the twin cannot play (arrivals with no order to draw them from, a node
    outage at a node the scenario lacks): the job refused it, after the 202."""
    from simulation import world

    try:
        world.check_twin_input(scenario)
    except InputError as err:
        raise InputError(f"{field}.{err.field}", err.reason) from None


def check_time_limit(settings: Settings, time_limit_s: float, *, field: str) -> None:
    """422 when a time limit is above the cap."""
    if time_limit_s > settings.max_time_limit_s:
        raise InputError(
            field, f"at most {settings.max_time_limit_s:g} s is accepted (got {time_limit_s:g})"
        )


def check_scenario(scenario: Scenario, *, field: str) -> None:
    """422 for scenario features a remote caller may not use (server file paths, huge grids,
    a skill the planners reserve for themselves, :func:`~scenarios.skills.reserved_skill`)."""
    from scenarios.skills import check_no_reserved_skills

    check_no_reserved_skills(scenario, under=field)
    travel = scenario.travel
    if isinstance(travel, RoadNetworkTravel):
        if travel.graphml_path is not None:
            raise InputError(
                f"{field}.travel.graphml_path",
                "server file paths are not accepted over HTTP; send a grid or a matrix",
            )
        if travel.grid is not None and travel.grid.rows * travel.grid.cols > MAX_GRID_NODES_HTTP:
            raise InputError(
                f"{field}.travel.grid",
                f"at most {MAX_GRID_NODES_HTTP} grid intersections over HTTP",
            )


def check_initial_plan(params: RoutingParams, scenario: Scenario, *, field: str) -> None:
    """422 for a warm start naming a vehicle the scenario lacks, or one vehicle twice, or a
    break its vehicle lacks, with its path from the root: the router's own checks (see
    :func:`~solvers.routing.solve.check_route_vehicles` and ``check_route_breaks``), before
    anything is queued.

    The solver raised it as ``initial_plan.routes.{r}.vehicle_id``, without the request's
    ``params.`` (a 422 when answered now, a failed job after a 202 otherwise).
    """
    from solvers.routing.solve import check_route_breaks, check_route_vehicles

    if params.initial_plan is None:
        return
    with fields_under(field):
        check_route_vehicles(params.initial_plan, {v.id for v in scenario.vehicles})
        check_route_breaks(params.initial_plan, scenario)


def check_initial_stops(params: RoutingParams, scenario: Scenario, *, field: str) -> None:
    """422 for a warm start's stop naming an order the scenario lacks, a pickup of an order
    without one, or a task an earlier stop visits, with its path from the root: the router's
    own checks, before anything is queued (an async request was accepted, 202, and its job
    then failed on them). For ``/v1/routes``, whose scenario's orders are the courier jobs;
    a plan's warm start names jobs made by its allocation."""
    from scenarios.plan import StopKind
    from solvers.routing.solve import _check_known_stops, _check_unique_visits

    if params.initial_plan is None:
        return
    tasks: set[tuple[str | None, StopKind]] = {(o.id, StopKind.DELIVERY) for o in scenario.orders}
    tasks.update((o.id, StopKind.PICKUP) for o in scenario.orders if o.pickup is not None)
    with fields_under(field):
        _check_known_stops(params.initial_plan, scenario)
        _check_unique_visits(params.initial_plan, tasks)


def check_engine(params: RoutingParams, scenario: Scenario, *, field: str) -> None:
    """422 for an engine asked for by name that cannot model the scenario's orders or the
    warm start (PyVRP: several time windows for one stop; pinned stops, or a disruption cost
    with a warm start, :func:`~solvers.routing.solve.pyvrp_warm_start_refusal`), in the
    router's words, before anything is queued: an async request was accepted (202) and its
    job then failed on it."""
    from solvers.routing.solve import pyvrp_warm_start_refusal

    if params.engine != "pyvrp":
        return
    refused = pyvrp_warm_start_refusal(params)
    if refused is not None:
        raise InputError(f"{field}.engine", refused)
    for order in scenario.orders:
        pickup = order.pickup.time_windows if order.pickup is not None else []
        if len(order.time_windows) > 1 or len(pickup) > 1:
            raise InputError(
                f"{field}.engine",
                "pyvrp cannot model several time windows per stop; use engine 'ortools' or 'auto'",
            )


def check_routing_range(scenario: Scenario, *, field: str) -> None:
    """422 for a scenario some plan of which could cost more than the routing engines count
    in 64-bit integers (:func:`~solvers.routing.problem.check_int_range`, the router's check
    and words), before anything is queued: an async request was accepted (202) and its job
    then failed on it. The exact check needs the travel matrix: it runs only when a bound
    read from the scenario alone (:func:`~solvers.routing.problem.quick_objective_bound`)
    passes the limit; since session 63 for a road network too (its graph bounds every
    fastest path: it was not checked)."""
    from solvers.routing.problem import ENGINE_INT_LIMIT, build_problem, quick_objective_bound

    if quick_objective_bound(scenario) <= ENGINE_INT_LIMIT:
        return
    with fields_under(field):
        build_problem(scenario)


def wants_sync(
    settings: Settings, mode: str, *, time_limit_s: float, num_orders: int, field: str
) -> bool:
    """Whether to answer now (``auto``: when the limit and size allow it) or with a job."""
    if mode == "async":
        return False
    small = num_orders <= settings.max_orders_sync
    quick = time_limit_s <= settings.max_sync_time_limit_s
    if mode == "sync":
        if not quick:
            raise InputError(
                field,
                f"synchronous solves take at most {settings.max_sync_time_limit_s:g} s; "
                f"send mode 'async' or 'auto' for a job",
            )
        return True
    return small and quick


def check_replications(settings: Settings, replications: int, *, field: str) -> None:
    """422 when more replications are asked than allowed."""
    if replications > settings.max_replications:
        raise InputError(field, f"at most {settings.max_replications} replications are accepted")


def check_simulated_days(settings: Settings, days: int, *, field: str, counted: str) -> None:
    """422 when a study would play more than ``max_whatif_runs`` days (``counted``: of what)."""
    if days > settings.max_whatif_runs:
        raise InputError(
            field, f"{days} simulated days ({counted}); at most {settings.max_whatif_runs}"
        )


class _RawItem:
    """An order, pickup or vehicle of a request body as parsed JSON (not yet validated),
    seen by the counting checks: its lists, empty where it has none (or not a list: the
    body's validation names that)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw if isinstance(raw, dict) else {}

    def _list(self, key: str) -> list[Any]:
        value = self._raw.get(key)
        return value if isinstance(value, list) else []

    @property
    def lines(self) -> list[Any]:
        """Its order lines."""
        return self._list("lines")

    @property
    def time_windows(self) -> list[Any]:
        """Its time windows."""
        return self._list("time_windows")

    @property
    def breaks(self) -> list[Any]:
        """Its breaks."""
        return self._list("breaks")

    @property
    def required_skills(self) -> list[Any]:
        """The skills it needs."""
        return self._list("required_skills")

    @property
    def skills(self) -> list[Any]:
        """Its skills."""
        return self._list("skills")

    @property
    def pickup(self) -> _RawItem | None:
        """Its pickup, if it has one."""
        value = self._raw.get("pickup")
        return _RawItem(value) if isinstance(value, dict) else None


def _raw_list(part: Any, key: str) -> list[Any] | None:
    """``part[key]`` when ``part`` is an object and that is a list, else None."""
    value = part.get(key) if isinstance(part, dict) else None
    return value if isinstance(value, list) else None


#: the POST endpoints whose body holds a scenario (``scenario``) the service routes or plays
_SCENARIO_PATHS = {
    "/v1/routes": "routes",
    "/v1/plans": "plans",
    "/v1/simulations": "played",
    "/v1/simulations/compare": "played",
    "/v1/whatif": "played",
    "/v1/policies/evaluate": "played",
}


def check_body_counts(settings: Settings, method: str, path: str, body: Any) -> None:
    """The counting limits of a POST body, checked on its parsed JSON before its models are
    validated: the same 413 or 422 its endpoint's own checks give (:func:`check_size`,
    :func:`check_windows_and_breaks`, :func:`check_order_count` past ``max_orders``), for the
    lists past their cap; nothing for any other body (its endpoint checks it, whole).

    The checks ran on the validated body only: a body of 60,000 orders (7 MB, under the body
    limit) was validated whole, 2.4 s of a worker, before its 413 said 10,000 at most.
    """
    if method != "POST" or not isinstance(body, dict):
        return
    if path == "/v1/allocations":
        request = body.get("request")
        orders = _raw_list(request, "orders")
        nodes = _raw_list(request, "nodes")
        if orders is not None and len(orders) > settings.max_orders:  # its endpoint's first
            check_order_count(settings, len(orders), field="request.orders", sync=False)
        check_size(
            settings,
            nodes=("request.nodes", len(nodes)) if nodes is not None else None,
            lines=("request.orders", map(_RawItem, orders)) if orders is not None else None,
        )
        return
    if path.startswith("/v1/plans/") and path.endswith("/reoptimise"):
        new = _raw_list(body, "new_orders")
        if new is not None:
            if len(new) > settings.max_orders:  # with the stored plan's, more still
                check_order_count(settings, len(new), field="new_orders", sync=False)
            check_size(settings, lines=("new_orders", map(_RawItem, new)))
            check_windows_and_breaks(settings, orders=("new_orders", map(_RawItem, new)))
        return
    kind = _SCENARIO_PATHS.get(path)
    scenario = body.get("scenario")
    if kind is None or not isinstance(scenario, dict):
        return
    orders = _raw_list(scenario, "orders")
    nodes = _raw_list(scenario, "nodes")
    vehicles = _raw_list(scenario, "vehicles")
    dims = _raw_list(scenario, "capacity_dims")
    check_size(
        settings,
        nodes=("scenario.nodes", len(nodes)) if nodes is not None and kind != "routes" else None,
        lines=(
            ("scenario.orders", map(_RawItem, orders))
            if orders is not None and kind != "routes"
            else None
        ),
        vehicles=("scenario.vehicles", len(vehicles)) if vehicles is not None else None,
        capacity_dims=("scenario.capacity_dims", len(dims)) if dims is not None else None,
    )
    check_windows_and_breaks(
        settings,
        orders=("scenario.orders", map(_RawItem, orders)) if orders is not None else None,
        vehicles=("scenario.vehicles", map(_RawItem, vehicles)) if vehicles is not None else None,
    )
    if orders is not None and len(orders) > settings.max_orders:
        check_order_count(settings, len(orders), field="scenario.orders", sync=False)
