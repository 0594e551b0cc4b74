"""The ``solvers.allocation`` package: its public names, imported on first use."""

from __future__ import annotations

import subprocess
import sys


def test_a_helper_process_s_first_import_leaves_the_solve_and_scipy_alone() -> None:
    """A spawned helper imports ``solvers.allocation.helper_process`` first: with the package's
    names imported eagerly that imported the solve, the batch path and SciPy too (~1.2 s)."""
    heavy = "{'solvers.allocation.solve', 'solvers.allocation.batch', 'scipy', 'numpy'}"
    code = (
        f"import sys, solvers.allocation.helper_process; print(sorted({heavy} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
