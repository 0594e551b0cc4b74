"""Stand-in entries of the pyomo worker process (``pyomo_worker.WORKER_ENTRY`` in tests).

Most skip Pyomo's import (ready at once) and stand for a solve that never ends in time, a
worker that crashes on its solve, one that answers with a poor incumbent, one whose
Pyomo import fails, one whose interpreter would take seconds to exit, and one that never
reads its problem (its parent's write of it waits for ever); two import Pyomo and solve
with a HiGHS whose runs fail (raise MemoryError, or end in an error).
"""

from __future__ import annotations

import os
import time
from typing import Any

from solvers.allocation.pyomo_worker import serve


def _no_import() -> float:
    return 0.0


def _sleep(*_args: Any, **_kwargs: Any) -> None:
    time.sleep(600)  # as HiGHS' MIP set-up of 2,000 orders: far past any test's limit


def _crash(*_args: Any, **_kwargs: Any) -> None:
    os._exit(3)


def _ship_nothing(prob: Any, *_args: Any, **_kwargs: Any) -> Any:
    import numpy as np

    from solvers.allocation.pyomo_model import PyomoOutcome

    # as HiGHS stopped at its limit on a poor incumbent, with a valid bound (zero: costs are
    # never negative)
    x = np.zeros(prob.num_arcs, dtype=np.int64)
    time.sleep(0.5)  # the baselines finish meanwhile
    return PyomoOutcome(x, None, 0.0, "maxTimeLimit", 0.0, 0.5)


def _missing() -> float:
    raise ModuleNotFoundError("No module named 'pyomo'")


def sleepy_main() -> None:
    """A worker whose solves never answer."""
    serve(_no_import, _sleep)


def crashing_main() -> None:
    """A worker that dies (exit code 3) on its first solve."""
    serve(_no_import, _crash)


def poor_main() -> None:
    """A worker whose solves answer late-ish with nothing shipped (a poor incumbent)."""
    serve(_no_import, _ship_nothing)


def no_pyomo_main() -> None:
    """A worker whose Pyomo import fails."""
    serve(_missing, _sleep)


def slow_exit_main() -> None:
    """A worker whose interpreter's exit would take 5 s (an exit handler sleeps), as freeing
    Pyomo's modules took ~0.5 s."""
    import atexit

    atexit.register(time.sleep, 5.0)
    serve(_no_import, _sleep)


def deaf_main() -> None:
    """A worker that says it is ready, then never reads its input (a problem larger than
    the pipe's buffer is never written in full)."""
    from solvers.allocation.helper_process import Channel
    from solvers.allocation.pyomo_worker import _watch_parent

    channel = Channel()
    _watch_parent(os.getppid())
    channel.send(("ready", 0.0))
    time.sleep(600)


def _highs_fails(how: str) -> None:
    """Every HiGHS run of this process raises MemoryError (``std::bad_alloc``) or, ``how``
    "error", ends in an error with no solution (model status "Not Set")."""
    import highspy

    def run(h: Any) -> Any:
        if how == "memory":
            raise MemoryError("std::bad_alloc")
        h.clearSolver()
        return highspy.HighsStatus.kError

    highspy.Highs.run = run  # type: ignore[method-assign,assignment]


def highs_raising_main() -> None:
    """A real worker (Pyomo imported) whose HiGHS runs raise MemoryError."""
    from solvers.allocation.pyomo_model import load_pyomo, solve_pyomo

    _highs_fails("memory")
    serve(load_pyomo, solve_pyomo)


def highs_failing_main() -> None:
    """A real worker (Pyomo imported) whose HiGHS runs end in an error, no solution."""
    from solvers.allocation.pyomo_model import load_pyomo, solve_pyomo

    _highs_fails("error")
    serve(load_pyomo, solve_pyomo)
