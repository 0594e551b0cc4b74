"""The policy hook's plain-data types: what a policy sees (DecisionState) and what it returns.

Nothing here refers to SimPy. Indices are the simulator's integer indices: orders of the day
(base orders ``0..num_base-1`` in scenario order, then the day's new orders), couriers (the
scenario's vehicles in order), locations and nodes of the compiled :class:`~simulation.world.World`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class DecisionKind(IntEnum):
    """Why the simulator stopped for a decision."""

    ARRIVAL = 0
    COURIER_FREE = 1
    TICK = 2


class StopType(IntEnum):
    """What a courier does at a stop."""

    PICKUP = 0
    DELIVERY = 1
    BREAK = 2


class OrderStatus(IntEnum):
    """Where an order is in its life."""

    UNKNOWN = 0
    PENDING = 1
    ASSIGNED = 2
    CARRIED = 3
    DELIVERED = 4
    FAILED = 5
    UNFILLED = 6
    UNSERVED = 7


class Stop(NamedTuple):
    """One stop of a courier's route.

    ``node`` is the node a parcel is collected from (pickups at fulfilment nodes), else -1;
    ``aux`` is a break index for breaks, else -1.
    """

    kind: int
    order: int
    location: int
    node: int = -1
    aux: int = -1


def no_candidates() -> IntArray:
    """An empty candidate list (states without a focus order)."""
    return np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class DecisionState:
    """What a policy sees at a decision point (a snapshot; arrays are copies).

    Orders not yet released (``created_s`` in the future) never appear here. ``routes[c]`` are
    courier ``c``'s remaining stops that may still change (the stop it is travelling to or
    serving is ``committed[c]``, not in ``routes[c]``). ``candidates`` is computed on first
    use, by ``find_candidates``, from the state's own courier arrays.
    """

    time_s: float
    kind: DecisionKind
    focus_order: int
    focus_courier: int
    pending: IntArray
    courier_location: IntArray
    courier_available_s: FloatArray
    courier_load: FloatArray
    courier_capacity: FloatArray
    courier_num_stops: IntArray
    courier_idle: BoolArray
    courier_on_shift: BoolArray
    committed: tuple[Stop | None, ...]
    routes: tuple[tuple[Stop, ...], ...]
    realised_cost_cents: float
    num_released: int
    num_delivered: int
    find_candidates: Callable[[], IntArray] = field(
        default=no_candidates, repr=False, compare=False
    )
    _candidates: list[IntArray] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def candidates(self) -> IntArray:
        """For the focus order: the couriers able to serve it (on shift, with its skills) that
        reach its first pickup soonest."""
        memo = self._candidates
        if not memo:
            memo.append(self.find_candidates())
        return memo[0]

    @property
    def num_couriers(self) -> int:
        """Number of couriers."""
        return int(self.courier_location.shape[0])


@dataclass(frozen=True, slots=True)
class Assign:
    """Insert ``order`` into ``courier``'s route at its cheapest feasible position.

    With ``resequence`` the route is then improved by relocating its not-yet-collected orders.
    """

    order: int
    courier: int
    resequence: bool = False


@dataclass(frozen=True, slots=True)
class Postpone:
    """Leave ``order`` pending; with ``until_s`` no periodic decision offers it before then.

    A snoozed order still appears in ``DecisionState.pending`` (and may be assigned by any
    action); it is only left out of the per-order TICK decisions until ``until_s``.
    """

    order: int
    until_s: float | None = None


@dataclass(frozen=True, slots=True)
class ReplaceRoutes:
    """New remaining routes for some couriers (re-optimising policies).

    Orders that were assigned to a listed courier but do not appear in any new route become
    pending again. Parcels already on board must stay on their courier; a committed stop is
    kept and not part of the new route. An order's stops are its pickups (as
    ``pickup_stops`` gives them, those of parcels not on board all there), then its delivery
    at its location, once. A courier off shift gets no stop it does not have; as with
    :class:`Assign`, no courier gets an order needing a skill it lacks or a route on which it
    would carry more than its capacity; each courier keeps its breaks (in any place of its
    route); as with :class:`Assign`, a changed route starts no break late, reaches no node
    after it closes for good and brings the courier home by its shift end, in expected times,
    unless its current route already breaks that limit (an order's window stays soft). A
    rejected action changes no route.
    """

    routes: Mapping[int, Sequence[Stop]] = field(default_factory=dict)


Action = Assign | Postpone | ReplaceRoutes


@dataclass(frozen=True, slots=True)
class Quote:
    """Cost of inserting one order into one courier's route at its best feasible position."""

    feasible: bool
    cost_delta_cents: float
    pickup_after: int = -1
    delivery_after: int = -1
    delivery_start_s: float = float("inf")
    lateness_s: float = 0.0
    distance_delta_m: float = 0.0
    end_delay_s: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying actions did: orders inserted, orders left pending, problems."""

    assigned: tuple[int, ...] = ()
    postponed: tuple[int, ...] = ()
    rejected: tuple[tuple[int, str], ...] = ()
    cost_delta_cents: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no action was rejected."""
        return not self.rejected
