"""A batch answers when HiGHS fails inside it: an exception from a run, or an error status.

HiGHS (1.16) catches ``std::bad_alloc`` in its MIP solver itself (model status "Memory
limit reached", no solution, its information unset); a C++ exception it does not catch
reaches Python as the exception pybind11 maps it to (MemoryError, RuntimeError). Every
HiGHS run of the allocation solvers goes through ``Highs.run``, which the faults below
replace: the ``at``-th run of a kind of call raises or ends in an error with no solution.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import highspy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.generate import generate_city
from solvers.allocation import (
    AllocationParams,
    AllocationRequest,
    allocate,
    batch,
    highs_model,
    lns,
)
from solvers.allocation import master as master_mod
from solvers.allocation.compact import solve_compact
from solvers.allocation.heuristics import nearest
from solvers.allocation.highs_model import counting_failures
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import compile_request
from solvers.allocation.result import AllocationResult, AllocationStatus

from .conftest import allocation_vector
from .test_pricing_helper import wait_for
from .test_time_limits import cpu_clock

#: what a failing run does: raise as HiGHS' uncaught C++ exceptions do, or end in an error
HOW = ("memory", "runtime", "error")
#: the status text of a run failing as each of :data:`HOW` says (``error``: HiGHS' "Not Set")
STATUS = {
    "memory": "Solver error (MemoryError: std::bad_alloc)",
    "runtime": "Solver error (RuntimeError: std::exception)",
    "error": "Not Set",
}


class Faults:
    """``Highs.run`` whose ``at``-th call from a caller named ``kind`` (and, ``onwards``,
    every later one) fails as ``how`` says.

    The kind of a call is ``module.function`` of the first frame outside ``highs_model``
    (``master.Master.solve_lp``: a master LP re-solve; ``compact.solve_compact``: the compact
    MIP; ``lns.SubMip.solve``: a pool MIP ...); an empty ``kind`` matches every call. An
    instance that ended in an error keeps failing (as one out of memory would): the retry
    of ``run_highs`` cannot hide it.
    """

    def __init__(self, kind: str, at: int, how: str, *, onwards: bool = False) -> None:
        self.kind, self.at, self.how, self.onwards = kind, at, how, onwards
        self.kinds: list[str] = []  # every run's kind, in order
        self.failed: list[str] = []
        self.broken: set[int] = set()
        self.real: Callable[[highspy.Highs], highspy.HighsStatus] = highspy.Highs.run

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Faults:
        """Replace ``Highs.run`` for the test."""
        faults = self

        def run(h: highspy.Highs) -> highspy.HighsStatus:
            return faults.run(h, sys._getframe(1))

        monkeypatch.setattr(highspy.Highs, "run", run)
        return self

    def run(self, h: highspy.Highs, frame: FrameType | None) -> highspy.HighsStatus:
        """The run, or its failure."""
        while frame is not None and frame.f_code.co_filename == highs_model.__file__:
            frame = frame.f_back
        kind = "?" if frame is None else caller(frame)
        self.kinds.append(kind)
        seen = sum(k.startswith(self.kind) for k in self.kinds)
        hit = seen > self.at if self.onwards else seen == self.at + 1
        if id(h) not in self.broken and not (kind.startswith(self.kind) and hit):
            return self.real(h)
        self.failed.append(kind)
        if self.how == "memory":
            raise MemoryError("std::bad_alloc")
        if self.how == "runtime":
            raise RuntimeError("std::exception")
        self.broken.add(id(h))
        h.clearSolver()  # no solution, information unset, model status "Not Set"
        return highspy.HighsStatus.kError


def caller(frame: FrameType) -> str:
    """``module.qualified.function`` of ``frame``."""
    module = frame.f_globals.get("__name__", "?").rsplit(".", 1)[-1]
    return f"{module}.{frame.f_code.co_qualname}"


def check_answer(req: AllocationRequest, res: AllocationResult) -> None:
    """A valid allocation, a status that says how good it is, never a bound above it."""
    prob = compile_request(req)
    x = allocation_vector(prob, res)
    assert prob.violations(x) == []
    assert res.cost.total == pytest.approx(prob.evaluate(x).total / 1e6, abs=1e-6)
    near = prob.evaluate(nearest(prob)).total / 1e6
    assert res.cost.total <= near + 1e-6  # at worst the warm start, never worse than it
    assert res.status in (AllocationStatus.OPTIMAL, AllocationStatus.FEASIBLE)
    if res.bound is not None:
        assert math.isfinite(res.bound) and res.bound <= res.cost.total + 1e-6


@pytest.fixture
def literature_30() -> AllocationRequest:
    """30 literature orders over 10 FCs: master LP, compact MIP, small certificate."""
    return generate_literature(seed=0, num_orders=30, num_nodes=10, vip_share=0.1)


@pytest.fixture
def literature_150() -> AllocationRequest:
    """150 literature orders, stock only: LP rounding, pool MIPs, neighbourhood search."""
    return generate_literature(seed=0, num_orders=150, num_nodes=10, vip_share=0.1)


@pytest.fixture
def capped_city() -> AllocationRequest:
    """120 city orders over 10 capped nodes: large-batch repairs, ejection, sliced search."""
    scenario = generate_city(seed=4, num_orders=120, num_nodes=10, num_couriers=5)
    return AllocationRequest.from_scenario(scenario)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("kind", "at"),
    [
        ("master.Master.solve_lp", 0),  # the first master LP
        ("master.Master.solve_lp", 1),  # a re-solve
        ("compact.solve_compact", 0),  # the compact MIP from the incumbent
        ("", 0),  # the solve's first HiGHS run, whatever it is
    ],
)
def test_a_small_batch_answers_when_a_highs_run_fails(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest, kind: str, at: int, how: str
) -> None:
    faults = Faults(kind, at, how).install(monkeypatch)
    clock = cpu_clock(monkeypatch)
    t0 = clock.perf_counter()
    res = allocate(literature_30, AllocationParams(time_limit_s=2.0, explain=False, seed=0))
    assert faults.failed and faults.failed[0].startswith(kind)
    check_answer(literature_30, res)
    assert clock.perf_counter() - t0 <= 2.0 + 0.5
    if how != "error":  # an exception is named where the solve notes the run's status
        said = [n for n in res.stats.notes if "Solver error" in n]
        assert not said or any(("MemoryError" in n or "RuntimeError" in n) for n in said)


def test_a_failed_compact_mip_claims_no_bound(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """Its information unset, HiGHS reads a dual bound of 0 after a failed run: no bound."""
    Faults("compact.solve_compact", 0, "error").install(monkeypatch)
    prob = compile_request(literature_30)
    out = solve_compact(prob, nearest(prob), seconds=5.0, gap=0.0, threads=1, seed=0)
    assert out.x is None and out.bound == -math.inf
    assert "stopped before its root LP ended" not in out.note()


def test_an_exception_from_highs_is_the_runs_error(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """MemoryError (``std::bad_alloc``) out of a run: no solution, the status names it."""
    Faults("compact.solve_compact", 0, "memory").install(monkeypatch)
    prob = compile_request(literature_30)
    out = solve_compact(prob, nearest(prob), seconds=5.0, gap=0.0, threads=1, seed=0)
    assert out.x is None and out.bound == -math.inf
    assert out.status == "Solver error (MemoryError: std::bad_alloc)"


#: the HiGHS runs of :func:`test_a_stock_only_batch_answers_whichever_highs_run_fails`'s
#: solve (its master LPs and the compact MIP): 15 here; an ``at`` past them fails no run
STOCK_ONLY_RUNS = 15


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(at=st.integers(min_value=0, max_value=STOCK_ONLY_RUNS - 1), how=st.sampled_from(HOW))
def test_a_stock_only_batch_answers_whichever_highs_run_fails(
    monkeypatch: pytest.MonkeyPatch, literature_150: AllocationRequest, at: int, how: str
) -> None:
    """LP rounding, pool MIPs of the neighbourhood search, certificate: any run may fail."""
    with monkeypatch.context() as patch:
        Faults("", at, how).install(patch)
        clock = cpu_clock(patch)
        t0 = clock.perf_counter()
        res = allocate(
            literature_150,
            AllocationParams(time_limit_s=2.0, mip_rel_gap=1e-4, explain=False, seed=0),
        )
        took = clock.perf_counter() - t0
    check_answer(literature_150, res)
    assert took <= 2.0 + 0.5


@pytest.mark.slow
@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(
    ("kind", "at", "onwards"),
    [
        ("master.Master.solve_lp", 0, False),  # the first master LP only
        ("", 0, True),  # every HiGHS run of the solve
        ("", 3, True),  # every run after the first three (LP rounding, repairs, pool MIPs)
    ],
)
def test_a_capped_large_batch_answers_when_highs_runs_fail(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capped_city: AllocationRequest,
    kind: str,
    at: int,
    onwards: bool,
    how: str,
) -> None:
    """Repairs (compact MIPs), sliced neighbourhood search, LP rounding, the pricing helper;
    the failed runs of every thread of the solve are counted in its note, warned of once."""
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)  # 120 orders count as large
    monkeypatch.setattr(batch, "IPM_AFTER_S", 0.0)
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    faults = Faults(kind, at, how, onwards=onwards).install(monkeypatch)
    res = allocate(capped_city, AllocationParams(time_limit_s=3.0, mip_rel_gap=1e-4, seed=2))
    assert faults.failed and faults.failed[0].startswith(kind)
    check_answer(capped_city, res)
    assert len(highs_warnings(caplog)) == 1
    [note] = [n for n in res.stats.notes if n.startswith("HiGHS failed in ")]
    if how != "error":  # an error status is retried once on a fresh scheduler: two calls
        assert int(note.split()[3]) == len(faults.failed)


def test_a_killed_pricing_helper_does_not_hold_up_the_batch(
    monkeypatch: pytest.MonkeyPatch, capped_city: AllocationRequest
) -> None:
    """A helper process that dies (out of memory, killed) at its first job: the solve prices
    and bounds without it and answers."""
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 50)
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
    monkeypatch.setattr(master_mod, "HELPER_MIN_ORDERS", 1)
    spawn = master_mod.PricingHelper.spawn
    killed: list[int | None] = []

    def spawn_and_kill(prob: Any) -> Any:
        helper = spawn(prob)
        assert helper is not None
        helper.helper.proc.kill()
        killed.append(helper.helper.proc.wait())
        return helper

    monkeypatch.setattr(master_mod.PricingHelper, "spawn", staticmethod(spawn_and_kill))
    res = allocate(capped_city, AllocationParams(time_limit_s=2.0, mip_rel_gap=1e-4, seed=2))
    assert killed and killed[0] is not None
    check_answer(capped_city, res)


@pytest.mark.parametrize("how", HOW)
def test_an_online_solve_answers_when_every_highs_run_fails(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The online path's MIPs (its joint MIP, one-order MIPs): a valid answer all the same."""
    req = generate_literature(seed=0, num_orders=12, num_nodes=10, vip_share=0.1)
    faults = Faults("", 0, how, onwards=True).install(monkeypatch)
    res = allocate(req, AllocationParams(mode="online", time_limit_s=2.0, explain=False, seed=0))
    assert faults.failed
    check_answer(req, res)
    assert any(n.startswith("MIP failed (") for n in res.stats.notes)


