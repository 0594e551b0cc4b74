"""routing_scenario_from_allocation: one pickup-and-delivery job per (order, node) shipment."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from scenarios import (
    AllocationLine,
    FulfilmentNode,
    InputError,
    Location,
    Order,
    OrderLine,
    Scenario,
    TimeWindow,
    UnassignedReason,
    Vehicle,
)
from scenarios.errors import ScenarioInputError
from scenarios.geo import MAX_ID_LENGTH, MAX_INT
from simulation.twin import order_of_task
from solvers.routing import RoutingParams, routing_scenario_from_allocation, solve_routes
from solvers.routing.from_allocation import (
    MAX_TASK_ID,
    _split_demand,
    job_id_clash,
    node_id_clash,
    order_of_job,
    own_task_clash,
    task_id_too_long,
    task_ids,
)
from solvers.validate import validate_plan
from tests.solvers.routing.conftest import unhurried


@pytest.fixture()
def shop() -> Scenario:
    return Scenario(
        nodes=[
            FulfilmentNode(
                id="dc",
                location=Location(x=0, y=0),
                processing_s=600,
                opening_hours=[TimeWindow(start_s=3600, end_s=20_000)],
            ),
            FulfilmentNode(id="store", location=Location(x=2000, y=0)),
        ],
        orders=[
            Order(
                id="A",
                location=Location(x=1000, y=1000),
                lines=[OrderLine(sku="s1", quantity=2), OrderLine(sku="s2", quantity=1)],
                time_windows=[TimeWindow(start_s=3600, end_s=30_000)],
            ),
            Order(
                id="B", location=Location(x=3000, y=500), lines=[OrderLine(sku="s1", quantity=1)]
            ),
        ],
        vehicles=[Vehicle(id="v", start_location=Location(x=0, y=0), capacity=[10])],
    )


def test_one_job_per_shipment(shop: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    allocation = [
        AllocationLine(order_id="A", sku="s1", node_id="dc", quantity=2),
        AllocationLine(order_id="A", sku="s2", node_id="store", quantity=1),
        AllocationLine(order_id="B", sku="s1", node_id="store", quantity=1),
    ]
    s = routing_scenario_from_allocation(shop, allocation)
    jobs = {o.id: o for o in s.orders}
    assert set(jobs) == {"A@dc", "A@store", "B"}
    dc_job = jobs["A@dc"]
    assert dc_job.pickup is not None
    assert dc_job.pickup.location == Location(x=0, y=0)
    assert dc_job.pickup.time_windows == [TimeWindow(start_s=3600, end_s=20_000)]
    assert dc_job.demand == [2]
    assert dc_job.time_windows == shop.orders[0].time_windows
    assert jobs["A@store"].demand == [1]
    assert jobs["B"].pickup is not None and jobs["B"].pickup.time_windows[0].start_s == 0
    # PyVRP's plan on any machine (at 0.3 s a loaded one could leave it no time to start)
    plan = solve_routes(s, RoutingParams(**unhurried(monkeypatch)))
    assert plan.engine == "pyvrp"
    assert validate_plan(s, plan).ok
    assert not plan.unassigned


def test_processing_time_delays_the_pickup(shop: Scenario) -> None:
    late = shop.model_copy(
        update={"orders": [shop.orders[0].model_copy(update={"created_s": 19_500}), shop.orders[1]]}
    )
    s = routing_scenario_from_allocation(
        late, [AllocationLine(order_id="A", sku="s1", node_id="dc", quantity=2)]
    )
    assert s.orders[0].pickup is not None
    # ready at 19,500 + 600 = 20,100, after the DC closes at 20,000: a window that cannot be met
    assert s.orders[0].pickup.time_windows == [TimeWindow(start_s=20_100, end_s=20_100)]


@pytest.mark.parametrize("engine", ["greedy", "ortools", "pyvrp"])
def test_a_parcel_ready_after_its_node_closed_for_good_is_not_picked_up(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node is open 0-3,600 s; the order comes at 7,200 s: the pickup was planned at
    7,800 s, at a closed node."""
    s = Scenario(
        nodes=[
            FulfilmentNode(
                id="dc",
                location=Location(x=0, y=0),
                processing_s=600,
                opening_hours=[TimeWindow(start_s=0, end_s=3600)],
            )
        ],
        orders=[
            Order(
                id="late",
                location=Location(x=1000, y=0),
                created_s=7200,
                lines=[OrderLine(sku="s1", quantity=1)],
            ),
            Order(
                id="early",
                location=Location(x=0, y=1000),
                lines=[OrderLine(sku="s1", quantity=1)],
            ),
        ],
        vehicles=[Vehicle(id="v", start_location=Location(x=0, y=0), capacity=[10])],
    )
    allocation = [
        AllocationLine(order_id=o, sku="s1", node_id="dc", quantity=1) for o in ("late", "early")
    ]
    jobs = routing_scenario_from_allocation(s, allocation)
    # the engine's plan on any machine (at 0.3 s a loaded one could leave it no time to start)
    plan = solve_routes(jobs, RoutingParams(engine=engine, seed=1, **unhurried(monkeypatch)))
    assert plan.engine == engine
    assert validate_plan(jobs, plan).ok
    assert [st.order_id for r in plan.routes for st in r.stops] == ["early", "early"]
    [left] = plan.unassigned
    assert left.order_id == "late" and left.reason is UnassignedReason.NODE_CLOSED
    assert left.detail.startswith("node dc is closed when the pickup can happen (7800-7800 s)")


