"""What the dispatch agent sees: fixed-size, padded, masked arrays built from the policy hook.

One :class:`Featurizer` turns a :class:`~simulation.decisions.DecisionState` (plus the
simulator's :class:`~simulation.policies.DispatchView`) into the observation of
``dispatchlab/DynamicDispatch-v0`` and its action mask. The environment and the learned
policy (``model:PATH``) share it, so a model sees the same numbers in training and evaluation.

Actions: ``0..K-1`` assign the focus order to the courier in candidate slot ``k`` (inserted at
its cheapest feasible position by the twin), ``K`` postpones it to the next tick (not allowed
when the order must go now, see :class:`FeatureParams`). The K candidates are the couriers
able to serve the order (on shift, with its skills) that reach its first pickup soonest; slots
are ordered by their quoted insertion cost (feasible first), so slot 0 is what cheapest
insertion would choose. Every observation value is scaled to roughly [-1, 10] and clipped to
``[-CLIP, CLIP]``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from simulation.decisions import DecisionKind, DecisionState, Quote, Stop, StopType
from simulation.policies.base import DispatchView

CLIP = 50.0
HOUR = 3600.0
DAY = 86_400.0

#: The layout and meaning of the observation features. A model file (``features_version`` in
#: its record, :mod:`rl_agents.model_io`) and a demonstrations file (:mod:`rl_agents.train`)
#: record the version they were made under: a model of another version is refused, stale
#: demonstrations are recomputed. Bump it whenever a feature is added, dropped, reordered or
#: computed differently. 1: up to 2026-12-04 (a file without the record is taken as 1);
#: 2: ``pickup_closes_in_h`` and ``pickup_margin_h`` take the time a node holding the parcel
#: closes for good, not its next closing (a lunch break, an outage).
FEATURES_VERSION = 2
#: The version of a model or demonstrations file whose record has no ``features_version``
UNRECORDED_FEATURES_VERSION = 1

#: What each version changed, for the messages that name them.
FEATURES_VERSIONS = {
    1: "the pickup features at a node's next closing",
    2: "the pickup features at a node's closing for good",
}

#: Features of the focus order.
ORDER_FEATURES = (
    "to_window_start_h",
    "to_window_end_h",
    "window_width_h",
    "service_min",
    "units_10",
    "penalty_10k",
    "num_pickups",
    "ready_in_h",
    "trip_h",
    "age_h",
    "times_offered_10",
    "num_feasible",
    "best_cost_1k",
    "best_true_cost_1k",
    "pickup_closes_in_h",
)
#: Features of each candidate courier slot.
COURIER_FEATURES = (
    "feasible",
    "cost_1k",
    "true_cost_1k",
    "cost_above_best_1k",
    "lateness_h",
    "slack_h",
    "distance_km",
    "end_delay_h",
    "used",
    "idle",
    "stops_10",
    "free_in_h",
    "shift_left_h",
    "tail_cost_1k",
    "eta_pickup_h",
    "van",
    "load_share",
    "rank",
    "pickup_margin_h",
)
#: Features of the other waiting orders.
PENDING_FEATURES = (
    "to_window_end_h",
    "to_window_start_h",
    "age_h",
    "from_focus_delivery_h",
    "from_focus_pickup_h",
    "penalty_10k",
)
#: Features of the whole situation.
GLOBAL_FEATURES = (
    "time_sin",
    "time_cos",
    "day_fraction",
    "pending_10",
    "arrivals_30min_10",
    "arrivals_60min_10",
    "on_shift_share",
    "used_share",
    "idle_used_share",
    "is_arrival",
    "is_tick",
)


@dataclass(frozen=True)
class FeatureParams:
    """Sizes of the padded arrays and how courier slots are filled.

    ``num_candidates`` courier slots K: the couriers able to serve the order (on shift, with
    its skills) already working (used today or holding stops) that reach its first pickup
    soonest, with up to ``num_new`` slots kept
    for the nearest couriers that have not started yet (more when fewer are working);
    ``num_pending`` other waiting orders. Postponing is not allowed for an order that must go
    now: one whose earliest feasible delivery is less than ``postpone_slack_s`` before its
    window closes (None: postponing is always allowed).
    """

    num_candidates: int = 6
    num_pending: int = 8
    num_new: int = 2
    postpone_slack_s: float | None = 300.0

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise ValueError("num_candidates must be at least 1")
        if not 0 <= self.num_new <= self.num_candidates:
            raise ValueError("num_new must be between 0 and num_candidates")
        if self.num_pending < 0:
            raise ValueError("num_pending must be non-negative")


@dataclass
class Decision:
    """One decision as the agent sees it: observation, mask, and the couriers behind the slots.

    ``tails[k]`` is the shift-hours cost a first assignment would commit courier
    ``slot_courier[k]`` to (0 for couriers already working), see :meth:`Featurizer.tail_cost`.
    """

    obs: dict[str, NDArray[np.float32]]
    mask: NDArray[np.bool_]
    slot_courier: list[int]
    quotes: list[Quote]
    tails: list[float] = field(default_factory=list)
    any_feasible: bool = False


def _floats(values: Any) -> list[float]:
    """``values`` as float64, then Python floats."""
    out: list[float] = np.asarray(values, dtype=np.float64).tolist()
    return out


def observation_space(params: FeatureParams) -> spaces.Dict:
    """The Dict observation space for ``params``."""
    k, p = params.num_candidates, params.num_pending

    def box(*shape: int) -> spaces.Box:
        return spaces.Box(-CLIP, CLIP, shape=shape, dtype=np.float32)

    def unit(*shape: int) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)

    return spaces.Dict(
        {
            "order": box(len(ORDER_FEATURES)),
            "couriers": box(k, len(COURIER_FEATURES)),
            "courier_mask": unit(k),
            "pending": box(max(p, 1), len(PENDING_FEATURES)),
            "pending_mask": unit(max(p, 1)),
            "global": box(len(GLOBAL_FEATURES)),
        }
    )


class Featurizer:
    """Builds observations and action masks for one simulated day at a time."""

    def __init__(self, params: FeatureParams | None = None) -> None:
        self.params = params if params is not None else FeatureParams()
        self.space = observation_space(self.params)
        self._view: DispatchView | None = None
        self._offered: dict[int, int] = {}

    @property
    def num_actions(self) -> int:
        """K courier slots plus postpone."""
        return self.params.num_candidates + 1

    @property
    def postpone_action(self) -> int:
        """The action index that postpones the order."""
        return self.params.num_candidates

    def reset(self, view: DispatchView) -> None:
        """Cache the day's static arrays (call after the simulator's reset)."""
        self._view = view
        w = view.world
        o = view.orders
        self._offered = {}
        self._tw_start_list = _floats(o.tw_start)
        self._tw_end_list = _floats(o.tw_end)
        self._created_list = _floats(o.created_s)
        self._created_sorted_list = _floats(np.sort(np.asarray(o.created_s, dtype=np.float64)))
        self._penalty_list = _floats(o.penalty_cents)
        self._location_list: list[int] = np.asarray(o.location, dtype=np.int64).tolist()
        self._service_list = _floats(o.service_s)
        self._units_list = _floats([d[0] if d else 0.0 for d in o.demand])
        self._shift_end_list = _floats(w.shift_end_s)
        self._rate_list = _floats(w.cost_per_hour_cents)
        per_km = np.asarray(w.cost_per_km_cents, dtype=np.float64)
        cap = np.asarray(w.capacity, dtype=np.float64)
        cap_units = cap[:, 0] if cap.ndim == 2 and cap.shape[1] else np.full(w.num_vehicles, np.inf)
        self._duration = w.travel.duration_s
        low = float(per_km.min()) if per_km.size else 0.0
        self._van_list = [1.0 if x > low else 0.0 for x in per_km.tolist()]
        self._cap_list = [float(x) for x in cap_units.tolist()]
        self._node_final = [node.closes_for_good_s() for node in w.nodes]

    def release_s(self, o: int, horizon_s: float | None) -> float:
        """When order ``o`` may be dispatched (``-inf``: at once).

        ``horizon_s`` before its window opens, or before a node holding one of its parcels
        closes for good, whichever comes first: an order for the evening whose parcel waits at
        a store that closes at 20:00 must be collected before 20:00.
        """
        if horizon_s is None:
            return -math.inf
        view = self._view
        assert view is not None, "call reset(view) first"
        t = self._tw_start_list[o]
        for st in view.pickup_stops(o):
            if st.node >= 0:
                t = min(t, self._node_final[st.node])
        return t - horizon_s

    # ------------------------------------------------------------------
    def tail_cost(self, c: int, now: float) -> float:
        """Courier time a first assignment would commit: rate x the rest of the shift (cents).

        The twin charges a courier's hours from its first departure until it is home, and a
        courier without work waits for more until its shift ends; cheapest insertion's quote
        only charges the extra route time (and the fixed cost).
        """
        view = self._view
        assert view is not None
        if not math.isnan(view.first_departure(c)):
            return 0.0
        end = self._shift_end_list[c]
        if not math.isfinite(end):
            return 0.0
        return self._rate_list[c] * max(0.0, end - now) / HOUR

    def candidates(
        self, state: DecisionState, first_pick: int, first_dep: list[float]
    ) -> list[int]:
        """The candidate couriers for the focus order, whose first pickup is at ``first_pick``:
        those able to serve it (on shift, with its skills: ``can_serve``), working first, then
        new, by ETA.

        ``first_dep[c]`` is when courier ``c`` first left (NaN if it has not worked yet).
        """
        k = self.params.num_candidates
        view = self._view
        assert view is not None, "call reset(view) first"
        on = view.can_serve(state.focus_order).tolist()
        if not any(on):
            return []
        # Python floats and a stable sort: the same numbers and order as numpy's stable argsort.
        travel = self._duration[state.courier_location, first_pick].tolist()
        eta = [a + t for a, t in zip(state.courier_available_s.tolist(), travel, strict=True)]
        num_stops = state.courier_num_stops.tolist()
        committed = state.committed
        busy: list[int] = []
        fresh: list[int] = []
        for c, on_c in enumerate(on):
            if not on_c:
                continue
            if first_dep[c] == first_dep[c] or _has_work(
                state.routes[c], committed[c], num_stops[c]
            ):
                busy.append(c)
            else:
                fresh.append(c)
        busy.sort(key=eta.__getitem__)
        fresh.sort(key=eta.__getitem__)
        n_new = min(self.params.num_new, len(fresh))
        n_busy = min(k - n_new, len(busy))
        n_new = min(k - n_busy, len(fresh))
        return busy[:n_busy] + fresh[:n_new]

    def decide_inputs(self, state: DecisionState) -> Decision:
        """Observation and mask for the focus order of ``state`` (which must have one)."""
        view = self._view
        assert view is not None, "call reset(view) first"
        o = state.focus_order
        if o < 0:
            raise ValueError("the state has no focus order")
        p = self.params
        k_slots = p.num_candidates
        now = state.time_s
        offered = self._offered[o] = self._offered.get(o, 0) + 1
        stops = view.pickup_stops(o)
        loc_o = self._location_list[o]
        first_pick = stops[0].location if stops else loc_o
        first_dep = [view.first_departure(c) for c in range(state.num_couriers)]
        cands = self.candidates(state, first_pick, first_dep)
        quotes = [view.quote(o, c) for c in cands]
        if len(cands) > 1:
            ordering = sorted(
                range(len(cands)),
                key=lambda i: (not quotes[i].feasible, quotes[i].cost_delta_cents, cands[i]),
            )
            cands = [cands[i] for i in ordering]
            quotes = [quotes[i] for i in ordering]
        shift_end = self._shift_end_list
        rate = self._rate_list
        tails = [
            0.0
            if first_dep[c] == first_dep[c] or not math.isfinite(shift_end[c])
            else rate[c] * max(0.0, shift_end[c] - now) / HOUR
            for c in cands
        ]
        feasible = [q.feasible for q in quotes]
        any_ok = any(feasible)
        best = min((q.cost_delta_cents for q in quotes if q.feasible), default=0.0)
        best_true = min(
            (q.cost_delta_cents + t for q, t in zip(quotes, tails, strict=True) if q.feasible),
            default=0.0,
        )

        # Focus order.
        ready = max((view.ready_estimate(o, st.node) for st in stops), default=now)
        # when the first node holding one of its parcels closes for good (the parcel is lost
        # then); a closing it reopens after (a lunch break, an outage) only delays the pickup
        node_final = self._node_final
        closes = min((node_final[st.node] for st in stops if st.node >= 0), default=math.inf)
        trip_s = float(self._duration[stops[-1].location if stops else loc_o, loc_o])
        tw_start = self._tw_start_list[o]
        tw_end = self._tw_end_list[o]
        order = [
            (tw_start - now) / HOUR,
            (tw_end - now) / HOUR if tw_end < math.inf else 24.0,
            min(24.0, (tw_end - tw_start) / HOUR),
            self._service_list[o] / 60.0,
            self._units_list[o] / 10.0,
            self._penalty_list[o] / 10_000.0,
            float(len(stops)),
            (ready - now) / HOUR if ready < math.inf else 24.0,
            float(self._duration[first_pick, loc_o]) / HOUR,
            (now - self._created_list[o]) / HOUR,
            offered / 10.0,
            float(sum(feasible)),
            best / 1000.0,
            best_true / 1000.0,
            min(24.0, (closes - now) / HOUR),
        ]

        # Candidate couriers.
        n_c = len(COURIER_FEATURES)
        couriers = [0.0] * (k_slots * n_c)
        cmask = np.zeros(k_slots, dtype=np.float32)
        cmask[: len(cands)] = 1.0
        avail = state.courier_available_s.tolist()
        loc = state.courier_location.tolist()
        idle = state.courier_idle.tolist()
        nstops = state.courier_num_stops.tolist()
        load = state.courier_load[:, 0].tolist() if state.courier_load.ndim == 2 else []
        dur = self._duration
        for i, c in enumerate(cands):
            q = quotes[i]
            tail = tails[i]
            b = i * n_c
            if q.feasible:
                cost = q.cost_delta_cents
                couriers[b] = 1.0
                couriers[b + 1] = cost / 1000.0
                couriers[b + 2] = (cost + tail) / 1000.0
                couriers[b + 3] = (cost - best) / 1000.0
                couriers[b + 4] = q.lateness_s / HOUR
                couriers[b + 5] = (tw_end - q.delivery_start_s) / HOUR
                couriers[b + 6] = q.distance_delta_m / 1000.0
                couriers[b + 7] = q.end_delay_s / HOUR
            couriers[b + 8] = 0.0 if first_dep[c] != first_dep[c] else 1.0
            couriers[b + 9] = 1.0 if idle[c] else 0.0
            couriers[b + 10] = nstops[c] / 10.0
            couriers[b + 11] = (avail[c] - now) / HOUR
            couriers[b + 12] = min(24.0, (shift_end[c] - now) / HOUR)
            couriers[b + 13] = tail / 1000.0
            couriers[b + 14] = (avail[c] + float(dur[loc[c], first_pick]) - now) / HOUR
            couriers[b + 15] = self._van_list[c]
            cap = self._cap_list[c]
            couriers[b + 16] = load[c] / cap if load and 0 < cap < math.inf else 0.0
            couriers[b + 17] = i / k_slots
            if q.feasible and closes < math.inf:
                # when the parcel is collected, roughly: delivery start minus the last leg
                couriers[b + 18] = max(-24.0, (closes - (q.delivery_start_s - trip_s)) / HOUR)
            else:
                couriers[b + 18] = 24.0

        # Other waiting orders (oldest first).
        n_p = max(p.num_pending, 1)
        n_pf = len(PENDING_FEATURES)
        pmask = np.zeros(n_p, dtype=np.float32)
        pend: list[float] = []  # n_p rows of n_pf values, flattened
        if p.num_pending and state.pending.shape[0] > 1:
            # Python floats: the same arithmetic as numpy's float64, without its overhead.
            others = [x for x in state.pending.tolist() if x != o][: p.num_pending]
            pmask[: len(others)] = 1.0
            locs = [self._location_list[x] for x in others]
            from_o = dur[loc_o, locs].tolist()
            from_pick = dur[first_pick, locs].tolist()
            tw_end_l, tw_start_l = self._tw_end_list, self._tw_start_list
            created_l, penalty_l = self._created_list, self._penalty_list
            for i, x in enumerate(others):
                end = tw_end_l[x]
                pend += (
                    (end - now) / HOUR if end < math.inf else 24.0,
                    (tw_start_l[x] - now) / HOUR,
                    (now - created_l[x]) / HOUR,
                    from_o[i] / HOUR,
                    from_pick[i] / HOUR,
                    penalty_l[x] / 10_000.0,
                )
        pend += [0.0] * (n_p * n_pf - len(pend))

        # The situation.
        v = state.num_couriers
        on_shift = state.courier_on_shift.tolist()
        n_on = n_used = n_idle_used = 0
        for c in range(v):
            if on_shift[c]:
                n_on += 1
                if first_dep[c] == first_dep[c]:
                    n_used += 1
                    if idle[c]:
                        n_idle_used += 1
        cs = self._created_sorted_list  # bisect_right: numpy's searchsorted(side="right")
        hi = bisect_right(cs, now)
        lo30 = bisect_right(cs, now - 1800.0)
        lo60 = bisect_right(cs, now - 3600.0)
        tod = now % DAY
        angle = 2.0 * math.pi * tod / DAY
        inv_v = 1.0 / max(1, v)
        glob = [
            math.sin(angle),
            math.cos(angle),
            tod / DAY,
            state.pending.shape[0] / 10.0,
            (hi - lo30) / 10.0,
            (hi - lo60) / 10.0,
            n_on * inv_v,
            n_used * inv_v,
            n_idle_used * inv_v,
            1.0 if state.kind == DecisionKind.ARRIVAL else 0.0,
            1.0 if state.kind == DecisionKind.TICK else 0.0,
        ]
        # Every feature in one array: one clip and one conversion (the obs arrays are views).
        flat = np.array(order + couriers + glob + pend, dtype=np.float64)
        # np.clip as its two ufuncs (the same values, NaN included, with less overhead).
        np.minimum(np.maximum(flat, -CLIP, out=flat), CLIP, out=flat)
        flat32 = flat.astype(np.float32)
        n_o = len(order)
        n_cf = n_o + k_slots * n_c
        n_g = n_cf + len(glob)
        obs = {
            "order": flat32[:n_o],
            "couriers": flat32[n_o:n_cf].reshape(k_slots, n_c),
            "courier_mask": cmask,
            "pending": flat32[n_g:].reshape(n_p, n_pf),
            "pending_mask": pmask,
            "global": flat32[n_cf:n_g],
        }
        mask = np.zeros(k_slots + 1, dtype=bool)
        mask[: len(feasible)] = feasible
        slack = p.postpone_slack_s
        must_go = (
            any_ok
            and slack is not None
            and min(q.delivery_start_s for q in quotes if q.feasible) + slack > tw_end
        )
        mask[k_slots] = not must_go
        return Decision(
            obs=obs, mask=mask, slot_courier=cands, quotes=quotes, tails=tails, any_feasible=any_ok
        )

    def heuristic_action(self, decision: Decision, *, true_cost: bool = False) -> int:
        """Cheapest insertion in slot terms: the cheapest feasible slot, else postpone.

        With ``true_cost`` the cost includes :meth:`tail_cost` (the shift hours a first
        assignment commits).
        """
        if not decision.any_feasible:
            return self.postpone_action
        if not true_cost:
            return 0  # slots are sorted by quoted cost, feasible first
        best, best_i = math.inf, self.postpone_action
        for i, q in enumerate(decision.quotes):
            if q.feasible and q.cost_delta_cents + decision.tails[i] < best:
                best, best_i = q.cost_delta_cents + decision.tails[i], i
        return best_i


__all__ = [
    "CLIP",
    "COURIER_FEATURES",
    "FEATURES_VERSION",
    "FEATURES_VERSIONS",
    "GLOBAL_FEATURES",
    "ORDER_FEATURES",
    "PENDING_FEATURES",
    "UNRECORDED_FEATURES_VERSION",
    "Decision",
    "FeatureParams",
    "Featurizer",
    "observation_space",
]


def _has_work(route: tuple[Stop, ...], committed: Stop | None, num_stops: int) -> bool:
    """Whether a courier has a stop to serve: committed to one, or an order's in its route (a
    courier that has not left with only its driver breaks to take is still new)."""
    if committed is not None and committed.kind != StopType.BREAK:
        return True
    return num_stops > 0 and any(st.kind != StopType.BREAK for st in route)
