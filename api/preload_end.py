"""Last module the job processes' fork server imports: SIGTERM (and SIGHUP, SIGQUIT)
ignored, SIGINT's handler as before :mod:`api.preload_begin` (job processes get the fork
server's handlers), and all unblocked, one sent during the imports dropped.

SIGTERM sent to the whole process group or cgroup (systemd's ``KillMode=control-group``,
``kill -TERM -PGID``) killed the fork server, and multiprocessing then reported the running
job's process dead (exit code 255, read from the fork server's socket) before the server's
graceful stop came to re-queue its job. Its server stops it by closing its "alive" pipe
(``api.jobs.executors.stop_fork_server``), or kills it while it still imports. Its job
processes ignore SIGTERM too (``api.jobs.executors._child_main``).
"""

from __future__ import annotations

import signal
import threading

from api.preload_begin import BEGUN, BLOCKED, PREVIOUS

if threading.current_thread() is threading.main_thread():
    for sig in BLOCKED:  # SIGINT: its handler put back below (after the unblock)
        if sig != signal.SIGINT:
            signal.signal(sig, signal.SIG_IGN)
    if BEGUN:
        # both ignored at the unblock: one sent while they were blocked is dropped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, BLOCKED)
        if PREVIOUS is not None:
            signal.signal(signal.SIGINT, PREVIOUS)
