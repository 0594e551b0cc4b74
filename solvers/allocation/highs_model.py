"""The allocation MIP built straight into HiGHS from numpy arrays (the fast path).

Formulation (same as the Pyomo reference in :mod:`solvers.allocation.pyomo_model`), money in
currency units (micro-units / 1e6), over a subset of the problem's pairs:

.. code-block:: text

    min  sum_p f_p y_p + sum_a (c_a - pen_l(a)) x_a + split * sum_o s_o + sum_l pen_l q_l
    s.t. sum_{a in l} x_a            <= q_l            line (the rest is unfilled)
         sum_{a at (n, k)} x_a       <= avail_nk       stock above safety stock
         sum_{a at n} x_a            <= cap_units_n    node capacity, units
         sum_{p at n} y_p            <= cap_orders_n   node capacity, parcels
         sum_{VIP a at n} x_a        <= vip_units_n    VIP share of the unit capacity
         sum_{VIP p at n} y_p        <= vip_orders_n   VIP share of the parcel capacity
         sum_{p in o} y_p            <= max_nodes      nodes per order
         sum_{p in o} y_p - s_o      <= 1              shipments beyond the first
         x_a - ub_a y_p(a)           <= 0              disaggregated linking, ub = min(q, avail)
         y binary, x integer in [0, ub_a], s >= 0

The linking is per arc (not one aggregated row per pair), which makes the LP relaxation
tight: an aggregated ``sum x <= Q y`` lets the LP open a pair fractionally in proportion to
its units. Rows that can never bind (a stock row whose candidate arcs cannot exceed the
stock, ...) are left out. Without VIP unit caps, the unit variables may be continuous: with
``y`` fixed the remaining rows are two laminar families (lines; node-SKU inside node), so
the matrix is totally unimodular and every *vertex* is integral. HiGHS' MIP answer need not
be a vertex, though: its presolve and postsolve hand back any point of the optimal face, and
where arcs tie in cost (a node's arcs all cost the same per unit) and a capacity or stock
row links two lines, that face holds fractional points (1.5 + 0.5 units of one line, 0.5 +
0.5 of the other) that rounding column by column pushes past a line or a capacity.
:meth:`AllocationModel.units` therefore re-solves the unit LP with ``y`` fixed by simplex
(a vertex: integral, and no dearer) whenever an answer is not integral.

Thread counts: HiGHS (1.16) keeps one task scheduler *per calling thread*, sized by the first
run in that thread (the ``threads`` option; unset = HiGHS' default, every core here), and
refuses a later run in that thread whose ``threads`` asks for another count (``run()``
returns an error, model status "Not Set"). Every model here therefore takes its count from
:func:`new_highs` (an explicit count, else the :func:`highs_threads` of the ``allocate``
call being solved; small MIPs ask for one, :data:`SMALL_MIP_OPTIONS`) and runs through
:func:`run_highs`, which re-sizes this thread's scheduler first when the thread last ran
another count.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from solvers.allocation.problem import F64, I64, MICRO, Problem, ranges
from solvers.cancel import cancel_with, cancelled, current_cancel  # re-exported here too
from solvers.cpus import usable_cpus as usable_cpus  # re-exported: callers import it here

#: whether this process has made a HiGHS instance (its banner swallowed); also read by
#: :func:`highs_used`, which decides whether a pyomo worker may be forked from it
_banner_done = False

log = logging.getLogger(__name__)
#: model statuses of a run that failed: it has no bound, whatever HiGHS' information holds
FAILED = frozenset(
    {
        highspy.HighsModelStatus.kNotset,
        highspy.HighsModelStatus.kLoadError,
        highspy.HighsModelStatus.kModelError,
        highspy.HighsModelStatus.kPresolveError,
        highspy.HighsModelStatus.kSolveError,
        highspy.HighsModelStatus.kPostsolveError,
        highspy.HighsModelStatus.kMemoryLimit,
    }
)
#: a unit column this close to an integer is that integer (HiGHS' MIP feasibility tolerance)
UNIT_TOL = 1e-6
#: time limit of the LP that turns a fractional MIP answer into integral units
VERTEX_LP_S = 10.0


#: HiGHS options that turn off the primal heuristics (and root restarts) of a MIP whose
#: search is short: on small models they cost far more than the search they would shorten
NO_PRIMAL_HEURISTICS: dict[str, bool] = {
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_root_reduced_cost": False,
    "mip_heuristic_run_feasibility_jump": False,
    "mip_allow_restart": False,
}
#: HiGHS options for a one-order MIP (a few dozen columns). On a 42-column one-order model
#: with two capacities binding, RENS and RINS ran 28 sub-MIPs (0.2 s); feasibility jump,
#: the root reduced-cost heuristic and a root restart a further 8 ms; the rest solves it in
#: 6 ms. One thread: with HiGHS' default (2 on 2 cores) the same models took ~3x as long,
#: and alternating with runs of other counts in one thread costs nothing measurable
SMALL_MIP_OPTIONS: dict[str, Any] = {"threads": 1, **NO_PRIMAL_HEURISTICS}
#: MIP options of every allocation HiGHS instance (:func:`new_highs`), finer than one
#: micro-unit (1e-6 currency, the grid of every allocation's cost): HiGHS' defaults of 1e-6
#: for both prune a node whose LP bound is within one micro-unit of the incumbent and stop
#: at an absolute gap of one, so at gap 0 an answer one micro-unit above the optimum was
#: called optimal with its (exhausted tree's) bound above the optimum, and an optimal one
#: feasible with a bound one micro-unit below it (session 56's fuzz, 600 small requests
#: priced in micro-units, online and batch: 1 and 3 requests; none with these options, nor
#: in 600 more). Half a micro-unit leaves a bound within half a micro-unit of the
#: incumbent, which :func:`~solvers.allocation.solve.grid_bound` rounds up to it.
MIP_GRID_OPTIONS: dict[str, Any] = {"mip_abs_gap": 5e-7, "mip_feasibility_tolerance": 1e-7}
#: HiGHS threads of the solve running in this context (:func:`highs_threads`; None = default)
_call_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "highs_threads", default=None
)
#: per thread, the ``threads`` option (0 = HiGHS' default) of its last :func:`run_highs`,
#: which sized this thread's HiGHS scheduler (absent: not known)
_scheduler = threading.local()


class highs_threads:  # noqa: N801 (used as a function: ``with highs_threads(1):``)
    """Every HiGHS model made inside (in this thread) without a count of its own uses ``threads``.

    One solve then asks HiGHS for one count throughout: with ``threads=1`` no helper model
    (a one-order MIP, the unit LP) starts HiGHS' default multi-threaded scheduler, and none
    has to re-size it (see :func:`run_highs`). A new thread starts without it (its own
    solve sets its own). A class rather than a generator: ~0.3 us instead of ~1 us a call.
    """

    __slots__ = ("_token", "threads")

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        self._token = _call_threads.set(self.threads)

    def __exit__(self, *exc: object) -> None:
        _call_threads.reset(self._token)


def new_highs(threads: int | None = None) -> highspy.Highs:
    """A silent HiGHS instance (the one-time version banner is swallowed).

    Its ``threads`` option is ``threads``, else that of the enclosing :func:`highs_threads`,
    else left at HiGHS' default. Run it through :func:`run_highs`.
    """
    global _banner_done
    if not _banner_done:
        with _quiet_stdout():
            h = highspy.Highs()
        _banner_done = True
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for name, value in MIP_GRID_OPTIONS.items():
        h.setOptionValue(name, value)
    count = model_threads(threads)
    if count is not None:
        h.setOptionValue("threads", int(count))
    return h


def dual_bound(h: highspy.Highs) -> float:
    """Dual bound of ``h``'s last MIP run (currency units); -inf when its root LP did not end
    or the run failed (a model status in :data:`FAILED`).

    HiGHS (1.16) starts its root node from the bound its columns' own bounds give
    (every column at its cheapest bound, every row ignored, :func:`column_floor`) and reports
    that one when stopped in the root LP: valid, but nothing the MIP learnt (on the 300-order
    city -181,975.49 beside allocations costing about 4,000). Every reader of HiGHS' MIP
    bound goes through here (the allocation models, the pattern MIPs of ``lns``, the Pyomo
    reference's HiGHS).
    """
    if h.getModelStatus() in FAILED:
        # a run that failed (HiGHS' error, an exception: see :func:`run_highs`) leaves its
        # information unset, where the bound reads 0, which is no bound
        return -np.inf
    bound = float(h.getInfo().mip_dual_bound)
    if not np.isfinite(bound) or h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        return bound
    floor = column_floor(h)
    return -np.inf if bound <= floor + 1e-7 * max(1.0, abs(floor)) else bound


def column_floor(h: highspy.Highs) -> float:
    """The objective's least value within ``h``'s columns' bounds alone (rows ignored)."""
    lp = h.getLp()
    cost = np.asarray(lp.col_cost_, dtype=np.float64)
    at_lower = np.asarray(lp.col_lower_, dtype=np.float64)[cost > 0]
    at_upper = np.asarray(lp.col_upper_, dtype=np.float64)[cost < 0]
    return float(lp.offset_ + np.dot(cost[cost > 0], at_lower) + np.dot(cost[cost < 0], at_upper))


def highs_used() -> bool:
    """Whether this process has made a HiGHS instance (:func:`new_highs`, which Pyomo's
    solves here call first too): its runs' thread schedulers may have worker threads then,
    which a forked copy lacks (a HiGHS run in the copy waited for them for ever)."""
    return _banner_done


def model_threads(threads: int | None) -> int | None:
    """The thread count :func:`new_highs` gives a model asking for ``threads``."""
    return threads if threads is not None else _call_threads.get()


def prepare_scheduler(threads: int | None) -> None:
    """Size this thread's HiGHS scheduler for a run with ``threads`` (None = HiGHS' default).

    HiGHS keeps one scheduler per thread and refuses a run that asks for a count other than
    the one it was first sized with; ``Highs.resetThreadScheduler`` drops this thread's
    scheduler only (other threads' schedulers, even mid-solve, are untouched), and the next
    run here sizes a new one. Called before every run (:func:`run_highs`), and before
    HiGHS runs it does not start itself (Pyomo's). Costs a thread-local look-up when the
    count is the one this thread last ran.
    """
    want = 0 if threads is None else int(threads)
    if getattr(_scheduler, "size", None) != want:
        # between runs of this thread, so no run of it uses the scheduler being dropped;
        # blocking: its worker threads (if any) are joined, none is left spinning
        highspy.Highs.resetThreadScheduler(True)
        _scheduler.size = want


def run_highs(h: highspy.Highs) -> highspy.HighsStatus:
    """``h.run()`` on a scheduler of the count ``h`` asks for (never refused for a mismatch).

    A run whose count this thread's scheduler does not have is refused before it starts
    (an error, model status "Not Set"), which :func:`prepare_scheduler` avoids for the
    counts this module's runs set; a scheduler sized behind its back (a HiGHS call outside
    this module in the same thread) is caught by the refusal and the run retried once on a
    fresh scheduler. An exception out of the run is its error (:func:`_run_guarded`): no
    caller sees one, and :func:`status_text` names it.
    """
    _, value = h.getOptionValue("threads")
    want = int(value)
    prepare_scheduler(want or None)
    status = _run_guarded(h)
    if (
        want
        and status == highspy.HighsStatus.kError
        and h.getModelStatus() == highspy.HighsModelStatus.kNotset
        and h not in _failures
    ):
        _scheduler.size = None  # sized elsewhere: not what this module last ran
        prepare_scheduler(want)
        status = _run_guarded(h)
    failure = _failures.get(h)
    if failure is not None or h.getModelStatus() in FAILED:
        note_failure(status_text(h), failure.split(":", 1)[0] if failure else None)
    return status


#: the error each HiGHS instance's last run raised (absent: its last run raised none)
_failures: weakref.WeakKeyDictionary[highspy.Highs, str] = weakref.WeakKeyDictionary()


def _run_guarded(h: highspy.Highs) -> highspy.HighsStatus:
    """``h.run()``; an exception it raises becomes an error status with no solution.

    A C++ exception HiGHS does not catch itself reaches Python as the exception pybind11
    maps it to (``std::bad_alloc``: MemoryError; other ``std::exception``: RuntimeError).
    The instance's solution and information are cleared then (they could be an earlier
    run's), its model status reads "Not Set" and :func:`status_text` names the exception:
    every caller treats it as a run that found nothing, as it does HiGHS' own errors
    (:func:`run_highs` logs and counts it, :func:`note_failure`).
    """
    _failures.pop(h, None)
    try:
        return h.run()
    except Exception as exc:  # any failure of the run is the run's error
        _failures[h] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # an instance the error left unusable
            h.clearSolver()
        return highspy.HighsStatus.kError


class RunFailures:
    """The HiGHS runs of one solve that failed: counted, the first of each kind logged.

    A run fails with an error status (:data:`FAILED`) or an exception (:func:`_run_guarded`);
    when every run fails (a process out of memory), a solve makes hundreds of them, each a
    warning until session 74 (1,744 in a 2 s batch of 150 literature orders). The first
    failure of each kind (the exception's type, else HiGHS' status) is a warning, the rest
    are debug messages, and :meth:`note` sums them up for the answer. Shared by the solve's
    threads (:func:`failures_of_solve`).
    """

    def __init__(self) -> None:
        self.count = 0
        #: the first failure's status text (None: no run failed)
        self.first: str | None = None
        self._kinds: set[str] = set()
        self._reported = 0  # the count :meth:`unreported` last handed out
        self._lock = threading.Lock()

    def add(self, what: str, kind: str | None = None) -> None:
        """Count a failed run (``what``: its status text; ``kind``: its kind, else ``what``)."""
        kind = what if kind is None else kind
        with self._lock:
            self.count += 1
            if self.first is None:
                self.first = what
            new = kind not in self._kinds
            self._kinds.add(kind)
        log.log(logging.WARNING if new else logging.DEBUG, "HiGHS run failed: %s", what)

    def add_helpers(self, count: int, first: str | None) -> None:
        """Count ``count`` failed runs of a helper process (``first``: its first's status)."""
        if count <= 0:
            return
        with self._lock:
            self.count += count
            if self.first is None:
                self.first = first
            new = "helper" not in self._kinds
            self._kinds.add("helper")
        log.log(
            logging.WARNING if new else logging.DEBUG,
            "HiGHS failed in %d run(s) of a helper process (first: %s)",
            count,
            first,
        )

    def unreported(self) -> tuple[int, str | None]:
        """The runs failed since the last call, and the first failure's status (a helper
        process hands them to its parent with each answer)."""
        with self._lock:
            count = self.count - self._reported
            self._reported = self.count
            return count, self.first

    def note(self) -> str | None:
        """The answer's note on the failed runs (None when none failed)."""
        if not self.count:
            return None
        runs = "run" if self.count == 1 else "runs"
        return f"HiGHS failed in {self.count} {runs} (first: {self.first})"


#: the failed runs of the solve running in this context (None: outside a solve, where
#: each failure is a warning); a helper thread of the solve is handed them
#: (:func:`count_failures_in`), as it is the solve's cancellation
_run_failures: contextvars.ContextVar[RunFailures | None] = contextvars.ContextVar(
    "highs_run_failures", default=None
)


def failures_of_solve() -> RunFailures | None:
    """The failed-run tally of the solve running in this thread (to hand to a helper thread)."""
    return _run_failures.get()


def count_failures_in(failures: RunFailures | None) -> None:
    """The HiGHS runs of this thread fail into ``failures`` (a helper thread of a solve)."""
    _run_failures.set(failures)


@contextlib.contextmanager
def counting_failures() -> Iterator[RunFailures]:
    """Within the block, this thread's failed HiGHS runs are counted in a new tally."""
    failures = RunFailures()
    token = _run_failures.set(failures)
    try:
        yield failures
    finally:
        _run_failures.reset(token)


def note_helper_failures(failures: RunFailures | None, count: int, first: str | None) -> None:
    """``count`` failed runs of a helper process into ``failures`` (a solve's tally; None:
    outside a solve, where they are a warning)."""
    if failures is not None:
        failures.add_helpers(count, first)
    elif count > 0:
        log.warning("HiGHS failed in %d run(s) of a helper process (first: %s)", count, first)


def note_failure(what: str, kind: str | None = None) -> None:
    """A failed HiGHS run (``what``: its status text) of this thread's solve, logged."""
    failures = _run_failures.get()
    if failures is None:
        log.warning("HiGHS run failed: %s", what)
    else:
        failures.add(what, kind)


def run_in_threads(step: Callable[[], bool], workers: int, name: str) -> None:
    """Call ``step`` on ``workers`` threads (this one among them) until it returns False.

    Helper threads share this thread's cancellation (:func:`cancel_with`) and failed-run
    tally (:func:`count_failures_in`), stop once this thread leaves (Ctrl-C, an error) and
    end their HiGHS workers; the first error raised in any thread is raised here. ``step``
    does its own locking (HiGHS releases the GIL while it solves: solves run side by side).
    """
    cancel = current_cancel()
    failures = failures_of_solve()
    errors: list[BaseException] = []
    ended = threading.Event()  # the calling thread left: helpers stop

    def work(helper: bool) -> None:
        if helper:
            cancel_with(cancel)
            count_failures_in(failures)
        try:
            while not errors and not ended.is_set() and step():
                pass
        except BaseException as err:  # handed to the calling thread
            errors.append(err)
        finally:
            if helper:
                highspy.Highs.resetThreadScheduler(True)  # its HiGHS workers end with it

    helpers = [
        threading.Thread(target=work, args=(True,), name=f"{name}-{k}", daemon=True)
        for k in range(1, workers)
    ]
    for t in helpers:
        t.start()
    try:
        work(False)
    finally:
        ended.set()
        for t in helpers:
            t.join()  # within one solve of ``step``
    if errors:
        raise errors[0]


def set_time_limit(h: highspy.Highs, seconds: float, integer: bool) -> float:
    """Give HiGHS' next run of ``h`` ``seconds`` (at least 0.01) from now; return them.

    HiGHS (1.16) counts an LP's ``time_limit`` on a run clock that accumulates over all runs
    of ``h``, but a MIP's from the start of its own run. A MIP given the accumulated clock
    plus ``seconds`` passes that stale limit (less its own time) on to its sub-MIP
    heuristics (RINS, RENS), which no interrupt callback reaches: a 79-order neighbourhood
    MIP given 0.5 s after 5.4 s of earlier runs took 2.0 s.
    """
    limit = max(float(seconds), 0.01)
    h.setOptionValue("time_limit", limit if integer else h.getRunTime() + limit)
    return limit


class Deadline:
    """A wall-clock deadline HiGHS obeys through its interrupt callbacks.

    HiGHS checks its own ``time_limit`` only now and then inside a MIP (root cuts, long
    LPs can overrun it by many seconds); the callbacks stop it within milliseconds. A
    cancelled thread (:func:`cancel_with`) counts as past every deadline.
    """

    def __init__(self, h: highspy.Highs) -> None:
        self.at: float | None = None
        h.cbSimplexInterrupt.subscribe(self._check)
        h.cbIpmInterrupt.subscribe(self._check)
        h.cbMipInterrupt.subscribe(self._check)

    def _check(self, event: Any) -> None:
        # the flag persists across runs inside HiGHS: always set it, true or false
        event.interrupt((self.at is not None and time.perf_counter() > self.at) or cancelled())


def status_text(h: highspy.Highs) -> str:
    """HiGHS' model status text, an interrupt named for its cause (the deadline or a cancel),
    a run that raised as "Solver error (<the exception>)".

    :class:`Deadline` stops HiGHS through its interrupt callbacks, which HiGHS reports as
    "Interrupted by user", as if someone had pressed Ctrl-C.
    """
    failure = _failures.get(h)
    if failure is not None:
        return f"Solver error ({failure})"
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInterrupt:
        return "Cancelled" if cancelled() else "Time limit reached"
    return str(h.modelStatusToString(status))


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 for a moment (HiGHS prints its banner from C++)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@dataclass
class Rows:
    """Row indices of the coupling constraints (-1 = row not in the model)."""

    line: I64
    stock: I64  # N x S
    cap_units: I64
    cap_orders: I64
    vip_units: I64
    vip_orders: I64
    max_nodes: I64  # per order
    split: I64  # per order
    split_col: I64  # per order, column of s_o
    rhs: F64  # upper bound of every coupling row
    num_coupling: int


@dataclass
class Duals:
    """Row duals of the coupling rows (<= 0 in a minimisation), in currency units."""

    line: F64
    stock: F64
    cap_units: F64
    cap_orders: F64
    vip_units: F64
    vip_orders: F64
    max_nodes: F64
    split: F64

    @classmethod
    def zeros(cls, prob: Problem) -> Duals:
        """All-zero multipliers."""
        n, o = prob.num_nodes, prob.num_orders
        return cls(
            line=np.zeros(prob.num_lines),
            stock=np.zeros(prob.avail.shape),
            cap_units=np.zeros(n),
            cap_orders=np.zeros(n),
            vip_units=np.zeros(n),
            vip_orders=np.zeros(n),
            max_nodes=np.zeros(o),
            split=np.zeros(o),
        )


def needs_integer_units(prob: Problem) -> bool:
    """True when unit variables must be declared integer (VIP unit caps break laminarity)."""
    return bool(np.any(prob.vip_cap_units >= 0))


@dataclass
class _SharedMasks:
    """Which stock and capacity rows can bind: their candidate arcs or pairs exceed them."""

    stock: np.ndarray  # N x S
    cap_units: np.ndarray  # N
    cap_orders: np.ndarray
    vip_units: np.ndarray
    vip_orders: np.ndarray


def _shared_row_masks(prob: Problem) -> _SharedMasks:
    """The stock and capacity rows that can bind over all candidate pairs."""
    n_nodes, arc_node = prob.num_nodes, prob.arc_node
    vip_arc = prob.order_vip[prob.pair_order[prob.arc_pair]]
    vip_pair = prob.order_vip[prob.pair_order]
    demand = np.zeros(prob.avail.shape, dtype=np.int64)
    np.add.at(demand, (arc_node, prob.arc_sku), prob.arc_ub)
    units_n = np.bincount(arc_node, weights=prob.arc_ub, minlength=n_nodes)
    pairs_n = np.bincount(prob.pair_node, minlength=n_nodes)
    vip_units_n = np.bincount(arc_node[vip_arc], weights=prob.arc_ub[vip_arc], minlength=n_nodes)
    vip_pairs_n = np.bincount(prob.pair_node[vip_pair], minlength=n_nodes)
    return _SharedMasks(
        stock=demand > prob.avail,
        cap_units=(prob.cap_units >= 0) & (units_n > prob.cap_units),
        cap_orders=(prob.cap_orders >= 0) & (pairs_n > prob.cap_orders),
        vip_units=(prob.vip_cap_units >= 0) & (vip_units_n > prob.vip_cap_units),
        vip_orders=(prob.vip_cap_orders >= 0) & (vip_pairs_n > prob.vip_cap_orders),
    )


def shared_rows_bind(prob: Problem) -> bool:
    """Whether any stock or capacity row can bind (``coupling_rows(prob, kind="shared")``)."""
    m = _shared_row_masks(prob)
    return any(
        bool(mask.any()) for mask in (m.stock, m.cap_units, m.cap_orders, m.vip_units, m.vip_orders)
    )


def coupling_rows(prob: Problem, *, kind: str = "all") -> Rows:
    """Decide which rows exist (those that can bind over all candidate pairs).

    ``kind`` = ``all`` (the compact model), ``shared`` (stock and capacity only: the
    rows orders share, for the pattern master) or ``internal`` (line, max-nodes and split
    rows only: one order's own problem with shared rows priced out).
    """
    shared = kind in ("all", "shared")
    internal = kind in ("all", "internal")
    n_orders = prob.num_orders
    rhs: list[np.ndarray] = []
    count = 0

    def alloc(mask: np.ndarray, bound: np.ndarray, internal_row: bool = False) -> I64:
        nonlocal count
        idx = np.full(mask.shape, -1, dtype=np.int64)
        if not (internal if internal_row else shared):
            return idx
        k = int(np.sum(mask))
        idx[mask] = np.arange(count, count + k)
        rhs.append(np.asarray(bound[mask], dtype=np.float64))
        count += k
        return idx

    # lines: only lines with at least two arcs need a row (one arc: ub <= q already)
    arcs_per_line = np.bincount(prob.arc_line, minlength=prob.num_lines)
    line = alloc(arcs_per_line >= 2, prob.line_qty, True)
    masks = _shared_row_masks(prob)
    stock = alloc(masks.stock, prob.avail)
    cap_units = alloc(masks.cap_units, prob.cap_units)
    cap_orders = alloc(masks.cap_orders, prob.cap_orders)
    vip_units = alloc(masks.vip_units, prob.vip_cap_units)
    vip_orders = alloc(masks.vip_orders, prob.vip_cap_orders)
    pairs_o = np.diff(prob.order_pair_start)
    if prob.max_nodes > 0:
        max_nodes = alloc(pairs_o > prob.max_nodes, np.full(n_orders, prob.max_nodes), True)
    else:
        max_nodes = np.full(n_orders, -1, dtype=np.int64)
    if prob.split > 0:
        split = alloc(pairs_o >= 2, np.ones(n_orders), True)
    else:
        split = np.full(n_orders, -1, dtype=np.int64)
    split_col = np.full(n_orders, -1, dtype=np.int64)
    return Rows(
        line=line,
        stock=stock,
        cap_units=cap_units,
        cap_orders=cap_orders,
        vip_units=vip_units,
        vip_orders=vip_orders,
        max_nodes=max_nodes,
        split=split,
        split_col=split_col,
        rhs=np.concatenate(rhs) if rhs else np.zeros(0),
        num_coupling=count,
    )


def _add_empty_rows(h: highspy.Highs, rhs: np.ndarray) -> None:
    """Add one ``<= rhs`` row per entry of ``rhs``, with no coefficients yet."""
    n_rows = rhs.shape[0]
    h.addRows(
        n_rows,
        np.full(n_rows, -highspy.kHighsInf),
        rhs,
        0,
        np.zeros(n_rows, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )


class AllocationModel:
    """The allocation LP/MIP over a growing subset of pairs, kept inside one HiGHS object."""

    def __init__(
        self,
        prob: Problem,
        pairs: I64,
        *,
        integer: bool,
        rows: Rows | None = None,
        threads: int | None = None,
        seed: int = 0,
        pair_cost: F64 | None = None,
        arc_cost: F64 | None = None,
    ) -> None:
        self.prob = prob
        # objective coefficients in currency units (defaults: the problem's own costs)
        self.pair_cost = prob.pair_fixed / MICRO if pair_cost is None else pair_cost
        self.arc_cost = prob.arc_gain / MICRO if arc_cost is None else arc_cost
        self.integer = integer
        self.int_units = integer and needs_integer_units(prob)
        self.rows = rows if rows is not None else coupling_rows(prob)
        #: HiGHS threads of this model and of its unit LP (see :func:`new_highs`)
        self.threads = model_threads(threads)
        self.h = new_highs(self.threads)
        self.h.setOptionValue("random_seed", int(seed))
        self.h.HandleKeyboardInterrupt = True
        self.deadline = Deadline(self.h)
        # column bookkeeping: per pair its y column, per arc its x column (-1 = absent)
        self.y_col = np.full(prob.num_pairs, -1, dtype=np.int64)
        self.x_col = np.full(prob.num_arcs, -1, dtype=np.int64)
        self.num_cols = 0
        self.num_rows = 0
        self.in_model = np.zeros(prob.num_pairs, dtype=bool)
        self._start: F64 | None = None  # column values of the MIP start, if one was set
        self._init_model()
        self.add_pairs(pairs)

    # ------------------------------------------------------------------ building
    def _init_model(self) -> None:
        rows, prob = self.rows, self.prob
        h = self.h
        n_rows = rows.num_coupling
        _add_empty_rows(h, rows.rhs)
        self.num_rows = n_rows
        # split columns s_o (continuous, >= 0)
        split_orders = np.nonzero(rows.split >= 0)[0]
        k = split_orders.shape[0]
        if k:
            starts = np.arange(k, dtype=np.int32)
            h.addCols(
                k,
                np.full(k, prob.split / MICRO),
                np.zeros(k),
                np.full(k, highspy.kHighsInf),
                k,
                starts,
                rows.split[split_orders].astype(np.int32),
                np.full(k, -1.0),
            )
            rows.split_col[split_orders] = np.arange(self.num_cols, self.num_cols + k)
            self.num_cols += k
        h.changeObjectiveOffset(prob.constant / MICRO)

    def add_pairs(self, pairs: I64) -> None:
        """Add pairs (their y and x columns and linking rows) not yet in the model."""
        prob, rows, h = self.prob, self.rows, self.h
        pairs = np.asarray(pairs, dtype=np.int64)
        pairs = np.unique(pairs[~self.in_model[pairs]])
        if pairs.size == 0:
            return
        self.in_model[pairs] = True
        n_p = pairs.shape[0]
        p_node = prob.pair_node[pairs]
        p_order = prob.pair_order[pairs]
        p_vip = prob.order_vip[p_order]
        # y columns: entries in parcel-capacity, VIP parcel, max-nodes and split rows
        y_rows = np.stack(
            [
                rows.cap_orders[p_node],
                np.where(p_vip, rows.vip_orders[p_node], -1),
                rows.max_nodes[p_order],
                rows.split[p_order],
            ],
            axis=1,
        )
        y_first = self.num_cols
        self._add_cols(self.pair_cost[pairs], np.ones(n_p), y_rows)
        self.y_col[pairs] = np.arange(y_first, y_first + n_p)
        # x columns of the arcs of these pairs
        arcs = ranges(prob.pair_arc_start[pairs], prob.pair_arc_start[pairs + 1])
        x_first = self.num_cols
        n_a = arcs.shape[0]
        ub = prob.arc_ub[arcs].astype(np.float64)
        self._add_cols(self.arc_cost[arcs], ub, self._arc_rows(arcs))
        self.x_col[arcs] = np.arange(x_first, x_first + n_a)
        if self.integer:
            h.changeColsIntegrality(
                n_p,
                np.arange(y_first, y_first + n_p, dtype=np.int32),
                np.full(n_p, highspy.HighsVarType.kInteger),
            )
            if self.int_units:
                h.changeColsIntegrality(
                    n_a,
                    np.arange(x_first, x_first + n_a, dtype=np.int32),
                    np.full(n_a, highspy.HighsVarType.kInteger),
                )
        # linking rows x_a - ub_a y_p <= 0
        starts = np.arange(0, 2 * n_a, 2, dtype=np.int32)
        idx = np.empty(2 * n_a, dtype=np.int32)
        idx[0::2] = self.x_col[arcs]
        idx[1::2] = self.y_col[prob.arc_pair[arcs]]
        val = np.empty(2 * n_a)
        val[0::2] = 1.0
        val[1::2] = -ub
        h.addRows(n_a, np.full(n_a, -highspy.kHighsInf), np.zeros(n_a), 2 * n_a, starts, idx, val)
        self.num_rows += n_a

    def _arc_rows(self, arcs: I64) -> I64:
        """Per arc, the coupling rows its x column enters (-1 = none): arcs x 4."""
        prob, rows = self.prob, self.rows
        a_node = prob.pair_node[prob.arc_pair[arcs]]
        a_sku = prob.line_sku[prob.arc_line[arcs]]
        a_vip = prob.order_vip[prob.pair_order[prob.arc_pair[arcs]]]
        return np.stack(
            [
                rows.line[prob.arc_line[arcs]],
                rows.stock[a_node, a_sku],
                rows.cap_units[a_node],
                np.where(a_vip, rows.vip_units[a_node], -1),
            ],
            axis=1,
        )

    def _add_cols(self, cost: np.ndarray, upper: np.ndarray, row_idx: I64) -> None:
        self._add_cols_to(self.h, cost, upper, row_idx)
        self.num_cols += cost.shape[0]

    @staticmethod
    def _add_cols_to(h: highspy.Highs, cost: np.ndarray, upper: np.ndarray, row_idx: I64) -> None:
        k = cost.shape[0]
        mask = row_idx >= 0
        counts = mask.sum(axis=1)
        starts = np.zeros(k, dtype=np.int32)
        np.cumsum(counts[:-1], out=starts[1:])
        idx = row_idx[mask].astype(np.int32)
        h.addCols(
            k,
            np.asarray(cost, dtype=np.float64),
            np.zeros(k),
            np.asarray(upper, dtype=np.float64),
            int(idx.shape[0]),
            starts,
            idx,
            np.ones(idx.shape[0]),
        )

    # ------------------------------------------------------------------- solving
    def set_options(self, **options: Any) -> None:
        """Set HiGHS options by name (``threads`` also becomes this model's unit-LP count)."""
        for name, value in options.items():
            self.h.setOptionValue(name, value)
        if "threads" in options:
            self.threads = int(options["threads"])

    def run(self, time_limit_s: float) -> str:
        """Solve with a time limit; return the HiGHS model status as text."""
        self.deadline.at = time.perf_counter() + set_time_limit(self.h, time_limit_s, self.integer)
        run_highs(self.h)
        left = self.deadline.at - time.perf_counter()
        if (
            self.integer
            and self._start is not None
            and self._start.shape[0] == self.num_cols  # no pairs added since
            and left > 0.0
            and self.has_solution()
            and self._dearer_than_reported(self.column_values())
        ):
            # HiGHS (1.16) can finish a MIP started from a solution with the objective of a
            # better incumbent but the start's columns (the incumbent is lost in postsolve):
            # solved again without presolve from the same start, it hands back its answer
            _, presolve = self.h.getOptionValue("presolve")
            self.h.clearSolver()
            self.h.setOptionValue("presolve", "off")
            self.h.setSolution(self.num_cols, np.arange(self.num_cols, dtype=np.int32), self._start)
            set_time_limit(self.h, left, integer=True)
            run_highs(self.h)
            self.h.setOptionValue("presolve", presolve)
        return status_text(self.h)

    def set_start(self, x: I64) -> None:
        """Give HiGHS a feasible start (units per problem arc; arcs outside are zero)."""
        prob = self.prob
        values = np.zeros(self.num_cols)
        present = self.x_col >= 0
        values[self.x_col[present]] = x[present]
        per_pair = np.bincount(prob.arc_pair, weights=x, minlength=prob.num_pairs)
        used = (per_pair > 0) & (self.y_col >= 0)
        values[self.y_col[used]] = 1.0
        if self.rows.split.max(initial=-1) >= 0:
            shipments = np.bincount(prob.pair_order[used], minlength=prob.num_orders)
            has = self.rows.split_col >= 0
            values[self.rows.split_col[has]] = np.maximum(shipments[has] - 1, 0)
        self.h.setSolution(self.num_cols, np.arange(self.num_cols, dtype=np.int32), values)
        self._start = values

    def objective(self) -> float:
        """Objective of the current solution (currency units)."""
        return float(self.h.getInfo().objective_function_value)

    def mip_bound(self) -> float:
        """Dual bound of the last MIP run (currency units); -inf when its root LP did not end
        (see :func:`dual_bound`)."""
        return dual_bound(self.h)

    def mip_nodes(self) -> int:
        """Branch-and-bound nodes of the last MIP run."""
        return int(self.h.getInfo().mip_node_count)

    def has_solution(self) -> bool:
        """True when HiGHS holds a primal solution."""
        return int(self.h.getInfo().primal_solution_status) == 2

    def column_values(self) -> F64:
        """Raw column values of the current solution."""
        return np.asarray(self.h.getSolution().col_value, dtype=np.float64)

    def units(self) -> I64:
        """Integral units per problem arc of the current solution, within every row.

        An answer whose unit columns are all integral (within HiGHS' MIP feasibility
        tolerance) is rounded: each row's sum then moves by less than one, so an integral
        sum stays within its integral bound. A fractional one (a point inside the optimal
        face, see the module docstring) is replaced by a vertex of the unit LP with the open
        pairs fixed (:meth:`_vertex_units`): integral, as cheap or cheaper, and within every
        row. Should that LP fail, the values are rounded down, which keeps every row (all
        unit coefficients are positive) at the price of units left unfilled.
        """
        prob = self.prob
        col = self.column_values()
        x = np.zeros(prob.num_arcs, dtype=np.int64)
        present = np.flatnonzero(self.x_col >= 0)
        values = col[self.x_col[present]]
        whole = np.rint(values)
        open_pair = np.zeros(prob.num_pairs, dtype=bool)
        in_model = self.y_col >= 0
        open_pair[in_model] = col[self.y_col[in_model]] > 0.5
        if np.abs(values - whole).max(initial=0.0) <= UNIT_TOL:
            x[present] = whole.astype(np.int64)
            x = np.clip(x, 0, prob.arc_ub)
            if self.integer and self._dearer_than_reported(col):
                # HiGHS (1.16) can hand back a MIP start's unit values unchanged while its
                # objective is that of the start with the units re-optimised in presolve's
                # reduced space (where :meth:`run` had no time left to solve again): the
                # unit LP over the open pairs gives units at least as cheap
                vertex = self._vertex_units(open_pair)
                cost = self.arc_cost
                if vertex is not None and np.dot(cost, vertex) < np.dot(cost, x):
                    return vertex
            return x
        vertex = self._vertex_units(open_pair)
        if vertex is not None:
            return vertex
        x[present] = np.floor(values + UNIT_TOL).astype(np.int64)
        x[~open_pair[prob.arc_pair]] = 0  # x <= ub y with y = 0
        return np.clip(x, 0, prob.arc_ub)

    def _dearer_than_reported(self, col: F64) -> bool:
        """True when the columns ``col`` cost more than the objective HiGHS reports for them."""
        cost = np.zeros(self.num_cols)
        has_y, has_x = self.y_col >= 0, self.x_col >= 0
        cost[self.y_col[has_y]] = self.pair_cost[has_y]
        cost[self.x_col[has_x]] = self.arc_cost[has_x]
        has_s = self.rows.split_col >= 0
        cost[self.rows.split_col[has_s]] = self.prob.split / MICRO
        value = float(np.dot(cost, col)) + self.prob.constant / MICRO
        reported = self.objective()
        return value - reported > 1e-6 + 1e-9 * abs(reported)

    def _vertex_units(self, open_pair: np.ndarray) -> I64 | None:
        """A vertex of the unit LP over the arcs of ``open_pair`` (None if HiGHS fails).

        With the pairs fixed, the unit columns enter line rows and node-SKU-inside-node rows
        (two laminar families; VIP unit rows only where units are integer anyway): the
        matrix is totally unimodular and the bounds integral, so the basic solution the
        simplex returns (presolve off: no postsolve that leaves the vertex) is integral. The
        current answer is feasible for this LP, so the vertex costs no more.
        """
        prob, rows = self.prob, self.rows
        arcs = np.flatnonzero((self.x_col >= 0) & open_pair[prob.arc_pair])
        x = np.zeros(prob.num_arcs, dtype=np.int64)
        if arcs.size == 0:
            return x
        h = new_highs(self.threads)  # as this model's, whose run sized the scheduler
        h.setOptionValue("presolve", "off")
        h.setOptionValue("solver", "simplex")
        deadline = Deadline(h)
        deadline.at = time.perf_counter() + VERTEX_LP_S
        h.setOptionValue("time_limit", VERTEX_LP_S)
        _add_empty_rows(h, rows.rhs)
        ub = prob.arc_ub[arcs].astype(np.float64)
        self._add_cols_to(h, self.arc_cost[arcs], ub, self._arc_rows(arcs))
        run_highs(h)
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        values = np.asarray(h.getSolution().col_value, dtype=np.float64)
        whole = np.rint(values)
        if np.abs(values - whole).max(initial=0.0) > UNIT_TOL:
            return None  # not a vertex of a unimodular system (VIP rows): round down instead
        x[arcs] = whole.astype(np.int64)
        return np.clip(x, 0, prob.arc_ub)

    def pair_values(self) -> F64:
        """y value per problem pair (0 for pairs outside the model)."""
        col = self.column_values()
        y = np.zeros(self.prob.num_pairs)
        present = self.y_col >= 0
        y[present] = col[self.y_col[present]]
        return y

    def arc_values(self) -> F64:
        """x value per problem arc (0 for arcs outside the model)."""
        col = self.column_values()
        x = np.zeros(self.prob.num_arcs)
        present = self.x_col >= 0
        x[present] = col[self.x_col[present]]
        return x

    def duals(self) -> Duals:
        """Duals of the coupling rows (clipped to the sign of a valid multiplier)."""
        row_dual = np.asarray(self.h.getSolution().row_dual, dtype=np.float64)
        rows = self.rows

        def pick(idx: I64) -> F64:
            out = np.zeros(idx.shape, dtype=np.float64)
            mask = idx >= 0
            out[mask] = np.minimum(row_dual[idx[mask]], 0.0)
            return out

        split = pick(rows.split)
        split = np.maximum(split, -self.prob.split / MICRO)
        return Duals(
            line=pick(rows.line),
            stock=pick(rows.stock),
            cap_units=pick(rows.cap_units),
            cap_orders=pick(rows.cap_orders),
            vip_units=pick(rows.vip_units),
            vip_orders=pick(rows.vip_orders),
            max_nodes=pick(rows.max_nodes),
            split=split,
        )


def reduced_costs(prob: Problem, duals: Duals) -> tuple[F64, F64]:
    """Per arc reduced unit cost and per pair reduced fixed cost under the multipliers."""
    arc_node, arc_sku = prob.arc_node, prob.arc_sku
    arc_vip = prob.order_vip[prob.pair_order[prob.arc_pair]]
    c_arc = (
        prob.arc_gain / MICRO
        - duals.line[prob.arc_line]
        - duals.stock[arc_node, arc_sku]
        - duals.cap_units[arc_node]
        - np.where(arc_vip, duals.vip_units[arc_node], 0.0)
    )
    p_vip = prob.order_vip[prob.pair_order]
    c_pair = (
        prob.pair_fixed / MICRO
        - duals.cap_orders[prob.pair_node]
        - np.where(p_vip, duals.vip_orders[prob.pair_node], 0.0)
        - duals.max_nodes[prob.pair_order]
        - duals.split[prob.pair_order]
    )
    return c_arc, c_pair


def pair_values_at_one(prob: Problem, c_arc: F64, c_pair: F64) -> F64:
    """Lagrangian value of each pair opened (y = 1, best units): its reduced cost."""
    contrib = prob.arc_ub * np.minimum(c_arc, 0.0)
    per_pair = np.bincount(prob.arc_pair, weights=contrib, minlength=prob.num_pairs)
    return c_pair + per_pair


def lagrangian_bound(prob: Problem, rows: Rows, duals: Duals) -> tuple[float, F64]:
    """A valid lower bound on the optimum over every pair, and each pair's reduced cost.

    Relaxes every coupling row with multipliers ``duals`` (any non-positive values give a
    valid bound; the LP optimum's duals give the LP bound). Linking rows and bounds stay,
    so each pair contributes ``min(0, reduced cost)``.
    """
    c_arc, c_pair = reduced_costs(prob, duals)
    val_one = pair_values_at_one(prob, c_arc, c_pair)
    bound = prob.constant / MICRO + float(np.sum(np.minimum(val_one, 0.0)))
    bound += _rhs_term(prob, rows, duals)
    return bound, val_one


def _rhs_term(prob: Problem, rows: Rows, duals: Duals) -> float:
    total = 0.0
    for idx, dual in (
        (rows.line, duals.line),
        (rows.stock, duals.stock),
        (rows.cap_units, duals.cap_units),
        (rows.cap_orders, duals.cap_orders),
        (rows.vip_units, duals.vip_units),
        (rows.vip_orders, duals.vip_orders),
        (rows.max_nodes, duals.max_nodes),
        (rows.split, duals.split),
    ):
        mask = idx >= 0
        total += float(np.dot(dual[mask], rows.rhs[idx[mask]]))
    return total
