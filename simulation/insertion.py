"""Cheapest feasible insertion of a pickup-and-delivery job into a courier's route.

A :class:`RouteCache` holds one courier's remaining route as arrays: node 0 is the *anchor*
(the stop the courier is committed to, or where it stands idle) with the time it will be free,
nodes ``1..m`` the uncommitted stops, node ``m+1`` the way home (latest = shift end).

Feasibility follows Savelsbergh's forward-slack idea: an insertion may not make any stop that
is now on time late, nor make a late stop later (soft windows stay soft for the new order
only); waiting time absorbs delay, so the start delay at stop ``k`` caused by an arrival delay
``d`` at stop ``i+1`` is ``max(0, d - (W[k] - W[i]))`` with ``W`` the cumulative waiting time.
That makes every test O(1) per position pair, and the whole (pickup, delivery) position matrix
is evaluated with a handful of numpy operations. The scalar quote skips the pairs that lower
bounds prove infeasible or no cheaper than the best so far (float rounding is monotone, so a
bound computed as the exact test is can only skip what that test rejects); the positions right
before a driver break, priced by playing the route forward, are not skipped by those bounds:
their cost may be below any distance bound (the route may get home earlier, late stops less
late). They have their own (:meth:`_ExactInsertion.bound`: the play from the earliest the
route can leave the delivery's predecessor, with the time margins that float rounding needs),
and a play is done once per pickup position and read from the route once it is back on it.
The play of pickups right before a break does not price a delivery the forward-slack test
refuses where it leaves that node from there and no earlier than the old route did, and stops
after the last one that test may take (:meth:`_ExactInsertion.evaluations_after`).

Costs are in cents: ``cost_per_km x extra metres / 1000 + cost_per_hour x extra route time /
3600 + lateness_cents_per_min x lateness of the new order / 60 (+ the vehicle's fixed cost if
it is unused)``.

Routes in dynamic dispatch are short (a handful of stops, some tens with breaks), where
numpy's per-call overhead dominates: a cache is built as Python lists (its numpy arrays are
made on first use), and callers may pass the travel matrices as nested lists (``rows``) so that
routes are quoted without numpy at all (a row is read at the route's nodes by one
``operator.itemgetter`` per cache). Every path computes the same floating-point values in the
same order, so the answers are identical bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from operator import itemgetter
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import NDArray

from simulation.decisions import Quote

if TYPE_CHECKING:
    from simulation.world import TravelFactors

INF = math.inf
EPS = 1e-6

# The infeasible answers (a quote is frozen: one object each serves every quote).
NO_CAPACITY = Quote(False, INF, reason="demand exceeds capacity")
NO_SLACK = Quote(False, INF, reason="no slack left in the route (shift end)")
NO_POSITION = Quote(False, INF, reason="no feasible position (windows, capacity or shift end)")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
#: A travel matrix as nested Python lists (``rows[a][b]``), see :func:`matrix_rows`.
Rows = Sequence[Sequence[int]]

#: (duration rows, distance rows, their rows of a route's nodes but home, its legs' metres)
_TravelRows = tuple[Rows, Rows, list[Sequence[int]], list[Sequence[int]], list[int]]
#: A function giving a row's entries at fixed columns, in order (see RouteCache.gathers).
Gather = Callable[[Sequence[int]], Sequence[int]]


def _gather(columns: Sequence[int]) -> Gather:
    """A function giving a row's entries at ``columns`` as a tuple (``operator.itemgetter``,
    which gives a tuple only for two or more)."""
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    return itemgetter(*columns)


#: Travel matrices up to this many locations are kept as nested lists by the twin; larger
#: ones as one memoryview per row (as fast to index, without copying the matrix).
ROWS_MAX_LOCATIONS = 1500


def matrix_rows(matrix: NDArray[np.int32]) -> Rows:
    """``matrix`` as rows indexed like nested lists (``rows[a][b]`` a Python int).

    Up to :data:`ROWS_MAX_LOCATIONS` locations, nested lists (a copy); beyond, a list of
    memoryviews of the matrix's rows (no copy: the matrix must not change afterwards), slices
    of one view of the whole (fewer objects for the garbage collector to visit).
    """
    if matrix.shape[0] > ROWS_MAX_LOCATIONS:
        n = matrix.shape[1]
        flat = np.ascontiguousarray(matrix).reshape(-1).data
        return [flat[a * n : (a + 1) * n] for a in range(matrix.shape[0])]
    rows: list[list[int]] = matrix.tolist()
    return rows


def _exact_sum(values: list[float]) -> float:
    """``float(np.sum(values))`` bit for bit, without numpy when at most one term is nonzero."""
    nonzero = [x for x in values if x != 0.0]
    if not nonzero:
        return 0.0
    if len(nonzero) == 1:
        return nonzero[0]
    return float(np.asarray(values, dtype=np.float64).sum())


class RouteCache:
    """Planned timing of one courier's remaining route (see the module docstring).

    The per-node values are kept as Python lists (``loc_list``, ``arr_list``, ...); the loads
    (``load_cols``, ``load_rows``) are summed and the numpy arrays (``loc``, ``arr``, ...)
    built on first use (most quotes of a route end at its slack, before any load is read).
    """

    __slots__ = (
        "_gathers",
        "_load0",
        "_load_cols",
        "_load_delta",
        "_load_max",
        "_load_rows",
        "_metres",
        "_np",
        "_travel_rows",
        "arr_list",
        "breaks",
        "dep_list",
        "factor",
        "home_f",
        "home_hi",
        "home_hop",
        "home_lo",
        "home_lowest",
        "home_shift_end",
        "late_after_list",
        "lateness_list",
        "lateness_total",
        "loc_list",
        "max_delay_list",
        "max_slack",
        "slack_cum_list",
        "start_list",
        "steps",
        "wait_cum_list",
    )

    def __init__(
        self,
        *,
        loc: list[int],
        arr: list[float],
        start: list[float],
        dep: list[float],
        wait_cum: list[float],
        slack_cum: list[float],
        max_arrival_delay: list[float],
        load0: Sequence[float],
        load_delta: Sequence[Sequence[float]],
        lateness: list[float],
        late_after: list[float],
        factor: float,
        max_slack: float,
        lateness_total: float,
        load_cols: list[list[float]] | None = None,
    ) -> None:
        """``load0``: the load at the anchor; ``load_delta``: its change at each stop (kept,
        not copied); ``load_cols``: the load per dimension after each node if already known."""
        self.loc_list = loc
        self.arr_list = arr
        self.start_list = start
        self.dep_list = dep
        self.wait_cum_list = wait_cum
        self.slack_cum_list = slack_cum
        self.max_delay_list = max_arrival_delay
        self._load0 = load0
        self._load_delta = load_delta
        self._load_cols = load_cols
        self._load_rows: list[list[float]] | None = None
        self.lateness_list = lateness
        self.late_after_list = late_after
        self.factor = factor
        #: Largest arrival delay any position of the route can absorb.
        self.max_slack = max_slack
        #: Total lateness of the stops (``lateness.sum()``).
        self.lateness_total = lateness_total
        self._np: dict[str, NDArray[Any]] = {}
        self._load_max: list[float] | None = None
        #: Set by :func:`build_route_cache` for a route with driver breaks, else None.
        self.breaks: BreakNodes | None = None
        self._travel_rows: _TravelRows | None = None
        self._gathers: tuple[Gather, Gather] | None = None
        self._metres: tuple[list[int], list[float]] | None = None
        #: Set by :func:`build_route_cache` on a day whose travel factor changes: the factor
        #: over time, else None (the way home is then at ``factor``, as every leg).
        self.steps: TravelFactors | None = None
        #: The way home: the factor when the courier leaves its last stop (``dep[m]``), the
        #: span ``[home_lo, home_hi)`` of departures at that same factor, its free-flow
        #: duration, the lowest factor at any departure, and the shift end.
        self.home_f = factor
        self.home_lo = -INF
        self.home_hi = INF
        self.home_hop = 0.0
        self.home_lowest = factor
        self.home_shift_end = INF

    def _array(
        self, name: str, values: list[float] | list[int] | list[list[float]]
    ) -> NDArray[Any]:
        out = self._np.get(name)
        if out is None:
            out = np.asarray(values, dtype=np.int64 if name == "loc" else np.float64)
            out.flags.writeable = False  # the lists are the cache; the arrays are views of it
            self._np[name] = out
        return out

    @property
    def loc(self) -> IntArray:
        """Location of each node (anchor, stops, home)."""
        return self._array("loc", self.loc_list)

    @property
    def arr(self) -> FloatArray:
        """Expected arrival at each node."""
        return self._array("arr", self.arr_list)

    @property
    def start(self) -> FloatArray:
        """Expected service start at each node."""
        return self._array("start", self.start_list)

    @property
    def dep(self) -> FloatArray:
        """Expected departure from each node."""
        return self._array("dep", self.dep_list)

    @property
    def wait_cum(self) -> FloatArray:
        """Cumulative waiting time up to each node."""
        return self._array("wait_cum", self.wait_cum_list)

    @property
    def slack_cum(self) -> FloatArray:
        """Slack of each node plus the waiting time before it."""
        return self._array("slack_cum", self.slack_cum_list)

    @property
    def max_arrival_delay(self) -> FloatArray:
        """Largest arrival delay at each node the rest of the route absorbs."""
        return self._array("max_arrival_delay", self.max_delay_list)

    @property
    def load(self) -> FloatArray:
        """Load after each node but home, shape (m+1, dims)."""
        return self._array("load", self.load_rows)

    @property
    def lateness(self) -> FloatArray:
        """Lateness of each node (0 for the anchor and home)."""
        return self._array("lateness", self.lateness_list)

    @property
    def late_after(self) -> FloatArray:
        """Number of late stops from each node on."""
        return self._array("late_after", self.late_after_list)

    @property
    def load_cols(self) -> list[list[float]]:
        """Load of each dimension after each node but home (``load_cols[d][k]``)."""
        cols = self._load_cols
        if cols is None:
            cols = []
            deltas = self._load_delta
            for d, x in enumerate(self._load0):
                a0 = float(x)
                col = [a0]
                # The running sum of the deltas, as build_route_cache always added them.
                col.extend([a0 + c for c in accumulate([float(row[d]) for row in deltas])])
                cols.append(col)
            self._load_cols = cols
        return cols

    @property
    def load_rows(self) -> list[list[float]]:
        """Load after each node but home, one row of dimensions per node."""
        rows = self._load_rows
        if rows is None:
            rows = self._load_rows = [list(r) for r in zip(*self.load_cols, strict=True)]
        return rows

    @property
    def load_max(self) -> list[float]:
        """Heaviest load of each dimension over the route's nodes (but home)."""
        if self._load_max is None:
            self._load_max = [max(col) for col in self.load_cols]
        return self._load_max

    def travel_rows(self, dur_rows: Rows, dist_rows: Rows) -> _TravelRows:
        """The matrices' rows of the route's nodes but home (durations, metres) and each
        leg's metres, remembered for the last matrices asked for."""
        memo = self._travel_rows
        if memo is None or memo[0] is not dur_rows or memo[1] is not dist_rows:
            prev = self.loc_list[:-1]
            prev_dist = [dist_rows[a] for a in prev]
            legs = [r[b] for r, b in zip(prev_dist, self.loc_list[1:], strict=True)]
            memo = (dur_rows, dist_rows, [dur_rows[a] for a in prev], prev_dist, legs)
            self._travel_rows = memo
        return memo

    def gathers(self) -> tuple[Gather, Gather]:
        """Functions giving a travel row's entries at the route's nodes but home and at its
        nodes but the anchor, in order (remembered)."""
        g = self._gathers
        if g is None:
            loc = self.loc_list
            g = self._gathers = (_gather(loc[:-1]), _gather(loc[1:]))
        return g

    def metres_to_nodes(self, dur_rows: Rows, dist_rows: Rows) -> list[float]:
        """The route's metres from its anchor to each node (floats of whole numbers, summed
        from :meth:`travel_rows`' legs), remembered for the last matrices asked for."""
        legs = self.travel_rows(dur_rows, dist_rows)[4]
        memo = self._metres
        if memo is None or memo[0] is not legs:
            memo = self._metres = (legs, [0.0, *map(float, accumulate(legs))])
        return memo[1]

    def as_lists(self) -> tuple[list[float], ...]:
        """(arr, dep, wait_cum, slack_cum, max_arrival_delay, late_after) as Python lists."""
        return (
            self.arr_list,
            self.dep_list,
            self.wait_cum_list,
            self.slack_cum_list,
            self.max_delay_list,
            self.late_after_list,
        )

    @property
    def num_stops(self) -> int:
        """Uncommitted stops (excluding anchor and home)."""
        return len(self.loc_list) - 2

    @property
    def end_s(self) -> float:
        """Planned arrival home."""
        return self.arr_list[-1]

    @property
    def t0(self) -> float:
        """When the courier is free at its anchor."""
        return self.dep_list[0]


