"""The greedy construction gives the same plan whichever SIMD code NumPy picks for the CPU.

NumPy chooses its sort and selection kernels per CPU at run time (x86-simd-sort on AVX2 and
AVX-512, its own introselect on older x86 and elsewhere), and ``np.argpartition`` breaks ties
differently in each: until session 80 the greedy's "orders near an insertion" and its pair
candidates were taken with it, and the same seed gave other plans on other machines (the
10,000-order city day 3,984 unassigned on one AMD EPYC, 4,089 on another). Switching NumPy's
dispatch off with ``NPY_DISABLE_CPU_FEATURES`` in a subprocess plays the other machine.
"""

from __future__ import annotations

import pytest

from tests.numpy_kernels import NO_SIMD, run_script

# a 600-order day (seed 1, generator version 1, 3 nodes, 24 couriers): past the greedy's
# FULL_UPDATE, so it prices the orders near each insertion, where the ties fell per CPU
_SCRIPT = """
from scenarios.generate import CityParams, generate_city
from solvers.routing import build_problem
from solvers.routing.greedy import GreedyBuilder

city = generate_city(seed=1, num_orders=600, num_nodes=3, num_couriers=24,
                     params=CityParams(generator_version=1))
routes, left = GreedyBuilder(build_problem(city)).build()
plan = repr((sorted((v, list(s)) for v, s in routes.items()), sorted(left)))
print(hashlib.sha256(plan.encode()).hexdigest(), len(left))
"""


def test_greedy_plan_is_the_same_with_and_without_numpys_simd_kernels() -> None:
    """Same day, same plan (routes and orders left out, hashed) under both dispatches."""
    native_ties, native_plan = run_script(_SCRIPT, None)
    plain_ties, plain_plan = run_script(_SCRIPT, NO_SIMD)
    if native_ties == plain_ties:
        pytest.skip("NumPy picks the same selection kernel either way on this CPU")
    assert plain_plan == native_plan
