"""Helper processes leave SIGINT and SIGTERM to their parent (session 52).

Sent to the whole process group or cgroup (a terminal's Ctrl-C, ``kill -TERM -PGID``,
systemd's default ``KillMode=control-group``), SIGTERM killed the MIP race helper, the
pricing helper and the pyomo worker of a running job or synchronous solve, which answered
worse or with the fallback plan before the server's graceful stop came. The parent still
ends one at once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from solvers.allocation.helper_process import HelperProcess

#: a helper that says it is ready, then waits for its parent's stop (the end of its input)
_ENTRY = (
    "from solvers.allocation.helper_process import Channel\n"
    "channel = Channel()\n"
    "channel.send(('ready',))\n"
    "channel.receive()\n"
    "import time\n"
    "time.sleep(60)\n"  # lingers after its input closed: its parent kills it
)


@pytest.mark.parametrize("fork", [False, True], ids=["spawned", "forked"])
def test_a_helper_outlives_sigterm_and_its_parent_still_ends_it(fork: bool) -> None:
    helper = (HelperProcess.fork if fork else HelperProcess.spawn)(_ENTRY)
    if helper is None:
        pytest.skip("no helper process could be started here")
    try:
        assert helper.readable(30)
        assert helper.receive() == ("ready",)
        for sig in (signal.SIGTERM, signal.SIGINT):  # as sent to the whole group
            os.kill(helper.proc.pid, sig)
        time.sleep(0.3)
        assert helper.proc.poll() is None  # still running: died by SIGTERM (-15)
        t0 = time.monotonic()
        helper.end(grace_s=0.2)
        assert time.monotonic() - t0 < 5.0
        assert helper.proc.poll() == -signal.SIGKILL
    finally:
        helper.end(grace_s=0.0)
        helper.close_output()