@dataclass(frozen=True, slots=True)
class BreakNodes:
    """What quoting a route with driver breaks needs besides the timing (node-indexed lists:
    anchor, stops, home).

    A break is taken where the courier is (no travel): its node's location is the one before
    it, so an insertion right before a break moves the break to the inserted stop's door.
    """

    is_break: list[bool]
    earliest: list[float]
    latest: list[float]
    service: list[float]


def build_route_cache(
    *,
    anchor_loc: int,
    t0: float,
    stop_loc: Sequence[int],
    earliest: Sequence[float],
    latest: Sequence[float],
    service: Sequence[float],
    load_delta: Sequence[Sequence[float]],
    load0: Sequence[float],
    end_loc: int,
    shift_end_s: float,
    duration: NDArray[np.int32],
    factor: float,
    duration_rows: Rows | None = None,
    is_break: Sequence[bool] | None = None,
    factors: TravelFactors | None = None,
) -> RouteCache:
    """Forward pass over the remaining stops (expected times, no noise).

    ``is_break``: which stops are driver breaks, taken where the courier is (their
    ``stop_loc`` is the location before them); quotes then price an insertion right before a
    break with the break at the inserted stop's door (see :class:`BreakNodes`).
    ``factors``: the travel factor over the day; when it changes, the way home is timed at
    the factor when the courier leaves its last stop (as the twin plays it), and quotes price
    it at the factor of the departure they make (see :func:`quote_insertion`); every other
    leg at ``factor``.
    """
    if factors is not None and factors.constant:
        factors = None
    cache = _build_route_cache(
        anchor_loc=anchor_loc,
        t0=t0,
        stop_loc=stop_loc,
        earliest=earliest,
        latest=latest,
        service=service,
        load_delta=load_delta,
        load0=load0,
        end_loc=end_loc,
        shift_end_s=shift_end_s,
        duration=duration,
        factor=factor,
        duration_rows=duration_rows,
        factors=factors,
    )
    if factors is not None:
        dep = cache.dep_list
        t = dep[-2]
        cache.steps = factors
        cache.home_shift_end = shift_end_s
        cache.home_lowest = factors.lowest
        loc = cache.loc_list
        hop = duration_rows[loc[-2]][loc[-1]] if duration_rows is not None else None
        cache.home_hop = float(hop if hop is not None else duration[loc[-2], loc[-1]])
        if math.isfinite(t):
            cache.home_f = factors.at(t)
            cache.home_lo, cache.home_hi = factors.window(t)
        else:  # (never left: no span of departures is known)
            cache.home_lo = cache.home_hi = t
    if is_break is not None and any(is_break):
        cache.breaks = BreakNodes(
            is_break=[False, *map(bool, is_break), False],
            earliest=[-INF, *map(float, earliest), -INF],
            latest=[INF, *map(float, latest), shift_end_s],
            service=[0.0, *map(float, service), 0.0],
        )
    return cache


def _build_route_cache(
    *,
    anchor_loc: int,
    t0: float,
    stop_loc: Sequence[int],
    earliest: Sequence[float],
    latest: Sequence[float],
    service: Sequence[float],
    load_delta: Sequence[Sequence[float]],
    load0: Sequence[float],
    end_loc: int,
    shift_end_s: float,
    duration: NDArray[np.int32],
    factor: float,
    duration_rows: Rows | None = None,
    factors: TravelFactors | None = None,
) -> RouteCache:
    """:func:`build_route_cache` without the breaks (``factors``: not constant, or None)."""
    m = len(stop_loc)
    locs = [anchor_loc, *stop_loc, end_loc]
    arr = [t0] * (m + 2)
    start = [t0] * (m + 2)
    dep = [t0] * (m + 2)
    lat = [INF] * (m + 2)
    t = t0
    # The legs' durations (Python ints: ``int * float`` is ``float(int) * float``), from the
    # nested lists or, without them, in one numpy gather (not one per leg).
    if duration_rows is not None:
        hops: list[int] = [duration_rows[a][b] for a, b in pairwise(locs)]
    else:
        hops = duration[locs[:-1], locs[1:]].tolist()
    # The cumulative waiting time, as _build_arrays sums it (start - arr, node by node).
    wait_cum = [0.0] * (m + 2)
    acc = wait_cum[0] = t0 - t0
    for k in range(m):
        a = t + hops[k] * factor
        e = earliest[k]
        s = a if a >= e else e
        arr[k + 1] = a
        start[k + 1] = s
        t = s + service[k]
        dep[k + 1] = t
        lat[k + 1] = latest[k]
        acc = acc + (s - a)
        wait_cum[k + 1] = acc
    if factors is not None and math.isfinite(t):
        a = t + hops[m] * factors.at(t)  # the way home at the factor when the courier leaves
    else:
        a = t + hops[m] * factor
    arr[m + 1] = start[m + 1] = dep[m + 1] = a
    lat[m + 1] = shift_end_s
    if not math.isfinite(a):
        # Infinite times (a parcel that never comes): numpy's NaN rules, as built originally.
        return _build_arrays(locs, arr, start, dep, lat, load_delta, load0, factor)
    # Every time is finite from here (times never decrease along the route), so these
    # Python loops compute exactly what the numpy expressions of _build_arrays compute.
    if m == 0:  # the loops below unrolled for a route without stops
        w0 = t0 - t0
        w1 = w0 + (a - a)
        sc1 = ((shift_end_s if shift_end_s >= a else a) - a) + w1
        md1 = (sc1 if sc1 < INF else INF) - w0
        return RouteCache(
            loc=locs,
            arr=arr,
            start=start,
            dep=dep,
            wait_cum=[w0, w1],
            slack_cum=[INF + w0, sc1],
            max_arrival_delay=[INF, md1],
            load0=load0,
            load_delta=load_delta,
            lateness=[0.0, 0.0],
            late_after=[0.0, 0.0],
            factor=factor,
            max_slack=md1,
            lateness_total=0.0,
        )
    n = m + 2
    wait_cum[m + 1] = acc + (a - a)
    # Stops already late may be delayed further at a price (see quote_insertion); stops on
    # time may not become late; the way home may not pass the shift end.
    # max_delay[k]: the least slack_cum from node k on, less the waiting before node k.
    slack_cum = [0.0] * n
    late_after = [0.0] * n
    lateness = [0.0] * n
    max_delay = [INF] * n
    # Home (k = n - 1): never late, no lateness.
    s = start[n - 1]
    lk = lat[n - 1]
    sc = slack_cum[n - 1] = ((lk if lk >= s else s) - s) + wait_cum[n - 1]
    suffix = sc if sc < INF else INF
    max_delay[n - 1] = suffix - wait_cum[n - 2]
    count = 0
    for k in range(n - 2, 0, -1):
        s = start[k]
        lk = lat[k]
        if s > lk + EPS:
            count += 1
            late_after[k] = float(count)
            sc = INF + wait_cum[k]
            lateness[k] = s - lk  # (> EPS)
        else:
            late_after[k] = float(count)
            sc = ((lk if lk >= s else s) - s) + wait_cum[k]
            x = s - lk
            lateness[k] = x if x > 0.0 else 0.0
        slack_cum[k] = sc
        if sc < suffix:
            suffix = sc
        max_delay[k] = suffix - wait_cum[k - 1]
    # The anchor (k = 0): no slack, never late.
    late_after[0] = float(count)
    slack_cum[0] = INF + wait_cum[0]
    x = start[0] - lat[0]
    lateness[0] = x if x > 0.0 else 0.0
    return RouteCache(
        loc=locs,
        arr=arr,
        start=start,
        dep=dep,
        wait_cum=wait_cum,
        slack_cum=slack_cum,
        max_arrival_delay=max_delay,
        load0=load0,
        load_delta=load_delta,
        lateness=lateness,
        late_after=late_after,
        factor=factor,
        max_slack=max(max_delay[1:]),
        lateness_total=_exact_sum(lateness),
    )


