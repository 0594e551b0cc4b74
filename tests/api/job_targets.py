"""Job targets for tests of the job machinery (run in job processes by import path)."""

from __future__ import annotations

from typing import Any


def pyomo_worker_started(payload: dict[str, Any], *, progress: Any = None) -> dict[str, Any]:
    """Whether this job process has a pyomo worker starting (or ready) as the job body runs;
    the worker is ended before the answer."""
    from solvers.allocation import pyomo_worker

    started = pyomo_worker.worker_started()
    with pyomo_worker._lock:
        workers = list(pyomo_worker._pool())
        pyomo_worker._idle.clear()
    for worker in workers:
        worker.kill()
    return {"started": started}
