"""The pool MIP raced in a helper process beside the neighbourhood search."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from solvers.allocation import AllocationParams, allocate, batch
from solvers.allocation.highs_model import cancel_with, cancelled, run_highs, status_text
from solvers.allocation.literature import generate_literature
from solvers.allocation.lns import PoolRace, SubMip, lp_round
from solvers.allocation.problem import compile_request

from .test_lns import _converged_master, assert_exact_answer


def test_the_helper_finds_valid_allocations_and_ends() -> None:
    prob, master, duals = _converged_master(seed=3)
    x = lp_round(prob, master, master.lp_values(), duals, deadline=time.perf_counter() + 10.0)
    master.add_solution(x)
    sub = SubMip(master, seed=0, threads=None)
    start = master.column_of(x)
    race = PoolRace.spawn()
    assert race is not None
    try:
        assert race.launch(sub, start, time.perf_counter() + 20.0, target=0, seed=0)
        race.wait(time.perf_counter() + 20.0, good_enough=0)
    finally:
        race.stop()
    assert race.proc.returncode is not None  # the process is gone
    # the whole pool MIP of 80 orders is solved: HiGHS reports the end, optimal
    assert race.report is not None and race.report[0] == "Optimal"
    best = race.take(sub.total(start) + 1)
    assert best is not None
    y = master.allocation(best)
    assert prob.violations(y) == []
    assert prob.evaluate(y).total == sub.total(best) <= sub.total(start)
    # the search's own whole-pool MIP reaches the same optimum
    own, _ = sub.solve(np.ones(prob.num_orders, dtype=bool), start, 30.0)
    assert own is not None and sub.total(own) == sub.total(best)
    race.stop()  # idempotent


def test_a_racing_batch_answer_is_exact_and_leaves_no_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    races: list[PoolRace] = []
    launched: list[bool] = []
    spawn, launch = PoolRace.spawn, PoolRace.launch

    def recorded() -> PoolRace | None:
        race = spawn()
        if race is not None:
            races.append(race)
        return race

    def recorded_launch(self: PoolRace, *args: Any, **kwargs: Any) -> bool:
        launched.append(launch(self, *args, **kwargs))
        return launched[-1]

    monkeypatch.setattr(PoolRace, "spawn", staticmethod(recorded))
    monkeypatch.setattr(PoolRace, "launch", recorded_launch)
    monkeypatch.setattr(batch, "RACE", True)  # off by default (batch.RACE)
    req = generate_literature(seed=7, num_orders=150, num_nodes=10)
    # a target the search cannot certify: the race runs to the time limit
    res = allocate(req, AllocationParams(time_limit_s=4.0, mip_rel_gap=1e-7, explain=False))
    assert len(races) == 1 and races[0].proc.returncode is not None
    # on a loaded machine column generation can use the whole limit and the race never gets
    # the model (launch declines with too little time left): then no note, and no process
    raced = any("pool MIP beside the search" in note for note in res.stats.notes)
    assert raced == any(launched), (launched, res.stats.notes)
    assert_exact_answer(req, res)


def test_an_explicit_thread_count_or_capacities_turn_the_race_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "RACE", False)
    req = generate_literature(seed=7, num_orders=150, num_nodes=10)
    prob = compile_request(req)
    assert not batch._races(prob, AllocationParams(mip_rel_gap=1e-3))  # off by default
    monkeypatch.setattr(batch, "RACE", True)
    assert batch._races(prob, AllocationParams(mip_rel_gap=1e-3))
    assert not batch._races(prob, AllocationParams(mip_rel_gap=1e-3, threads=1))
    assert not batch._races(prob, AllocationParams(mip_rel_gap=1e-3, threads=2))
    assert not batch._races(prob, AllocationParams(mip_rel_gap=0.0))
    small = compile_request(generate_literature(seed=7, num_orders=50, num_nodes=10))
    assert not batch._races(small, AllocationParams(mip_rel_gap=1e-3))


def test_a_cancelled_thread_interrupts_its_highs_calls() -> None:
    prob, master, duals = _converged_master(seed=4)
    x = lp_round(prob, master, master.lp_values(), duals, deadline=time.perf_counter() + 10.0)
    master.add_solution(x)
    start = master.column_of(x)
    out: dict[str, object] = {}
    event = threading.Event()
    event.set()

    def work() -> None:
        cancel_with(event)
        out["cancelled"] = cancelled()
        sub = SubMip(master, seed=0, threads=1)
        model = sub.build(np.ones(prob.num_orders, dtype=bool), start)
        h, _ = sub.load(model.arrays, 60.0, {"mip_rel_gap": 0.0})
        h.run()
        out["status"] = h.modelStatusToString(h.getModelStatus())
        out["text"] = status_text(h)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert out["cancelled"] is True
    assert out["status"] == "Interrupted by user"
    assert out["text"] == "Cancelled"  # what the answer's notes say, not HiGHS' Ctrl-C text
    assert not cancelled()  # other threads are not affected


def test_a_highs_run_stopped_at_its_deadline_reads_time_limit_reached() -> None:
    prob, master, duals = _converged_master(seed=4)
    x = lp_round(prob, master, master.lp_values(), duals, deadline=time.perf_counter() + 10.0)
    master.add_solution(x)
    sub = SubMip(master, seed=0, threads=1)
    model = sub.build(np.ones(prob.num_orders, dtype=bool), master.column_of(x))
    h, deadline = sub.load(model.arrays, 60.0, {"mip_rel_gap": 0.0})
    deadline.at = time.perf_counter() - 1.0  # passed before the run: the first callback stops it
    run_highs(h)
    assert h.modelStatusToString(h.getModelStatus()) == "Interrupted by user"
    assert status_text(h) == "Time limit reached"
