"""A batch keeps its time limit on a slow machine: the warm start and the pricing helper."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from scenarios.generate import generate_city
from solvers.allocation import AllocationParams, AllocationRequest, allocate, batch
from solvers.allocation.dp import GaveUp
from solvers.allocation.heuristics import nearest
from solvers.allocation.literature import generate_literature
from solvers.allocation.problem import Problem, compile_request


@pytest.fixture
def literature_30() -> AllocationRequest:
    """30 literature orders over 10 FCs (the batch path from a limit of ~0.05 s)."""
    return generate_literature(seed=0, num_orders=30, num_nodes=10, vip_share=0.1)


def test_a_slow_myopic_warm_start_stops_at_the_pricing_deadline(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """The myopic pass ran to its end whatever the limit (1.4 s at 1,000 city orders on a
    slow machine: 1.5 s batches answered at 2.9 s): it now gives up where the first pricing
    must end, and the nearest-node allocation is the warm start. The stand-in pass below
    runs until it is told to give up (at most 5 s)."""
    told: list[bool] = []

    def slow_sequential(prob: Problem, *args: Any, give_up: Any = None, **kwargs: Any) -> Any:
        t_end = time.perf_counter() + 5.0
        while time.perf_counter() < t_end:
            if give_up is not None and give_up():
                told.append(True)
                raise GaveUp
            time.sleep(0.001)
        told.append(False)
        return nearest(prob)

    monkeypatch.setattr(batch, "sequential", slow_sequential)
    prob = compile_request(literature_30)
    res = allocate(literature_30, AllocationParams(time_limit_s=0.4, explain=False))
    assert told == [True]  # told to stop, not run to its end
    assert res.method == "batch"
    near = prob.evaluate(nearest(prob)).total / 1e6
    assert res.stats.warm_start_cost == pytest.approx(near, abs=1e-6)
    assert res.cost.total <= near + 1e-6


def test_the_warm_start_past_its_stop_is_the_nearest_node_allocation(
    literature_30: AllocationRequest,
) -> None:
    """Past ``stop_at`` the myopic pass has no answer; before it, it runs as it did."""
    prob = compile_request(literature_30)
    late = batch._warm_start(prob, stop_at=time.perf_counter() - 1.0)
    assert np.array_equal(late, nearest(prob))
    assert np.array_equal(
        batch._warm_start(prob, stop_at=time.perf_counter() + 60.0), batch._warm_start(prob)
    )


class _FakeHelper:
    """Records how the solve closed its pricing helper."""

    def __init__(self) -> None:
        self.kills: list[bool] = []

    def close(self, *, kill: bool = False) -> None:
        self.kills.append(kill)


@pytest.mark.parametrize(("elapsed_s", "killed"), [(1.0, True), (0.0, False)])
def test_a_helper_at_the_time_limit_is_killed_not_waited_for(
    monkeypatch: pytest.MonkeyPatch, elapsed_s: float, killed: bool
) -> None:
    """A capped batch's pricing helper was given 0.5 s to end by itself after the answer
    was found, so a helper still starting (importing on a slow machine) put 0.2-0.8 s on
    1.5 s batches of 1,000 city orders. At the time limit it is now killed at once; a
    batch that ends early still lets it end by itself."""
    req = AllocationRequest.from_scenario(
        generate_city(seed=4, num_orders=20, num_nodes=5, num_couriers=2)
    )
    prob = compile_request(req)
    fake = _FakeHelper()
    monkeypatch.setattr(batch, "PRICING_HELPER", True)
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 0)
    monkeypatch.setattr(batch, "_has_caps", lambda rows: True)
    monkeypatch.setattr(batch, "search_workers", lambda params: 2)
    monkeypatch.setattr(batch.PricingHelper, "spawn", classmethod(lambda cls, prob: fake))
    monkeypatch.setattr(batch, "_solve", lambda *args, **kwargs: "answer")
    params = AllocationParams(time_limit_s=1.0)
    out = batch._solve_batch(
        prob, params, start=time.perf_counter() - elapsed_s, x_start=None, race=None
    )
    assert out == "answer"
    assert fake.kills == [killed]


class _Clock:
    """A stand-in for the module ``time`` of :mod:`solvers.allocation.batch`: its
    ``perf_counter`` reads ``now``, which the tests move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class _Stop(Exception):
    """Raised by a stand-in to end a solve where the test has seen what it checks."""