def _build_arrays(
    locs: list[int],
    arr: list[float],
    start: list[float],
    dep: list[float],
    lat: list[float],
    load_delta: Sequence[Sequence[float]],
    load0: Sequence[float],
    factor: float,
) -> RouteCache:
    """The numpy version of the second half of :func:`build_route_cache` (any times)."""
    m = len(locs) - 2
    arr_a = np.asarray(arr)
    start_a = np.asarray(start)
    lat_a = np.asarray(lat)
    wait_cum = np.cumsum(start_a - arr_a)
    slack = np.maximum(lat_a, start_a) - start_a
    late = start_a > lat_a + EPS
    late[-1] = False
    slack[late] = INF
    slack[0] = INF
    late_after = np.cumsum(late[::-1])[::-1].astype(np.float64)
    slack_cum = slack + wait_cum
    suffix = np.minimum.accumulate(slack_cum[::-1])[::-1]
    max_delay = np.empty(m + 2)
    max_delay[0] = INF
    max_delay[1:] = suffix[1:] - wait_cum[:-1]
    dims = len(load0)
    load = np.empty((m + 1, dims))
    load[0] = load0
    if m:
        load[1:] = np.asarray(load0) + np.cumsum(np.asarray(load_delta, dtype=float), axis=0)
    lateness = np.maximum(0.0, start_a - lat_a)
    lateness[-1] = 0.0
    return RouteCache(
        loc=locs,
        arr=arr_a.tolist(),
        start=start_a.tolist(),
        dep=np.asarray(dep).tolist(),
        wait_cum=wait_cum.tolist(),
        slack_cum=slack_cum.tolist(),
        max_arrival_delay=max_delay.tolist(),
        load0=load0,
        load_delta=load_delta,
        lateness=lateness.tolist(),
        late_after=late_after.tolist(),
        factor=factor,
        max_slack=float(max_delay[1:].max()),
        lateness_total=float(lateness.sum()),
        load_cols=load.T.tolist(),
    )


@dataclass(frozen=True)
class JobSpec:
    """A pickup chain (one or more pickups done back to back) followed by a delivery.

    ``chain_latest[e]`` is the latest start of pickup ``e`` (a node that closes for good loses
    its parcels); it is a hard limit, unlike the delivery's soft ``delivery_latest``. Empty:
    no limit.
    """

    chain_loc: tuple[int, ...]
    chain_earliest: tuple[float, ...]
    chain_service: tuple[float, ...]
    delivery_loc: int
    delivery_earliest: float
    delivery_latest: float
    delivery_service: float
    demand: tuple[float, ...]
    chain_latest: tuple[float, ...] = ()

    def latest(self, e: int) -> float:
        """Latest start of pickup ``e`` of the chain."""
        return self.chain_latest[e] if self.chain_latest else INF


@dataclass(frozen=True)
class CostRates:
    """Prices of one courier plus the lateness price (cents; non-negative, as the quote's
    lower bounds assume)."""

    per_km: float
    per_hour: float
    lateness_per_min: float
    fixed: float = 0.0


@overload
def _cost_cents(rates: CostRates, distance_m: float, time_s: float, lateness_s: float) -> float: ...


@overload
def _cost_cents(
    rates: CostRates, distance_m: FloatArray, time_s: FloatArray, lateness_s: FloatArray
) -> FloatArray: ...


def _cost_cents(
    rates: CostRates,
    distance_m: float | FloatArray,
    time_s: float | FloatArray,
    lateness_s: float | FloatArray,
) -> float | FloatArray:
    """Price of a distance, a route time and a lateness (cents; floats or arrays alike).

    The scalar paths (:func:`_quote_loops`, :func:`_quote_empty`, :func:`route_cost_cents`)
    are in the RL policies' hot path: they inline this same expression, in the same order
    (the same bits), rather than pay a call.
    """
    return (
        rates.per_km * distance_m / 1000.0
        + rates.per_hour * time_s / 3600.0
        + rates.lateness_per_min * lateness_s / 60.0
    )


#: Routes with at most this many uncommitted stops are quoted by the pure-Python loops.
SMALL_ROUTE = 10_000


def quote_insertion(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray | Sequence[float],
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
    rows: tuple[Rows, Rows] | None = None,
    symmetric: bool = False,
    shortcut_s: int | None = None,
    first_only: bool = False,
) -> Quote:
    """Best feasible (pickup, delivery) positions for ``job`` in the route, with its cost.

    Short routes use scalar loops with early exits, long ones numpy over all position pairs;
    both give the same answer (ties go to the first position in (case, i, j) order).
    ``capacity``: the courier's capacity per dimension (an array or Python floats);
    ``rows``: the (duration, distance) matrices as nested lists (see :func:`matrix_rows`);
    ``symmetric``: both matrices are symmetric (``rows[a][b] == rows[b][a]``), so the travel
    to the job's stops is read from their rows (close together in memory) instead of down
    their columns; ``shortcut_s``: the most a detour through a third location can be quicker
    than the direct way (:attr:`simulation.world.TravelTable.shortcut_s`; 0: the durations obey
    the triangle inequality; None: unknown), which bounds how little the job's stops can delay
    the route: a route whose slack is below the delivery's service time less that is refused at
    once (see :func:`_detour_free`). ``first_only``: only the positions whose first stop (a
    pickup, or the delivery alone) comes right after the anchor.
    """
    if (
        first_only
        or len(cache.loc_list) - 2 <= SMALL_ROUTE
        or cache.breaks is not None
        or cache.steps is not None
    ):
        if (
            cache.max_slack + EPS < job.delivery_service
            and cache.breaks is None
            and (shortcut_s == 0 or _detour_free(cache, job, duration, rows, symmetric, shortcut_s))
            and (cache.steps is None or _last_refused(cache, job, duration, rows))
        ):
            # _quote_loops's first two answers without the call (most quotes of full routes)
            cap = capacity.tolist() if isinstance(capacity, np.ndarray) else capacity
            for qk, ck in zip(job.demand, cap, strict=True):
                if qk > ck + EPS:
                    return NO_CAPACITY
            return NO_SLACK
        return _quote_loops(
            cache,
            job,
            capacity=capacity,
            duration=duration,
            distance=distance,
            rates=rates,
            rows=rows,
            symmetric=symmetric,
            shortcut_s=shortcut_s,
            slack_checked=True,
            first_only=first_only,
        )
    return _quote_numpy(
        cache,
        job,
        capacity=np.asarray(capacity, dtype=np.float64),
        duration=duration,
        distance=distance,
        rates=rates,
    )


def _detour_free(
    cache: RouteCache,
    job: JobSpec,
    duration: NDArray[np.int32],
    rows: tuple[Rows, Rows] | None,
    symmetric: bool,
    shortcut_s: int | None,
) -> bool:
    """Whether the job's stops, wherever they go, delay the node after its delivery by more
    than the route's slack allows, given that its slack is below the delivery's service time.

    So when no leg ``a -> b`` of the route is quicker through them (``a -> d -> b``, ``a ->
    pickups -> d -> b``) than direct, as under the triangle inequality. Real tables may break
    it (one-way streets, time-of-day matrices, rounding to whole seconds): by at most
    ``shortcut_s`` per detour when that is known (the delay is then at least the service time
    less ``shortcut_s`` per stop put in, times the travel factor), else each leg is read.
    False when unsure.

    A leg's own duration ``h`` is read from the cache (``arr[i+1] - dep[i] = h * f``): the
    durations are whole seconds, so ``x + y >= h`` exactly when ``(x + y) * f > (h - 0.5) * f``,
    which float rounding (far below ``f / 2``) cannot turn over.
    """
    f = cache.factor
    if not 0.0 < f < INF:
        return False
    if shortcut_s is not None:
        gain = (len(job.chain_loc) + 1) * shortcut_s * f
        if cache.max_slack + EPS < job.delivery_service - gain:
            return True
    # The delivery delays the node after it by at least its service time less the leg's travel
    # (the travel to and from it is not negative): a leg whose travel plus the next node's
    # slack (max_delay) is below that takes no delivery whatever the table says, and is not
    # read. (1 ms: far above the float rounding of these times.)
    s_d = job.delivery_service - 1e-3
    loc = cache.loc_list
    arr = cache.arr_list
    dep = cache.dep_list
    md = cache.max_delay_list
    d = job.delivery_loc
    chain = job.chain_loc
    half = 0.5 * f
    dur: Rows | NDArray[np.int32] = rows[0] if rows is not None else duration
    row_d = dur[d]
    through = 0
    p1 = chain[0] if chain else d
    row_p1 = dur[p1]
    if chain:
        through = sum(dur[a][b] for a, b in pairwise(chain)) + dur[chain[-1]][d]
    for i in range(len(loc) - 1):
        h = arr[i + 1] - dep[i]
        if h + md[i + 1] < s_d:
            continue
        a = loc[i]
        y = row_d[loc[i + 1]]
        x = row_d[a] if symmetric else dur[a][d]
        if not (x + y) * f > h - half:  # (NaN: unsure)
            return False
        if chain:
            x = row_p1[a] if symmetric else dur[a][p1]
            if not (x + through + y) * f > h - half:
                return False
    return True


def _last_refused(
    cache: RouteCache, job: JobSpec, duration: NDArray[np.int32], rows: tuple[Rows, Rows] | None
) -> bool:
    """Whether the forward-slack formulas refuse the delivery after the route's last stop
    whatever comes before it, where the way home is timed at another factor than the other
    legs (``cache.steps`` set): :func:`_detour_free`'s reasoning times every leg at the
    route's factor, which does not bound that position's delay at home then.

    The delivery leaves at the earliest at the last stop's departure plus the quicker of the
    ways there (direct, or through the job's pickups) at the route's factor, its earliest start
    and its service; its way home takes at least its duration at the lowest factor from then to
    the shift end (leaving later, it gets home late). A margin (:data:`TIME_MARGIN_S`) keeps
    float rounding from refusing what the formulas take."""
    loc = cache.loc_list
    last = loc[-2]
    d = job.delivery_loc
    dur: Rows | NDArray[np.int32] = rows[0] if rows is not None else duration
    f = cache.factor
    t = cache.dep_list[-2]
    if 0.0 < f < INF:
        x = dur[last][d]
        chain = job.chain_loc
        if chain:
            via = dur[last][chain[0]] + sum(dur[a][b] for a, b in pairwise(chain))
            via += dur[chain[-1]][d]
            if via < x:
                x = via
        t = t + float(x) * f
    e_d = job.delivery_earliest
    leave = (t if t >= e_d else e_d) + job.delivery_service
    latest = cache.home_shift_end + 1.0
    if leave > latest:
        return True  # home after the shift end
    if leave >= cache.home_lo and latest < cache.home_hi:
        fl = cache.home_f
    else:
        steps = cache.steps
        assert steps is not None
        fl = steps.floor(leave, latest)
    delay = leave + float(dur[d][loc[-1]]) * fl - cache.arr_list[-1]
    return bool(delay > cache.max_delay_list[-1] + EPS + TIME_MARGIN_S)


