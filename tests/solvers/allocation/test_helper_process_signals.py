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

from solvers.allocation.helper_process import STOP_SIGNALS, HelperProcess

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
def test_a_helper_outlives_sigterm_and_its_parent_still_ends_it(
    fork: bool, request: pytest.FixtureRequest
) -> None:
    if fork:
        request.getfixturevalue("one_thread")  # else it is not forked (fails, not skips)
    helper = (HelperProcess.fork if fork else HelperProcess.spawn)(_ENTRY)
    if helper is None:
        assert not fork, "no helper process forked"
        pytest.skip("no helper process could be started here")
    try:
        assert helper.readable(30)
        assert helper.receive() == ("ready",)
        for sig in STOP_SIGNALS:  # as sent to the whole group (SIGHUP, SIGQUIT too)
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


#: a helper whose start takes a while (its imports: ~0.5 s for the MIP race's, seconds for
#: Pyomo's) before it makes its channel
_SLOW_START_ENTRY = "import time\ntime.sleep(1.0)\n" + _ENTRY


@pytest.mark.parametrize("delay_s", [0.0, 0.3], ids=["at-once", "while-importing"])
def test_a_spawned_helper_outlives_sigterm_from_its_first_instant(delay_s: float) -> None:
    """The synchronous solves' helpers are spawned (the API process has threads, so it does not
    fork): a fresh interpreter that set its disposition only in :class:`Channel`, after its
    imports; SIGTERM to the group in that ~0.5 s killed it (exit code -15) and the solve lost
    its MIP race or pricing helper. SIGINT and SIGTERM are now blocked across its start and
    ignored before anything of its entry runs."""
    helper = HelperProcess.spawn(_SLOW_START_ENTRY)
    if helper is None:
        pytest.skip("no helper process could be started here")
    try:
        time.sleep(delay_s)
        for sig in STOP_SIGNALS:  # as sent to the whole group
            os.kill(helper.proc.pid, sig)
        assert helper.readable(30), helper.proc.poll()
        assert helper.receive() == ("ready",)
        assert helper.proc.poll() is None
    finally:
        helper.end(grace_s=0.0)
        helper.close_output()


def test_spawning_a_helper_leaves_the_callers_signal_mask_as_it_was() -> None:
    """The stop signals are blocked in the calling thread only while the helper starts."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    helper = HelperProcess.spawn(_ENTRY)
    if helper is None:
        pytest.skip("no helper process could be started here")
    try:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
        assert helper.readable(30)
        assert helper.receive() == ("ready",)
    finally:
        helper.end(grace_s=0.0)
        helper.close_output()
