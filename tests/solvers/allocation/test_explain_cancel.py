"""The explanations stop between orders once their solve is cancelled (a service stopping)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from solvers.allocation import AllocationParams, allocate
from solvers.allocation import explain as explain_mod
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import compile_request
from solvers.cancel import SolveCancelled, cancelling

from .conftest import allocation_vector

#: what the explanations were doing when the cancellation came: the alternatives' batched
#: searches (a chunk of orders at a time), or the writing of the explanations (one by one)
WHERE = {"searching": "solve_blocks", "writing": "_order_explanation"}


def _cancel_at_first(
    monkeypatch: pytest.MonkeyPatch, name: str, cancel: threading.Event
) -> list[int]:
    """Set ``cancel`` as ``explain_mod.<name>`` is first called; returns its calls."""
    real = getattr(explain_mod, name)
    calls: list[int] = []

    def hooked(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        cancel.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(explain_mod, name, hooked)
    return calls


@pytest.mark.parametrize("where", sorted(WHERE))
def test_explanations_stop_between_orders_once_cancelled(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Explanations already running when their solve was cancelled (a service's stop) ran
    on to their end, every search and every order's explanation (0.3-0.5 s at 1,000
    orders); they now stop at the next order or chunk of orders."""
    req = generate_literature(seed=0, num_orders=1000, num_nodes=10, vip_share=0.1)
    prob = compile_request(req)
    x = allocation_vector(prob, allocate(req, AllocationParams(baseline="nearest", explain=False)))
    cancel = threading.Event()
    calls = _cancel_at_first(monkeypatch, WHERE[where], cancel)
    with cancelling(cancel), pytest.raises(SolveCancelled):
        explain_mod.explain(prob, x, budget_s=60.0)
    assert calls == [1]  # no search, no explanation after the cancellation


def test_an_allocation_cancelled_while_explaining_has_no_explanations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelled while explaining, the answer says so, as when cancelled before: no
    explanations (none half-written), the unfilled lines still there."""
    req = generate_literature(seed=0, num_orders=1000, num_nodes=10, vip_share=0.1)
    params = AllocationParams(baseline="nearest")
    whole = allocate(req, params)
    assert len(whole.explanations) == 1000
    cancel = threading.Event()
    calls = _cancel_at_first(monkeypatch, "_order_explanation", cancel)
    with cancelling(cancel):
        cut = allocate(req, params)
    assert calls == [1]
    assert cut.explanations == []
    assert "no explanations: the solve was cancelled" in cut.stats.notes
    assert not any("explanations cut" in note for note in cut.stats.notes)
    assert cut.unfilled == whole.unfilled
    assert cut.assignments == whole.assignments