def _first_delivery_position(cache: RouteCache, job: JobSpec) -> int:
    """The first node after which the job's delivery may go (``m + 1``: none).

    The delivery's start is at least its earliest start, so the arrival delay it causes at
    the next node is at least ``(delivery_earliest + delivery_service) - arr``: float rounding
    is monotone and the travel times added to it are not negative, so where that already
    exceeds what the route absorbs, the exact test rejects the position whatever comes before
    it (for a positive finite travel factor). 0 when nothing is known. On a route with breaks
    this holds for the positions priced by that test, not for those right before a break
    (priced by playing the route forward, :class:`_ExactInsertion`).
    """
    f = cache.factor
    if not 0.0 < f < INF:
        return 0
    arr = cache.arr_list
    max_delay = cache.max_delay_list
    e_s = job.delivery_earliest + job.delivery_service
    k = len(arr) - 1
    j = 0
    while j < k and e_s - arr[j + 1] > max_delay[j + 1] + EPS:
        j += 1
    return j


def _home_ceiling(cache: RouteCache, lo: float, hi: float) -> float:
    """The highest travel factor at a departure home in ``[lo, hi]`` (``cache.steps`` set):
    the way home's price where the quote knows its departure only within those bounds."""
    if lo >= cache.home_lo and hi < cache.home_hi:
        return cache.home_f
    steps = cache.steps
    assert steps is not None
    return steps.ceiling(lo, hi)


def _home_extra(cache: RouteCache, delay: float, gain: float) -> float:
    """How much later than ``delay`` the courier gets home (seconds; negative: earlier) when
    its departure from its last stop, which stays its last, is ``delay`` later than planned
    and may be up to ``gain`` earlier than that (a detour quicker than the leg it replaces):
    the way home priced at the highest factor over those departures (``cache.steps`` set)."""
    t = cache.dep_list[-2]
    f = _home_ceiling(cache, t - gain, t + delay)
    if f == cache.home_f:
        return 0.0
    return cache.home_hop * f - cache.home_hop * cache.home_f


