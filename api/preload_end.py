"""Last module the job processes' fork server imports: SIGINT's handler as before
:mod:`api.preload_begin` (job processes get the fork server's handlers)."""

from __future__ import annotations

import signal
import threading

from api.preload_begin import PREVIOUS

if PREVIOUS is not None and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, PREVIOUS)
