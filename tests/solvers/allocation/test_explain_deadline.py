"""The explanations stop at their deadline: a fake clock, no wall-clock timing."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from solvers.allocation import AllocationParams, AllocationRequest, allocate
from solvers.allocation import explain as explain_mod
from solvers.allocation import solve as solve_mod
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import Problem, compile_request
from solvers.allocation.result import AllocationResult, ReasonKind

from .conftest import allocation_vector


@pytest.fixture
def six_orders() -> AllocationRequest:
    """Six literature orders over four nodes (explained one by one: a small batch)."""
    return generate_literature(seed=0, num_orders=6, num_nodes=4)


def solved(req: AllocationRequest) -> tuple[Problem, np.ndarray]:
    """The compiled request and its batch answer (no explanations)."""
    prob = compile_request(req)
    result = allocate(req, AllocationParams(explain=False))
    return prob, allocation_vector(prob, result)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("end", "written"), [(-1.0, 0), (0.5, 1), (2.5, 3), (5.5, 6), (9.0, 6)])
def test_orders_not_written_by_the_end_get_a_short_cut_explanation(
    six_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch, end: float, written: int
) -> None:
    """Each written explanation takes 1 s: those begun by the end in full, the rest cut."""
    prob, x = solved(six_orders)
    full, _ = explain_mod.explain(prob, x)
    clock = FakeClock()
    write = explain_mod._order_explanation

    def slow_write(*args: Any) -> Any:
        clock.now += 1.0
        return write(*args)

    monkeypatch.setattr(explain_mod, "_clock", clock)
    monkeypatch.setattr(explain_mod, "_order_explanation", slow_write)
    notes: list[str] = []
    cut, _ = explain_mod.explain(prob, x, budget_s=100.0, end=end, notes=notes)
    assert [e.order_id for e in cut] == [e.order_id for e in full]
    if written:  # no search ran either when the end came before the start
        assert cut[:written] == full[:written]
    for short, whole in zip(cut[written:], full[written:], strict=True):
        assert short.summary.endswith(explain_mod.CUT_SUMMARY)
        assert (short.nodes, short.cost) == (whole.nodes, whole.cost)
        assert short.reasons == [] and short.best_alternative is None
    assert notes == (
        []
        if written == 6
        else [
            f"explanations cut by the time limit: {written} of 6 orders explained in full, "
            f"the other {6 - written} say '{explain_mod.CUT_SUMMARY}'"
        ]
    )


def test_no_own_optimum_search_starts_past_the_search_deadline(
    six_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of search time, no order is searched or called the cheapest; all are written."""
    prob, x = solved(six_orders)
    full, _ = explain_mod.explain(prob, x)
    assert any(r.kind == ReasonKind.CHEAPEST for e in full for r in e.reasons)
    clock = FakeClock()

    def late(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an own-optimum search past the deadline")

    def start_then_late() -> float:
        now = clock.now
        clock.now = 10.0  # everything after the call's start is past its 1 s budget
        return now

    monkeypatch.setattr(explain_mod, "_clock", start_then_late)
    monkeypatch.setattr(explain_mod, "solve_order_bb", late)
    notes: list[str] = []
    out, _ = explain_mod.explain(prob, x, budget_s=1.0, end=100.0, notes=notes)
    assert notes == []
    assert [e.nodes for e in out] == [e.nodes for e in full]
    assert not any(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in out)
    assert not any(r.kind == ReasonKind.CHEAPEST for e in out for r in e.reasons)


def test_allocate_notes_explanations_cut_and_keeps_a_valid_result(
    six_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``allocate``: every order keeps an entry, the cut is noted, the schema holds."""
    jump = [0.0]
    write = explain_mod._order_explanation

    def slow_write(*args: Any) -> Any:
        jump[0] += 1e6  # far past any end
        return write(*args)

    monkeypatch.setattr(explain_mod, "_clock", lambda: time.perf_counter() + jump[0])
    monkeypatch.setattr(explain_mod, "_order_explanation", slow_write)
    result = allocate(six_orders, AllocationParams(time_limit_s=5.0))
    assert len(result.explanations) == 6
    assert sum(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in result.explanations) == 5
    assert any(
        n.startswith("explanations cut by the time limit: 1 of 6") for n in result.stats.notes
    )
    assert AllocationResult.model_validate(result.model_dump()) == result


@pytest.mark.parametrize(
    ("limit_s", "orders", "past_limit"),
    [(1.0, 300, False), (9.5, 300, True), (60.0, 50_000, False)],
)
def test_explanations_end_at_the_limit_unless_five_percent_covers_them(
    limit_s: float, orders: int, past_limit: bool
) -> None:
    """A solve that used 100 s: only a limit whose 5 % covers the explanations gives more."""
    start = time.perf_counter() - 100.0
    end = solve_mod._explain_end(AllocationParams(time_limit_s=limit_s), orders, start)
    if past_limit:
        assert end >= start + 100.0 + 0.05 * limit_s
    else:
        assert end == start + limit_s
