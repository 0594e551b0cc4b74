"""The explanations stop at their deadline: a fake clock, no wall-clock timing."""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.allocation import (
    AllocationCosts,
    AllocationParams,
    AllocationRequest,
    AllocationRules,
    allocate,
)
from solvers.allocation import dp as dp_mod
from solvers.allocation import explain as explain_mod
from solvers.allocation import solve as solve_mod
from solvers.allocation.dp import build_blocks, solve_blocks
from solvers.allocation.heuristics import real_costs
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
    cut_notes = [n for n in notes if n.startswith("explanations cut")]
    assert cut_notes == (
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
    # every explanation is written, without the alternatives the time left unsearched
    assert notes == [
        "no best alternative searched for 6 of 6 orders: the one-by-one searches stop at "
        f"{explain_mod.MAX_RESIDUAL_EXPLANATIONS} orders and with the explanations' time",
        explain_mod.SEARCHES_STOPPED,
    ]
    assert [e.nodes for e in out] == [e.nodes for e in full]
    assert not any(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in out)
    assert not any(r.kind == ReasonKind.CHEAPEST for e in out for r in e.reasons)


@pytest.mark.parametrize("late_s", [0.005, 0.03])
def test_a_search_stopping_after_its_deadline_leaves_the_explanations_written(
    six_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch, late_s: float
) -> None:
    """A one-by-one search returns ``late_s`` after its deadline (a one-order MIP's stopping
    latency): the searches stop early enough for every explanation to be written by the end.

    With only the per-order reserve (0.1 ms an order) every explanation was cut (a crowded
    order answered 5 ms after a 10 s limit with its explanation cut short)."""
    prob, x = solved(six_orders)
    clock = FakeClock()
    search = explain_mod.solve_residual

    def latent(*args: Any, **kwargs: Any) -> Any:
        out = search(*args, **kwargs)
        clock.now = max(clock.now, kwargs["deadline"] + late_s)
        return out

    monkeypatch.setattr(explain_mod, "_clock", clock)
    monkeypatch.setattr(explain_mod, "solve_residual", latent)
    notes: list[str] = []
    out, _ = explain_mod.explain(prob, x, budget_s=100.0, end=1.0, notes=notes)
    assert clock.now > 0.9  # a search ran into the end of the search time
    assert not any(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in out)
    assert not any(n.startswith("explanations cut") for n in notes)
    assert clock.now <= 1.0


@pytest.mark.parametrize("past", ["alternatives", "searches"])
def test_batched_alternatives_the_time_stops_are_counted_in_the_note(
    six_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch, past: str
) -> None:
    """On the batched DP's path too, every order left without a best alternative is counted
    (not only those handed to the one-by-one searches), and none is called the cheapest."""
    prob, x = solved(six_orders)
    shipping = sum(1 for o in range(prob.num_orders) if x[_order_arcs(prob, o)].any())
    clock = FakeClock()

    def start_then_late() -> float:
        now = clock.now
        # past the alternatives' deadline (0.8 s) only, or past every search's (1 s)
        clock.now = 0.9 if past == "alternatives" else 10.0
        return now

    monkeypatch.setattr(explain_mod, "SMALL_BATCH", 0)
    monkeypatch.setattr(explain_mod, "_clock", start_then_late)
    notes: list[str] = []
    out, _ = explain_mod.explain(prob, x, budget_s=1.0, end=100.0, notes=notes)
    assert shipping and sum(e.best_alternative is None and bool(e.nodes) for e in out) == shipping
    assert notes[0] == (
        f"no best alternative searched for {shipping} of {prob.num_orders} orders: the "
        f"one-by-one searches stop at {explain_mod.MAX_RESIDUAL_EXPLANATIONS} orders and with "
        "the explanations' time"
    )
    assert (explain_mod.SEARCHES_STOPPED in notes) == (past == "searches")
    assert not any("cheapest option" in e.summary for e in out)
    assert not any(e.summary.endswith(explain_mod.CUT_SUMMARY) for e in out)


def _order_arcs(prob: Problem, o: int) -> np.ndarray:
    """The arcs of order ``o``."""
    return np.flatnonzero(prob.pair_order[prob.arc_pair] == o)


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
        # the answer's assembly after them is kept back
        assert end == start + limit_s - min(orders * solve_mod.RESULT_S_PER_ORDER, 0.05 * limit_s)


@pytest.fixture
def ninety_orders() -> AllocationRequest:
    """Ninety literature orders over five nodes: explained by the batched DP (not one by one)."""
    return generate_literature(seed=3, num_orders=90, num_nodes=5)


class DpTicks:
    """``solve_blocks`` that moves a fake clock one tick per order it solves, and logs calls."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, list[int], bool]] = []  # start, orders, alternatives?
        self._solve = explain_mod.solve_blocks

    def __call__(self, prob: Problem, blocks: list[Any], *args: Any, **kwargs: Any) -> Any:
        orders = [int(o) for blk in blocks for o in blk.orders]
        self.calls.append((self.clock.now, orders, "pair_ok" in kwargs))
        self.clock.now += len(orders)
        return self._solve(prob, blocks, *args, **kwargs)


@pytest.mark.parametrize(("end", "written_in_full"), [(60.0, True), (40.5, False)])
def test_the_batched_dp_stops_between_chunks_of_a_block_at_its_deadline(
    ninety_orders: AllocationRequest,
    monkeypatch: pytest.MonkeyPatch,
    end: float,
    written_in_full: bool,
) -> None:
    """One DP call used to solve every order of one line count: past the deadline it ran on
    to the block's end. Now a call solves one chunk (here one order, one tick) and none
    starts past the deadline: the alternatives' at 40 ticks (80 % of 50), the own optima's
    at 50; unsearched orders have no alternative and are not called the cheapest."""
    prob, x = solved(ninety_orders)
    full, _ = explain_mod.explain(prob, x)
    clock = FakeClock()
    dp = DpTicks(clock)
    monkeypatch.setattr(explain_mod, "_clock", clock)
    monkeypatch.setattr(explain_mod, "solve_blocks", dp)
    monkeypatch.setattr(dp_mod, "DP_CHUNK_WORK", 1)  # chunks of one order
    notes: list[str] = []
    cut, _ = explain_mod.explain(prob, x, budget_s=50.0, end=end, notes=notes)

    alt_calls = [(start, orders) for start, orders, alt in dp.calls if alt]
    own_calls = [(start, orders) for start, orders, alt in dp.calls if not alt]
    assert all(len(orders) == 1 for _, orders in alt_calls + own_calls)
    assert alt_calls and max(start for start, _ in alt_calls) <= 40.0
    assert clock.now <= 51.0  # past a deadline by at most one chunk
    searched = {o for _, orders in alt_calls for o in orders}
    own_searched = {o for _, orders in own_calls for o in orders}
    assert 0 < len(searched) < prob.num_orders
    if end > 50.0:
        assert own_calls and max(start for start, _ in own_calls) <= 50.0
    assert [e.order_id for e in cut] == [e.order_id for e in full]
    if written_in_full:
        # the orders left without an alternative are counted (they once had no note), those
        # of several nodes searched without one of them too, and the own optima stopped
        missing = [o for o, e in enumerate(cut) if e.nodes and e.best_alternative is None]
        assert missing == [o for o, e in enumerate(full) if e.nodes and o not in searched]
        several = sum(1 for o in searched if len(full[o].nodes) > 1)
        assert notes[0] == (
            f"no best alternative searched for {len(missing)} of {prob.num_orders} orders: the "
            f"one-by-one searches stop at {explain_mod.MAX_RESIDUAL_EXPLANATIONS} orders and "
            "with the explanations' time"
        )
        assert len(notes) in (2, 3) and notes[-1] == explain_mod.SEARCHES_STOPPED
        if len(notes) == 3:
            said = re.match(r"best alternative searched in part for (\d+) of 90 orders", notes[1])
            assert said is not None and 0 < int(said.group(1)) <= several, notes
        assert not any("cheapest option" in cut[o].summary for o in missing)
        for o, (short, whole) in enumerate(zip(cut, full, strict=True)):
            assert (short.nodes, short.cost) == (whole.nodes, whole.cost)
            assert not short.summary.endswith(explain_mod.CUT_SUMMARY)
            if o not in searched and short.nodes:
                assert short.best_alternative is None  # its alternative search never ran
            if o not in own_searched:
                assert not any(r.kind == ReasonKind.CHEAPEST for r in short.reasons)
        assert any(
            e.best_alternative is not None and e.best_alternative == w.best_alternative
            for o, (e, w) in enumerate(zip(cut, full, strict=True))
            if o in searched
        )
        assert any(r.kind == ReasonKind.CHEAPEST for e in full for r in e.reasons)
    else:  # the searches ran to 41 ticks, past the end (40.5): every order is cut short
        assert all(
            e.summary.endswith(explain_mod.CUT_SUMMARY)
            and (e.nodes, e.cost) == (w.nodes, w.cost)
            and e.best_alternative is None
            and e.reasons == []
            for e, w in zip(cut, full, strict=True)
        )
        # the searches' notes first (what was not searched before the cut), the cut's last
        assert notes[0].startswith("no best alternative searched for ")
        assert explain_mod.SEARCHES_STOPPED in notes
        assert notes[-1] == (
            f"explanations cut by the time limit: 0 of {prob.num_orders} orders explained "
            f"in full, the other {prob.num_orders} say '{explain_mod.CUT_SUMMARY}'"
        )


@pytest.mark.parametrize("work", [1, 30_000, 10**18])
def test_chunks_of_any_size_give_the_same_explanations(
    ninety_orders: AllocationRequest, monkeypatch: pytest.MonkeyPatch, work: int
) -> None:
    """With time to spare, the chunks change nothing: one order per chunk, a few, none."""
    prob, x = solved(ninety_orders)
    whole = explain_mod.explain(prob, x, budget_s=1e6)
    monkeypatch.setattr(dp_mod, "DP_CHUNK_WORK", work)
    assert explain_mod.explain(prob, x, budget_s=1e6) == whole


@settings(max_examples=8, deadline=None)  # 20 took ~12 s of the default run
@given(
    seed=st.integers(0, 10_000),
    work=st.integers(1, 2_000_000),
    split_penalty=st.sampled_from([0.0, 3.0]),
    max_nodes=st.sampled_from([None, 2]),
)
def test_a_block_cut_into_chunks_gives_each_order_the_blocks_answer(
    seed: int, work: int, split_penalty: float, max_nodes: int | None
) -> None:
    """Chunks partition a block in order, hold at most ``work`` steps (or one order), and
    the DP's answer of every order is the one it gets in the whole block."""
    req = generate_literature(
        seed=seed,
        num_orders=40,
        num_nodes=5,
        costs=AllocationCosts(split_penalty=split_penalty),
        rules=AllocationRules(max_nodes_per_order=max_nodes),
    )
    prob = compile_request(req)
    c_arc, c_pair, split = real_costs(prob)
    for blk in build_blocks(prob, np.arange(prob.num_orders)):
        chunks = dp_mod.split_block(blk, work=work)
        assert np.array_equal(np.concatenate([c.orders for c in chunks]), blk.orders)
        per_order = dp_mod.order_work(blk.num_lines, blk.pairs.shape[1])
        assert all(c.orders.size == 1 or c.orders.size * per_order <= work for c in chunks)
        one = solve_blocks(prob, [blk], c_arc, c_pair, split=split, relax_partial=True)
        many = solve_blocks(prob, chunks, c_arc, c_pair, split=split, relax_partial=True)
        for field in ("orders", "value", "exact", "sel_order", "sel_arc", "sel_qty"):
            assert np.array_equal(getattr(one, field), getattr(many, field)), field
