"""Integer phase on the pattern pool: LP rounding, neighbourhood search, certificate.

The master LP of column generation is within ~0.1 % of the optimum on the literature
setting, but the pattern MIP over the pool is hard for HiGHS: a profile of the 300-order
batch showed its root cut loop and sub-MIP heuristics taking 3-5 s before the first good
allocation, and the compact MIP not finishing its root in 2 s. What works instead:

1. :func:`lp_round`: orders in decreasing order of their largest LP weight take their
   heaviest LP pattern that still fits, else their best pattern on what is left (priced by
   the LP duals); then every order is re-optimised once with the others fixed (or, with
   ``repass=False``, the exact per-order search where no LP pattern fits and no pass).
2. :class:`Neighbourhoods` (large-neighbourhood search): small pattern MIPs (50-120
   orders, the others fixed, built afresh with only the free orders' columns that fit in
   the stock they leave; HiGHS presolve and root heuristics off, 20-60 ms each) over
   neighbourhoods of related orders: orders sharing SKUs, and chains from an order whose
   pattern has a large reduced cost to the orders holding the stock its cheaper patterns
   need. When the largest neighbourhoods stall it stops and says so (``exhausted``).
   It can run on several threads (HiGHS releases the GIL while it solves), each answer
   applied where no other thread moved its orders and the shared rows still hold.
3. :func:`certify`: with every pattern of reduced cost below ``delta`` enumerated (see
   :mod:`solvers.allocation.enumerate`), the pattern MIP over them certifies
   ``opt >= min(L + delta, its bound)``; with ``delta`` chosen so that ``L + delta`` meets
   the gap target for the incumbent, a solved MIP certifies it (or finds the optimum).
4. :class:`PoolRace`: the whole pattern MIP over the pool, with HiGHS' defaults, in a
   helper process beside the search (two cores); the search takes its better allocations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
from scipy import sparse

from solvers.allocation.dp import GaveUp
from solvers.allocation.enumerate import near_columns
from solvers.allocation.helper_process import Channel, HelperProcess
from solvers.allocation.heuristics import Residual, polish, solve_residual
from solvers.allocation.highs_model import (
    NO_PRIMAL_HEURISTICS,
    Deadline,
    Duals,
    RunFailures,
    cancelled,
    count_failures_in,
    dual_bound,
    failures_of_solve,
    model_threads,
    new_highs,
    note_helper_failures,
    reduced_costs,
    run_highs,
    run_in_threads,
)
from solvers.allocation.master import Master
from solvers.allocation.problem import F64, I64, MICRO, Problem

log = logging.getLogger(__name__)

#: HiGHS options of the small neighbourhood MIPs (3-4x faster than the defaults there)
SUB_OPTIONS: dict[str, bool | str | float] = {
    "presolve": "off",
    "mip_detect_symmetry": False,
    **NO_PRIMAL_HEURISTICS,
    "mip_rel_gap": 0.0,
}


#: HiGHS options of the certificate MIP (only its bound matters)
CERT_OPTIONS: dict[str, bool | str | float] = {
    "mip_heuristic_run_feasibility_jump": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_effort": 0.0,
    "mip_allow_restart": False,
    "mip_rel_gap": 0.0,
}


#: orders :func:`lp_round` places between two looks at its ``give_up``
ROUND_CHECK_ORDERS = 64


def lp_round(
    prob: Problem,
    master: Master,
    z: F64,
    duals: Duals,
    *,
    deadline: float,
    repass: bool = True,
    give_up: Callable[[], bool] | None = None,
) -> I64:
    """A feasible allocation from the master LP solution ``z`` (see the module docstring).

    ``repass=False``: an order none of whose LP patterns fits gets the exact search on what
    is left (not the relaxed one), and no order is re-optimised after (see
    ``batch.ROUND_REPASS``). ``give_up`` (a solve's cancellation) is asked every
    :data:`ROUND_CHECK_ORDERS` orders: once it says True,
    :class:`~solvers.allocation.dp.GaveUp` is raised (the rounding has no answer).
    """
    co = np.asarray(master.col_order, dtype=np.int64)[: z.shape[0]]
    n_o = prob.num_orders
    pos = np.nonzero(z > 1e-9)[0]
    z_max = np.zeros(n_o)
    np.maximum.at(z_max, co[pos], z[pos])
    columns: dict[int, list[int]] = {}
    for c in pos[np.argsort(-z[pos], kind="stable")].tolist():
        columns.setdefault(int(co[c]), []).append(c)
    c_arc, c_pair = reduced_costs(prob, duals)
    split = prob.split / MICRO
    res = Residual(prob)
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    for i, o in enumerate(np.lexsort((np.arange(n_o), -z_max)).tolist()):
        if give_up is not None and not i % ROUND_CHECK_ORDERS and give_up():
            raise GaveUp
        if prob.order_pair_start[o] == prob.order_pair_start[o + 1]:
            continue
        chosen: tuple[I64, I64] | None = None
        for c in columns.get(o, []):
            arcs, qty = master.pool.arcs[c], master.pool.qty[c]
            if res.fits(o, arcs, qty):
                chosen = (arcs, qty)
                break
        if chosen is None:
            chosen = solve_residual(prob, o, res, c_arc, c_pair, split, exact=not repass)[:2]
        res.take(o, *chosen)
        x[chosen[0]] += chosen[1]
    return polish(prob, x, deadline=deadline, only_short=False) if repass else x


@dataclass
class MipArrays:
    """A pattern MIP as plain arrays (picklable): binary columns, column-wise matrix."""

    cost: F64
    row_lower: F64
    row_upper: F64
    start: np.ndarray  # int32 column starts
    index: np.ndarray  # int32 row indices
    value: F64
    offset: float
    x0: F64  # MIP start (empty: none)


def load_mip(
    arrays: MipArrays,
    seconds: float,
    seed: int,
    threads: int | None,
    options: dict[str, bool | str | float] | None,
) -> tuple[highspy.Highs, Deadline]:
    """A fresh HiGHS instance holding the pattern MIP ``arrays`` (``SUB_OPTIONS`` by default)."""
    h = new_highs(threads)
    h.setOptionValue("random_seed", int(seed))
    for name, value in (SUB_OPTIONS if options is None else options).items():
        h.setOptionValue(name, value)
    h.setOptionValue("time_limit", max(float(seconds), 0.01))
    deadline = Deadline(h)
    deadline.at = time.perf_counter() + max(float(seconds), 0.01)
    n = arrays.cost.shape[0]
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = arrays.row_lower.shape[0]
    lp.col_cost_ = arrays.cost
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    lp.row_lower_ = arrays.row_lower
    lp.row_upper_ = arrays.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = arrays.start
    lp.a_matrix_.index_ = arrays.index
    lp.a_matrix_.value_ = arrays.value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    lp.offset_ = arrays.offset
    h.passModel(lp)
    if arrays.x0.shape[0]:
        h.setSolution(n, np.arange(n, dtype=np.int32), arrays.x0)
    return h, deadline


#: relative difference between HiGHS' reported objective and the cost of the solution it
#: hands back above which its dual bound is not trusted. HiGHS 1.16 with presolve and a MIP
#: start can end "Optimal" at the start's columns with an objective and bound that are not
#: theirs (a 3-order case: objective and bound 4.0, the columns cost 10.0, the optimum 9.0)
OBJECTIVE_TOLERANCE = 1e-6


class SubMip:
    """Pattern MIPs over a subset of orders and columns, the other orders' columns fixed."""

    def __init__(self, master: Master, *, seed: int, threads: int | None) -> None:
        self.master = master
        self.usage = master.usage_matrix().tocsc()
        self.col_order = np.asarray(master.col_order, dtype=np.int64)
        self.cost = np.asarray(master.pool.cost, dtype=np.int64)
        self.rhs = master.rows.rhs
        self.seed, self.threads = seed, model_threads(threads)
        self.nodes = 0

    @property
    def num_cols(self) -> int:
        """Columns of the pool this was built on."""
        return int(self.col_order.shape[0])

    def total(self, choice: I64) -> int:
        """Cost (micro) of one column per order."""
        return int(self.cost[choice].sum())

    def build(
        self, free: np.ndarray, current: I64, *, columns: np.ndarray | None = None
    ) -> SubModel:
        """The pattern MIP of :meth:`solve` as arrays (see :func:`load_mip`), not solved."""
        co = self.col_order
        mask = free[co] if columns is None else free[co] & columns
        mask[current[free]] = True
        cols = np.nonzero(mask)[0]
        fixed_cols = current[~free]
        load = np.asarray(self.usage[:, fixed_cols].sum(axis=1)).ravel()
        rhs = self.rhs - load
        # a column that alone exceeds what the fixed orders leave of a row is in no
        # feasible choice (usage is non-negative): drop it before HiGHS sees it
        use = self.usage[:, cols]
        over = use.data > rhs[use.indices] + 1e-9
        bad = np.zeros(cols.shape[0], dtype=bool)
        bad[np.repeat(np.arange(cols.shape[0]), np.diff(use.indptr))[over]] = True
        if bad.any():
            keep = ~bad
            keep[np.isin(cols, current[free])] = True
            cols = cols[keep]
        sub = self.usage[:, cols].tocsr()
        touched = np.nonzero(np.diff(sub.indptr) > 0)[0]
        sub_csc = sub[touched].tocsc()
        orders = np.nonzero(free)[0]
        where = np.full(free.shape[0], -1, dtype=np.int64)
        where[orders] = np.arange(orders.shape[0])
        k, r, n = orders.shape[0], touched.shape[0], cols.shape[0]
        convex = sparse.csc_matrix((np.ones(n), (where[co[cols]], np.arange(n))), shape=(k, n))
        a = sparse.vstack([convex, sub_csc]).tocsc()
        arrays = MipArrays(
            cost=self.cost[cols] / MICRO,
            row_lower=np.concatenate([np.ones(k), np.full(r, -highspy.kHighsInf)]),
            row_upper=np.concatenate([np.ones(k), rhs[touched]]),
            start=a.indptr.astype(np.int32),
            index=a.indices.astype(np.int32),
            value=a.data.astype(np.float64),
            offset=self.total(fixed_cols) / MICRO,
            x0=np.zeros(0),
        )
        model = SubModel(arrays, cols, orders, current, co)
        arrays.x0 = model.values(current)
        return model

    def load(
        self, arrays: MipArrays, seconds: float, options: dict[str, bool | str | float] | None
    ) -> tuple[highspy.Highs, Deadline]:
        """A fresh HiGHS instance holding ``arrays``, with this sub-MIP's seed and options."""
        return load_mip(arrays, seconds, self.seed, self.threads, options)

    def solve(
        self,
        free: np.ndarray,
        current: I64,
        seconds: float,
        *,
        columns: np.ndarray | None = None,
        options: dict[str, bool | str | float] | None = None,
        start: bool = True,
    ) -> tuple[I64 | None, float]:
        """Best choice for the ``free`` orders (others keep ``current``), and its MIP bound.

        ``columns`` (mask over the pool) restricts the free orders' candidates (their
        current column stays allowed). The bound is HiGHS' dual bound on the total cost
        with the free orders restricted so (-inf when its root LP did not end, see
        :func:`~solvers.allocation.highs_model.dual_bound`, or when
        HiGHS' objective is not the cost of the solution it hands back: see
        :data:`OBJECTIVE_TOLERANCE`; +inf when an ``objective_bound`` in ``options`` left
        no solution). ``start=False``: no MIP start (``current`` only fixes the other
        orders).
        """
        model = self.build(free, current, columns=columns)
        if not start:
            model.arrays.x0 = np.zeros(0)
        h, _ = self.load(model.arrays, seconds, options)
        run_highs(h)
        info = h.getInfo()
        self.nodes += int(info.mip_node_count)
        bound = dual_bound(h)
        if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
            # the current columns keep it feasible, so only an objective bound (a cutoff in
            # ``options``) can leave no solution: every choice costs at least that much
            return None, np.inf
        if int(info.primal_solution_status) != 2:
            return None, bound
        z = np.asarray(h.getSolution().col_value, dtype=np.float64)
        cost = float(model.arrays.cost @ np.round(z)) + model.arrays.offset
        reported = float(info.objective_function_value)
        if abs(cost - reported) > OBJECTIVE_TOLERANCE * max(1.0, abs(cost)):
            # HiGHS' figures are not those of the answer it hands back: its bound proves nothing
            log.warning(
                "pattern MIP: HiGHS reports objective %.6f for a solution costing %.6f; "
                "its bound %.6f is not used",
                reported,
                cost,
                bound,
            )
            bound = -np.inf
        return model.choice(z), bound


@dataclass
class SubModel:
    """A pattern MIP built by :meth:`SubMip.build`: its arrays and column map."""

    arrays: MipArrays
    cols: I64  # pool column of every MIP column
    orders: I64  # the free orders
    current: I64  # the choice the fixed orders keep
    col_order: I64  # order of every pool column

    def values(self, choice: I64) -> F64:
        """MIP column values of a choice (a pool column per order)."""
        return np.isin(self.cols, choice[self.orders]).astype(np.float64)

    def choice(self, z: F64) -> I64 | None:
        """The choice of MIP column values ``z`` (None unless one column per free order)."""
        chosen = self.cols[z > 0.5]
        co = self.col_order
        if (
            np.bincount(co[chosen], minlength=self.current.shape[0])[self.orders].min(initial=1)
            != 1
        ):
            return None
        out = self.current.copy()
        out[co[chosen]] = chosen
        return out


#: HiGHS options of the whole-pool MIP that runs beside the neighbourhood search (HiGHS'
#: defaults otherwise: presolve, cuts and its primal heuristics are what it is there for)
RACE_OPTIONS: dict[str, bool | str | float] = {"mip_rel_gap": 0.0, "threads": 1}
#: seconds :meth:`PoolRace.stop` waits for the helper process to end by itself (then it is
#: killed), then for its reader thread
RACE_GRACE_S = 0.05
RACE_JOIN_S = 2.0
#: the process interrupts HiGHS this long before the end it was given, so that the
#: solution HiGHS holds then (often from a sub-MIP heuristic cut short) is reported in time
RACE_STOP_S = 0.1


class PoolRace:
    """The whole pattern MIP over the pool, solved by HiGHS in a helper process.

    The neighbourhood search runs in the calling process; on two cores the MIP (HiGHS'
    defaults: presolve, cuts, RINS, RENS, ...) runs beside it. (A thread would share the
    GIL with the search: every HiGHS callback waits for it, measured at ~2/3 speed.) The
    search takes the MIP's improving solutions between neighbourhoods (:meth:`take`). It
    does not hand the MIP its own (tried as HiGHS user solutions: the MIP's heuristics then
    found less on 3 of 4 literature seeds), so the MIP's input does not depend on the
    search's timing; what the search takes does, so answers can differ run to run.

    The process is started early (:meth:`spawn`, ~0.5 s of imports on the other core) and
    given the model later (:meth:`launch`); :meth:`stop` ends it (a stop message, then
    SIGKILL after ``RACE_GRACE_S``). It ignores SIGINT and SIGTERM
    (the parent stops it) and stops by itself when its input closes.
    """

    def __init__(self, helper: HelperProcess) -> None:
        self.helper = helper
        self.proc = helper.proc
        self._lock = threading.Lock()
        self.model: SubModel | None = None
        self.sub: SubMip | None = None
        self.best: I64 | None = None
        self.best_cost = 0
        #: improving solutions the MIP sent, and its final report
        self.found = 0
        self.report: tuple[str, float, int] | None = None
        self._reader: threading.Thread | None = None
        self._stopped = False
        self._failures = failures_of_solve()  # the process's failed HiGHS runs are the solve's

    @classmethod
    def spawn(cls) -> PoolRace | None:
        """Start the helper process (None if it cannot be started)."""
        helper = HelperProcess.spawn("from solvers.allocation.lns import race_main; race_main()")
        return None if helper is None else cls(helper)

    def launch(self, sub: SubMip, current: I64, until: float, target: int, seed: int) -> bool:
        """Give the process the whole pool MIP from ``current``, to solve until ``until``.

        HiGHS stops ``RACE_STOP_S`` before ``until`` (or at a solution of cost ``target``,
        micro) and reports its answer; :meth:`wait` waits for it.
        """
        self.sub = sub
        self.model = sub.build(np.ones(current.shape[0], dtype=bool), current)
        self.best_cost = sub.total(current)
        options = dict(RACE_OPTIONS)
        if target > 0:
            options["objective_target"] = target / MICRO
        seconds = until - RACE_STOP_S - time.perf_counter()
        message = ("model", self.model.arrays, seconds, seed, options)
        if seconds <= 0.05 or not self.helper.send(message):
            return False
        self._reader = threading.Thread(target=self._read, name="pool-mip-reader", daemon=True)
        self._reader.start()
        return True

    def _read(self) -> None:
        """Collect the process's solutions (runs in a thread; blocking reads free the GIL)."""
        model, sub = self.model, self.sub
        assert model is not None and sub is not None
        while True:
            message = self.helper.receive()
            if message is None:
                return
            if message[0] == "done":
                self.report = message[1:4]
                note_helper_failures(self._failures, *message[4:])
                return
            z = np.zeros(model.cols.shape[0])
            z[message[1]] = 1.0
            choice = model.choice(z)
            if choice is None:
                continue
            cost = sub.total(choice)
            with self._lock:
                if cost < self.best_cost:
                    self.best, self.best_cost = choice, cost
                    self.found += 1
            log.debug("pool MIP found %.4f", cost / MICRO)

    def take(self, cost: int) -> I64 | None:
        """The MIP's best choice if it costs less than ``cost`` (micro)."""
        with self._lock:
            return self.best if self.best is not None and self.best_cost < cost else None

    def wait(self, until: float, good_enough: int) -> None:
        """Wait until the MIP has reported its end, found ``good_enough``, or ``until``."""
        while self.report is None and time.perf_counter() < until:
            with self._lock:
                if self.best_cost <= good_enough:
                    return
            if self._reader is None or not self._reader.is_alive():
                return
            self._reader.join(min(0.02, max(until - time.perf_counter(), 0.0)))

    def stop(self) -> None:
        """End the process (idempotent): a stop message, then a kill if it lingers."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.helper.send(("stop",))
        # HiGHS notices the stop only between its sub-MIP heuristics (up to ~1 s): the
        # process holds nothing worth waiting for
        self.helper.end(RACE_GRACE_S)
        if self._reader is not None:
            self._reader.join(RACE_JOIN_S)
        self.helper.close_output()
        log.debug("pool MIP: %s, %d improving solutions", self.report, self.found)


def race_main() -> None:
    """Entry point of the helper process of :class:`PoolRace` (messages on stdin/stdout)."""
    channel = Channel()
    message = channel.receive()
    if message is None or message[0] != "model":
        return
    arrays, seconds, seed, options = message[1:]
    failures = RunFailures()
    count_failures_in(failures)  # its answer hands the parent the runs that failed
    h, deadline = load_mip(arrays, seconds, seed, None, options)

    def send(msg: tuple[Any, ...]) -> None:
        if not channel.send(msg):
            deadline.at = 0.0  # the parent is gone

    def stop() -> None:
        deadline.at = 0.0  # HiGHS' interrupt callbacks see it

    def improved(event: Any) -> None:
        z = np.asarray(event.data_out.mip_solution, dtype=np.float64)
        send(
            (
                "found",
                np.nonzero(z > 0.5)[0].astype(np.int32),
                float(event.data_out.objective_function_value),
            )
        )

    h.cbMipImprovingSolution.subscribe(improved)
    # any message (the parent's stop) or the end of the input (the parent is gone) stops it
    channel.on_stop(stop)
    run_highs(h)
    info = h.getInfo()
    status = str(h.modelStatusToString(h.getModelStatus()))
    send(("done", status, dual_bound(h), int(info.mip_node_count), *failures.unreported()))
    channel.close()


@dataclass
class _Tally:
    tries: int = 0
    wins: int = 0


class Neighbourhoods:
    """Large-neighbourhood search over the pool from an allocation (see module docstring)."""

    #: neighbourhood size at the start and its growth after STALL failures in a row
    SIZE = 50
    GROWTH = 1.3
    STALL = 6
    #: share of the orders beyond which a stalled search stops growing its neighbourhoods
    #: and reports itself exhausted (its MIPs then take seconds and rarely improve)
    MAX_SHARE = 0.4
    #: time limit of one neighbourhood MIP (seconds)
    SUB_S = 0.5
    #: with several threads (:meth:`_run_parallel`), neighbourhoods of up to this share of
    #: the orders (``parallel_share``, its default); larger ones overlap so often that the
    #: threads' MIPs are mostly wasted (the 1,000-order city's search grows them to every
    #: order), and run on one thread
    PARALLEL_SHARE = 0.1

    def __init__(self, prob: Problem, sub: SubMip, duals: Duals, *, seed: int) -> None:
        self.prob, self.sub = prob, sub
        self.rng = np.random.default_rng(seed)
        n_o = prob.num_orders
        co = sub.col_order
        values = sub.master.pool_values(duals)[: sub.num_cols]
        best = np.full(n_o, np.inf)
        np.minimum.at(best, co, values)
        self.rc = values - best[co]
        self.usage_csr = sub.usage.tocsr()
        skus = [
            np.unique(prob.line_sku[prob.order_line_start[o] : prob.order_line_start[o + 1]])
            for o in range(n_o)
        ]
        self.order_skus = skus
        by_sku: dict[int, list[int]] = {}
        for o, ks in enumerate(skus):
            for s in ks.tolist():
                by_sku.setdefault(s, []).append(o)
        self.sku_orders = {s: np.asarray(v, dtype=np.int64) for s, v in by_sku.items()}
        self.cols_of = np.split(
            np.argsort(co, kind="stable"), np.cumsum(np.bincount(co, minlength=n_o))[:-1]
        )
        self.size = min(n_o, self.SIZE)
        self.stall = 0
        #: neighbourhoods stop growing here; ``run`` then returns with ``exhausted`` set
        self.max_size = max(self.size, int(self.MAX_SHARE * n_o))
        self.exhausted = False
        self.tally = {"sku": _Tally(), "rc": _Tally()}
        self.iterations = 0
        #: a MIP solved beside this search, exchanging incumbents with it
        self.partner: PoolRace | None = None
        self.taken = 0  # incumbents taken from the partner
        #: MIPs of the parallel search whose orders another thread moved meanwhile
        self.collisions = 0
        #: neighbourhoods up to this share of the orders are solved in parallel
        self.parallel_share = self.PARALLEL_SHARE

    def _by_sku(self) -> np.ndarray:
        """Orders sharing SKUs with a random order, breadth first."""
        n_o, rng = self.prob.num_orders, self.rng
        free = np.zeros(n_o, dtype=bool)
        start = int(rng.integers(n_o))
        free[start] = True
        count, queue = 1, deque([start])
        while queue and count < self.size:
            o = queue.popleft()
            for s in rng.permutation(self.order_skus[o]).tolist():
                count = self._admit(self.sku_orders[s], free, queue, count)
                if count >= self.size:
                    return free
        return free

    def _by_reduced_cost(self, current: I64) -> np.ndarray:
        """A chain from a costly order to the orders holding the stock it would rather use."""
        n_o, rng, rc = self.prob.num_orders, self.rng, self.rc
        weight = np.maximum(rc[current], 0.0) + 1e-3
        start = int(rng.choice(n_o, p=weight / weight.sum()))
        free = np.zeros(n_o, dtype=bool)
        free[start] = True
        holder = np.full(self.sub.num_cols, -1, dtype=np.int64)
        holder[current] = np.arange(n_o)
        count, queue = 1, deque([start])
        csc, csr = self.sub.usage, self.usage_csr
        while queue and count < self.size:
            o = queue.popleft()
            cols = self.cols_of[o]
            better = cols[rc[cols] < rc[current[o]] - 1e-9]
            if better.size == 0:
                continue
            rows = np.unique(
                np.concatenate([csc.indices[csc.indptr[c] : csc.indptr[c + 1]] for c in better])
            )
            users: list[I64] = [csr.indices[csr.indptr[r] : csr.indptr[r + 1]] for r in rows]
            if not users:
                continue
            owners = holder[np.concatenate(users)]
            count = self._admit(np.unique(owners[owners >= 0]), free, queue, count)
            if count >= self.size:
                return free
        return free

    def _admit(self, orders: I64, free: np.ndarray, queue: deque[int], count: int) -> int:
        """Free ``orders`` in random order, queueing each, until the neighbourhood is full."""
        for o in self.rng.permutation(orders).tolist():
            if not free[o]:
                free[o] = True
                count += 1
                queue.append(o)
                if count >= self.size:
                    break
        return count

    def _neighbourhood(self, current: I64) -> tuple[str, np.ndarray]:
        """The next neighbourhood to free (its kind alternates), topped up to ``size``."""
        kind = "rc" if self.iterations % 2 == 0 else "sku"
        self.iterations += 1
        free = self._by_reduced_cost(current) if kind == "rc" else self._by_sku()
        if free.sum() < self.size:  # top up at random
            rest = np.nonzero(~free)[0]
            free[self.rng.choice(rest, size=self.size - int(free.sum()), replace=False)] = True
        return kind, free

    def _failed(self) -> bool:
        """Count a failed neighbourhood; True when the search is exhausted."""
        self.stall += 1
        if self.stall >= self.STALL:
            if self.size >= self.max_size:
                self.exhausted, self.stall = True, 0
                return True
            self.size, self.stall = min(self.max_size, int(self.size * self.GROWTH) + 1), 0
        return False

    def run(self, current: I64, deadline: float, good_enough: int, workers: int = 1) -> I64:
        """Improve ``current`` (a column per order) until ``deadline`` or ``good_enough``.

        Also returns, with ``exhausted`` set, once neighbourhoods of ``max_size`` orders
        stall (the batch then gives another search a turn). With ``workers`` > 1 that many
        threads solve neighbourhood MIPs at once (:meth:`_run_parallel`).
        """
        if workers > 1 and self.partner is None and self.size <= self._parallel_size():
            current = self._run_parallel(current, deadline, good_enough, workers)
            if self.size <= self._parallel_size():
                return current
        cost = self.sub.total(current)
        self.exhausted = False
        while cost > good_enough:
            left = deadline - time.perf_counter()
            if left < 0.02 or cancelled():
                break
            if self.partner is not None:
                theirs = self.partner.take(cost)
                if theirs is not None:
                    current, cost, self.stall = theirs, self.sub.total(theirs), 0
                    self.taken += 1
                    log.debug("lns took the pool MIP's %.4f", cost / MICRO)
                    continue
            kind, free = self._neighbourhood(current)
            cand, _ = self.sub.solve(free, current, min(left, self.SUB_S))
            self.tally[kind].tries += 1
            if cand is not None and self.sub.total(cand) < cost:
                current, cost = cand, self.sub.total(cand)
                self.tally[kind].wins += 1
                self.stall = 0
                log.debug("lns %s size %d improved to %.4f", kind, self.size, cost / MICRO)
                continue
            if self._failed():
                break
        return current

    def _parallel_size(self) -> int:
        """Neighbourhoods up to this size are solved in parallel (larger ones collide)."""
        return int(self.parallel_share * self.prob.num_orders)

    def _run_parallel(self, current: I64, deadline: float, good_enough: int, workers: int) -> I64:
        """:meth:`run` with ``workers`` threads, each solving its own neighbourhood MIPs.

        HiGHS releases the GIL while it solves, and the MIPs are ~90 % of the search's time
        (a profile of the 10,000-order city). A thread frees its neighbourhood around the
        allocation as it is when it starts, and :meth:`commit` applies what it finds to the
        allocation as it is when it ends.
        """
        self.sub.threads = 1  # a core per thread
        shared = SharedAllocation.of(self.sub, current)
        lock = threading.Lock()

        def step() -> bool:
            with lock:
                left = deadline - time.perf_counter()
                if (
                    shared.cost <= good_enough
                    or self.exhausted
                    or self.size > self._parallel_size()
                    or left < 0.02
                    or cancelled()
                ):
                    return False
                base = shared.current
                kind, free = self._neighbourhood(base)
                self.tally[kind].tries += 1
            cand, _ = self.sub.solve(free, base, min(left, self.SUB_S))
            with lock:
                self.commit(shared, kind, free, base, cand)
            return True

        self.exhausted = False
        run_in_threads(step, workers, "lns")
        log.debug("parallel search: %d collisions, size %d", self.collisions, self.size)
        return shared.current

    def commit(
        self, shared: SharedAllocation, kind: str, free: np.ndarray, base: I64, cand: I64 | None
    ) -> bool:
        """Apply ``cand`` (the MIP's answer for the ``free`` orders of ``base``) if it gains.

        The orders the MIP moved take its columns on top of the allocation as it now is
        (other threads' moves of the other orders kept): the cost, a sum over orders, and
        the shared rows' loads are worked out against it, and the answer applies if it
        gains and the rows hold. Where another thread moved one of the ``free`` orders since
        ``base`` (a collision) and the answer does not apply, that counts as neither a gain
        nor a stall. (Requiring unmoved orders for any answer to apply wasted most answers
        of the 300-order searches, whose neighbourhoods are a sixth to half of the orders.)
        """
        now = shared.current
        if cand is None:
            self._failed()
            return False
        collided = not np.array_equal(now[free], base[free])
        self.collisions += collided
        moved = np.nonzero(free & (cand != base))[0]
        old, new = now[moved], cand[moved]
        gain = int(self.sub.cost[old].sum()) - int(self.sub.cost[new].sum())
        if gain > 0:  # (none without a move)
            usage = self.sub.usage
            load = (
                shared.load
                + np.asarray(usage[:, new].sum(axis=1) - usage[:, old].sum(axis=1)).ravel()
            )
            if np.all(load <= self.sub.rhs + 1e-6):
                merged = now.copy()
                merged[moved] = new
                shared.current, shared.cost, shared.load = merged, shared.cost - gain, load
                self.tally[kind].wins += 1
                self.stall = 0
                log.debug("lns %s size %d improved to %.4f", kind, self.size, shared.cost / MICRO)
                return True
        if not collided:
            self._failed()
        return False


@dataclass
class SharedAllocation:
    """The parallel search's allocation (a column per order), its cost and row loads."""

    current: I64
    cost: int  # micro
    load: F64  # per shared row

    @classmethod
    def of(cls, sub: SubMip, current: I64) -> SharedAllocation:
        """``current`` with its cost and the loads of ``sub``'s rows."""
        load = np.asarray(sub.usage[:, current].sum(axis=1)).ravel()
        return cls(current=current, cost=sub.total(current), load=load)


@dataclass
class Certificate:
    """A lower bound proved by reduced-cost enumeration, and the MIP's best allocation."""

    bound: float  # currency
    x: I64 | None
    columns: int  # patterns the MIP was allowed


#: the certificate gives up when more patterns than this per order fall below its threshold
CERT_PER_ORDER = 40
#: the certificate aims at this share of the gap target
CERT_AIM = 0.98


def certify(
    prob: Problem,
    master: Master,
    duals: Duals,
    lagrangian: float,
    x: I64,
    target: float,
    deadline: float,
    *,
    max_slack: float,
    seed: int,
    threads: int | None,
    max_patterns: int | None = None,
    reduced: tuple[F64, F64] | None = None,
) -> Certificate | None:
    """Try to prove that ``x`` is within ``target`` of the optimum (module docstring, 3).

    ``lagrangian`` is the Lagrangian bound at the multipliers ``duals``. Returns None when
    the threshold exceeds ``max_slack``, the patterns below it cannot all be listed (more
    than ``max_patterns``, by default CERT_PER_ORDER per order, or lines with several units)
    or the time is up first. ``reduced``: the arc and pair reduced costs at ``duals``
    (:func:`reduced_costs`), where the caller has them.
    """
    ub = prob.evaluate(x).total / MICRO
    # aim a little past the target so the proved bound clears it
    delta = ub * (1.0 - CERT_AIM * target) - lagrangian
    if delta <= 0.0:
        return Certificate(lagrangian, None, 0)
    if delta > max_slack:
        return None  # far too many patterns below the threshold
    c_arc, c_pair = reduced_costs(prob, duals) if reduced is None else reduced
    rhs_term = master.shared_rhs_term(duals)
    n_o = prob.num_orders
    per_order, total = (
        (10 * CERT_PER_ORDER, CERT_PER_ORDER * n_o)
        if max_patterns is None
        else (max_patterns, max_patterns)
    )
    near = near_columns(
        prob,
        c_arc,
        c_pair,
        rhs_term,
        delta,
        per_order=per_order,
        total=total,
        deadline=deadline - 0.05,
    )
    if near is None or not near.complete or time.perf_counter() > deadline - 0.05:
        return None
    master.add(near.orders, near.arcs, near.qty)
    master.add_solution(x)
    sub = SubMip(master, seed=seed, threads=threads)
    # every pool column within the threshold: the listed ones and any others (a superset
    # keeps the argument valid)
    rc = master.pool_values(duals) - near.best[sub.col_order]
    allowed = rc <= delta + 1e-7
    cutoff = near.bound + delta
    # a proof, not a search: no primal heuristics, no restart
    options: dict[str, bool | str | float] = {
        **CERT_OPTIONS,
        "objective_bound": cutoff,
    }
    current = master.column_of(x)
    everyone = np.ones(n_o, dtype=bool)
    # no MIP start: ``x`` is at or above the cutoff, so it is no incumbent for the proof, and
    # HiGHS 1.16 with presolve and a start can end "Optimal" with a bound that is not the
    # MIP's (see OBJECTIVE_TOLERANCE)
    choice, mip_bound = sub.solve(
        everyone,
        current,
        deadline - time.perf_counter(),
        columns=allowed,
        options=options,
        start=False,
    )
    # opt >= min(L + delta, bound of the MIP over every pattern below delta); a hair less
    # for floating point
    proved = min(cutoff, mip_bound) - 1e-7 * max(1.0, abs(cutoff))
    found = None if choice is None else master.allocation(choice)
    return Certificate(max(proved, near.bound), found, int(allowed.sum()))
