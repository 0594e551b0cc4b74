"""The one protocol every dispatch policy implements, and the view of the twin it may use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from simulation.decisions import Action, DecisionState, OrderStatus, Quote, Stop
from simulation.insertion import JobSpec
from simulation.world import OrderData, World


@runtime_checkable
class DispatchView(Protocol):
    """Read-only helpers of the simulator a policy may call (no SimPy objects)."""

    world: World
    orders: OrderData

    @property
    def now(self) -> float:
        """Current simulated time (s)."""
        ...

    def quote(self, o: int, c: int) -> Quote:
        """Cheapest feasible insertion of pending order ``o`` into courier ``c``'s route."""
        ...

    def nearest_couriers(self, o: int, k: int) -> NDArray[np.int64]:
        """Up to ``k`` couriers able to serve order ``o`` that can reach its first pickup
        soonest."""
        ...

    def can_serve(self, o: int) -> NDArray[np.bool_]:
        """Which couriers may be given order ``o`` now: on shift, with every skill it requires."""
        ...

    def pickup_stops(self, o: int) -> tuple[Stop, ...]:
        """The pickup stops order ``o`` still needs."""
        ...

    def job_spec(self, o: int) -> JobSpec:
        """Order ``o`` as an insertion job (pickup chain + delivery)."""
        ...

    def route_end_s(self, c: int) -> float:
        """Expected time courier ``c`` is home after its remaining route."""
        ...

    def order_status(self, o: int) -> OrderStatus:
        """Where order ``o`` is in its life."""
        ...

    def ready_estimate(self, o: int, n: int) -> float:
        """Expected time the parcel of order ``o`` at node ``n`` is ready."""
        ...

    def break_window(self, b: int) -> tuple[float, float, float]:
        """Break ``b``'s (its stop's ``aux``) earliest start, latest start and duration (s)."""
        ...

    def first_departure(self, c: int) -> float:
        """When courier ``c`` first left (NaN if it has not worked yet)."""
        ...

    def unused(self, c: int) -> bool:
        """Whether courier ``c`` is not used yet: it has not left and has nothing but driver
        breaks to take (its quotes carry its fixed cost)."""
        ...

    def expected_after(self, c: int, stops: Sequence[Stop]) -> tuple[int, float]:
        """Where and when courier ``c`` is expected to be after its committed stop and ``stops``."""
        ...

    def planned_cost_cents(self, c: int, stops: Sequence[Stop] | None = None) -> float:
        """Planned cost of courier ``c``'s remaining route, or of ``stops`` were they its route."""
        ...

    def quote_on(self, o: int, c: int, stops: Sequence[Stop]) -> Quote:
        """Cheapest feasible insertion of order ``o`` into ``stops`` were they ``c``'s route."""
        ...

    def with_order(self, o: int, stops: Sequence[Stop], q: Quote) -> tuple[Stop, ...]:
        """``stops`` with order ``o`` inserted where quote ``q`` (on ``stops``) puts it."""
        ...


@runtime_checkable
class Policy(Protocol):
    """Decides at each decision point: ``decide(state) -> action(s)``.

    ``tick_s`` asks the twin for a periodic decision (None = only arrivals and free couriers).
    ``reset`` is called at the start of every simulated day with the simulator's view and
    the replication seed (derive any randomness from it).
    """

    name: str

    @property
    def tick_s(self) -> int | None:
        """Seconds between periodic decisions, or None."""
        ...

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Prepare for a new day."""
        ...

    def decide(self, state: DecisionState) -> Action | Sequence[Action] | None:
        """Actions for this decision point (None or [] = do nothing)."""
        ...