def _quote_loops(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray | Sequence[float],
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
    rows: tuple[Rows, Rows] | None = None,
    symmetric: bool = False,
    shortcut_s: int | None = None,
    slack_checked: bool = False,
    first_only: bool = False,
) -> Quote:
    """Scalar version of :func:`_quote_numpy` (fast for short routes; ``symmetric``,
    ``shortcut_s`` and ``first_only``: see :func:`quote_insertion`; ``slack_checked``: the
    caller took the no-slack exit where it could, so its leg check is not read again)."""
    q = job.demand
    cap: Sequence[float] = capacity.tolist() if isinstance(capacity, np.ndarray) else capacity
    for qk, ck in zip(q, cap, strict=True):
        if qk > ck + EPS:
            return NO_CAPACITY
    brk = cache.breaks
    # No position priced by the forward-slack formulas is feasible (see _detour_free); on a
    # route with breaks those right before a break may still be (moving the break may save
    # time after it): only they are priced. A caller that took the exit (``slack_checked``)
    # found it not to hold on a route without breaks.
    no_slack = (
        not (slack_checked and brk is None)
        and cache.max_slack + EPS < job.delivery_service
        and (shortcut_s == 0 or _detour_free(cache, job, duration, rows, symmetric, shortcut_s))
        and (cache.steps is None or _last_refused(cache, job, duration, rows))
    )
    if no_slack and brk is None:
        return NO_SLACK
    loc = cache.loc_list
    m = len(loc) - 2
    if m == 0 and rows is not None:
        return _quote_empty(cache, job, cap=cap, rates=rates, rows=rows)
    big_m = m + 1
    f = cache.factor
    arr = cache.arr_list
    dep = cache.dep_list
    wc = cache.wait_cum_list
    slack_cum = cache.slack_cum_list
    max_delay = cache.max_delay_list
    late_after = cache.late_after_list
    chain = job.chain_loc
    n_chain = len(chain)
    d = job.delivery_loc
    prev = loc[: m + 1]
    nxt = loc[1:]
    k = m + 1
    t_to_p: Sequence[int] = []
    t_from_pr: Sequence[int] = []
    s_to_p: Sequence[int] = []
    s_from_pr: Sequence[int] = []
    t_to_d: Sequence[int]
    s_to_d: Sequence[int]
    chain_t: list[float] = []
    chain_dist = t_pr_d = s_pr_d = 0.0
    # Delivery positions before `first` are infeasible whatever the pickups: see below (but
    # those right before a break, which are priced by playing the route forward).
    first = m + 1 if no_slack else _first_delivery_position(cache, job)
    if rows is not None:
        dur_rows, dist_rows = rows
        _, _, prev_dur, prev_dist, s_next = cache.travel_rows(dur_rows, dist_rows)
        row_d = dur_rows[d]
        dist_d = dist_rows[d]
        # Rows read at the route's nodes in C (operator.itemgetter); the entries before
        # `first` are read too (cheaper than leaving them out) but never used: no delivery is
        # priced there by the formulas.
        from_prev, to_nxt = cache.gathers()
        if symmetric:
            t_to_d = from_prev(row_d)
            s_to_d = from_prev(dist_d)
        else:
            pad = [0] * first  # (down the columns: only where the delivery may go)
            t_to_d = pad + [r[d] for r in prev_dur[first:]]
            s_to_d = pad + [r[d] for r in prev_dist[first:]]
        t_from_d = to_nxt(row_d)
        s_from_d = to_nxt(dist_d)
        if chain:
            p1, pr = chain[0], chain[-1]
            row_pr = dur_rows[pr]
            dist_pr = dist_rows[pr]
            if symmetric:
                t_to_p = from_prev(dur_rows[p1])
                s_to_p = from_prev(dist_rows[p1])
            else:
                t_to_p = [r[p1] for r in prev_dur]
                s_to_p = [r[p1] for r in prev_dist]
            t_from_pr = to_nxt(row_pr)
            s_from_pr = to_nxt(dist_pr)
            for e in range(n_chain - 1):
                chain_t.append(float(dur_rows[chain[e]][chain[e + 1]]))
                chain_dist += float(dist_rows[chain[e]][chain[e + 1]])
            t_pr_d = float(row_pr[d])
            s_pr_d = float(dist_pr[d])
    else:
        prev_a = np.asarray(prev, dtype=np.int64)
        nxt_a = np.asarray(nxt, dtype=np.int64)
        if chain:
            p1, pr = chain[0], chain[-1]
            rows_i = np.concatenate((prev_a, np.full(k, pr), prev_a, np.full(k, d), prev_a))
            cols_i = np.concatenate((np.full(k, p1), nxt_a, np.full(k, d), nxt_a, nxt_a))
        else:
            rows_i = np.concatenate((prev_a, np.full(k, d), prev_a))
            cols_i = np.concatenate((np.full(k, d), nxt_a, nxt_a))
        tt: list[int] = duration[rows_i, cols_i].tolist()
        ss: list[int] = distance[rows_i, cols_i].tolist()
        if chain:
            t_to_p, t_from_pr, t_to_d, t_from_d = (
                tt[:k],
                tt[k : 2 * k],
                tt[2 * k : 3 * k],
                tt[3 * k : 4 * k],
            )
            s_to_p, s_from_pr, s_to_d, s_from_d = (
                ss[:k],
                ss[k : 2 * k],
                ss[2 * k : 3 * k],
                ss[3 * k : 4 * k],
            )
            s_next = ss[4 * k :]
            chain_t = [float(duration[chain[e], chain[e + 1]]) for e in range(n_chain - 1)]
            for e in range(n_chain - 1):
                chain_dist += float(distance[chain[e], chain[e + 1]])
            t_pr_d = float(duration[pr, d])
            s_pr_d = float(distance[pr, d])
        else:
            t_to_d, t_from_d, s_next = tt[:k], tt[k : 2 * k], ss[2 * k :]
            s_to_d, s_from_d = ss[:k], ss[k : 2 * k]
    e_d = job.delivery_earliest
    l_d = job.delivery_latest
    s_d = job.delivery_service
    per_km = rates.per_km
    per_hour = rates.per_hour
    per_min = rates.lateness_per_min
    total_wait = wc[big_m]
    steps = cache.steps
    home_end = cache.home_shift_end + EPS
    # A lower bound of what the way home adds to a position's end delay over the route's
    # (the lowest factor at any departure), for the lower bounds of the costs below.
    home_lb = 0.0 if steps is None else cache.home_hop * (cache.home_lowest - cache.home_f)
    f_home_lb = f if steps is None else cache.home_lowest
    # (_home_extra's first test inlined: the departures home at the planned factor)
    dep_m = dep[m]
    home_lo = cache.home_lo
    home_hi = cache.home_hi
    fits = [True] * k
    if chain and q:
        cap_eps = [ck + EPS for ck in cap]
        # Float addition is monotone: if the heaviest load of each dimension fits, all do.
        if any(mx + qk > ce for mx, qk, ce in zip(cache.load_max, q, cap_eps, strict=True)):
            cols = cache.load_cols
            if len(cols) == 3:  # (the loop below in one pass: the same tests)
                (q0, q1, q2), (c0, c1, c2) = q, cap_eps
                fits = [
                    a + q0 <= c0 and b + q1 <= c1 and x + q2 <= c2
                    for a, b, x in zip(*cols, strict=True)
                ]
            else:
                fits = [x + q[0] <= cap_eps[0] for x in cols[0]]
                for col, qk, ce in zip(cols[1:], q[1:], cap_eps[1:], strict=True):
                    fits = [ok and x + qk <= ce for ok, x in zip(fits, col, strict=True)]
    best = INF
    best_pos = (-1, -1)
    best_info = (INF, 0.0, 0.0, 0.0)
    # Departure from the pickup chain inserted after node i, and whether every node is open.
    dep_p = [0.0] * k
    chain_ok = [True] * k
    if n_chain == 1:  # the loop below for one pickup
        ce, lim, svc = job.chain_earliest[0], job.latest(0) + EPS, job.chain_service[0]
        for i in range(k):
            t = dep[i] + t_to_p[i] * f
            t = t if t >= ce else ce
            if t > lim:
                chain_ok[i] = False  # the node has closed for good by then
            dep_p[i] = t + svc
    elif chain:
        limits = [job.latest(e) + EPS for e in range(n_chain)]
        for i in range(k):
            t = dep[i] + t_to_p[i] * f
            for e in range(n_chain):
                ce = job.chain_earliest[e]
                t = t if t >= ce else ce
                if t > limits[e]:
                    chain_ok[i] = False
                t = t + job.chain_service[e]
                if e + 1 < n_chain:
                    t = t + chain_t[e] * f
            dep_p[i] = t
    exact = None
    if brk is not None:
        travel = (rows[0], rows[1]) if rows is not None else (duration, distance)
        exact = _ExactInsertion(cache, brk, job, travel, rates, shortcut_s)
    # Case A: delivery right after the pickup chain (or alone when the parcel is on board).
    for i in range(first if exact is None else 0, 1 if first_only else k):
        if exact is not None and brk is not None and brk.is_break[i + 1]:
            if fits[i]:
                found = exact.evaluate(i, i)
                if found is not None and found[0] < best:
                    best, best_pos, best_info = found[0], (i, i), found[1:]
            continue
        if i < first:
            continue  # (with breaks: the formula's test rejects it, see _first_delivery_position)
        if chain:
            arr_d = dep_p[i] + t_pr_d * f
            dist_a = s_to_p[i] + chain_dist + s_pr_d + s_from_d[i] - s_next[i]
        else:
            arr_d = dep[i] + t_to_d[i] * f
            dist_a = s_to_d[i] + s_from_d[i] - s_next[i]
        if not fits[i] or not chain_ok[i]:
            continue
        start_d = arr_d if arr_d >= e_d else e_d
        if steps is not None and i == m:  # the way home from the delivery, leaving then
            dep_d = start_d + s_d
            delta = dep_d + t_from_d[i] * _home_ceiling(cache, dep_d, dep_d) - arr[i + 1]
        else:
            delta = start_d + s_d + t_from_d[i] * f - arr[i + 1]
        gain = 0.0
        if delta < 0.0:
            gain = -delta
            delta = 0.0
        if delta > max_delay[i + 1] + EPS:
            continue
        end = delta - (total_wait - wc[i])
        if end < 0.0:
            end = 0.0
        if steps is not None and i < m and not (dep_m - gain >= home_lo and dep_m + end < home_hi):
            x = _home_extra(cache, end, gain)
            if x:
                if x > 0.0 and arr[big_m] + end + x > home_end:
                    continue  # home after the shift end
                end += x
                if end < 0.0:
                    end = 0.0  # (home earlier: an upper bound, as for an earlier arrival)
        late = start_d - l_d
        if late < 0.0:
            late = 0.0
        late += delta * late_after[i + 1]
        # _cost_cents inlined (hot path)
        cost = per_km * dist_a / 1000.0 + per_hour * end / 3600.0 + per_min * late / 60.0
        if cost < best:
            best = cost
            best_pos = (i, i)
            best_info = (start_d, late, dist_a, end)
    # Case B: pickup after node i, delivery after node j > i.
    if chain and m >= 1:
        is_brk = brk.is_break if exact is not None and brk is not None else None
        dd = [0.0] * first
        dd += [s_to_d[j] + s_from_d[j] - s_next[j] for j in range(first, k)]
        # Distance bounds over every j the delivery may follow, as the quote has always
        # skipped with them (kept, so that the answers stay what they were to the bit; the j
        # before `first` are never priced by them: leaving them out skips only an i whose
        # every candidate the same bound at that j would skip, and no i with a delivery right
        # before a break after it, see brk_after).
        dd_all = dd[:]
        for j in range(k - 2, first - 1, -1):
            if dd_all[j + 1] < dd_all[j]:
                dd_all[j] = dd_all[j + 1]
        if 0 < first < k:
            dd_all[:first] = [dd_all[first]] * first
        km = per_km / 1000.0
        # The delivery's start delay at node j+1 is at least the one it causes without the
        # pickup chain before it (sd = 0); float rounding is monotone, so a j whose bound
        # already exceeds what the rest of the route absorbs fails the exact test for every
        # i. Only the other j ("candidates") are priced; a j right before a break is priced
        # by `exact` (no formula, so no bound): always a candidate. nxt_c[p]: the first
        # candidate after node p (k: none); gap[p]: the tightest slack_cum + EPS over nodes
        # p+1..nxt_c[p] (-INF if one of them cannot carry the parcel), which is what the
        # pickup's delay must not exceed to reach that candidate; brk_after[p]: a candidate
        # before a break after node p.
        nxt_c = [k] * k
        gap = [INF] * k
        brk_after = [False] * k
        # Lower bounds of a formula-priced candidate's time and lateness cost terms (sd = 0,
        # delta_1 = 0: each term is monotone in them), and their least values (and dd's)
        # over such candidates from node j on.
        t_lb = [INF] * k
        l_lb = [INF] * k
        dd_min = [INF] * (k + 1)
        t_min = [INF] * (k + 1)
        l_min = [INF] * (k + 1)
        nc, g, lo, lo_t, lo_l, ex = k, INF, INF, INF, INF, False
        for j in range(m, first - 1 if first > 1 else 0, -1):
            x = slack_cum[j] + EPS
            if is_brk is not None and is_brk[j + 1]:
                nc = j
                g = x if x < INF else INF  # a NaN slack constrains nothing (as `sc < seg`)
                ex = True
            else:
                s0 = dep[j] + t_to_d[j] * f
                s0 = s0 if s0 >= e_d else e_d
                d0 = s0 + s_d + t_from_d[j] * (f_home_lb if j == m else f) - arr[j + 1]
                if d0 > max_delay[j + 1] + EPS:
                    if x < g:
                        g = x
                else:
                    nc = j
                    g = x if x < INF else INF
                    if d0 < 0.0:
                        d0 = 0.0
                    end = d0 - (total_wait - wc[j])
                    if end < 0.0:
                        end = 0.0
                    if home_lb and j < m:
                        end += home_lb
                        if end < 0.0:
                            end = 0.0
                    late = s0 - l_d
                    if late < 0.0:
                        late = 0.0
                    late = late + d0 * late_after[j + 1]
                    tj = t_lb[j] = per_hour * end / 3600.0
                    lj = l_lb[j] = per_min * late / 60.0
                    if dd[j] < lo:
                        lo = dd[j]
                    if tj < lo_t:
                        lo_t = tj
                    if lj < lo_l:
                        lo_l = lj
            if not fits[j]:
                g = -INF
            nxt_c[j - 1] = nc
            gap[j - 1] = g
            brk_after[j - 1] = ex
            dd_min[j] = lo
            t_min[j] = lo_t
            l_min[j] = lo_l
        for j in range(min(first - 1, m), 0, -1):  # the loop above where j is no candidate
            x = slack_cum[j] + EPS
            if is_brk is not None and is_brk[j + 1]:
                nc = j  # (but right before a break)
                g = x if x < INF else INF
                ex = True
            elif x < g:
                g = x
            if not fits[j]:
                g = -INF
            nxt_c[j - 1] = nc
            gap[j - 1] = g
            brk_after[j - 1] = ex
            dd_min[j] = lo
            t_min[j] = lo_t
            l_min[j] = lo_l
        # With breaks: nxt_x[p], the first candidate before a break reached from node p
        # through nxt_c (k: none), and gap_x[p] the least gap on the way, so that an i whose
        # formula candidates are all too dear goes from one such candidate to the next at once
        # (the walk through nxt_c would stop where lim > gap: before it, when lim > gap_x).
        nxt_x = [k] * k
        gap_x = [INF] * k
        if is_brk is not None:
            for p in range(m - 1, -1, -1):
                nc = nxt_c[p]
                if nc > m:
                    continue
                g = gap[p]
                if is_brk[nc + 1]:
                    nxt_x[p] = nc
                    gap_x[p] = g
                else:
                    nxt_x[p] = nxt_x[nc]
                    gx = gap_x[nc]
                    gap_x[p] = g if g < gx else gx
        # The nodes j whose delivery after them is a candidate (for the plays before a
        # break, which need not price the others: see _ExactInsertion.evaluations_after).
        maybe: list[bool] | None = None
        if exact is not None and is_brk is not None and 0.0 < f < INF:
            maybe = [False, *[nc == j for j, nc in enumerate(nxt_c, 1)]]
        for i in range(1 if first_only else m):
            if not fits[i] or not chain_ok[i]:
                continue
            if exact is not None and is_brk is not None and is_brk[i + 1]:
                # The pickups right before a break (moved to their door): priced exactly
                # (but where the play is back on the old route and the delivery after node j
                # is no candidate, `maybe`).
                for j, found in exact.evaluations_after(i, m, maybe):
                    if not fits[j]:
                        break
                    if found is not None and found[0] < best:
                        best, best_pos, best_info = found[0], (i, j), found[1:]
                continue
            j = nxt_c[i]
            if j > m:
                break  # no candidate after node i, nor after any later node (nor a break)
            dist_p = s_to_p[i] + chain_dist + s_from_pr[i] - s_next[i]
            if km * (dist_p + dd_all[i + 1]) >= best and not brk_after[i]:
                # (Not before a break: priced exactly, its time and lateness may be negative.)
                continue
            # Cost lower bound over the formula-priced candidates after node i.
            lb = per_km * (dist_p + dd_min[i + 1]) / 1000.0 + t_min[i + 1] + l_min[i + 1]
            only_exact = lb >= best
            if only_exact and not brk_after[i]:
                continue
            delta_1 = dep_p[i] + t_from_pr[i] * f - arr[i + 1]
            gain_1 = 0.0
            if delta_1 < 0.0:
                gain_1 = -delta_1
                delta_1 = 0.0
            lim = delta_1 + wc[i]
            if lim != lim:
                # NaN: every formula cost of this i is NaN, never below best; the positions
                # before a break are reached up to the first stop that cannot carry the parcel.
                if exact is not None and is_brk is not None and brk_after[i]:
                    for j in range(i + 1, m + 1):
                        if not fits[j]:
                            break
                        if is_brk[j + 1]:
                            found = exact.evaluate(i, j)
                            if found is not None and found[0] < best:
                                best, best_pos, best_info = found[0], (i, j), found[1:]
                continue
            wci = wc[i]
            p = i
            while j <= m:
                if only_exact:  # (so brk_after[i]) to the next candidate before a break
                    j = nxt_x[p]
                    if j > m or lim > gap_x[p]:
                        break
                elif lim > gap[p]:
                    break  # a stop before the delivery cannot absorb the delay: later j too
                p = j
                j = nxt_c[j]
                if exact is not None and is_brk is not None and is_brk[p + 1]:
                    if exact.bound(i, p) >= best:
                        continue  # (infeasible or no cheaper: see _ExactInsertion.bound)
                    found = exact.evaluate(i, p)  # the delivery right before a break
                    if found is not None and found[0] < best:
                        best, best_pos, best_info = found[0], (i, p), found[1:]
                    continue
                if only_exact:
                    continue
                dist_b = dist_p + dd[p]
                if km * dist_b >= best:
                    continue
                if per_km * dist_b / 1000.0 + t_lb[p] + l_lb[p] >= best:
                    continue
                sd = delta_1 - (wc[p] - wci)
                if sd < 0.0:
                    sd = 0.0
                arr_d = dep[p] + sd + t_to_d[p] * f
                start_d = arr_d if arr_d >= e_d else e_d
                if steps is not None and p == m:  # the way home from the delivery
                    dep_d = start_d + s_d
                    fh = _home_ceiling(cache, dep_d - gain_1, dep_d)
                    delta_2 = dep_d + t_from_d[p] * fh - arr[p + 1]
                else:
                    delta_2 = start_d + s_d + t_from_d[p] * f - arr[p + 1]
                gain = gain_1 - delta_2  # (how much earlier it may really get to node p+1)
                if delta_2 < 0.0:
                    delta_2 = 0.0
                if delta_2 > max_delay[p + 1] + EPS:
                    continue
                end = delta_2 - (total_wait - wc[p])
                if end < 0.0:
                    end = 0.0
                gain = gain if gain > 0.0 else 0.0
                if (
                    steps is not None
                    and p < m
                    and not (dep_m - gain >= home_lo and dep_m + end < home_hi)
                ):
                    x = _home_extra(cache, end, gain)
                    if x:
                        if x > 0.0 and arr[big_m] + end + x > home_end:
                            continue  # home after the shift end
                        end += x
                        if end < 0.0:
                            end = 0.0
                late = start_d - l_d
                if late < 0.0:
                    late = 0.0
                late += delta_1 * (late_after[i + 1] - late_after[p + 1])
                late += delta_2 * late_after[p + 1]
                # _cost_cents inlined (hot path)
                cost = per_km * dist_b / 1000.0 + per_hour * end / 3600.0 + per_min * late / 60.0
                if cost < best:
                    best = cost
                    best_pos = (i, p)
                    best_info = (start_d, late, dist_b, end)
    if best == INF:
        return NO_POSITION
    return Quote(
        feasible=True,
        cost_delta_cents=best + rates.fixed,
        pickup_after=best_pos[0],
        delivery_after=best_pos[1],
        delivery_start_s=best_info[0],
        lateness_s=best_info[1],
        distance_delta_m=best_info[2],
        end_delay_s=best_info[3],
    )


