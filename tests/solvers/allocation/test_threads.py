"""HiGHS thread counts: no model is refused because another run sized the scheduler.

HiGHS keeps one task scheduler per calling thread, sized by the first run in it, and refuses
a later run in that thread whose ``threads`` option asks for another count (an error, model
status "Not Set"). Models that asked for ``params.threads`` and helper models that asked for
HiGHS' default (the one-order MIP, the pricing MIP) mixed counts in one thread: with
``threads=1`` the shadow-price LP of ``tied_capacity_one_order`` was refused after the
one-order MIP had sized the scheduler ("no shadow prices: no LP duals within the time
limit"). Every test body runs in a fresh thread (a new scheduler) unless it says otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import highspy
import numpy as np
import pytest

from solvers.allocation import AllocationParams, AllocationRequest, AllocationResult, allocate
from solvers.allocation.highs_model import highs_threads, new_highs, run_highs

T = TypeVar("T")

NO_DUALS = "no shadow prices: no LP duals within the time limit"


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a fresh thread (its own HiGHS scheduler), its exception re-raised here."""
    box: list[T] = []
    err: list[BaseException] = []

    def work() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            err.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if err:
        raise err[0]
    return box[0]


def tiny_mip(threads: int | None) -> highspy.Highs:
    """max x + 2y s.t. x + y <= 3.5, x, y integer in [0, 2]: optimum -5 (x = 1, y = 2)."""
    h = new_highs(threads)
    h.addVars(2, np.zeros(2), np.full(2, 2.0))
    h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([-1.0, -2.0]))
    h.addRow(-highspy.kHighsInf, 3.5, 2, np.array([0, 1], dtype=np.int32), np.ones(2))
    h.changeColsIntegrality(
        2, np.array([0, 1], dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * 2)
    )
    return h


def solved(h: highspy.Highs) -> bool:
    """Whether ``h`` holds the optimum of :func:`tiny_mip`."""
    return (
        h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        and abs(h.getInfo().objective_function_value + 5.0) < 1e-9
    )


def raw_run(threads: int | None) -> highspy.HighsStatus:
    """A HiGHS run outside ``run_highs`` (as Pyomo or other code in the thread would)."""
    h = tiny_mip(threads)
    return h.run()


def _ok(result: AllocationResult) -> None:
    """The tied capacity answer with its shadow price, and no note of missing duals."""
    assert NO_DUALS not in result.stats.notes
    assert result.status.value == "optimal"
    prices = [(p.node_id, p.resource) for p in result.shadow_prices]
    assert ("dc-01", "capacity_units") in prices


def _same(a: AllocationResult, b: AllocationResult) -> None:
    assert a.assignments == b.assignments
    assert a.cost == b.cost
    assert a.shadow_prices == b.shadow_prices
    assert a.stats.notes == b.stats.notes


def test_the_scheduler_is_per_thread_and_refuses_another_count() -> None:
    """The HiGHS behaviour the policy rests on (guards an upgrade that changes it)."""

    def body() -> tuple[str, str, str]:
        first = raw_run(None).name  # sizes this thread's scheduler at HiGHS' default
        other = in_thread(lambda: raw_run(1).name)  # another thread: its own scheduler
        highspy.Highs.resetThreadScheduler(True)
        after_reset = raw_run(1).name
        return first, other, after_reset

    assert in_thread(body) == ("kOk", "kOk", "kOk")
    refused = in_thread(lambda: (raw_run(1).name, raw_run(2).name))
    assert refused == ("kOk", "kError")


@pytest.mark.parametrize("threads", [1, None])
def test_tied_capacity_online_has_its_shadow_prices(
    tied_capacity_one_order: AllocationRequest, threads: int | None
) -> None:
    params = AllocationParams(mode="online", threads=threads)
    _ok(in_thread(lambda: allocate(tied_capacity_one_order, params)))


