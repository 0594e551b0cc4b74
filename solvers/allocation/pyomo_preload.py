"""Importing this module starts the pyomo worker process and waits until it has imported Pyomo.

See :func:`~solvers.allocation.pyomo_worker.warm_worker`. For a process that runs solve
after solve (a Ray worker, which imports its preload modules by name before its first job,
see :mod:`api.main`): the ``pyomo`` backend solves in a helper process with Pyomo imported
(about 2 s to start), kept for later solves, so the first ``backend: "pyomo"`` allocation
does not wait for it (or get the highspy backend for want of time). A worker that fails to
start is logged, not raised: a pyomo solve then starts one (or falls back) as it would have.
"""

from __future__ import annotations

import logging

from solvers.allocation.pyomo_worker import WorkerStartError, warm_worker

#: seconds Pyomo's import took in the worker; None when it failed
IMPORT_S: float | None = None
#: why no worker was ready (:class:`WorkerStartError`'s message); None when one was
NOT_READY: str | None = None

try:
    IMPORT_S = warm_worker()
except WorkerStartError as _err:
    NOT_READY = str(_err)
    logging.getLogger(__name__).warning("pyomo worker not started: %s", _err)
