"""The phase hook of an allocation solve (a service job's progress detail)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solvers.allocation import AllocationParams, allocate, generate_literature
from solvers.allocation.progress import (
    COLUMN_GENERATION,
    EXPLAINING,
    INTEGER_PHASE,
    WARM_START,
    phase_hook,
    relative_gap,
    report_phase,
)


def test_a_batch_solve_names_its_phases_in_order_with_the_gap_so_far() -> None:
    """The hook hears warm start, column generation, integer phase, explaining: in order,
    each gap a share in [0, 1] and never larger from the integer phase on."""
    heard: list[tuple[str, float | None]] = []
    request = generate_literature(seed=7, num_orders=150, num_nodes=10)
    params = AllocationParams(mode="batch", time_limit_s=1.5, threads=1, seed=3)
    with phase_hook(lambda phase, gap: heard.append((phase, gap))):
        result = allocate(request, params)
    assert result.method == "batch"
    phases = [p for i, (p, _) in enumerate(heard) if i == 0 or heard[i - 1][0] != p]
    assert phases == [WARM_START, COLUMN_GENERATION, INTEGER_PHASE, EXPLAINING]
    gaps = [g for _, g in heard if g is not None]
    assert gaps and all(0.0 <= g <= 1.0 for g in gaps)
    integer = next(g for p, g in heard if p == INTEGER_PHASE)
    explaining = next(g for p, g in heard if p == EXPLAINING)
    assert integer is not None and explaining is not None and explaining <= integer


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