def _quote_empty(
    cache: RouteCache,
    job: JobSpec,
    *,
    cap: Sequence[float],
    rates: CostRates,
    rows: tuple[Rows, Rows],
) -> Quote:
    """:func:`_quote_loops` for a route without stops: only the job alone after the anchor.

    The same operations in the same order as the loops' case A at ``i = 0`` (bit-identical).
    """
    dur_rows, dist_rows = rows
    a0, home = cache.loc_list
    f = cache.factor
    chain = job.chain_loc
    d = job.delivery_loc
    dur_a0 = dur_rows[a0]
    dist_a0 = dist_rows[a0]
    if chain:
        n_chain = len(chain)
        t = cache.dep_list[0] + dur_a0[chain[0]] * f
        chain_ok = True
        for e in range(n_chain):
            ce = job.chain_earliest[e]
            t = t if t >= ce else ce
            if t > job.latest(e) + EPS:
                chain_ok = False  # the node has closed for good by then
            t = t + job.chain_service[e]
            if e + 1 < n_chain:
                t = t + float(dur_rows[chain[e]][chain[e + 1]]) * f
        chain_dist = 0.0
        for e in range(n_chain - 1):
            chain_dist += float(dist_rows[chain[e]][chain[e + 1]])
        pr = chain[-1]
        arr_d = t + float(dur_rows[pr][d]) * f
        dist_a = dist_a0[chain[0]] + chain_dist + float(dist_rows[pr][d])
        dist_a = dist_a + dist_rows[d][home] - dist_a0[home]
        if not chain_ok:
            return NO_POSITION
        q = job.demand
        if q:
            for col, qk, ck in zip(cache.load_cols, q, cap, strict=True):
                if not col[0] + qk <= ck + EPS:
                    return NO_POSITION
    else:
        arr_d = cache.dep_list[0] + dur_a0[d] * f
        dist_a = dist_a0[d] + dist_rows[d][home] - dist_a0[home]
    e_d = job.delivery_earliest
    start_d = arr_d if arr_d >= e_d else e_d
    if cache.steps is not None:  # the way home at the factor when it leaves the delivery
        dep_d = start_d + job.delivery_service
        delta = dep_d + dur_rows[d][home] * _home_ceiling(cache, dep_d, dep_d) - cache.arr_list[1]
    else:
        delta = start_d + job.delivery_service + dur_rows[d][home] * f - cache.arr_list[1]
    if delta < 0.0:
        delta = 0.0
    if delta > cache.max_delay_list[1] + EPS:
        return NO_POSITION
    wc = cache.wait_cum_list
    end = delta - (wc[1] - wc[0])
    if end < 0.0:
        end = 0.0
    late = start_d - job.delivery_latest
    if late < 0.0:
        late = 0.0
    late += delta * cache.late_after_list[1]
    # _cost_cents inlined (hot path)
    cost = (
        rates.per_km * dist_a / 1000.0
        + rates.per_hour * end / 3600.0
        + rates.lateness_per_min * late / 60.0
    )
    if not cost < INF:
        return NO_POSITION
    return Quote(
        feasible=True,
        cost_delta_cents=cost + rates.fixed,
        pickup_after=0,
        delivery_after=0,
        delivery_start_s=start_d,
        lateness_s=late,
        distance_delta_m=dist_a,
        end_delay_s=end,
    )


def _quote_numpy(
    cache: RouteCache,
    job: JobSpec,
    *,
    capacity: FloatArray,
    duration: NDArray[np.int32],
    distance: NDArray[np.int32],
    rates: CostRates,
) -> Quote:
    """Vectorised over all (pickup, delivery) position pairs (fast for long routes; a route
    with breaks is quoted by :func:`_quote_loops`)."""
    if cache.breaks is not None:
        return _quote_loops(
            cache, job, capacity=capacity, duration=duration, distance=distance, rates=rates
        )
    loc = cache.loc
    m = loc.shape[0] - 2
    f = cache.factor
    dep = cache.dep
    arr = cache.arr
    wc = cache.wait_cum
    if np.any(np.asarray(job.demand) > capacity + EPS):
        return NO_CAPACITY
    prev = loc[: m + 1]
    nxt = loc[1:]
    d = job.delivery_loc
    # Pickup chain after each node i = 0..m.
    chain = job.chain_loc
    chain_ok = np.ones(m + 1, dtype=bool)
    if chain:
        t = dep[: m + 1] + duration[prev, chain[0]] * f
        chain_dist = 0.0
        for e in range(len(chain)):
            t = np.maximum(t, job.chain_earliest[e])
            chain_ok &= t <= job.latest(e) + EPS
            t = t + job.chain_service[e]
            if e + 1 < len(chain):
                t = t + float(duration[chain[e], chain[e + 1]]) * f
                chain_dist += float(distance[chain[e], chain[e + 1]])
        dep_p = t
        last = chain[-1]
        first_dist = distance[prev, chain[0]].astype(np.float64) + chain_dist
    else:  # parcel already on board: only the delivery is inserted
        dep_p = dep[: m + 1].copy()
        last = -1
        first_dist = np.zeros(m + 1)
    base_next = distance[prev, nxt].astype(np.float64)
    # Case A: delivery right after the pickup chain (j == i).
    if last >= 0:
        arr_d_a = dep_p + float(duration[last, d]) * f
        dist_a = first_dist + float(distance[last, d]) + distance[d, nxt] - base_next
    else:
        arr_d_a = dep_p + duration[prev, d] * f
        dist_a = distance[prev, d] + distance[d, nxt] - base_next
    start_d_a = np.maximum(arr_d_a, job.delivery_earliest)
    delta_a = np.maximum(0.0, start_d_a + job.delivery_service + duration[d, nxt] * f - arr[1:])
    feas_a = (delta_a <= cache.max_arrival_delay[1:] + EPS) & chain_ok
    q = np.asarray(job.demand)
    if q.size and chain:
        feas_a &= np.all(cache.load + q <= capacity + EPS, axis=1)
    end_a = np.maximum(0.0, delta_a - (wc[-1] - wc[: m + 1]))
    late_a = np.maximum(0.0, start_d_a - job.delivery_latest)
    late_a = late_a + delta_a * cache.late_after[1:]
    cost_a = np.where(feas_a, _cost_cents(rates, dist_a, end_a, late_a), INF)
    best_i = int(np.argmin(cost_a))
    best = (float(cost_a[best_i]), best_i, best_i)
    best_start = float(start_d_a[best_i])
    best_late = float(late_a[best_i])
    best_dist = float(dist_a[best_i])
    best_end = float(end_a[best_i])
    if m >= 1 and chain:
        # Case B: pickup after node i, delivery after node j, i < j <= m.
        delta_1 = np.maximum(0.0, dep_p + duration[last, nxt] * f - arr[1:])
        dist_p = first_dist + distance[last, nxt] - base_next
        j_nodes = np.arange(1, m + 1)
        jl = loc[j_nodes]
        jn = loc[j_nodes + 1]
        dist_d = distance[jl, d].astype(np.float64) + distance[d, jn] - distance[jl, jn]
        i_col = np.arange(m + 1)[:, None]
        j_row = j_nodes[None, :]
        upper = j_row > i_col
        # Start delay at node j from the pickup detour.
        sd = np.maximum(0.0, delta_1[:, None] - (wc[None, j_nodes] - wc[: m + 1, None]))
        arr_d = dep[None, j_nodes] + sd + (duration[jl, d] * f)[None, :]
        start_d = np.maximum(arr_d, job.delivery_earliest)
        delta_2 = np.maximum(
            0.0,
            start_d
            + job.delivery_service
            + (duration[d, jn] * f)[None, :]
            - arr[None, j_nodes + 1],
        )
        # Stops between pickup and delivery must absorb delta_1 within their slack.
        seg = np.where(upper, cache.slack_cum[None, j_nodes], INF)
        seg_min = np.minimum.accumulate(seg, axis=1)
        feas = upper & chain_ok[:, None] & (delta_1[:, None] + wc[: m + 1, None] <= seg_min + EPS)
        feas &= delta_2 <= cache.max_arrival_delay[None, j_nodes + 1] + EPS
        if q.size and np.any(np.isfinite(capacity)):
            ld = cache.load  # (m+1, D), load after node k
            all_j = np.arange(m + 1)
            span = np.where(
                (all_j[None, :] >= i_col)[:, :, None], ld[None, :, :], -INF
            )  # (m+1, m+1, D)
            span_max = np.maximum.accumulate(span, axis=1)[:, 1:, :]
            feas &= np.all(span_max + q <= capacity + EPS, axis=2)
        end_b = np.maximum(0.0, delta_2 - (wc[-1] - wc[None, j_nodes]))
        late_b = np.maximum(0.0, start_d - job.delivery_latest)
        la = cache.late_after
        late_b = late_b + delta_1[:, None] * (la[1 : m + 2, None] - la[None, j_nodes + 1])
        late_b = late_b + delta_2 * la[None, j_nodes + 1]
        dist_b = dist_p[:, None] + dist_d[None, :]
        cost_b = np.where(feas, _cost_cents(rates, dist_b, end_b, late_b), INF)
        flat = int(np.argmin(cost_b))
        bi, bj = divmod(flat, m)
        if cost_b[bi, bj] < best[0]:
            best = (float(cost_b[bi, bj]), bi, bj + 1)
            best_start = float(start_d[bi, bj])
            best_late = float(late_b[bi, bj])
            best_dist = float(dist_b[bi, bj])
            best_end = float(end_b[bi, bj])
    if not math.isfinite(best[0]):
        return NO_POSITION
    return Quote(
        feasible=True,
        cost_delta_cents=best[0] + rates.fixed,
        pickup_after=best[1],
        delivery_after=best[2],
        delivery_start_s=best_start,
        lateness_s=best_late,
        distance_delta_m=best_dist,
        end_delay_s=best_end,
    )


