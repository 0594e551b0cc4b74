"""A hook that hears which phase an allocation solve is in (a service job's progress)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: called with the phase's name and the certified relative gap so far (None if none yet)
PhaseHook = Callable[[str, float | None], None]

_hook: ContextVar[PhaseHook | None] = ContextVar("allocation_phase_hook", default=None)

WARM_START = "warm start"
COLUMN_GENERATION = "column generation"
INTEGER_PHASE = "integer phase"
EXPLAINING = "explaining"


@contextmanager
def phase_hook(hook: PhaseHook | None) -> Iterator[None]:
    """Send the phases of the solves in this block (this thread's) to ``hook``."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


def report_phase(name: str, gap: float | None = None) -> None:
    """Tell the hook, if any, that the solve is now in phase ``name`` (a no-op otherwise)."""
    hook = _hook.get()
    if hook is not None:
        hook(name, gap)


def relative_gap(upper: float, lower: float) -> float:
    """The certified relative gap between an upper and a lower bound (0 when they meet)."""
    return max(0.0, upper - lower) / max(abs(upper), 1e-9)
