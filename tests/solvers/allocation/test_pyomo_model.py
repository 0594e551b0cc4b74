"""The Pyomo reference model's bound: none stated when HiGHS stopped in its root LP."""

from __future__ import annotations

from typing import Any

import pytest

from solvers.allocation import AllocationParams
from solvers.allocation.problem import compile_request
from solvers.allocation.pyomo_model import load_pyomo, solve_pyomo
from solvers.allocation.request import AllocationRequest

from .test_compact import HighsStoppedInRootLp, columns_bound


@pytest.mark.parametrize("floor_reported", [True, False])
def test_a_pyomo_solve_stopped_in_its_root_lp_states_no_bound(
    two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch, floor_reported: bool
) -> None:
    """Pyomo passes on HiGHS' dual bound: stopped in its root LP, HiGHS 1.16 reports the one
    its columns' own bounds give, which the answer stated as its bound (far below the
    optimum). A bound the MIP found is kept at a time limit."""
    load_pyomo()
    from pyomo.contrib.solver.common import factory

    prob = compile_request(two_dcs)
    floor = columns_bound(prob)
    params = AllocationParams(backend="pyomo", time_limit_s=30.0, explain=False)
    optimum = solve_pyomo(prob, params).bound
    assert optimum is not None and floor < optimum - 1.0
    make = factory.SolverFactory

    class StoppedInRootLp:
        """Pyomo's HiGHS, its solve ending as if stopped in its root LP."""

        def __init__(self, solver: Any) -> None:
            self._solver = solver

        def solve(self, model: Any, **kwargs: Any) -> Any:
            result = self._solver.solve(model, **kwargs)
            h = self._solver._solver_model
            self._solver._solver_model = HighsStoppedInRootLp(h, floor if floor_reported else None)
            if floor_reported:
                result.objective_bound = floor  # as Pyomo reads it from HiGHS' info
            return result

        def __getattr__(self, name: str) -> Any:
            return getattr(self._solver, name)

    monkeypatch.setattr(factory, "SolverFactory", lambda name: StoppedInRootLp(make(name)))
    out = solve_pyomo(prob, params)
    if floor_reported:
        assert out.bound is None
    else:
        assert out.bound == pytest.approx(optimum, abs=1e-9)


def test_a_pyomo_without_its_highs_instance_attribute_keeps_the_bound_it_reports(
    two_dcs: AllocationRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root-LP check reads Pyomo's HiGHS instance, a private attribute: a Pyomo without it
    still answers, with the bound Pyomo reports."""
    load_pyomo()
    from pyomo.contrib.solver.common import factory

    prob = compile_request(two_dcs)
    params = AllocationParams(backend="pyomo", time_limit_s=30.0, explain=False)
    optimum = solve_pyomo(prob, params).bound
    assert optimum is not None
    make = factory.SolverFactory

    class WithoutInstance:
        """Pyomo's HiGHS with no ``_solver_model`` to read."""

        def __init__(self, solver: Any) -> None:
            self._solver = solver

        def __getattr__(self, name: str) -> Any:
            if name == "_solver_model":
                raise AttributeError(name)
            return getattr(self._solver, name)

    monkeypatch.setattr(factory, "SolverFactory", lambda name: WithoutInstance(make(name)))
    out = solve_pyomo(prob, params)
    assert out.bound == pytest.approx(optimum, abs=1e-9)
