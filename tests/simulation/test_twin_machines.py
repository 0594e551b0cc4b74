"""The twin plays a seeded day the same whichever SIMD code NumPy picks for the CPU.

Until session 81 (twin version 13) ``nearest_couriers`` took the ``k`` soonest couriers with
``np.argpartition``, whose ties (couriers arriving at the same second) fall differently per
NumPy selection kernel (x86-simd-sort on AVX2 and AVX-512, introselect elsewhere): the same
seed played other days on other machines (a generated 400-order day under ``insertion:3``:
385,615 cents with AVX2, 375,757 without). ``NPY_DISABLE_CPU_FEATURES`` in a subprocess plays
the other machine.
"""

from __future__ import annotations

import pytest

from tests.numpy_kernels import NO_SIMD, run_script

# a generated 400-order day (seed 1, 3 nodes, 20 couriers) under cheapest insertion over the
# 3 soonest couriers: many couriers arrive at the same second, so the ties fell per CPU
_SCRIPT = """
from scenarios.generate import generate_city
from simulation import simulate
from simulation.params import SimParams

city = generate_city(seed=1, num_orders=400, num_nodes=3, num_couriers=20)
result = simulate(city, policy="insertion:3", seed=1, params=SimParams(record_events=True))
print(hashlib.sha256(repr(result.events).encode()).hexdigest(), result.metrics["cost_cents"])
"""


def test_day_is_the_same_with_and_without_numpys_simd_kernels() -> None:
    """Same seeded day, same event log (hashed) and cost under both dispatches."""
    native_ties, native_day = run_script(_SCRIPT, None)
    plain_ties, plain_day = run_script(_SCRIPT, NO_SIMD)
    if native_ties == plain_ties:
        pytest.skip("NumPy picks the same selection kernel either way on this CPU")
    assert plain_day == native_day
