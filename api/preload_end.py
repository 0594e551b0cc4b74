"""Last module the job processes' fork server imports: SIGINT's handler as before
:mod:`api.preload_begin` (job processes get the fork server's handlers), and SIGTERM ignored.

SIGTERM sent to the whole process group or cgroup (systemd's ``KillMode=control-group``,
``kill -TERM -PGID``) killed the fork server, and multiprocessing then reported the running
job's process dead (exit code 255, read from the fork server's socket) before the server's
graceful stop came to re-queue its job. Its server stops it by closing its "alive" pipe
(``api.jobs.executors.stop_fork_server``); SIGTERM still ends one that is importing these
modules. Its job processes ignore SIGTERM too (``api.jobs.executors._child_main``).
"""

from __future__ import annotations

import signal
import threading

from api.preload_begin import PREVIOUS

if PREVIOUS is not None and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, PREVIOUS)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
