"""The twin plays a seeded day the same whichever SIMD code NumPy picks for the CPU.

Until session 81 (twin version 13) ``nearest_couriers`` took the ``k`` soonest couriers with
``np.argpartition``, whose ties (couriers arriving at the same second) fall differently per
NumPy selection kernel (x86-simd-sort on AVX2 and AVX-512, introselect elsewhere): the same
seed played other days on other machines (a generated 400-order day under ``insertion:3``:
385,615 cents with AVX2, 375,757 without). ``NPY_DISABLE_CPU_FEATURES`` in a subprocess plays
the other machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: every x86 feature group NumPy dispatches on (names of NumPy >= 2.4 and before; unknown
#: names are ignored), so the subprocess runs the baseline (SSE) kernels
_NO_SIMD = "X86_V3 X86_V4 AVX512_SKX AVX512F AVX2 FMA3 AVX512_ICL AVX512_SPR"

# a generated 400-order day (seed 1, 3 nodes, 20 couriers) under cheapest insertion over the
# 3 soonest couriers: many couriers arrive at the same second, so the ties fell per CPU
_SCRIPT = """
import hashlib
import numpy as np
from scenarios.generate import generate_city
from simulation import simulate
from simulation.params import SimParams

ties = np.arange(4000) % 7
print(hashlib.sha256(np.sort(np.argpartition(ties, 99)[:100]).tobytes()).hexdigest())
city = generate_city(seed=1, num_orders=400, num_nodes=3, num_couriers=20)
result = simulate(city, policy="insertion:3", seed=1, params=SimParams(record_events=True))
print(hashlib.sha256(repr(result.events).encode()).hexdigest(), result.metrics["cost_cents"])
"""


def _run(disable: str | None) -> list[str]:
    """The script's output lines with NumPy's dispatch as given (None: the CPU's own)."""
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    if disable is not None:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split("\n")[:2]


def test_day_is_the_same_with_and_without_numpys_simd_kernels() -> None:
    """Same seeded day, same event log (hashed) and cost under both dispatches."""
    native_ties, native_day = _run(None)
    plain_ties, plain_day = _run(_NO_SIMD)
    if native_ties == plain_ties:
        pytest.skip("NumPy picks the same selection kernel either way on this CPU")
    assert plain_day == native_day