def test_unknown_references_name_the_field(shop: Scenario) -> None:
    with pytest.raises(InputError, match=r"allocation\.0\.node_id"):
        routing_scenario_from_allocation(
            shop, [AllocationLine(order_id="A", sku="s1", node_id="nowhere", quantity=1)]
        )
    with pytest.raises(InputError, match=r"allocation\.0\.order_id"):
        routing_scenario_from_allocation(
            shop, [AllocationLine(order_id="Z", sku="s1", node_id="dc", quantity=1)]
        )


def test_a_split_order_demand_vector_adds_up_over_its_jobs(shop: Scenario) -> None:
    """One unit from each node of a 2-unit order weighing [1, 3]: was [0, 2] + [0, 2]."""
    s = shop.model_copy(
        update={
            "capacity_dims": ["units", "kg"],
            "orders": [
                shop.orders[1].model_copy(
                    update={"lines": [OrderLine(sku="s1", quantity=2)], "demand": [1, 3]}
                )
            ],
            "vehicles": [shop.vehicles[0].model_copy(update={"capacity": [10, 10]})],
        }
    )
    allocation = [
        AllocationLine(order_id="B", sku="s1", node_id="dc", quantity=1),
        AllocationLine(order_id="B", sku="s1", node_id="store", quantity=1),
    ]
    jobs = {o.id: o.demand for o in routing_scenario_from_allocation(s, allocation).orders}
    assert jobs == {"B@dc": [1, 2], "B@store": [0, 1]}  # ties go to the first node


@settings(max_examples=200, deadline=None)
@given(
    demand=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=3),
    units=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=4),
    unshipped=st.integers(min_value=0, max_value=5),
)
def test_split_demand_adds_up_and_each_part_is_its_share_rounded(
    demand: list[int], units: list[int], unshipped: int
) -> None:
    total_units = sum(units) + unshipped
    parts = _split_demand(demand, units, total_units)
    for d, q in enumerate(demand):
        exact = [Fraction(q * u, total_units) for u in units]
        assert sum(p[d] for p in parts) == round(sum(exact, Fraction(0)))
        assert all(math.floor(x) <= p[d] <= math.ceil(x) for p, x in zip(parts, exact, strict=True))
    if not unshipped:
        assert [sum(p[d] for p in parts) for d in range(len(demand))] == demand


