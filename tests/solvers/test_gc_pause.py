"""Full garbage collections held back during large solves (solvers.gc_pause)."""

from __future__ import annotations

import gc
import threading

from solvers.gc_pause import PAUSED_THRESHOLD, full_collections_paused


def test_the_pause_holds_back_full_collections_only_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with full_collections_paused():
        inside = gc.get_threshold()
    assert inside[:2] == before[:2]  # the young generations are collected as usual
    assert inside[2] == PAUSED_THRESHOLD
    assert gc.get_threshold() == before


def test_an_inactive_pause_changes_nothing() -> None:
    before = gc.get_threshold()
    with full_collections_paused(active=False):
        assert gc.get_threshold() == before
    assert gc.get_threshold() == before


def test_nested_pauses_end_with_the_outermost_even_when_an_inner_one_raises() -> None:
    before = gc.get_threshold()
    with full_collections_paused():
        try:
            with full_collections_paused():
                raise RuntimeError("solve failed")
        except RuntimeError:
            pass
        assert gc.get_threshold()[2] == PAUSED_THRESHOLD
    assert gc.get_threshold() == before


def test_overlapping_pauses_in_threads_restore_the_thresholds_once_both_end() -> None:
    before = gc.get_threshold()
    entered = threading.Event()
    release = threading.Event()

    def other_solve() -> None:
        with full_collections_paused():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other_solve)
    t.start()
    assert entered.wait(10)
    with full_collections_paused():
        pass
    assert gc.get_threshold()[2] == PAUSED_THRESHOLD  # the other solve still runs
    release.set()
    t.join(10)
    assert gc.get_threshold() == before
