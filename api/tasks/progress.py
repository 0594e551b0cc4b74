"""A solve job's progress: the share of its time limit used, and the phase it is in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from api.jobs.registry import JsonDict, ProgressFn

#: seconds between a solve job's progress reports (its job process sends at most one per
#: 0.5 s to the service, which writes the latest each tick)
PROGRESS_EVERY_S = 0.5
#: the most progress a solve job reports before its answer is ready: the solve may end
#: before its time limit, or a little after it
PROGRESS_CAP = 0.95


class PhaseFn(Protocol):
    """Names the phase a solve is in, with its certified relative gap so far if known."""

    def __call__(self, phase: str, gap: float | None = None, /) -> None:
        """Report the phase (at once, and in every report after)."""
        ...


def _no_phase(phase: str, gap: float | None = None, /) -> None:
    """A synchronous solve's phase: nobody polls it."""


@contextmanager
def timed_progress(
    progress: ProgressFn | None,
    time_limit_s: float,
    *,
    phase: str = "solving",
    span: tuple[float, float] = (0.0, 1.0),
    stage: str | None = None,
    name: str = "solve-progress",
) -> Iterator[PhaseFn]:
    """Report a solve's progress while the block runs; yields the function that names its phase.

    A thread reports every :data:`PROGRESS_EVERY_S` the share of ``time_limit_s`` elapsed
    (up to :data:`PROGRESS_CAP`), mapped onto ``span`` (a plan's stage: its part of the
    job), with the detail ``{"phase", "elapsed_s", "time_limit_s"}`` (plus ``"gap"`` once
    a phase named one, and ``"stage"`` if given); a new phase is reported at once, a new gap
    in the same phase at the next tick. A thread that sleeps between two reports
    takes no time from the search (measured: docs/api.md). Without ``progress`` (a
    synchronous solve) nothing runs.
    """
    if progress is None:
        yield _no_phase
        return
    report = progress  # bound for the closures: mypy keeps ``progress`` optional in them
    low, high = span
    started = time.monotonic()
    state: list[tuple[str, float | None]] = [(phase, None)]
    lock = threading.Lock()  # one report at a time on the job's pipe
    stop = threading.Event()

    def send() -> None:
        elapsed = time.monotonic() - started
        share = min(PROGRESS_CAP, elapsed / time_limit_s) if time_limit_s > 0 else 0.0
        now, gap = state[0]
        detail: JsonDict = {
            "phase": now,
            "elapsed_s": round(elapsed, 2),
            "time_limit_s": time_limit_s,
        }
        if gap is not None:
            detail["gap"] = round(gap, 6)
        if stage is not None:
            detail["stage"] = stage
        with lock:
            report(low + (high - low) * share, detail)

    def tick() -> None:
        while not stop.wait(PROGRESS_EVERY_S):
            send()

    def set_phase(now: str, gap: float | None = None, /) -> None:
        changed = now != state[0][0]
        state[0] = (now, gap)
        if changed:  # a new gap in the same phase waits for the next tick
            send()

    send()
    ticker = threading.Thread(target=tick, name=name, daemon=True)
    ticker.start()
    try:
        yield set_phase
    finally:
        stop.set()
        ticker.join()
