"""A solve's cancellation: an event its caller sets to have the solve end promptly.

Set for a thread with :func:`cancel_with`; the solvers look at it with :func:`cancelled`:
HiGHS' interrupt callbacks and the allocation search's loops (as at their deadline; the
batch's warm start, Lagrangian warm-up, pricing rounds, LP rounding and polish stop at their
next order or few, its pricing helper process is killed and no later phase starts), the
routing engines (PyVRP's searches are killed, OR-Tools' search stops at its next
solution, each with its best so far), the twin (between two replications of an evaluation
and every :data:`CHECK_EVERY_STEPS` of its SimPy steps, raising :class:`SolveCancelled`:
a part-played day has no answer). The service sets it for the solves of its synchronous
requests when it stops, so that they do not run on to their time limits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_cancel = threading.local()


def cancel_with(event: threading.Event | None) -> None:
    """Every solve of this thread stops (as at its deadline) once ``event`` is set."""
    _cancel.event = event


def current_cancel() -> threading.Event | None:
    """This thread's cancellation event (:func:`cancel_with`), to hand to a helper thread."""
    event: threading.Event | None = getattr(_cancel, "event", None)
    return event


@contextlib.contextmanager
def cancelling(event: threading.Event | None) -> Iterator[None]:
    """Within the block, this thread's solves are cancelled by ``event``; the thread's own
    cancellation (if any) is back after it."""
    outer = current_cancel()
    cancel_with(event)
    try:
        yield
    finally:
        cancel_with(outer)


def cancelled() -> bool:
    """Whether this thread's solve was cancelled (see :func:`cancel_with`)."""
    event = current_cancel()
    return event is not None and event.is_set()


#: SimPy steps between two looks of the twin at the cancellation (a step is ~0.1 ms)
CHECK_EVERY_STEPS = 1024


class SolveCancelled(Exception):
    """Raised by a run that has no answer so far to give once its caller cancelled it."""
