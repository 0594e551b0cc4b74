"""Pinning the API processes of ``serve --workers N --cpu-affinity`` to CPUs of their own.

With two processes on two cores under load, a process's main thread now and then waited on
the run queue for half of a 50 ms window while the other process, the writer threads and the
load client ran, and its queued requests took twice as long. Pinned, each process keeps a
core of its own (measured in docs/api.md, "Pinned processes"). The job processes a pinned
worker starts must not inherit its single CPU: they call :func:`release_pin` and use every
CPU the service was given.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterable, Sequence

#: The CPUs the service may use ("0,1"), set by ``serve`` when it pins its workers.
SERVICE_CPUS_ENV = "DISPATCHLAB_SERVICE_CPUS"


def pinning_supported() -> bool:
    """True where processes can be pinned to CPUs (Linux)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on, in order."""
    if not pinning_supported():
        return []
    return sorted(os.sched_getaffinity(0))


def least_used_cpu(cpus: Sequence[int], in_use: Iterable[int]) -> int:
    """The CPU of ``cpus`` that the fewest running workers hold (the lowest on a tie)."""
    if not cpus:
        raise ValueError("no CPUs to choose from")
    used = Counter(in_use)
    return min(cpus, key=lambda cpu: (used[cpu], cpu))


def thread_ids() -> list[int]:
    """The kernel ids of this process's threads (only the calling one where /proc is missing)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def pin(cpu: int) -> None:
    """Run this process, every thread it has and any it starts later, on ``cpu`` alone."""
    os.sched_setaffinity(0, {cpu})
    # a thread's affinity is its own: threads started before this call (a native library's
    # idle worker, say) would keep every CPU
    for tid in thread_ids():
        with contextlib.suppress(ProcessLookupError):  # the thread has ended
            os.sched_setaffinity(tid, {cpu})


def release_pin(pid: int = 0) -> None:
    """Give this process (or process ``pid``) every CPU of the service again, if its parent
    was pinned."""
    cpus = os.environ.get(SERVICE_CPUS_ENV)
    if not cpus or not pinning_supported():
        return
    wanted = {int(c) for c in cpus.split(",") if c.strip()}
    # a CPU gone offline or a container's set shrunk: keep the CPU it has
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, wanted)