def highs_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The warnings ``highs_model`` logged about failed runs."""
    return [
        r
        for r in caplog.records
        if r.name == highs_model.__name__
        and r.levelno >= logging.WARNING
        and r.getMessage().startswith("HiGHS run failed")
    ]


@pytest.mark.parametrize("how", HOW)
def test_runs_that_all_fail_are_warned_of_once_and_summed_up_in_a_note(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    literature_150: AllocationRequest,
    how: str,
) -> None:
    """Every HiGHS run of the solve fails: one warning per kind of failure, the rest debug
    messages, and one note with their count (a capped batch logged ~1,300 warnings in 3 s)."""
    caplog.set_level(logging.DEBUG, logger=highs_model.__name__)
    faults = Faults("", 0, how, onwards=True).install(monkeypatch)
    cpu_clock(monkeypatch)  # on a loaded machine's wall clock the warm start took the limit
    # 1 s of CPU: ~900 failed runs here (2 s: ~1,900, twice the test's time for no more cases)
    res = allocate(
        literature_150, AllocationParams(time_limit_s=1.0, mip_rel_gap=1e-4, explain=False, seed=0)
    )
    check_answer(literature_150, res)
    assert len(faults.failed) > 3  # enough failed runs for the old warnings to show
    warned = highs_warnings(caplog)
    assert len(warned) == 1, [r.getMessage() for r in warned]
    [note] = [n for n in res.stats.notes if n.startswith("HiGHS failed in ")]
    first = STATUS[how]
    assert note.endswith(f" runs (first: {first})")
    count = int(note.split()[3])
    debug = [r for r in caplog.records if r.getMessage() == f"HiGHS run failed: {first}"]
    assert count == len(debug) > 1  # the warning and the debug messages: each counted run
    if how != "error":  # an error status is retried once on a fresh scheduler: two calls
        assert count == len(faults.failed)


def test_a_solve_without_failures_has_no_failure_note(
    caplog: pytest.LogCaptureFixture, literature_30: AllocationRequest
) -> None:
    caplog.set_level(logging.DEBUG, logger=highs_model.__name__)
    res = allocate(literature_30, AllocationParams(time_limit_s=2.0, explain=False, seed=0))
    assert not any(n.startswith("HiGHS failed") for n in res.stats.notes)
    assert not [r for r in caplog.records if r.getMessage().startswith("HiGHS run failed")]


@pytest.mark.parametrize("how", HOW)
def test_a_failed_shadow_price_lp_is_named_in_the_note(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The online path's shadow-price LP fails: the note says so, not "no LP duals within
    the time limit"."""
    req = generate_literature(seed=0, num_orders=12, num_nodes=10, vip_share=0.1)
    faults = Faults("solve._lp_duals", 0, how).install(monkeypatch)
    res = allocate(req, AllocationParams(mode="online", time_limit_s=2.0, explain=False, seed=0))
    assert faults.failed == ["solve._lp_duals"] * len(faults.failed)
    check_answer(req, res)
    assert res.shadow_prices == []
    [note] = [n for n in res.stats.notes if n.startswith("no shadow prices")]
    status = "Not Set" if how == "error" else "Solver error ("
    assert note.startswith(f"no shadow prices: the shadow-price LP failed ({status}"), note
    assert "HiGHS failed in 1 run (first: " in " ".join(res.stats.notes)


