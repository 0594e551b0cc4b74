"""The compact MIP's bound and note: no bound stated when HiGHS stopped in its root LP."""

from __future__ import annotations

from typing import Any, cast

import highspy
import numpy as np
import pytest

from solvers.allocation import compact
from solvers.allocation.compact import solve_compact
from solvers.allocation.highs_model import AllocationModel
from solvers.allocation.problem import MICRO, Problem, compile_request
from solvers.allocation.request import AllocationRequest


class HighsStoppedInRootLp:
    """A HiGHS model answering as HiGHS 1.16 does when stopped in its root LP.

    Its status is the time limit and, if ``bound`` is given, its dual bound is that one (the
    300-order city stopped at 0.2-0.4 s reported the bound its columns' bounds give);
    everything else is the wrapped model's.
    """

    def __init__(self, h: highspy.Highs, bound: float | None) -> None:
        self._h = h
        self._bound = bound

    def getInfo(self) -> Any:
        """The model's info, with the dual bound of a run stopped in its root LP."""
        info = self._h.getInfo()
        if self._bound is not None:
            info.mip_dual_bound = self._bound
        return info

    def getModelStatus(self) -> highspy.HighsModelStatus:
        """Stopped at the time limit."""
        return highspy.HighsModelStatus.kTimeLimit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._h, name)


def stop_in_root_lp(model: AllocationModel, bound: float | None) -> None:
    """Make ``model`` answer as if its last run stopped in its root LP."""
    model.h = cast(highspy.Highs, HighsStoppedInRootLp(model.h, bound))


def columns_bound(prob: Problem) -> float:
    """The objective with every column at its cheapest bound, no row heeded (currency)."""
    ships_all = np.minimum(prob.arc_gain, 0) * prob.arc_ub
    return float(prob.constant + np.minimum(prob.pair_fixed, 0).sum() + ships_all.sum()) / MICRO


@pytest.fixture
def two_dcs_problem(two_dcs: AllocationRequest) -> Problem:
    """The two-DC request compiled."""
    return compile_request(two_dcs)


def solved(prob: Problem) -> AllocationModel:
    """The compact MIP of ``prob`` solved to the end."""
    model = AllocationModel(prob, np.arange(prob.num_pairs), integer=True, threads=1)
    assert model.run(30.0) == "Optimal"
    return model


def test_a_bound_from_the_columns_bounds_alone_is_no_bound(two_dcs_problem: Problem) -> None:
    """Stopped in its root LP, the model reports no bound, not the columns' one."""
    prob = two_dcs_problem
    floor = columns_bound(prob)
    model = solved(prob)
    assert floor < 0.0 < model.objective()  # the columns' bound says nothing here
    stop_in_root_lp(model, floor)
    assert model.mip_bound() == -np.inf


def test_a_bound_the_mip_found_is_kept_past_its_time_limit(two_dcs_problem: Problem) -> None:
    """A dual bound above the columns' one is the MIP's own: kept at a time limit too."""
    model = solved(two_dcs_problem)
    found = model.mip_bound()
    assert found == pytest.approx(model.objective())
    stop_in_root_lp(model, None)  # the status alone changed
    assert model.mip_bound() == found


def test_the_compact_mip_stopped_in_its_root_lp_notes_no_bound(
    two_dcs_problem: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """solve_compact answers -inf and its note states no bound (it stated the columns' one)."""
    prob = two_dcs_problem
    floor = columns_bound(prob)

    class StoppedInRootLp(AllocationModel):
        """The allocation model, its run ending as if stopped in its root LP."""

        def run(self, time_limit_s: float) -> str:
            super().run(time_limit_s)
            stop_in_root_lp(self, floor)
            return "Time limit reached"

    monkeypatch.setattr(compact, "AllocationModel", StoppedInRootLp)
    out = solve_compact(
        prob, np.zeros(prob.num_arcs, dtype=np.int64), seconds=30.0, gap=0.0, threads=1, seed=0
    )
    assert out.bound == -np.inf
    assert out.note() == (
        "compact MIP: Time limit reached, no bound (stopped before its root LP ended)"
    )


def test_the_compact_mip_notes_the_bound_it_found(two_dcs_problem: Problem) -> None:
    """A compact MIP solved to the end notes its status and its bound, the optimum."""
    prob = two_dcs_problem
    out = solve_compact(
        prob, np.zeros(prob.num_arcs, dtype=np.int64), seconds=30.0, gap=0.0, threads=1, seed=0
    )
    assert out.x is not None
    optimum = prob.evaluate(out.x).total / MICRO
    assert out.bound == pytest.approx(optimum, abs=1e-6)
    assert out.note() == f"compact MIP: Optimal, bound {out.bound:.4f}"
