"""The phase hook of an allocation solve (a service job's progress detail)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solvers.allocation import AllocationParams, AllocationRequest, allocate, generate_literature
from solvers.allocation.batch import NO_TIME_AFTER_WARM_START
from solvers.allocation.progress import (
    COLUMN_GENERATION,
    EXPLAINING,
    INTEGER_PHASE,
    WARM_START,
    phase_hook,
    relative_gap,
    report_phase,
)
from solvers.cancel import cancelling


def test_a_batch_solve_names_its_phases_in_order_with_the_gap_so_far() -> None:
    """The hook hears warm start, column generation, integer phase, explaining: in order,
    each gap a share in [0, 1] and never larger from the integer phase on. (On a machine too
    busy to leave the explanations their least time within the limit, the answer has none and
    says so: then no explaining is heard. One so busy that the warm start ends past the time
    the column generation needs answers with the warm start and says so: then only the warm
    start is heard; a fresh clone's suite met that once at a 1.5 s limit, session 72.)"""
    heard: list[tuple[str, float | None]] = []
    request = generate_literature(seed=7, num_orders=150, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=3.0, threads=1, seed=3)
    with phase_hook(lambda phase, gap: heard.append((phase, gap))):
        result = allocate(request, params)
    assert result.method == "batch"
    explained = not any(n.startswith("no explanations:") for n in result.stats.notes)
    assert explained == bool(result.explanations)
    phases = [p for i, (p, _) in enumerate(heard) if i == 0 or heard[i - 1][0] != p]
    if NO_TIME_AFTER_WARM_START in result.stats.notes:
        assert phases == [WARM_START] + [EXPLAINING] * explained
        assert result.bound is None
        return
    assert phases == [WARM_START, COLUMN_GENERATION, INTEGER_PHASE] + [EXPLAINING] * explained
    gaps = [g for _, g in heard if g is not None]
    assert gaps and all(0.0 <= g <= 1.0 for g in gaps)
    integer = next(g for p, g in heard if p == INTEGER_PHASE)
    assert integer is not None
    if explained:
        explaining = next(g for p, g in heard if p == EXPLAINING)
        assert explaining is not None and explaining <= integer


def _phases(request: AllocationRequest, params: AllocationParams) -> list[str]:
    """The phases an allocation solve named, each once where it repeats."""
    heard: list[str] = []
    with phase_hook(lambda phase, gap: heard.append(phase)):
        allocate(request, params)
    return [p for i, p in enumerate(heard) if i == 0 or heard[i - 1] != p]


@pytest.mark.parametrize(
    ("orders", "phases"),
    [(1, [INTEGER_PHASE, EXPLAINING]), (3, [WARM_START, INTEGER_PHASE, EXPLAINING])],
)
def test_an_online_solve_names_its_phases(
    two_dcs: AllocationRequest, orders: int, phases: list[str]
) -> None:
    """It named only ``explaining``: one order's exact search and a few orders' warm start
    and joint MIP were a nameless ``solving`` in a job's progress."""
    request = two_dcs.model_copy(update={"orders": two_dcs.orders[:orders]})
    params = AllocationParams(mode="online", time_limit_s=5.0, threads=1)
    assert _phases(request, params) == phases


def test_a_pyomo_solve_names_its_integer_phase(
    two_dcs: AllocationRequest, pyomo_ready: None
) -> None:
    """The worker's MIP is the integer phase (it named only ``explaining``)."""
    from solvers.allocation import pyomo_worker

    pyomo_worker.warm_worker()
    params = AllocationParams(backend="pyomo", time_limit_s=30.0)
    assert _phases(two_dcs, params) == [INTEGER_PHASE, EXPLAINING]


@pytest.mark.parametrize(
    "orders",
    # 400 orders take the same path (the neighbourhood search of a stock-only batch) with
    # more to improve: run with -m slow
    [150, pytest.param(400, marks=pytest.mark.slow)],
)
def test_the_integer_phase_reports_the_gap_as_the_incumbent_improves(orders: int) -> None:
    """The gap heard in the integer phase was the one it began with, until ``explaining``:
    now each improvement of the incumbent or the bound is heard, never a larger gap, and
    the last one heard there is the gap the answer reports. (On a machine too busy for the
    phase to improve anything in the time left, one gap is heard, the answer's.)"""
    heard: list[tuple[str, float | None]] = []
    request = generate_literature(seed=7, num_orders=orders, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=3.0, threads=1, seed=3, explain=False)
    with phase_hook(lambda phase, gap: heard.append((phase, gap))):
        result = allocate(request, params)
    integer = [g for p, g in heard if p == INTEGER_PHASE and g is not None]
    assert len(integer) == sum(p == INTEGER_PHASE for p, _ in heard)  # each with its gap
    assert integer and all(0.0 <= g <= 1.0 for g in integer), integer
    assert integer == sorted(integer, reverse=True), integer
    assert result.gap is not None and integer[-1] == pytest.approx(result.gap, abs=1e-6)


def test_a_bound_the_search_raised_is_not_lowered_when_its_answer_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The neighbourhood search heard its incumbents against the bound it had raised (its
    reduced-cost certificate); its caller then heard the same incumbent against its own older
    bound, a larger gap (0.8748 % then 0.8752 %, in a suite run), before taking the search's
    bound. A raised bound stands in for the certificate here (a run-dependent event). Whether
    a 3 s solve reached the search was the machine's to say (it failed once at load 7-8):
    the time limit is ample, and the solve is cancelled (it ends as at its deadline) once the
    search's LP rounding is in, so the search returns at once and its caller takes it."""
    from solvers.allocation import batch

    real: Any = batch._search
    searched: list[bool] = []

    def search(*args: Any) -> Any:
        prob, x_best, lb = args[0], args[3], args[6]
        upper = prob.evaluate(x_best).total / batch.MICRO
        searched.append(True)
        return real(*args[:6], lb + 0.5 * (upper - lb), *args[7:])

    real_round: Any = batch.lp_round
    rounded = threading.Event()

    def lp_round(*args: Any, **kwargs: Any) -> Any:
        out = real_round(*args, **kwargs)
        rounded.set()  # the search's rounding is in: the solve ends after it
        return out

    monkeypatch.setattr(batch, "_search", search)
    monkeypatch.setattr(batch, "lp_round", lp_round)
    heard: list[tuple[str, float | None]] = []
    request = generate_literature(seed=7, num_orders=150, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=60.0, threads=1, seed=3, explain=False)
    with cancelling(rounded), phase_hook(lambda phase, gap: heard.append((phase, gap))):
        allocate(request, params)
    assert searched and rounded.is_set()  # the search ran, its rounding first
    integer = [g for p, g in heard if p == INTEGER_PHASE and g is not None]
    assert len(integer) >= 3, integer  # the start, the search's rounding, the caller's
    assert integer == sorted(integer, reverse=True), integer


@pytest.mark.parametrize(
    ("orders", "limit_s", "warmup_orders"),
    [
        (150, 1.5, None),
        # the path of batches of WARMUP_ORDERS and more (classes, the Lagrangian warm-up) on
        # 150 orders; the 2,500-order batch takes it at its real size: run with -m slow
        (150, 1.5, 100),
        pytest.param(2500, 4.0, None, marks=pytest.mark.slow),
    ],
    ids=["150", "150-as-large", "2500"],
)
def test_column_generation_reports_a_gap_from_its_first_bound_on(
    orders: int, limit_s: float, warmup_orders: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap was heard after each LP round only: a 10,000-order batch whose first round
    did not end within its 60 s (a busy machine) said none until its integer phase. The
    first pricing's bound gives one at once (and the Lagrangian warm-up's, at scale)."""
    from solvers.allocation import batch

    if warmup_orders is not None:
        monkeypatch.setattr(batch, "WARMUP_ORDERS", warmup_orders)
    heard: list[tuple[str, float | None]] = []
    request = generate_literature(seed=7, num_orders=orders, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=limit_s, threads=1, seed=3, explain=False)
    with phase_hook(lambda phase, gap: heard.append((phase, gap))):
        result = allocate(request, params)
    large = orders >= batch.WARMUP_ORDERS
    assert large == any(n.startswith("Lagrangian warm-up") for n in result.stats.notes)
    gaps = [g for p, g in heard if p == COLUMN_GENERATION and g is not None]
    assert len(gaps) >= result.stats.lp_rounds + 1, (gaps, result.stats.lp_rounds)
    assert all(0.0 <= g <= 1.0 for g in gaps)


def test_without_a_hook_a_phase_goes_nowhere_and_a_hook_ends_with_its_block() -> None:
    heard: list[str] = []
    report_phase(WARM_START)  # no hook: nothing to call, no error
    with phase_hook(lambda phase, gap: heard.append(phase)):
        report_phase(WARM_START)
    report_phase(EXPLAINING)
    assert heard == [WARM_START]


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(-1e9, 1e9, allow_nan=False),
)
def test_the_relative_gap_is_never_negative_and_zero_where_the_bounds_meet(
    upper: float, lower: float
) -> None:
    gap = relative_gap(upper, lower)
    assert gap >= 0.0
    if lower >= upper:
        assert gap == 0.0
    else:
        assert gap == pytest.approx((upper - lower) / max(abs(upper), 1e-9))