def test_a_shadow_price_lp_stopped_short_names_its_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shadow-price LP ends neither optimal, failed nor timed out (an iteration limit):
    the note names that status, not the time limit."""
    req = generate_literature(seed=0, num_orders=12, num_nodes=10, vip_share=0.1)
    real = highspy.Highs.run

    def run(h: highspy.Highs) -> highspy.HighsStatus:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == highs_model.__file__:
            frame = frame.f_back
        if frame is not None and caller(frame) == "solve._lp_duals":
            h.setOptionValue("simplex_iteration_limit", 0)
        return real(h)

    monkeypatch.setattr(highspy.Highs, "run", run)
    res = allocate(req, AllocationParams(mode="online", time_limit_s=2.0, explain=False, seed=0))
    check_answer(req, res)
    assert res.shadow_prices == []
    [note] = [n for n in res.stats.notes if n.startswith("no shadow prices")]
    assert (
        note
        == "no shadow prices: the shadow-price LP ended without duals (Iteration limit reached)"
    )


@pytest.mark.parametrize("how", HOW)
def test_a_pyomo_solve_whose_highs_fails_names_the_failure(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest, how: str
) -> None:
    """The reference model's HiGHS run (Pyomo's, outside ``run_highs``) raises or ends in
    an error: no answer, no bound, the failure named; no exception."""
    from solvers.allocation.pyomo_model import load_pyomo, solve_pyomo

    load_pyomo()
    faults = Faults("", 0, how, onwards=True).install(monkeypatch)
    prob = compile_request(literature_30)
    out = solve_pyomo(prob, AllocationParams(backend="pyomo", time_limit_s=5.0, seed=0))
    assert faults.failed
    assert out.objective is None and out.bound is None and not out.x.any()
    assert out.failure == STATUS[how]


class StandIn:
    """A helper process's channel (or the parent's end of it): scripted messages in, what
    is sent kept."""

    def __init__(self, messages: list[tuple[Any, ...]]) -> None:
        self.messages = list(messages)
        self.sent: list[Any] = []
        self.proc = None

    def receive(self) -> tuple[Any, ...] | None:
        """The next scripted message (None: the other end is gone)."""
        return self.messages.pop(0) if self.messages else None

    def send(self, message: Any) -> bool:
        """Kept."""
        self.sent.append(message)
        return True

    def readable(self, wait_s: float) -> bool:
        """A scripted message is waiting."""
        return bool(self.messages)

    def on_stop(self, stop: Callable[[], None]) -> None:
        """No stop comes."""

    def close(self) -> None:
        """Nothing to close."""


@pytest.mark.parametrize("how", HOW)
def test_the_pool_race_hands_its_failed_runs_to_the_solve(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The race's process (``race_main``, here in-process) whose HiGHS run fails reports it
    with its end, and the parent counts it in the solve's note (it was the process's log
    line only)."""
    from .test_lns import _pattern_mip

    _, sub, free, current = _pattern_mip()
    model = sub.build(free, current)
    child = StandIn([("model", model.arrays, 10.0, 0, {"mip_rel_gap": 0.0})])
    monkeypatch.setattr(lns, "Channel", lambda: child)
    faults = Faults("lns.race_main", 0, how).install(monkeypatch)
    lns.race_main()
    assert set(faults.failed) == {"lns.race_main"}
    assert child.sent[-1][0] == "done" and child.sent[-1][4:] == (1, STATUS[how])
    with counting_failures() as failures:
        race = lns.PoolRace(StandIn(child.sent))  # type: ignore[arg-type]
    race.model, race.sub = model, sub
    race._read()
    assert race.report == child.sent[-1][1:4]
    assert failures.note() == f"HiGHS failed in 1 run (first: {STATUS[how]})"