@pytest.mark.parametrize("earlier", [None, 1, 2])
def test_tied_capacity_after_another_count_in_the_thread(
    tied_capacity_one_order: AllocationRequest, earlier: int | None
) -> None:
    """A thread whose scheduler a HiGHS run outside this package sized first."""
    params = AllocationParams(mode="online", threads=1)
    fresh = in_thread(lambda: allocate(tied_capacity_one_order, params))

    def body() -> AllocationResult:
        assert raw_run(earlier) == highspy.HighsStatus.kOk
        return allocate(tied_capacity_one_order, params)

    after = in_thread(body)
    _ok(after)
    _same(after, fresh)


@pytest.mark.parametrize(("first", "second"), [(None, 1), (1, None), (1, 2), (2, 1)])
def test_successive_solves_with_other_counts_in_one_thread(
    tied_capacity_one_order: AllocationRequest, first: int | None, second: int | None
) -> None:
    """As one service thread serving requests with different ``threads`` in turn."""
    a = AllocationParams(mode="online", threads=first)
    b = AllocationParams(mode="online", threads=second)
    want = in_thread(lambda: allocate(tied_capacity_one_order, b))
    results = in_thread(lambda: [allocate(tied_capacity_one_order, p) for p in (a, b, a, b)])
    for r in results:
        _ok(r)
    _same(results[1], want)
    _same(results[3], want)


def test_highs_threads_sets_the_count_of_models_without_one() -> None:
    def count(h: highspy.Highs) -> int:
        return int(h.getOptionValue("threads")[1])

    def body() -> tuple[int, int, int, int]:
        with highs_threads(1):
            inside, explicit = count(new_highs()), count(new_highs(2))
            seen_by_new_thread = in_thread(lambda: count(new_highs()))
        return inside, explicit, seen_by_new_thread, count(new_highs())

    assert in_thread(body) == (1, 2, 0, 0)


def test_run_highs_recovers_a_scheduler_sized_elsewhere() -> None:
    """``run_highs`` knew the count it last ran; a run outside it then re-sized the scheduler."""

    def body() -> list[bool]:
        out = []
        for first, foreign, ours in ((1, 2, 1), (2, 1, 2), (None, 1, 2)):
            h = tiny_mip(first)
            run_highs(h)
            out.append(solved(h))
            highspy.Highs.resetThreadScheduler(True)
            assert raw_run(foreign) == highspy.HighsStatus.kOk
            g = tiny_mip(ours)
            assert run_highs(g) == highspy.HighsStatus.kOk
            out.append(solved(g))
        return out

    assert all(in_thread(body))


def test_a_reset_leaves_other_threads_solving() -> None:
    """Two threads alternating counts side by side: every run of either is solved."""
    barrier = threading.Barrier(2)

    def body(counts: tuple[int | None, ...]) -> list[bool]:
        barrier.wait()
        out = []
        for k in counts * 30:
            h = tiny_mip(k)
            run_highs(h)
            out.append(solved(h))
        return out

    results: list[list[bool]] = [[], []]

    def run(i: int, counts: tuple[int | None, ...]) -> None:
        results[i] = body(counts)

    threads = [
        threading.Thread(target=run, args=(0, (1, None, 2))),
        threading.Thread(target=run, args=(1, (2, 1))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results[0]) == 90 and all(results[0])
    assert len(results[1]) == 60 and all(results[1])


def test_usable_cpus_are_the_process_affinity_else_the_cpu_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """:func:`solvers.cpus.usable_cpus` (re-exported by highs_model): a process pinned to one
    CPU has one; without
    affinity (not on Linux) the CPU count; never fewer than one."""
    from solvers.allocation import highs_model

    monkeypatch.setattr(highs_model.os, "sched_getaffinity", lambda _pid: {3}, raising=False)
    assert highs_model.usable_cpus() == 1
    monkeypatch.delattr(highs_model.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(highs_model.os, "cpu_count", lambda: 6)
    assert highs_model.usable_cpus() == 6
    monkeypatch.setattr(highs_model.os, "cpu_count", lambda: None)
    assert highs_model.usable_cpus() == 1
