"""``tests.cpu_time.WorkCpu``: what a test's CPU bound counts (the code under test's work)."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from tests.cpu_time import WorkCpu, thread_cpu_s

#: CPU seconds each burn below spends: far above the 10 ms ticks /proc counts threads in
BURN_S = 0.3


def _burn(seconds: float = BURN_S) -> None:
    """Spend ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.skipif(thread_cpu_s(threading.get_native_id()) is None, reason="reads /proc")
def test_the_session_s_full_collections_and_earlier_threads_are_not_counted() -> None:
    """A full collection of a large heap and a thread begun before the block (an earlier
    test's) spend CPU in the window: not counted. Counted with ``time.process_time``, they
    made a solve's 0.02 s of work after a cancellation look like seconds."""
    # The worker's own heap is frozen meanwhile (left out of collections): the full
    # collection below goes through this million lists only, not through everything the
    # worker's earlier tests left (~3 s of CPU in a default run's worker).
    gc.freeze()
    try:
        _count_a_window_with_a_full_collection_and_an_earlier_thread()
    finally:
        gc.unfreeze()


def _count_a_window_with_a_full_collection_and_an_earlier_thread() -> None:
    """The body of the test above, on a heap of a million lists built here."""
    # the heap an xdist worker's earlier tests built; built with the collector off: the full
    # collections its million lists set off (8 in a fresh interpreter) each went through the
    # whole heap the worker's earlier tests had left (on a heap of 3 million objects, the
    # build took 0.99 s of CPU, 0.12 s with the collector off)
    enabled = gc.isenabled()
    gc.disable()
    try:
        heap = [[k] for k in range(1_000_000)]
    finally:
        if enabled:
            gc.enable()
    begun, go, done, end = (threading.Event() for _ in range(4))

    def earlier() -> None:  # still running at the end, as a server's thread
        begun.set()
        go.wait(60)
        _burn()
        done.set()
        end.wait(60)

    other = threading.Thread(target=earlier, daemon=True)
    other.start()
    assert begun.wait(60)
    with WorkCpu() as cpu:
        raw = time.process_time()
        go.set()
        assert done.wait(120)
        gc.collect()
        raw = time.process_time() - raw
        seen = cpu.seconds()
    end.set()
    other.join(60)
    assert raw >= BURN_S  # the window did hold that CPU time
    assert seen < BURN_S / 3, (seen, raw)
    del heap


def test_the_code_under_test_s_own_threads_are_all_counted() -> None:
    """The calling thread's work after ``start`` and a thread the block starts (a solve's
    helper thread) are both counted; the calling thread's work before ``start`` is not."""
    with WorkCpu() as cpu:
        _burn()  # before the moment counted from
        cpu.start()
        _burn()
        helper = threading.Thread(target=_burn)
        helper.start()
        helper.join(120)
        seen = cpu.seconds()
    assert 2 * BURN_S <= seen < 3 * BURN_S, seen
