"""First module the job processes' fork server imports: Ctrl-C does not interrupt its imports.

The fork server ignores SIGINT once it has imported its preload modules (seconds with the
solvers and Pyomo); a Ctrl-C before that, sent to the whole foreground process group, printed
a KeyboardInterrupt traceback from it. :mod:`api.preload_end`, its last module, puts the
previous handler back before the fork server reads it for its job processes. Kept outside
``api.jobs`` (whose package imports half the service).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

#: SIGINT's handler before this import (None: not the main thread, left alone)
PREVIOUS: Any = None

if threading.current_thread() is threading.main_thread():
    PREVIOUS = signal.signal(signal.SIGINT, signal.SIG_IGN)
