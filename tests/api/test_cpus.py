"""CPU pinning of the API processes (api.core.cpus)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from api.core import cpus


def test_a_new_worker_gets_the_cpu_the_fewest_running_workers_hold() -> None:
    assert cpus.least_used_cpu([0, 1], []) == 0
    assert cpus.least_used_cpu([0, 1], [0]) == 1
    assert cpus.least_used_cpu([0, 1], [0, 1]) == 0
    assert cpus.least_used_cpu([0, 1, 2], [0, 0, 2, 1, 2]) == 1
    assert cpus.least_used_cpu([4, 6], [4]) == 6  # only the CPUs the service may use
    with pytest.raises(ValueError, match="no CPUs"):
        cpus.least_used_cpu([], [])


two_cpus = pytest.mark.skipif(
    not cpus.pinning_supported() or len(cpus.allowed_cpus()) < 2,
    reason="needs CPU affinity (Linux) and two CPUs",
)

_CHILD = """
import os
from api.core import cpus
cpus.pin(cpus.allowed_cpus()[0])
pinned = sorted(os.sched_getaffinity(0))
cpus.release_pin()
print(pinned, sorted(os.sched_getaffinity(0)))
"""


@two_cpus
def test_a_job_process_of_a_pinned_worker_gets_every_service_cpu_back() -> None:
    allowed = cpus.allowed_cpus()
    env = {**os.environ, cpus.SERVICE_CPUS_ENV: ",".join(map(str, allowed))}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"{[allowed[0]]} {allowed}"  # pinned, then every CPU back


_THREADS = """
import os, threading
from api.core import cpus
stop = threading.Event()
started = threading.Event()
def idle() -> None:
    started.set()
    stop.wait()
t = threading.Thread(target=idle)
t.start()
started.wait()
cpus.pin(cpus.allowed_cpus()[0])
print(sorted(os.sched_getaffinity(t.native_id)))
stop.set()
t.join()
"""


@two_cpus
def test_pinning_reaches_the_threads_started_before_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _THREADS], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"{[cpus.allowed_cpus()[0]]}"


@two_cpus
def test_release_without_the_service_cpus_leaves_the_process_as_it_is() -> None:
    env = {k: v for k, v in os.environ.items() if k != cpus.SERVICE_CPUS_ENV}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    first = cpus.allowed_cpus()[0]
    assert out.stdout.strip() == f"[{first}] [{first}]"