def test_each_job_names_its_order(shop: Scenario) -> None:
    """Job ids map back to order ids, also when an id holds an ``@``."""
    orders = [*shop.orders, shop.orders[1].model_copy(update={"id": "B@store"})]
    s = shop.model_copy(update={"orders": orders})
    allocation = [
        AllocationLine(order_id="A", sku="s1", node_id="dc", quantity=2),
        AllocationLine(order_id="A", sku="s2", node_id="store", quantity=1),
        AllocationLine(order_id="B@store", sku="s1", node_id="dc", quantity=1),
    ]
    jobs = routing_scenario_from_allocation(s, allocation)
    assert [j.id for j in jobs.orders] == ["A@dc", "A@store", "B@store"]
    assert [order_of_job(s, j.id) for j in jobs.orders] == ["A", "A", "B@store"]
    assert order_of_job(s, "C@dc") is None


@pytest.mark.parametrize(
    ("order_ids", "place", "reason"),
    [
        (["A", "B", "A@dc"], 2, "id 'A@dc' is the id of the courier job of order 'A' shipped "
         "from node 'dc' (when it ships from several nodes): rename it"),
        (["A@dc", "B", "A"], 2, "the courier job of order 'A' shipped from node 'dc' (when it "
         "ships from several nodes) would have the id of order 'A@dc': rename it"),
        (["A@x@dc", "A@x"], 1, "the courier job of order 'A@x' shipped from node 'dc'"),
        (["A", "A@elsewhere", "B@dc", "A@"], None, ""),
        # the pickup of a job is <job id>:pickup@<node>
        (["A", "A:pickup@dc"], 1, "id 'A:pickup@dc' is the id of the pickup of order 'A' at "
         "node 'dc' (when it ships from it alone): rename it"),
        (["A@store:pickup@store", "A"], 1, "the pickup of order 'A' at node 'store' (when it "
         "ships from several nodes) would have the id of order 'A@store:pickup@store': rename "
         "it"),
        # two derived ids: job 'A:pickup@dc' of order 'A:pickup', the pickup of A at dc
        (["A", "B", "A:pickup"], 2, "the courier job of order 'A:pickup' shipped from node "
         "'dc' (when it ships from several nodes) would have the id of the pickup of order 'A' "
         "at node 'dc' (when it ships from it alone): rename it"),
        (["A:pickup", "A"], 1, "the pickup of order 'A' at node 'dc' (when it ships from it "
         "alone) would have the id of the courier job of order 'A:pickup' shipped from node "
         "'dc'"),
        (["A", "A:pickup@", "A:pickup@elsewhere", "A@dc:pickup@store", "1", "10", "A:x"],
         None, ""),
    ],
)  # fmt: skip
def test_an_order_id_that_is_another_orders_task_id_is_found(
    order_ids: list[str], place: int | None, reason: str
) -> None:
    """Order A shipped from dc and store is jobs ``A@dc`` and ``A@store`` (their pickups
    ``A@dc:pickup@dc``...; shipped from dc alone, job ``A`` and pickup ``A:pickup@dc``): an
    order ``A@dc`` made two jobs of one id, and the plan failed validation (every order
    unserved); an order ``A:pickup@dc`` a job and a pickup of one id."""
    clash = job_id_clash(order_ids, ["dc", "store", "dc"])
    if place is None:
        assert clash is None
    else:
        assert clash is not None and clash[0] == place and clash[1].startswith(reason)


@pytest.mark.parametrize(
    ("node_ids", "place"),
    [
        (["m", "m:pickup@m"], 1),
        (["m:pickup@m", "m"], 0),
        (["dc", "store", "dc:pickup@dc"], 2),
        (["m", "m:pickup@n", "n:pickup@m", "m:pickup@", ":pickup@", ":pickup@:pickup@"], None),
        (["m:pickup@m"], None),  # no node m: the one node's tasks differ
    ],
)
def test_a_node_id_that_gives_two_tasks_of_one_order_one_id_is_found(
    node_ids: list[str], place: int | None
) -> None:
    """Nodes ``m`` and ``m:pickup@m``: order A shipped from both had the job ``A@m:pickup@m``
    (from node ``m:pickup@m``) and the pickup ``A@m:pickup@m`` (of its job from ``m``); no
    check between orders saw it, one order alone makes the clash."""

    clash = node_id_clash(node_ids)
    if place is None:
        assert clash is None
    else:
        assert clash is not None and clash[0] == place
        assert clash[1].startswith(f"id {node_ids[place]!r} is node ")
        assert clash[1].endswith(": rename it")