@pytest.mark.parametrize("how", HOW)
def test_the_pricing_helper_hands_its_failed_runs_to_the_solve(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The pricing process (``pricing_main``, here in-process) whose bound job's LP fails
    answers with the failure, and the parent counts it in the solve's note."""
    from .test_lns import _converged_master

    prob, master, _ = _converged_master(seed=3)
    job = master_mod.BoundJob.of(master, 5.0)
    child = StandIn([("problem", prob), ("bound", job)])
    monkeypatch.setattr(master_mod, "Channel", lambda: child)
    faults = Faults("master.loose_bound", 0, how).install(monkeypatch)
    master_mod.pricing_main()
    assert set(faults.failed) == {"master.loose_bound"}  # ("error": retried once)
    [answer] = child.sent
    assert answer[0] == "bounded" and answer[1] is None and answer[3:] == (1, STATUS[how])
    parent = StandIn([])
    with counting_failures() as failures:
        helper = master_mod.PricingHelper(parent, prob)  # type: ignore[arg-type]
    assert wait_for(helper.ready)
    assert helper.submit_bound(job)
    parent.messages.append(answer)
    assert helper.bound(1.0) is None
    assert failures.note() == f"HiGHS failed in 1 run (first: {STATUS[how]})"
    helper._failed = True  # nothing to end: the stand-in is no process
