"""Nearest idle courier: the classic greedy dispatcher."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from simulation.decisions import Action, Assign, DecisionState, Quote, StopType
from simulation.policies.base import DispatchView


def free_couriers(state: DecisionState) -> NDArray[np.bool_]:
    """Couriers that are idle or have nothing but driver breaks left (nothing committed)."""
    free = state.courier_idle.copy()
    committed = state.committed
    for c, route in enumerate(state.routes):
        if route and committed[c] is None and all(st.kind == StopType.BREAK for st in route):
            free[c] = True
    return free


class NearestIdlePolicy:
    """Give each waiting order to the idle courier that reaches its pickup first.

    When no courier is idle the order waits; a courier that runs out of stops takes the oldest
    waiting order it can serve (among the ``scan_limit`` oldest). Couriers carry one order at
    a time. A courier with nothing to do but its breaks (nothing committed, only break stops
    left) counts as idle: the order goes before or after its breaks, as ``Assign`` puts it.
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
            later = -1  # the oldest it would take only after a break
            for waiting in state.pending[: self.scan_limit]:
                q = view.quote(int(waiting), c)
                if q.feasible:
                    if not _after_break(state, c, q):
                        return Assign(int(waiting), c)  # the oldest waiting order it can take
                    later = int(waiting) if later < 0 else later
            return Assign(later, c) if later >= 0 else None
        idle = np.flatnonzero(free_couriers(state) & state.courier_on_shift)
        if not idle.size:
            return None
        stops = view.pickup_stops(o)
        target = stops[0].location if stops else view.orders.location[o]
        duration = view.world.travel.duration_s
        eta = state.courier_available_s[idle] + duration[state.courier_location[idle], target]
        after = -1  # the nearest that would take it only after its break
        for k in np.argsort(eta, kind="stable"):
            c = int(idle[k])
            q = view.quote(o, c)
            if q.feasible:
                if not _after_break(state, c, q):
                    return Assign(o, c)
                after = c if after < 0 else after
        return Assign(o, after) if after >= 0 else None


def _after_break(state: DecisionState, c: int, q: Quote) -> bool:
    """Whether ``q`` puts the order after a break that courier ``c`` (with only breaks left)
    takes first: it does not go now, so a courier that does is preferred."""
    return q.pickup_after > 0 and bool(state.routes[c])
