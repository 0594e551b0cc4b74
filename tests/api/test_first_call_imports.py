"""A service's first solves import nothing: its processes preload what they import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: in a fresh interpreter: the service's preload (:func:`api.main.solve_modules`), then a
#: routing solve per engine on a generated city day (a road network), printing the modules
#: of the project and of SciPy each imported
_PROBE = """
import importlib, json, sys
from api.main import solve_modules
from api.tasks import default_registry
for name in solve_modules(default_registry()):
    importlib.import_module(name)
from scenarios.generate import generate_city
from solvers.routing import RoutingParams, solve_routes
scenario = generate_city(seed=1, num_orders=20, num_nodes=3, num_couriers=3)
mine = ("scenarios", "solvers", "simulation", "api", "scipy")
out = {}
for engine in ("greedy", "ortools", "pyvrp"):
    before = set(sys.modules)
    solve_routes(scenario, RoutingParams(engine=engine, time_limit_s=0.5, seed=1))
    out[engine] = sorted(m for m in set(sys.modules) - before if m.startswith(mine))
print(json.dumps(out))
"""


def test_a_routing_solve_on_a_road_network_imports_nothing_after_the_preload() -> None:
    """The first routing solve on a road network imported ``scenarios.roads`` (SciPy's
    csgraph and spatial: 0.26-0.33 s on a slow machine) within its time limit, after the
    service's preload; and the first engine plan with breaks ``solvers.routing.polish``."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == {"greedy": [], "ortools": [], "pyvrp": []}
