"""Importing this module imports Pyomo (see :func:`~solvers.allocation.pyomo_model.load_pyomo`).

For the job workers' fork server (``multiprocessing``'s ``forkserver`` preload, which can
only import modules by name, see :mod:`api.main`): Pyomo is imported once, in the fork
server, and every job process forked from it has it at no cost of its own, so the first
``backend: "pyomo"`` allocation of a job does not pay for the import (about 1 s) or get the
highspy backend for want of time. A failing import is logged, not raised: the fork server
dies on any error of a preloaded module but ImportError, and every job with it.
"""

from __future__ import annotations

import logging

from solvers.allocation.pyomo_model import load_pyomo

#: seconds the import took here; None when it failed
IMPORT_S: float | None = None

try:
    IMPORT_S = load_pyomo()
except Exception as _err:  # a pyomo solve then fails (or falls back) as it would have
    logging.getLogger(__name__).warning("pyomo import failed: %s: %s", type(_err).__name__, _err)
