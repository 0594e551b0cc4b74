"""HiGHS time limits on a model solved many times: a MIP's counts from its own run's start."""

from __future__ import annotations

import time

import highspy
import numpy as np
import pytest

from solvers.allocation.highs_model import new_highs, run_highs, set_time_limit


@pytest.fixture
def knapsacks() -> highspy.Highs:
    """A 300-item, 60-row multi-knapsack MIP that HiGHS does not solve in seconds."""
    rng = np.random.default_rng(0)
    n = 300
    h = new_highs(1)
    h.setOptionValue("random_seed", 0)
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
    )
    for _ in range(60):
        idx = rng.choice(n, 40, replace=False).astype(np.int32)
        h.addRow(-highspy.kHighsInf, 10.0, 40, idx, rng.integers(1, 9, 40).astype(np.float64))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), -rng.integers(1, 50, n).astype(np.float64))
    return h


def test_a_mip_late_in_a_models_life_gets_its_own_seconds(knapsacks: highspy.Highs) -> None:
    """After a 1 s run, a MIP given 0.2 s stops near 0.2 s, not at the run clock's 1.2 s."""
    h = knapsacks
    set_time_limit(h, 1.0, integer=True)
    run_highs(h)
    assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
    assert h.getRunTime() >= 0.9
    h.clearSolver()
    set_time_limit(h, 0.2, integer=True)
    t = time.perf_counter()
    run_highs(h)
    took = time.perf_counter() - t
    assert h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
    # the run clock's limit (1.2 s) would have run it past 1 s
    assert took < 0.8, took


def test_an_lp_late_in_a_models_life_gets_its_seconds_on_the_run_clock(
    knapsacks: highspy.Highs,
) -> None:
    """After 0.5 s of runs, an LP given 0.3 s is solved, not stopped before it starts."""
    h = knapsacks
    set_time_limit(h, 0.5, integer=True)
    run_highs(h)
    assert h.getRunTime() >= 0.4
    n = h.getNumCol()
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kContinuous)
    )
    h.clearSolver()
    set_time_limit(h, 0.3, integer=False)
    run_highs(h)
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
