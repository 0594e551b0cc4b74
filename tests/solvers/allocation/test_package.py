"""The ``solvers.allocation`` package: its public names, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import solvers.allocation


def test_every_public_name_is_the_one_its_module_defines() -> None:
    package = solvers.allocation
    for name in package.__all__:
        module = importlib.import_module(package._LAZY.exports[name])
        assert getattr(package, name) is getattr(module, name), name
    assert sorted(package._LAZY.exports) == sorted(package.__all__)  # no name left out
    assert set(package.__all__) <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = solvers.allocation.Nope


def test_a_helper_process_s_first_import_leaves_the_solve_and_scipy_alone() -> None:
    """A spawned helper imports ``solvers.allocation.helper_process`` first: with the package's
    names imported eagerly that imported the solve, the batch path and SciPy too (~1.2 s)."""
    heavy = "{'solvers.allocation.solve', 'solvers.allocation.batch', 'scipy', 'numpy'}"
    code = (
        f"import sys, solvers.allocation.helper_process; print(sorted({heavy} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