@pytest.mark.parametrize("share", [0.95, 0.9])
def test_a_warm_start_past_the_highs_calls_end_is_the_answer_without_a_master(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest, share: float
) -> None:
    """The master's build and the first pricing round ran after any warm start (0.17 s and
    a round ~60 ms past its own deadline at 1,000 city orders on a slow machine). A warm
    start that ends past the end of the HiGHS calls (0.92 of a 1 s limit) is now the
    answer, with a note and no bound; one that ends before it (0.9) goes on to the master."""
    prob = compile_request(literature_30)
    clock = _Clock()
    start = clock.now
    built: list[bool] = []

    def late_warm_start(prob: Problem, **kwargs: Any) -> Any:
        clock.now = start + share
        return nearest(prob)

    def master(*args: Any, **kwargs: Any) -> Any:
        built.append(True)
        raise _Stop

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(batch, "_warm_start", late_warm_start)
    monkeypatch.setattr(batch, "Master", master)
    params = AllocationParams(time_limit_s=1.0)
    if share < 0.92:
        with pytest.raises(_Stop):
            batch._solve_batch(prob, params, start=start, x_start=None, race=None)
        assert built == [True]
        return
    out = batch._solve_batch(prob, params, start=start, x_start=None, race=None)
    assert built == []
    assert out.bound is None and not out.proven
    assert np.array_equal(out.x, nearest(prob))
    assert out.cost == prob.evaluate(nearest(prob)).total
    assert batch.NO_TIME_AFTER_WARM_START in out.notes


