"""CPU time that the code under test spends, without what the test session around it costs."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any


def thread_cpu_s(native_id: int) -> float | None:
    """CPU seconds thread ``native_id`` of this process has spent (None: it has ended)."""
    try:
        stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the name: state, ppid, ...
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkCpu:
    """CPU seconds this process spends from :meth:`start` on, every thread of the code under
    test counted (its own helper threads, HiGHS' threads), less what the test session
    around it costs the process meanwhile: full garbage collections, and the Python threads
    that already ran as the block began, other than the one that began it (Linux: reads
    ``/proc``).

    A full collection scans the whole heap that the earlier tests of an xdist worker built
    (~2.4 million objects: 1.8-3 s of wall clock each on a loaded machine, session 49) and
    comes whenever enough objects have piled up, so its cost is the session's, not the
    test's; one that fell after a cancellation would be taken for work the solve did after
    it (the likely cause of a batch solve's 2.10 s of CPU after its cancel, against a bound
    of 1.0 s, under heavy load: its own work after the cancel takes 0.002-0.018 s). The
    threads of an earlier test (a server's, a pool's) are not the code under test either.

    Use it as a context manager (it watches the collections inside the block); ``start``
    marks the moment to count from (also called on entry).
    """

    def __init__(self) -> None:
        self._cpu = 0.0
        self._gc_s = 0.0
        self._gc_from: dict[int, float] = {}
        self._foreign: set[int] = set()
        self._others: dict[int, float] = {}

    def __enter__(self) -> WorkCpu:
        me = threading.get_native_id()
        self._foreign = {t.native_id for t in threading.enumerate() if t.native_id} - {me}
        gc.callbacks.append(self._collected)
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        gc.callbacks.remove(self._collected)

    def start(self) -> None:
        """Count from now (in any thread: those the block started are all counted)."""
        self._others = {}
        for native_id in self._foreign:
            cpu = thread_cpu_s(native_id)
            if cpu is not None:
                self._others[native_id] = cpu
        self._gc_s = 0.0
        self._cpu = time.process_time()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        """gc callback: the CPU time of each full collection, in the thread that ran it."""
        if info["generation"] != 2:
            return
        me = threading.get_ident()
        if phase == "start":
            self._gc_from[me] = time.thread_time()
        elif me in self._gc_from:
            self._gc_s += time.thread_time() - self._gc_from.pop(me)

    def seconds(self) -> float:
        """The CPU seconds spent since :meth:`start` by the code under test."""
        spent = time.process_time() - self._cpu - self._gc_s
        for native_id, before in self._others.items():
            now = thread_cpu_s(native_id)
            if now is not None:  # one that has ended is counted (its end is not known)
                spent -= now - before
        return spent


class LooksClock:
    """A stub ``time`` module for deadline tests: each look at ``perf_counter`` advances it by
    one second from 0 (``looks`` counts them)."""

    def __init__(self) -> None:
        self.looks = 0

    def perf_counter(self) -> float:
        """One second later than the last look."""
        self.looks += 1
        return float(self.looks)
