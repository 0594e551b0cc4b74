"""The test helper that starts real servers (tests/api/server.py) cleans up after itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.server import Server, alive, descendants


def test_a_server_not_ready_in_time_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a server that missed its readiness deadline (on a machine at load 20) failed its test
    # and was never stopped: it and its job processes, which ignore the stop signals, were
    # still running 45 minutes later
    seen: set[int] = set()
    ready = Server.wait_ready

    def late(self: Server, timeout_s: float = 60.0) -> None:
        ready(self, timeout_s)  # up, with its fork server started
        seen.update({self.process.pid, *descendants(self.process.pid)})
        raise TimeoutError("server not ready (as if it had been too slow)")

    monkeypatch.setattr(Server, "wait_ready", late)
    with pytest.raises(TimeoutError):
        Server(tmp_path)
    assert len(seen) > 1  # the server and at least one process of its own
    assert not alive(seen)
