"""The greedy construction gives the same plan whichever SIMD code NumPy picks for the CPU.

NumPy chooses its sort and selection kernels per CPU at run time (x86-simd-sort on AVX2 and
AVX-512, its own introselect on older x86 and elsewhere), and ``np.argpartition`` breaks ties
differently in each: until session 80 the greedy's "orders near an insertion" and its pair
candidates were taken with it, and the same seed gave other plans on other machines (the
10,000-order city day 3,984 unassigned on one AMD EPYC, 4,089 on another). Switching NumPy's
dispatch off with ``NPY_DISABLE_CPU_FEATURES`` in a subprocess plays the other machine.
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

# a 600-order day (seed 1, generator version 1, 3 nodes, 24 couriers): past the greedy's
# FULL_UPDATE, so it prices the orders near each insertion, where the ties fell per CPU
_SCRIPT = """
import hashlib
import numpy as np
from scenarios.generate import CityParams, generate_city
from solvers.routing import build_problem
from solvers.routing.greedy import GreedyBuilder

ties = np.arange(4000) % 7
print(hashlib.sha256(np.sort(np.argpartition(ties, 99)[:100]).tobytes()).hexdigest())
city = generate_city(seed=1, num_orders=600, num_nodes=3, num_couriers=24,
                     params=CityParams(generator_version=1))
routes, left = GreedyBuilder(build_problem(city)).build()
plan = repr((sorted((v, list(s)) for v, s in routes.items()), sorted(left)))
print(hashlib.sha256(plan.encode()).hexdigest(), len(left))
"""


def _run(disable: str | None) -> list[str]:
    """The script's output lines with NumPy's dispatch as given (None: the CPU's own)."""
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    if disable is not None:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    root = Path(__file__).resolve().parents[3]
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


def test_greedy_plan_is_the_same_with_and_without_numpys_simd_kernels() -> None:
    """Same day, same plan (routes and orders left out, hashed) under both dispatches."""
    native_ties, native_plan = _run(None)
    plain_ties, plain_plan = _run(_NO_SIMD)
    if native_ties == plain_ties:
        pytest.skip("NumPy picks the same selection kernel either way on this CPU")
    assert plain_plan == native_plan
