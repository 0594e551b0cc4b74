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


def pyomo_worker_forked(payload: dict[str, Any], *, progress: Any = None) -> dict[str, Any]:
    """How this job process's pyomo worker was started (forked, its import's seconds, its
    parent; whether this process has Pyomo imported), and a pyomo allocation of
    ``payload["request"]`` solved there; the worker is ended after."""
    import os
    import sys

    from solvers.allocation import AllocationParams, allocate, pyomo_worker
    from solvers.allocation.request import AllocationRequest

    worker = pyomo_worker.take_worker(60.0)
    assert worker is not None, "no pyomo worker"
    with open(f"/proc/{worker.pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    info: dict[str, Any] = {
        "pyomo_in_job": "pyomo.environ" in sys.modules,  # imported by the fork server
        "forked": worker.forked,
        "import_s": worker.import_s,
        "parent_is_job": parent == os.getpid(),
    }
    pyomo_worker.give_back(worker)
    request = AllocationRequest.model_validate(payload["request"])
    result = allocate(request, AllocationParams(backend="pyomo", time_limit_s=30, explain=False))
    info["method"] = result.method
    info["notes"] = result.stats.notes
    with pyomo_worker._lock:
        pool = list(pyomo_worker._pool())
    info["same_worker"] = [w.pid for w in pool] == [worker.pid]
    pyomo_worker.end_workers()
    return info


def pyomo_worker_pid_then_sleep(payload: dict[str, Any], *, progress: Any = None) -> None:
    """Write this job process's pyomo worker's pid to ``payload["pid_file"]``, then sleep."""
    import time
    from pathlib import Path

    from solvers.allocation import pyomo_worker

    worker = pyomo_worker.take_worker(60.0)
    assert worker is not None, "no pyomo worker"
    Path(payload["pid_file"]).write_text(str(worker.pid))
    time.sleep(600)


def preload_probe_imported_at(payload: dict[str, Any], *, progress: Any = None) -> dict[str, Any]:
    """When this worker imported :mod:`tests.api.ray_preload_probe` (``time.time()``)."""
    from tests.api import ray_preload_probe

    return {"imported_at": ray_preload_probe.IMPORTED_AT}