def test_the_node_clash_is_refused_when_the_jobs_are_built() -> None:
    """What the check refuses would give two tasks of one id (the job of A from node
    ``m:pickup@m`` and the pickup of its job from ``m``, both ``A@m:pickup@m``): the API
    refused such node ids, but routing_scenario_from_allocation built the two tasks for any
    other caller. It refuses the node id itself now, whatever the allocation ships."""
    s = _id_scenario(["A"], ["m", "m:pickup@m"])
    both = [
        AllocationLine(order_id="A", sku="s", node_id=n, quantity=1) for n in ("m", "m:pickup@m")
    ]
    for allocation in (both, both[:1], []):
        with pytest.raises(ScenarioInputError) as err:
            routing_scenario_from_allocation(s, allocation)
        assert err.value.field == "nodes.1.id"
        assert err.value.reason == node_id_clash(["m", "m:pickup@m"])[1]  # type: ignore[index]


#: pieces of ids: the separators and the word of the task ids, and a few plain characters
_PIECES = st.sampled_from(["@", ":", "pickup", ":pickup@", "a", "b"])
_ATOMS = st.lists(_PIECES, min_size=1, max_size=3).map("".join)


def _own_pickups(
    data: st.DataObject, order_ids: list[str], node_ids: list[str]
) -> dict[str, str | None] | None:
    """Some orders' own pickup ids (None: the default ``<order>:pickup``), drawn from the same
    pieces; None where the scenario would refuse them (order and pickup ids all distinct)."""
    own: dict[str, str | None] = {
        o: data.draw(st.none() | st.sampled_from([*order_ids, *node_ids]) | _ATOMS, label=o)
        for o in data.draw(st.lists(st.sampled_from(order_ids), unique=True), label="own")
    }
    own_tasks = [t for o, p in own.items() for t in (o, f"{o}:pickup" if p is None else p)]
    if len(own_tasks) != len(set(own_tasks)) or set(own_tasks) & (set(order_ids) - set(own)):
        return None
    if any(p is None and len(f"{o}:pickup") > MAX_ID_LENGTH for o, p in own.items()):
        return None  # the default pickup id would be too long: refused
    return own


_SEPARATORS = st.sampled_from(["@", ":pickup@", ":", ""])


@st.composite
def _derived_ids(draw: st.DrawFn, pool: list[str], size: int) -> list[str]:
    """Up to ``size`` distinct ids: from ``pool`` (or new), some of them two ids of the pool
    joined by a separator, or an id, '@', another and ':pickup@' and that one again (the
    forms of the task ids, where clashes are)."""
    out: list[str] = []
    for _ in range(draw(st.integers(1, size))):
        kind = draw(st.sampled_from(["atom", "pool", "joined", "pickup"]))
        a, b = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
        if kind == "atom":
            new = draw(_ATOMS)
        elif kind == "pool":
            new = a
        elif kind == "joined":
            new = f"{a}{draw(_SEPARATORS)}{b}"
        else:
            new = f"{a}@{b}:pickup@{b}"
        if new not in out:
            out.append(new)
    return out


