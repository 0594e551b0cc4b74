"""The residual stock and capacity of a whole allocation, taken at once, equal those of its
orders taken one at a time (the polish's set-up)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers.allocation import AllocationRequest
from solvers.allocation.heuristics import Residual, _arcs_by_order, nearest
from solvers.allocation.problem import compile_request

from .test_nearest import requests


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.data())
def test_take_all_equals_taking_every_order_in_turn(
    req: AllocationRequest, data: st.DataObject
) -> None:
    prob = compile_request(req)
    x = nearest(prob)
    # some units held back (a partial allocation, as the polish may get)
    x = np.array([data.draw(st.integers(0, int(q))) for q in x.tolist()], dtype=np.int64)
    one_by_one, at_once = Residual(prob), Residual(prob)
    for o, arcs in _arcs_by_order(prob, x).items():
        one_by_one.take(o, arcs, x[arcs])
    at_once.take_all(x)
    for name in ("avail", "cap_units", "cap_orders", "vip_units", "vip_orders"):
        assert np.array_equal(getattr(at_once, name), getattr(one_by_one, name)), name
