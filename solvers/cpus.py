"""The CPUs this process may run on: what the solvers size their threads and searches by."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (at least one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