def test_a_master_built_past_the_highs_calls_end_prices_nothing(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """A master whose build ends past the end of the HiGHS calls starts no pricing round:
    the warm start is the answer."""
    prob = compile_request(literature_30)
    clock = _Clock()
    start = clock.now
    real_master = batch.Master

    def slow_master(*args: Any, **kwargs: Any) -> Any:
        built = real_master(*args, **kwargs)
        clock.now = start + 0.95
        return built

    def price(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pricing round past the end of the HiGHS calls")

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(batch, "Master", slow_master)
    monkeypatch.setattr(batch.Pricer, "price", price)
    x_start = nearest(prob)
    out = batch._solve_batch(
        prob, AllocationParams(time_limit_s=1.0), start=start, x_start=x_start, race=None
    )
    assert out.bound is None and np.array_equal(out.x, x_start)
    assert batch.NO_TIME_AFTER_WARM_START in out.notes


@pytest.mark.parametrize("share", [0.95, 0.5])
def test_a_first_pricing_past_the_highs_calls_end_stops_in_its_dp(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest, share: float
) -> None:
    """The first pricing round's DP pass over every order had no deadline: at 1,000-2,000
    orders it ran on past the time limit (0.07-0.12 s on an idle machine). Here the clock
    reads ``share`` of a 1 s limit once the pass starts: past the end of the HiGHS calls
    (0.92) it stops before its first block and the warm start is the answer, with a note and
    no bound; before it (0.5) the round is priced in full, as it was."""
    from solvers.allocation import master as master_module

    prob = compile_request(literature_30)
    clock = _Clock()
    start = clock.now
    blocks_done: list[int] = []
    real_blocks = master_module.solve_blocks

    def slow_start(prob: Problem, blocks: list[Any], *args: Any, **kwargs: Any) -> Any:
        clock.now = start + share  # the set-up before took this long
        answer = real_blocks(prob, blocks, *args, **kwargs)
        blocks_done.append(len(blocks))
        return answer

    real_price = batch.Pricer.price
    priced: list[Any] = []

    def first_only(self: Any, *args: Any, **kwargs: Any) -> Any:
        priced.append(real_price(self, *args, **kwargs))
        raise _Stop  # what the round gives is all this test checks

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(master_module, "solve_blocks", slow_start)
    monkeypatch.setattr(batch.Pricer, "price", first_only)
    x_start = nearest(prob)
    params = AllocationParams(time_limit_s=1.0)
    if share < 0.92:
        with pytest.raises(_Stop):
            batch._solve_batch(prob, params, start=start, x_start=x_start, race=None)
        assert blocks_done == [len(batch.Pricer(prob).blocks)]
        assert len(priced) == 1 and np.all(np.isfinite(priced[0].value))
        return
    out = batch._solve_batch(prob, params, start=start, x_start=x_start, race=None)
    assert blocks_done == [] and priced == []  # given up before its first block
    assert out.bound is None and not out.proven
    assert np.array_equal(out.x, x_start)
    assert batch.NO_TIME_FOR_FIRST_PRICING in out.notes


def test_no_subgradient_step_of_a_round_starts_that_would_end_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """After each pricing round of a large batch three subgradient steps ran, each pricing
    every order (0.1 s at 2,000 literature orders), with no look at the clock: at a 1.8 s
    limit they ended past the end of the HiGHS calls and the answer came 0.16 s late. Here
    the 30 orders count as large, each step 'takes' 0.1 s of a 1 s limit on a stand-in
    clock and nothing else takes any time: every step taken within column generation's
    rounds ends by the deadline it is given; the first round still takes one."""
    prob = compile_request(literature_30)
    clock = _Clock()
    start = clock.now
    step_s = 0.1
    steps: list[tuple[float, float | None, bool]] = []  # (start, deadline, in a round)
    in_round = [False]
    real_step = batch._Subgradient.step
    real_price = batch.Pricer.price

    def timed_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = args[2] if len(args) > 2 else kwargs.get("deadline")
        steps.append((clock.now, deadline, in_round[0]))
        out = real_step(self, *args, **kwargs)
        clock.now += step_s
        self.step_s = step_s
        return out

    def round_price(self: Any, duals: Any, pool_best: Any = None, *args: Any, **kwargs: Any) -> Any:
        # a round's pricing (the first and the steps' have no pool): steps after it are
        # the rounds'
        in_round[0] = in_round[0] or pool_best is not None
        return real_price(self, duals, pool_best, *args, **kwargs)

    def integer_phase(name: str, gap: float | None = None) -> None:
        if name == batch.INTEGER_PHASE:
            raise _Stop  # column generation is over: all this test checks

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(batch, "WARMUP_ORDERS", 1)
    monkeypatch.setattr(batch, "order_classes", lambda prob: None)
    monkeypatch.setattr(batch._Subgradient, "step", timed_step)
    monkeypatch.setattr(batch.Pricer, "price", round_price)
    monkeypatch.setattr(batch, "report_phase", integer_phase)
    with pytest.raises(_Stop):
        batch._solve_batch(
            prob,
            AllocationParams(time_limit_s=1.0),
            start=start,
            x_start=nearest(prob),
            race=None,
        )
    in_rounds = [(at, deadline) for at, deadline, round_ in steps if round_]
    assert in_rounds  # a round had time for a step
    for at, deadline in in_rounds:
        assert deadline is not None and at + step_s <= deadline + 1e-9, (at - start, steps)


def test_a_polish_past_its_deadline_sets_nothing_up(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest
) -> None:
    """The polish built the residual stock of every order (0.08-0.1 s at 1,000 city orders
    on a slow machine) before it looked at its deadline; past it, it now returns at once."""
    from solvers.allocation import heuristics

    prob = compile_request(literature_30)
    x = nearest(prob)

    def no_residual(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a residual built past the deadline")

    monkeypatch.setattr(heuristics, "Residual", no_residual)
    out = heuristics.polish(prob, x, deadline=time.perf_counter() - 1.0)
    assert np.array_equal(out, x) and out is not x


def _no_step(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a step of the integer phase without time for it")


def _integer_phase_at(monkeypatch: pytest.MonkeyPatch, clock: _Clock, at: float) -> None:
    """Batch solves on ``clock`` (warm-up from one order on), which reads at least ``at`` once
    the integer phase is reported; none of its steps may run."""

    def late(name: str, gap: float | None = None) -> None:
        if name == batch.INTEGER_PHASE:
            clock.now = max(clock.now, at)

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(batch, "WARMUP_ORDERS", 1)
    monkeypatch.setattr(batch, "report_phase", late)
    for step in ("lp_round", "_lp_guided", "_lns", "_SlicedSearch", "solve_compact"):
        monkeypatch.setattr(batch, step, _no_step)


@pytest.fixture
def twin_orders() -> AllocationRequest:
    """15 literature orders, each twice: 15 classes of two identical orders."""
    req = generate_literature(seed=0, num_orders=15, num_nodes=10, vip_share=0.1)
    twins = [o.model_copy(update={"id": f"{o.id}-twin"}) for o in req.orders]
    return req.model_copy(update={"orders": [*req.orders, *twins]})


@pytest.mark.parametrize("share", [0.85, 0.5])
def test_no_per_order_master_is_built_without_time_for_the_integer_phase(
    monkeypatch: pytest.MonkeyPatch, twin_orders: AllocationRequest, share: float
) -> None:
    """A class master's per-order master (0.10-0.16 s at 2,000 literature orders) was built
    whatever the time left, though no step of the integer phase starts with less than 0.1 s
    before the end of the HiGHS calls (0.92 of a 1 s limit): at 1.8 s it ended past that
    end and the answer came up to 0.07 s late. Here the clock reads ``share`` of the limit
    once column generation is over: at 0.85 nothing is built and no step of the integer
    phase runs (the allocation so far is polished); at 0.5 the per-order master is built."""
    prob = compile_request(twin_orders)
    assert batch.order_classes(prob).num_classes == 15
    clock = _Clock()
    start = clock.now
    built: list[bool] = []

    def expand(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(True)
        raise _Stop  # the integer phase would follow: not what this test checks

    _integer_phase_at(monkeypatch, clock, start + share)
    monkeypatch.setattr(batch.Master, "expand", expand)
    x_start = nearest(prob)
    params = AllocationParams(time_limit_s=1.0, explain=False)
    if share < 0.8:
        with pytest.raises(_Stop):
            batch._solve_batch(prob, params, start=start, x_start=x_start, race=None)
        assert built == [True]
        return
    out = batch._solve_batch(prob, params, start=start, x_start=x_start, race=None)
    assert built == []
    assert any(note.startswith("no integer phase") for note in out.notes), out.notes
    assert not prob.violations(out.x)
    assert out.cost == prob.evaluate(out.x).total <= prob.evaluate(x_start).total
    assert out.bound is not None and out.bound <= out.cost / 1e6 + 1e-9


@pytest.mark.parametrize("share", [0.85, 0.99, 1.05])
def test_the_last_polish_ends_before_the_deadline_whatever_the_integer_phase_left(
    monkeypatch: pytest.MonkeyPatch, twin_orders: AllocationRequest, share: float
) -> None:
    """The last polish pass was given until ``max(deadline, now + min(0.2 s, 2.5 % of the
    limit))``: an integer phase that ended within 2.5 % of the limit before the deadline, or
    past it (HiGHS overrunning its margin), let the polish run on past the deadline and the
    answer came late. Here the clock reads ``share`` of a 1 s limit once column generation is
    over (no step of the integer phase has time to start): the polish must end by the
    deadline less the answer's assembly after it, and before the deadline (0.85) it still
    gets the time up to there."""
    prob = compile_request(twin_orders)
    clock = _Clock()
    start = clock.now
    limit_s = 1.0
    given: list[tuple[float, float]] = []  # (the clock, the polish's deadline)
    real_polish = batch.polish

    def polish(prob: Problem, x: Any, *, deadline: float, **kwargs: Any) -> Any:
        given.append((clock.now, deadline))
        return real_polish(prob, x, deadline=time.perf_counter() + 60.0, **kwargs)

    _integer_phase_at(monkeypatch, clock, start + share)
    monkeypatch.setattr(batch, "polish", polish)
    monkeypatch.setattr(batch.Master, "expand", _no_step)
    x_start = nearest(prob)
    params = AllocationParams(time_limit_s=limit_s, explain=False)
    out = batch._solve_batch(prob, params, start=start, x_start=x_start, race=None)
    tail_s = batch.POLISH_TAIL_S_PER_ORDER * prob.num_orders
    assert 0.0 < tail_s < batch.mip_margin_s(limit_s)
    assert len(given) == 1, given
    now, deadline = given[0]
    assert deadline <= start + limit_s - tail_s + 1e-12, deadline - start
    if share < 1.0 - tail_s:  # the time up to there
        assert now < deadline == pytest.approx(start + limit_s - tail_s)
    assert not prob.violations(out.x)
    assert out.cost == prob.evaluate(out.x).total <= prob.evaluate(x_start).total


@pytest.mark.parametrize("lp_s", [0.3, 0.2])
def test_a_large_batchs_column_generation_leaves_its_integer_phase_the_rounding(
    monkeypatch: pytest.MonkeyPatch, literature_30: AllocationRequest, lp_s: float
) -> None:
    """A large batch's column generation kept back only ``WARMUP_RESERVE`` of the limit
    (0.05 when the warm-up raised no bound), less than the HiGHS margin, the per-order
    master and the LP rounding after it: at 2,000 literature orders and 5-10 s its rounds
    ran until no step of the integer phase could start and the answer was the warm start.
    Here the 30 orders count as large (and their integer phase starts with the LP dive),
    each master LP 'takes' ``lp_s`` of a 1 s limit (or its whole limit, if less) on a
    stand-in clock and nothing else takes any time: once an LP solution is in hand, column
    generation must leave at least :func:`batch.integer_floor_s` before the deadline, and
    the integer phase's first step then starts."""
    prob = compile_request(literature_30)
    clock = _Clock()
    start = clock.now
    limit_s = 1.0
    real_solve = batch.Master.solve_lp
    lp_rounds: list[float] = []  # the clock as each LP ends
    at_integer: list[float] = []
    rounded: list[bool] = []  # whether the first step started before the HiGHS calls' end

    def timed_solve(self: Any, seconds: float, *args: Any, **kwargs: Any) -> Any:
        out = real_solve(self, seconds, *args, **kwargs)
        clock.now += min(lp_s, seconds)
        lp_rounds.append(clock.now - start)
        return out

    def integer_phase(name: str, gap: float | None = None) -> None:
        if name == batch.INTEGER_PHASE and not at_integer:
            at_integer.append(clock.now)

    def first_step(*args: Any, **kwargs: Any) -> Any:
        rounded.append(clock.now < start + limit_s - batch.mip_margin_s(limit_s))
        raise _Stop  # the integer phase started its first step: all this test checks

    monkeypatch.setattr(batch, "time", clock)
    monkeypatch.setattr(batch, "WARMUP_ORDERS", 1)
    monkeypatch.setattr(batch, "order_classes", lambda prob: None)
    monkeypatch.setattr(batch.Master, "solve_lp", timed_solve)
    monkeypatch.setattr(batch, "report_phase", integer_phase)
    monkeypatch.setattr(batch, "POOL_MIP_ORDERS", 1)  # the dive's path (no pool MIP)
    monkeypatch.setattr(batch, "_lp_guided", first_step)
    with pytest.raises(_Stop):
        batch._solve_batch(
            prob,
            AllocationParams(time_limit_s=limit_s, mip_rel_gap=0.0),
            start=start,
            x_start=nearest(prob),
            race=None,
        )
    assert len(lp_rounds) >= 3, lp_rounds  # column generation stopped on the clock
    floor_s = batch.integer_floor_s(prob.num_orders, limit_s, classes=False)
    assert len(at_integer) == 1
    assert start + limit_s - at_integer[0] >= floor_s - 1e-9, (at_integer[0] - start, lp_rounds)
    assert rounded == [True]
