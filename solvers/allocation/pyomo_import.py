"""Importing this module imports Pyomo and its HiGHS interface (no worker process is started).

For multiprocessing's fork server of the local job processes (:func:`api.main._make_executor`
preloads it where a job kind may ask for ``backend: "pyomo"``): each job process forked from
it then has Pyomo imported, and forks its pyomo worker from itself, ready in milliseconds
(``pyomo_worker.start_worker(fork=True)``), instead of spawning one that imports it (~2.7 s).
Never raises (a preload module that raised would stop every job): without Pyomo a job's
pyomo solve fails to start its worker and falls back as it would have.
"""

from __future__ import annotations

import logging

#: seconds Pyomo's import took; None when it failed
IMPORT_S: float | None = None

try:
    from solvers.allocation.pyomo_model import load_pyomo

    IMPORT_S = load_pyomo()
except Exception as _err:  # ImportError, or any error of Pyomo's own import
    logging.getLogger(__name__).warning("Pyomo not imported: %s: %s", type(_err).__name__, _err)
