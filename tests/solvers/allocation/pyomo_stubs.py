"""Stand-in entries of the pyomo worker process (``pyomo_worker.WORKER_ENTRY`` in tests).

They skip Pyomo's import (ready at once) and stand for a solve that never ends in time, a
worker that crashes on its solve, and one whose Pyomo import fails.
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


def _missing() -> float:
    raise ModuleNotFoundError("No module named 'pyomo'")


def sleepy_main() -> None:
    """A worker whose solves never answer."""
    serve(_no_import, _sleep)


def crashing_main() -> None:
    """A worker that dies (exit code 3) on its first solve."""
    serve(_no_import, _crash)


def no_pyomo_main() -> None:
    """A worker whose Pyomo import fails."""
    serve(_missing, _sleep)
