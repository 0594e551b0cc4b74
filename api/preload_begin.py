"""First module the job processes' fork server imports: SIGINT and SIGTERM do not stop its
imports.

The fork server ignores SIGINT and SIGTERM once it has imported its preload modules (seconds
with the solvers and Pyomo); a Ctrl-C before that, sent to the whole foreground process group,
printed a KeyboardInterrupt traceback from it, and SIGTERM to the whole group (systemd's
``KillMode=control-group``, ``kill -TERM -PGID``) killed it, and multiprocessing then reported
the first job's process dead. Both are *blocked* while it imports: the service starts it with
them blocked (``api.jobs.executors.LocalExecutor``: a signal mask is inherited through the
fork and exec), and this module blocks them too, for a fork server started otherwise; one sent
meanwhile waits, and :mod:`api.preload_end`, its last module, drops it. Blocked, not ignored:
its server tells an importing fork server (SIGTERM blocked) from one done with its imports
(SIGTERM ignored) and kills the first at once (``api.jobs.executors.stop_fork_server``).
Kept outside ``api.jobs`` (whose package imports half the service).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from solvers.stop_signals import STOP_SIGNALS

#: the signals blocked while the fork server imports (dropped by :mod:`api.preload_end`,
#: which ignores them): the stop signals, SIGHUP and SIGQUIT among them where the platform
#: has them (a closed terminal's shell and Ctrl-\ signal the whole group: its server dies of
#: them, and its clean-up stops the fork server)
BLOCKED = STOP_SIGNALS

#: SIGINT's handler before this import (None: not the main thread, left alone)
PREVIOUS: Any = None
#: whether this import blocked the signals and ignored SIGINT (in the main thread only)
BEGUN = threading.current_thread() is threading.main_thread()

if BEGUN:
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED)
    PREVIOUS = signal.signal(signal.SIGINT, signal.SIG_IGN)
