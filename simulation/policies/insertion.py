"""Cheapest insertion: put each new order where it adds the least cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from simulation.decisions import Action, Assign, DecisionState, Postpone, Quote
from simulation.insertion import EPS
from simulation.policies.base import DispatchView


def cheapest_quote(
    view: DispatchView,
    o: int,
    couriers: Iterable[int],
    *,
    on_time_first: bool = False,
) -> tuple[int, Quote] | None:
    """The courier of ``couriers`` whose feasible insertion of ``o`` costs least, and its quote
    (``on_time_first``: the least costly of those delivering ``o`` on time, if any; but one
    opening a courier not yet used (:meth:`DispatchView.unused`) only when it costs at most
    the lateness it avoids more than the cheapest, that lateness at the scenario's price)."""
    best: tuple[int, Quote] | None = None
    on_time: tuple[int, Quote] | None = None
    # on time as the quotes count lateness: a start more than EPS past the window's end is late
    latest = view.orders.tw_end[o] + EPS if on_time_first else 0.0
    for c in couriers:
        q = view.quote(o, int(c))
        if not q.feasible:
            continue
        if best is None or q.cost_delta_cents < best[1].cost_delta_cents:
            best = int(c), q
        if (
            on_time_first
            and q.delivery_start_s <= latest
            and (on_time is None or q.cost_delta_cents < on_time[1].cost_delta_cents)
        ):
            on_time = int(c), q
    if on_time is None or best is None or on_time[0] == best[0]:
        return best if on_time is None else on_time
    if view.unused(on_time[0]):
        extra = on_time[1].cost_delta_cents - best[1].cost_delta_cents
        if extra > lateness_avoided_cents(view, best[1], on_time[1]):
            return best  # not worth opening a courier for
    return on_time


def lateness_avoided_cents(view: DispatchView, late: Quote, early: Quote) -> float:
    """The lateness quote ``late`` counts beyond quote ``early``'s, priced at the scenario's
    ``costs.lateness_cents_per_min`` (0 when ``early`` counts as much)."""
    per_min = float(view.world.scenario.costs.lateness_cents_per_min)
    return per_min * max(0.0, late.lateness_s - early.lateness_s) / 60.0


class CheapestInsertionPolicy:
    """Insert each waiting order into the route where its cheapest feasible insertion costs
    least, over all couriers or the ``num_candidates`` that reach its pickup soonest.

    Orders that fit nowhere wait; they are quoted again after ``retry_s`` seconds, then after
    twice as long, up to ``max_backoff_s`` (periodic decisions come every ``retry_s``). Orders whose
    delivery window opens more than ``dispatch_horizon_s`` ahead wait too (committing them
    hours early makes long routes that are slow to search and inflexible); None = dispatch
    every order at once.

    ``on_time_first``: among the couriers whose insertion delivers the order on time, the
    cheapest; the cheapest of all only when none does (``insertion:K:ontime``). Each quote
    prices one order alone: with driver breaks a courier that has not left is dearer before
    its break (on the clock from its departure through its standing and its break) than a
    late place after another's, though a day of such late places costs more. One exception:
    an on-time place that would open a courier not yet used is taken only when its extra cost
    over the cheapest place is at most what the lateness it avoids costs at the scenario's
    ``lateness_cents_per_min`` (a courier opened for an order a few minutes late made quiet
    days 16 % and 21 % dearer).
    """

    name = "insertion"

    def __init__(
        self,
        *,
        num_candidates: int | None = None,
        retry_s: int | None = 300,
        resequence: bool = False,
        dispatch_horizon_s: int | None = 7200,
        max_backoff_s: int = 1800,
        on_time_first: bool = False,
    ) -> None:
        self.on_time_first = on_time_first
        self.max_backoff_s = max_backoff_s
        self._retry_at: dict[int, tuple[float, float]] = {}
        self.num_candidates = num_candidates
        self.dispatch_horizon_s = dispatch_horizon_s
        self.retry_s = retry_s
        self.resequence = resequence
        self._view: DispatchView | None = None

    @property
    def tick_s(self) -> int | None:
        """Retry period for orders that fit nowhere."""
        return self.retry_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Remember the simulator view."""
        self._view = view
        self._retry_at = {}

    def _couriers(self, o: int) -> Sequence[int]:
        view = self._view
        assert view is not None
        if self.num_candidates is None:
            return range(view.world.num_vehicles)
        return [int(c) for c in view.nearest_couriers(o, self.num_candidates)]

    def decide(self, state: DecisionState) -> Action | None:
        """Assign the focus order at its cheapest feasible place (or let it wait)."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            return None
        horizon = self.dispatch_horizon_s
        if horizon is not None and view.orders.tw_start[o] - state.time_s > horizon:
            return Postpone(o, until_s=view.orders.tw_start[o] - horizon)
        retry = self._retry_at.get(o)
        if retry is not None and state.time_s < retry[0]:
            return Postpone(o, until_s=retry[0])
        found = cheapest_quote(view, o, self._couriers(o), on_time_first=self.on_time_first)
        if found is None:
            wait = float(self.retry_s or 300) if retry is None else retry[1] * 2.0
            wait = min(wait, float(self.max_backoff_s))
            self._retry_at[o] = (state.time_s + wait - 1e-6, wait)
            return Postpone(o, until_s=state.time_s + wait - 1e-6)
        self._retry_at.pop(o, None)
        return Assign(o, found[0], resequence=self.resequence)
