"""Nearest idle courier: the classic greedy dispatcher."""

from __future__ import annotations

import numpy as np

from simulation.decisions import Action, Assign, DecisionState
from simulation.policies.base import DispatchView


class NearestIdlePolicy:
    """Give each waiting order to the idle courier that reaches its pickup first.

    When no courier is idle the order waits; a courier that runs out of stops takes the oldest
    waiting order it can serve (among the ``scan_limit`` oldest). Couriers carry one order at
    a time.
    """

    name = "nearest"

    def __init__(self, *, scan_limit: int = 50) -> None:
        self.scan_limit = scan_limit
        self._view: DispatchView | None = None

    @property
    def tick_s(self) -> int | None:
        """No periodic decisions."""
        return None

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Remember the simulator view."""
        self._view = view

    def decide(self, state: DecisionState) -> Action | None:
        """Assign the focus order to the nearest idle courier that can take it."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            c = state.focus_courier
            if c < 0:
                return None
            for waiting in state.pending[: self.scan_limit]:
                if view.quote(int(waiting), c).feasible:
                    return Assign(int(waiting), c)  # the oldest waiting order it can take
            return None
        idle = np.flatnonzero(state.courier_idle & state.courier_on_shift)
        if not idle.size:
            return None
        stops = view.pickup_stops(o)
        target = stops[0].location if stops else view.orders.location[o]
        duration = view.world.travel.duration_s
        eta = state.courier_available_s[idle] + duration[state.courier_location[idle], target]
        for k in np.argsort(eta, kind="stable"):
            c = int(idle[k])
            if view.quote(o, c).feasible:
                return Assign(o, c)
        return None