#: (cost, delivery start, lateness, extra metres, end delay) of one insertion.
Priced = tuple[float, float, float, float, float]

#: Margins of :meth:`_ExactInsertion.bound`: seconds taken off the times it starts from and
#: the relative (and absolute, cents) part taken off its cost, both far above float rounding
#: (times of a day are below 1e6 s, where a double's step is about 1e-10 s).
TIME_MARGIN_S = 1e-3
COST_MARGIN = 1e-6


class _ExactInsertion:
    """Insertions right before a driver break, priced by playing the changed route forward.

    Such an insertion moves the break to the inserted stop's door (a break is taken where the
    courier is), which changes the leg after the break: the forward-slack formulas, which
    delay the rest of the route by one amount, do not apply there. The new route is played
    from the insertion on until it rejoins the old one, at the first stop that is not a
    break after the delivery: from there a delay is absorbed as the formulas say (an earlier
    arrival is played on to the end). The answer is the change of :func:`route_cost_cents`
    (exact when no stop was late; a late stop's extra lateness from the rejoin on is bounded
    as for the other positions).
    """

    def __init__(
        self,
        cache: RouteCache,
        brk: BreakNodes,
        job: JobSpec,
        travel: tuple[Rows | NDArray[np.int32], Rows | NDArray[np.int32]],
        rates: CostRates,
        shortcut_s: int | None = None,
    ) -> None:
        """``shortcut_s``: see :func:`quote_insertion` (None: unknown, :meth:`bound` knows
        nothing)."""
        self.cache = cache
        self.brk = brk
        self.job = job
        self.dur, self.dist = travel
        self.rates = rates
        # The old route's metres from its anchor to each node (whole numbers: summed as ints
        # from the legs the cache remembers, or as floats, the same values).
        if isinstance(self.dist, np.ndarray) or isinstance(self.dur, np.ndarray):
            loc = cache.loc_list
            cum = [0.0]
            for a, b in pairwise(loc):
                cum.append(cum[-1] + float(self.dist[a][b]))
            self._metres = cum
        else:
            self._metres = cache.metres_to_nodes(self.dur, self.dist)
        # The plays of _play_to for the pickups after node _i: _plays[j - _i] leaves node j.
        self._i = -1
        self._plays: list[tuple[float, int, float, float]] = []
        self._dead = False
        self._synced = False  # the play of _i is back on the old route (see _play_to)
        self._regular_ok: bool | None = None
        self._shortcut_s = shortcut_s
        self._gain: float | None = None  # see _pickup_gain

    def _leg(self, a: int, b: int) -> tuple[float, float]:
        return float(self.dur[a][b]) * self.cache.factor, float(self.dist[a][b])

    def evaluate(self, i: int, j: int) -> Priced | None:
        """(cost, delivery start, lateness, extra metres, end delay) of the pickups after node
        ``i`` and the delivery after node ``j`` (``j >= i``), None if infeasible."""
        state = self._play_to(i, j)
        return None if state is None else self._deliver(i, j, *state)

    def evaluations(self, i: int, last: int) -> Iterator[tuple[int, Priced | None]]:
        """:meth:`evaluate` of the pickups after node ``i`` with the delivery after each node
        ``j = i..last`` in turn; it stops early when no later ``j`` can be feasible."""
        state = self._play_to(i, i)
        if state is None:
            return  # late now: so with every later delivery
        yield i, self._deliver(i, i, *state)
        yield from self.evaluations_after(i, last, None)

    def evaluations_after(
        self, i: int, last: int, maybe: Sequence[bool] | None
    ) -> Iterator[tuple[int, Priced | None]]:
        """:meth:`evaluations` of the pickups after node ``i`` for ``j = i+1..last``, but None
        without pricing where ``maybe[j]`` is False and the play leaves node ``j`` from
        ``loc[j]`` no earlier than the old route did (``dep[j]``); it stops early when no
        later ``j`` can be feasible.

        ``maybe[j]``: whether :func:`_quote_loops` counts node ``j`` a candidate (None: every
        node is one): the delivery after it is right before a break, or the forward-slack
        test does not refuse the delay ``d0`` it causes at node ``j+1`` from the old route's
        departure ``dep[j]`` (refused: ``d0 > max_delay[j+1] + EPS``, computed for ``j >=
        first``; before ``first`` known without it, see :func:`_first_delivery_position`, or
        no slack at all, :func:`_detour_free`); the travel factor must be positive and
        finite. Why None is then exact: node ``j+1`` is no break, so :meth:`_deliver` from
        ``loc[j]`` at ``t`` computes the delay at node ``j+1`` with the operations of ``d0``
        (``t + dur * f``, the earliest start, ``+ service``, ``+ dur * f``, ``- arr[j+1]``),
        each non-decreasing in ``t`` (float rounding is monotone; no NaN: the travel is
        finite), so from ``t >= dep[j]`` that delay is at least ``d0``, above ``max_delay[j+1]
        + EPS`` (which is ``>= 0``: a slack_cum is at least the waiting before it): it is
        ``>= 0`` and refused.

        It stops at such a ``j`` after the last candidate when every time of the route is
        finite and each break at the location before it (:meth:`_regular`): from there the
        play goes on through the old route's locations no earlier than it did (the same
        legs, earliest starts and services from a time no earlier: float rounding is
        monotone), so every later ``j``, no candidate either, is refused as above (or the
        play dies first: None too).
        """
        loc = self.cache.loc_list
        dep = self.cache.dep_list
        last_maybe = last
        if maybe is not None:
            while last_maybe > i and not maybe[last_maybe]:
                last_maybe -= 1
        for j in range(i + 1, last + 1):
            state = self._play_to(i, j)
            if state is None:
                return  # late now: so with every later delivery
            if maybe is not None and not maybe[j] and state[1] == loc[j] and state[0] >= dep[j]:
                if j > last_maybe and self._regular():
                    return  # (so is every later delivery)
                yield j, None
            else:
                yield j, self._deliver(i, j, *state)

    def _play_to(self, i: int, j: int) -> tuple[float, int, float, float] | None:
        """(departure, location, metres, lateness so far) after the pickups inserted after node
        ``i`` and the route's own stops ``i+1..j`` (None: a pickup closed or a stop on time
        would be late). The plays of the last ``i`` are kept, so that each is done once.

        Once the play leaves a node from where and at the very time the old route did (the
        delay absorbed by waiting), it goes on as the old route did, bit for bit: the same
        operations on the same values (see :meth:`_regular`). From there on each stop's
        lateness is what it was (no extra) and each leg the old one, so the state at a later
        node is read from the cache instead of played (the metres are sums of whole numbers:
        exact in any order).
        """
        if i != self._i:
            self._i = i
            self._plays = plays = []
            self._dead = False
            self._synced = False
            c = self.cache
            job = self.job
            t = c.dep_list[i]
            cur = c.loc_list[i]
            metres = 0.0
            for e, x in enumerate(job.chain_loc):
                dt, dm = self._leg(cur, x)
                metres += dm
                t += dt
                ce = job.chain_earliest[e]
                t = t if t >= ce else ce
                if t > job.latest(e) + EPS:
                    self._dead = True  # the node has closed for good by then
                    return None
                t += job.chain_service[e]
                cur = x
            plays.append((t, cur, metres, 0.0))
        plays = self._plays
        n = j - i
        if n < len(plays):
            return plays[n]
        if self._dead:
            return None
        if self._synced:  # on the old route since node i + len(plays) - 1
            k0 = i + len(plays) - 1
            _, _, metres, late = plays[-1]
            c = self.cache
            return c.dep_list[j], c.loc_list[j], metres + (self._metres[j] - self._metres[k0]), late
        c = self.cache
        b = self.brk
        dep = c.dep_list
        loc = c.loc_list
        start = c.start_list
        lateness = c.lateness_list
        is_break = b.is_break
        earliest = b.earliest
        latest = b.latest
        service = b.service
        dur = self.dur
        dist = self.dist
        f = c.factor
        t, cur, metres, late = plays[-1]
        k = i + len(plays) - 1
        while k < j:
            k += 1
            # _visit inlined (the same operations: the same bits)
            here = cur if is_break[k] else loc[k]
            s = t + float(dur[cur][here]) * f
            metres += float(dist[cur][here])
            ek = earliest[k]
            if s < ek:
                s = ek
            lk = latest[k]
            if s > lk + EPS and start[k] <= lk + EPS:
                self._dead = True  # on time before, late now
                return None
            over = s - lk
            late += (over if over > 0.0 else 0.0) - lateness[k]
            t = s + service[k]
            cur = here
            plays.append((t, cur, metres, late))
            # (a break taken at the pickups' door is not where the old route took it)
            if t == dep[k] and cur == loc[k] and self._regular():
                self._synced = True
                return self._play_to(i, j)
        return plays[n]

    def _regular(self) -> bool:
        """Whether a play that leaves a node from where and when the old route did goes on as
        it did, bit for bit, with no extra lateness (remembered: one answer per route).

        It does when every time of the route is finite (so a stop's extra lateness, its
        lateness less the same value, is exactly 0.0, never ``inf - inf``) and every break's
        location is the one before it (as :class:`BreakNodes` says: the play takes a break
        where the courier is, the cache at its location). :func:`_build_route_cache` computes
        the times with the operations the play does (``t + hop * factor``, the earliest
        start, ``+ service``), and the old legs' metres are whole numbers.
        """
        ok = self._regular_ok
        if ok is None:
            c = self.cache
            loc = c.loc_list
            ok = (
                math.isfinite(c.dep_list[0])
                and math.isfinite(c.arr_list[-1])
                and math.isfinite(c.lateness_total)
                and all(
                    loc[k] == loc[k - 1] for k in range(1, len(loc) - 1) if self.brk.is_break[k]
                )
            )
            self._regular_ok = ok
        return ok

    def _pickup_gain(self) -> float:
        """How much earlier than the old route the pickups can make it reach the node after
        them, plus a margin for float rounding (see :meth:`bound`); INF: unknown."""
        f = self.cache.factor
        s = self._shortcut_s
        if s is None or not 0.0 <= f < INF or any(not x >= 0.0 for x in self.job.chain_service):
            return INF
        return len(self.job.chain_loc) * s * f + TIME_MARGIN_S

    def bound(self, i: int, j: int) -> float:
        """A lower bound of :meth:`evaluate`'s cost (``-inf``: none known) for pickups after
        node ``i`` that is not right before a break and the delivery after node ``j > i``:
        :meth:`evaluate` (``>= bound``, or None) is not needed where ``bound >= best``.

        Why it is one (``G``: ``len(chain) * shortcut_s * factor``, how much quicker the way
        ``i -> pickups -> i+1`` can be than the leg ``i -> i+1``; 0 for a metric table):

        * the play reaches node ``i+1`` at least ``G`` earlier than the old route did (its
          pickups' services and earliest starts only delay it); waiting (the earliest start of
          a stop or break) and the same legs on to node ``j`` (a break between is where it was)
          keep that, so it leaves node ``j``, at ``loc[j]``, no earlier than ``dep[j] - G``,
          and no stop up to ``j`` starts more than ``G`` earlier: each one's extra lateness
          is at least ``-G``;
        * its metres are the old legs' and the pickups', whole numbers: exact;
        * :meth:`_deliver` is non-decreasing in its start time ``t`` and lateness (later
          starts, arrivals, delays, lateness; where the later play rejoins the old route
          sooner, its delay there is at least what the earlier one's is at its rejoin after the
          waiting between, with fewer late stops after it: the end delay and lateness formulas
          do not decrease), and infeasible when the earlier start is: a break after the
          delivery late from a later start too; a delay at the earlier play's rejoin ``k``
          beyond ``max_delay[k]`` came, in the later play, from a delay at its own rejoin
          ``k' <= k`` at least that plus the waiting between, beyond ``max_delay[k']`` (the
          least slack from ``k'`` on is at most that from ``k`` on plus that waiting).

        So :meth:`_deliver` from ``loc[j]`` at ``dep[j] - G``, with those exact metres and
        lateness ``-G`` per stop, costs no more than the real play, and where it is infeasible
        by more than ``G`` (its limits loosened by that much) the real play is infeasible:
        ``inf``. ``G`` carries a margin (:data:`TIME_MARGIN_S`) far above the float rounding of
        these times, the cost one (:data:`COST_MARGIN`) far above that of the costs. Without
        ``shortcut_s``, with a non-finite time or a break away from the location before it:
        ``-inf``.
        """
        g = self._gain
        if g is None:
            g = self._gain = self._pickup_gain()
        brk = self.brk
        if g == INF or brk.is_break[i + 1] or not self._regular():
            return -INF
        c = self.cache
        loc = c.loc_list
        dist = self.dist
        cur = loc[i]
        metres = 0.0
        for x in self.job.chain_loc:
            metres += float(dist[cur][x])
            cur = x
        metres += float(dist[cur][loc[i + 1]])
        metres += self._metres[j] - self._metres[i + 1]
        found = self._deliver(i, j, c.dep_list[j] - g, loc[j], metres, -g * (j - i), g)
        if found is None:
            return INF  # (infeasible by more than the margin: so is the real play)
        cost = found[0]
        lb = cost - (COST_MARGIN + COST_MARGIN * abs(cost))
        return lb if lb == lb else -INF  # (NaN: none known)

    def _deliver(
        self, i: int, j: int, t: float, cur: int, metres: float, late: float, tol: float = 0.0
    ) -> Priced | None:
        """The delivery after node ``j``, leaving ``cur`` at ``t``, then the rest of the route
        (``metres`` and ``late`` so far, from node ``i`` on); ``tol``: what a stop's lateness
        or a delay may exceed its limit by before it is refused (for :meth:`bound`)."""
        c = self.cache
        b = self.brk
        job = self.job
        loc = c.loc_list
        m = len(loc) - 2
        d = job.delivery_loc
        dur = self.dur
        dist = self.dist
        f = c.factor
        metres += float(dist[cur][d])
        start_d = t + float(dur[cur][d]) * f
        if start_d < job.delivery_earliest:
            start_d = job.delivery_earliest
        own = start_d - job.delivery_latest
        late += own if own > 0.0 else 0.0
        t = start_d + job.delivery_service
        cur = d
        k = j + 1
        is_break = b.is_break
        while k <= m and is_break[k]:  # breaks after the delivery: taken at its door
            step = self._visit(k, t, cur, tol)
            if step is None:
                return None
            t, cur, extra, dm = step
            late += extra
            metres += dm
            k += 1
        wc = c.wait_cum_list
        arr = c.arr_list
        steps = c.steps
        while True:  # back on the old route at node k (a stop that is not a break, or home)
            here = loc[k]
            metres += float(dist[cur][here])
            if steps is not None and k == m + 1:
                # the way home at the factor when it leaves (for bound: the lowest one)
                fh = c.home_lowest if tol else _home_ceiling(c, t, t)
                delta = t + float(dur[cur][here]) * fh - arr[k]
            else:
                delta = t + float(dur[cur][here]) * f - arr[k]
            if delta >= 0.0 or k == m + 1:
                limit = c.max_delay_list[k] + EPS
                if tol:
                    limit += tol
                if delta > limit:
                    return None
                if delta >= 0.0:
                    end = delta - (wc[m + 1] - wc[k - 1])
                    end = end if end > 0.0 else 0.0
                    late += delta * c.late_after_list[k]
                    if steps is not None and k <= m:  # its last stop leaves `end` later
                        if tol:
                            end += c.home_hop * (c.home_lowest - c.home_f)
                        else:
                            x = _home_extra(c, end, 0.0)
                            if x > 0.0 and arr[m + 1] + end + x > c.home_shift_end + EPS:
                                return None  # home after the shift end
                            end += x
                else:
                    end = delta  # home earlier
                break
            step = self._visit(k, t, cur)  # there earlier than before: played on
            assert step is not None  # (an earlier arrival makes no stop late)
            t, cur, extra, _ = step
            late += extra
            k += 1
        metres -= self._metres[k] - self._metres[i]  # the old route's from node i to k
        r = self.rates
        # _cost_cents inlined (as in _quote_loops)
        cost = (
            r.per_km * metres / 1000.0
            + r.per_hour * end / 3600.0
            + r.lateness_per_min * late / 60.0
        )
        return cost, start_d, late, metres, end

    def _visit(
        self, k: int, t: float, cur: int, tol: float = 0.0
    ) -> tuple[float, int, float, float] | None:
        """Serve old node ``k`` after leaving ``cur`` at ``t``: (departure, location, extra
        lateness, metres), None if a stop on time would be late."""
        c = self.cache
        b = self.brk
        here = cur if b.is_break[k] else c.loc_list[k]
        dt, dm = self._leg(cur, here)
        s = t + dt
        if s < b.earliest[k]:
            s = b.earliest[k]
        lk = b.latest[k]
        limit = lk + EPS
        if tol:
            limit += tol
        if s > limit and c.start_list[k] <= lk + EPS:
            return None  # on time before, late now
        x = s - lk
        extra = (x if x > 0.0 else 0.0) - c.lateness_list[k]
        return s + b.service[k], here, extra, dm


def route_cost_cents(
    cache: RouteCache,
    *,
    distance: NDArray[np.int32],
    rates: CostRates,
    distance_rows: Rows | None = None,
) -> float:
    """Planned cost of the remaining route from its anchor: distance, time, lateness."""
    loc = cache.loc_list
    if distance_rows is not None:
        dist = float(sum([distance_rows[a][b] for a, b in pairwise(loc)]))
    else:
        dist = float(distance[cache.loc[:-1], cache.loc[1:]].sum())
    span = cache.end_s - cache.t0
    # _cost_cents inlined (hot path)
    return (
        rates.per_km * dist / 1000.0
        + rates.per_hour * span / 3600.0
        + rates.lateness_per_min * cache.lateness_total / 60.0
    )