@st.composite
def _order_and_node_ids(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Node ids, then order ids, grown from a few atoms and from each other."""
    atoms = draw(st.lists(_ATOMS, min_size=1, max_size=3, unique=True))
    node_ids = draw(_derived_ids(atoms, 4))
    order_ids = draw(_derived_ids([*atoms, *node_ids], 4))
    return order_ids, node_ids


def _id_scenario(
    order_ids: list[str], node_ids: list[str], own: dict[str, str | None] | None = None
) -> Scenario:
    """Orders of one line of SKU ``s`` and nodes, all at the origin; the orders in ``own``
    with a pickup of their own (of that id)."""
    from scenarios.model import PickupSpec

    here = Location(x=0, y=0)
    own = own or {}
    return Scenario(
        nodes=[FulfilmentNode(id=n, location=here) for n in node_ids],
        orders=[
            Order(
                id=o,
                location=here,
                lines=[OrderLine(sku="s", quantity=9)],
                pickup=PickupSpec(id=own[o], location=here) if o in own else None,
            )
            for o in order_ids
        ],
        vehicles=[Vehicle(id="v", start_location=here, capacity=[10])],
    )


def _task_ids(jobs: Scenario) -> list[str]:
    """Every courier task id of a routing scenario: its jobs and their pickups."""
    return [o.id for o in jobs.orders] + [o.pickup_id for o in jobs.orders if o.pickup]


def _check_no_clash_found_means_distinct_task_ids(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """Where neither check finds a clash in ``ids``, every allocation's courier tasks
    (built by routing_scenario_from_allocation) have distinct ids."""
    order_ids, node_ids = ids
    # some orders carry a pickup of their own (its id given, from the same pieces, or not)
    own = _own_pickups(data, order_ids, node_ids)
    if own is None:
        return  # the scenario refuses these (order and pickup ids all distinct)
    allocated = [o for o in order_ids if o not in own]
    if node_id_clash(node_ids) is not None or job_id_clash(allocated, node_ids) is not None:
        event("a clash is found")
        return
    own_tasks = [t for o, p in own.items() for t in (o, f"{o}:pickup" if p is None else p)]
    if own_task_clash(allocated, own_tasks, node_ids) is not None:
        event("an own pickup's clash is found")
        return
    if task_id_too_long(allocated, node_ids) is not None:
        event("an id is too long")
        return
    allocation = [
        AllocationLine(order_id=o, sku="s", node_id=n, quantity=1)
        for o in allocated
        for n in data.draw(st.lists(st.sampled_from(node_ids), unique=True), label=o)
    ]
    scenario = _id_scenario(order_ids, node_ids, own)
    try:
        jobs = routing_scenario_from_allocation(scenario, allocation)
    except InputError as err:  # an id fits only when its order ships from fewer nodes
        assert "is too long for its courier tasks: as allocated it ships" in err.reason, err
        event("an id is too long as allocated")
        return
    tasks = _task_ids(jobs)
    assert len(tasks) == len(set(tasks)), tasks
    assert max(map(len, tasks), default=0) <= 200


# 150 examples in the default run (the explicit id tests above and below cover the rare
# draws: an id too long, a node id refused); the 500 of the fuller audit run with -m slow
@settings(max_examples=150, deadline=None)
@given(ids=_order_and_node_ids(), data=st.data())
def test_no_clash_found_means_distinct_task_ids(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """Ids from '@', ':' and 'pickup': where neither check finds a clash, every allocation's
    courier tasks (built by routing_scenario_from_allocation) have distinct ids."""
    _check_no_clash_found_means_distinct_task_ids(ids, data)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(ids=_order_and_node_ids(), data=st.data())
def test_no_clash_found_means_distinct_task_ids_over_500_draws(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """The default run's property over 500 drawn id sets (about 50 s of a loaded run)."""
    _check_no_clash_found_means_distinct_task_ids(ids, data)


def _check_distinct_shipments_have_distinct_task_ids_or_are_refused(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """The tasks of distinct (order, node, kind) of an allocation over ``ids`` have
    distinct ids, each naming its order back, or the ids are refused."""
    order_ids, node_ids = ids
    if max(map(len, [*order_ids, *node_ids])) > MAX_TASK_ID:
        return  # not an id (at most 200 characters)
    scenario = _id_scenario(order_ids, node_ids)
    ships = {
        o: data.draw(st.lists(st.sampled_from(node_ids), unique=True), label=o) for o in order_ids
    }
    allocation = [
        AllocationLine(order_id=o, sku="s", node_id=n, quantity=1)
        for o, nodes in ships.items()
        for n in nodes
    ]
    node_clash = node_id_clash(node_ids)
    try:
        jobs = routing_scenario_from_allocation(scenario, allocation)
    except ScenarioInputError as err:
        if node_clash is not None:
            event("a node id is refused")
            assert (err.field, err.reason) == (f"nodes.{node_clash[0]}.id", node_clash[1])
        else:
            event("an id is too long")
            assert err.field.endswith(".id") and "is too long for its courier tasks" in err.reason
        return
    assert node_clash is None
    if job_id_clash(order_ids, node_ids) is not None:
        event("an order id is refused")
        return
    event("built")
    tasks: dict[str, tuple[str, str, str]] = {}  # task id -> (order, node, kind)
    for order_id, nodes in ships.items():
        for node_id in nodes:
            job_id, pickup_id = task_ids(order_id, node_id, len(nodes) > 1)
            for task_id, kind in ((job_id, "delivery"), (pickup_id, "pickup")):
                assert task_id not in tasks, (task_id, tasks[task_id], (order_id, node_id, kind))
                tasks[task_id] = (order_id, node_id, kind)
            # a stop names its job (a pickup's task id aside): the job names its order back
            assert order_of_job(scenario, job_id) == order_id
            assert order_of_task(job_id, set(order_ids), set(node_ids)) == order_id
    assert sorted(_task_ids(jobs)) == sorted(tasks)


# 100 examples in the default run; the 300 of the fuller audit run with -m slow
@settings(max_examples=100, deadline=None)
@given(ids=_order_and_node_ids(), data=st.data())
def test_distinct_shipments_have_distinct_task_ids_or_are_refused(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """Node and order ids from '@', ':' and 'pickup' (``m:pickup@m`` next to ``m``, ``st@1``
    ...): the tasks of distinct (order, node, kind) of an allocation have distinct ids, each
    naming its order back (routing's order_of_job and the twin's reading of a plan's stop),
    or the ids are refused: a node id by routing_scenario_from_allocation itself (on
    ``nodes.N.id``), an order id by the plan's checks between orders (job_id_clash)."""
    _check_distinct_shipments_have_distinct_task_ids_or_are_refused(ids, data)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(ids=_order_and_node_ids(), data=st.data())
def test_distinct_shipments_have_distinct_task_ids_or_are_refused_over_300_draws(
    ids: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    """The default run's property over 300 drawn id sets."""
    _check_distinct_shipments_have_distinct_task_ids_or_are_refused(ids, data)


@pytest.mark.parametrize(
    ("order_len", "nodes"), [(182, ["n" * 10]), (182, ["n" * 10, "m" * 90]), (1, ["n" * 191])]
)
def test_an_order_whose_pickup_id_is_too_long_from_any_node_is_found(
    order_len: int, nodes: list[str]
) -> None:
    """The pickup ``A:pickup@N`` of an order shipped from the node of the shortest id alone
    has its shortest task id: past 200 characters, no allocation can ship it."""

    shortest = min(nodes, key=len)
    fits = "o" * order_len  # its pickup from the shortest node alone has 200 characters
    too_long = fits + "o"
    assert task_id_too_long([fits], nodes) is None
    allocation = [AllocationLine(order_id=fits, sku="s", node_id=shortest, quantity=1)]
    jobs = routing_scenario_from_allocation(_id_scenario([fits], nodes), allocation)
    assert max(len(t) for t in _task_ids(jobs)) == 200
    clash = task_id_too_long(["x", too_long], nodes)
    assert clash is not None and clash[0] == 1
    assert clash[1].startswith(f"id {too_long!r} is too long for its courier tasks")
    assert (
        f"pickup of its job at node {shortest!r} would have an id of 201 characters" in (clash[1])
    )


def test_an_id_too_long_only_from_several_nodes_is_judged_as_allocated() -> None:
    """``A@N:pickup@N`` past 200 characters, ``A:pickup@N`` not: the request was refused
    whatever the allocation; now an order shipped from one node is planned, and one shipped
    from several is an InputError on its id (it was a validation error of the pickup)."""

    nodes = ["n" * 95, "m"]
    order_id = "oo"  # "oo@nnn...:pickup@nnn..." has 201 characters, "oo:pickup@nnn..." 105
    assert task_id_too_long([order_id], nodes) is None
    scenario = _id_scenario(["x", order_id], nodes)
    alone = [AllocationLine(order_id=order_id, sku="s", node_id=nodes[0], quantity=9)]
    jobs = routing_scenario_from_allocation(scenario, alone)
    assert _task_ids(jobs) == [order_id, f"{order_id}:pickup@{nodes[0]}"]
    split = [AllocationLine(order_id=order_id, sku="s", node_id=n, quantity=1) for n in nodes]
    with pytest.raises(InputError) as info:
        routing_scenario_from_allocation(scenario, split)
    assert info.value.field == "orders.1.id"
    assert info.value.reason == (
        f"id 'oo' is too long for its courier tasks: as allocated it ships from 2 nodes "
        f"({nodes[0]!r}, 'm'), and the pickup of its job at node {nodes[0]!r} would have an id "
        "of 201 characters (at most 200): shorten the order id or the node id"
    )


def test_an_order_with_its_own_pickup_is_its_own_job(shop: Scenario) -> None:
    """Not allocated (its goods are at its pickup): the job is the order as it stands, and an
    allocation line of it is an error naming the line."""
    from scenarios.model import PickupSpec
    from solvers.allocation.request import AllocationRequest

    pd = Order(
        id="P",
        location=Location(x=500, y=500),
        lines=[OrderLine(sku="s1", quantity=1)],
        pickup=PickupSpec(location=Location(x=-500, y=0), service_s=30),
    )
    s = shop.model_copy(update={"orders": [*shop.orders, pd]})
    assert [o.id for o in AllocationRequest.from_scenario(s).orders] == ["A", "B"]
    allocation = [AllocationLine(order_id="B", sku="s1", node_id="store", quantity=1)]
    jobs = routing_scenario_from_allocation(s, allocation)
    assert [j.id for j in jobs.orders] == ["B", "P"]
    assert jobs.orders[1] == pd
    with pytest.raises(InputError) as err:
        routing_scenario_from_allocation(
            s, [*allocation, AllocationLine(order_id="P", sku="s1", node_id="dc", quantity=1)]
        )
    assert err.value.field == "allocation.1.order_id"
    assert "has a pickup of its own: it is a pickup-and-delivery job" in err.value.reason


@pytest.mark.parametrize(
    ("own", "place"),
    [
        (["P", "A@dc"], 1),  # the job of A shipped from several nodes
        (["A:pickup@store"], 0),  # the pickup of A shipped from store alone
        (["A@dc:pickup@dc", "x"], 0),
        (["A:pickup", "A@", "A@elsewhere", "B@dc", "A@dc:pickup@store"], None),
    ],
)
def test_an_own_task_id_that_is_an_allocated_orders_task_id_is_found(
    own: list[str], place: int | None
) -> None:
    """Orders with a pickup of their own keep their ids and their pickups': one of them may
    be the id of a task of an order allocated to nodes."""

    clash = own_task_clash(["A", "Z"], own, ["dc", "store"])
    if place is None:
        assert clash is None
    else:
        assert clash is not None and clash[0] == place
        assert clash[1].startswith(f"id {own[place]!r} is the id of ")


@pytest.mark.parametrize("node", ["dc", "store"])
def test_a_parcel_ready_after_the_largest_time_is_a_job_left_out(shop: Scenario, node: str) -> None:
    """An order created at the end of a horizon of MAX_INT seconds, at a node with a
    processing time, is ready past MAX_INT: its job was a validation error naming
    ``start_s`` (a 422 on no field of the request in ``POST /v1/plans``)."""
    horizon = TimeWindow(start_s=0, end_s=MAX_INT)
    late = shop.model_copy(
        update={
            "horizon": horizon,
            "nodes": [n.model_copy(update={"processing_s": 600}) for n in shop.nodes],
            "orders": [
                shop.orders[0].model_copy(update={"created_s": MAX_INT - 1, "time_windows": []}),
                shop.orders[1],
            ],
        }
    )
    jobs = routing_scenario_from_allocation(
        late, [AllocationLine(order_id="A", sku="s1", node_id=node, quantity=2)]
    )
    [job] = jobs.orders
    assert job.pickup is not None
    assert job.pickup.time_windows == [TimeWindow(start_s=MAX_INT, end_s=MAX_INT)]
    plan = solve_routes(jobs, RoutingParams(engine="greedy", seed=1))
    assert validate_plan(jobs, plan).ok
    assert not plan.routes or not any(r.stops for r in plan.routes)
    [left] = plan.unassigned
    assert left.order_id == "A"
