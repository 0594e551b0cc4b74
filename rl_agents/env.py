"""``dispatchlab/DynamicDispatch-v0``: dynamic dispatch on the digital twin as a gymnasium env.

::

    import gymnasium, rl_agents
    env = gymnasium.make("dispatchlab/DynamicDispatch-v0", scenario=scenario)
    obs, info = env.reset(seed=7)           # day 7: the same arrivals as simulate(..., seed=7)
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.action_masks().argmax())

One step is one decision of the twin's policy hook about one waiting order (at its arrival,
and at every tick while it waits): assign it to one of K candidate couriers (the twin inserts
it at its cheapest feasible position) or postpone it. Decisions the agent has no say in are
taken by the environment: ticks with nobody waiting are skipped; an order waits until
``dispatch_horizon_s`` before its window opens or before a node holding its parcel closes for
good, whichever is first (:meth:`~rl_agents.features.Featurizer.release_s`); an order no
candidate can take is postponed.

Reward: minus the change of the day's cost in the KPI's units (cents), measured on a
potential ``Phi`` = cost incurred so far + planned cost of what every courier out has left
(the leg under way and its committed stop, its remaining route and its way home: distance,
courier time, lateness) + the shift hours each working courier is committed to (the twin
charges a courier until it is home, and one done waits where it is until its shift ends or
the day closes, whichever is first, then drives home; the day closes once its last order is
released and every courier has done its route) + the
penalty of every order lost so far or planned to be lost (its pickup planned after its node
closes for the day, or, waiting, its parcel at a node closed for good: the twin then keeps
the day open until the horizon's end) + for each other waiting order, the lateness it has
already run up (capped at its penalty). A courier's way home after a wait is priced at the
travel factor when it leaves, as the twin drives it. Assigning an order therefore costs what
it adds to the plan now; an order that is never delivered costs its penalty when the plan
dooms it, or when it is lost (at its node's closing, or at the end of the day). Orders that
cannot be filled at all are lost at release whatever the policy does; their penalty is
credited back at once (zero net reward). At the end
``Phi`` is the day's final ``cost_cents``, so an episode's return is ``-cost_cents`` plus a
constant of the day: maximising return minimises the KPI. On a day that plays as planned
each reward is minus what its decision adds to ``Phi``, the last one too (until session 74
the wait ran to the shift's end, and a day closing before it gave those hours back in one
lump with the last reward; until session 75 an order left waiting at the close, its parcel
at a node closed for good, brought its penalty and the couriers' wait until the horizon's
end with the last reward; :data:`REWARD_VERSION`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from pydantic import Field

from rl_agents.features import Decision, FeatureParams, Featurizer
from scenarios.geo import StrictModel
from scenarios.model import Scenario
from simulation.decisions import Assign, DecisionState, OrderStatus, Postpone, StopType
from simulation.insertion import matrix_rows
from simulation.params import SimParams
from simulation.twin import DispatchSimulator
from simulation.world import World, compile_world

ENV_ID = "dispatchlab/DynamicDispatch-v0"
#: The version of the rewards (the potential they are minus the change of). Bumped whenever a
#: day played alike gives other per-step rewards; a demonstrations file records it (its
#: rewards train the warm start's value head, and its ``rollout`` expert chose by the
#: potential), one of another version is recomputed.
#: 1: until session 73 (files that record none); 2: session 74: a courier done waits until the
#: day closes (every order released, every route done) when that comes before its shift ends,
#: as the twin plays it (it waited until its shift's end: the close gave the hours back in one
#: lump, the day's last reward); 3: session 75: a waiting order whose parcel waits at a node
#: closed for good costs its penalty, and keeps the day open until the horizon's end, as the
#: twin plays it (both came with the last reward: 3,986.8 and 2,880.1 cents on standard days
#: 14 and 17); a courier's way home after a wait is priced at the travel factor when it leaves (it
#: was at its route's: the difference came when it left)
REWARD_VERSION = 3
_LOST = (int(OrderStatus.UNFILLED), int(OrderStatus.UNSERVED))
_UNKNOWN = int(OrderStatus.UNKNOWN)
_PICKUP = int(StopType.PICKUP)
_DELIVERY = int(StopType.DELIVERY)
_BREAK = int(StopType.BREAK)
_FINAL = (
    int(OrderStatus.DELIVERED),
    int(OrderStatus.FAILED),
    int(OrderStatus.UNFILLED),
    int(OrderStatus.UNSERVED),
)


class EnvParams(StrictModel):
    """Knobs of the dispatch environment."""

    tick_s: int = Field(
        default=300, gt=0, description="a waiting order is offered again this often"
    )
    num_candidates: int = Field(default=6, ge=1, le=64, description="courier slots K")
    num_pending: int = Field(default=8, ge=0, le=256, description="other waiting orders observed")
    num_new: int = Field(
        default=2, ge=0, le=64, description="slots kept for couriers that have not started yet"
    )
    dispatch_horizon_s: int | None = Field(
        default=1800,
        ge=0,
        description="orders whose window opens later than this wait (None = never)",
    )
    resequence: bool = Field(
        default=True, description="re-sequence the route after each assignment"
    )
    max_steps: int | None = Field(
        default=None, gt=0, description="truncate an episode after this many decisions"
    )
    reward_scale: float = Field(
        default=1.0, gt=0.0, description="rewards are cents x this (1 = the KPI's units)"
    )

    def feature_params(self) -> FeatureParams:
        """The featurizer's sizes."""
        return FeatureParams(
            num_candidates=self.num_candidates,
            num_pending=self.num_pending,
            num_new=min(self.num_new, self.num_candidates),
            postpone_slack_s=float(self.tick_s),
        )


class DynamicDispatchEnv(gym.Env[dict[str, NDArray[np.float32]], np.int64]):
    """Dynamic dispatch of one simulated day per episode (see the module docstring).

    Which day a reset starts: ``options={"day_seed": s}``; else, with ``day_seeds``, one of
    them (drawn with the env's generator, or in turn with ``cycle=True``: a reset with a
    ``seed`` starts the cycle again from its first day, so a seeded reset is reproducible);
    else the reset's ``seed`` itself (so ``reset(seed=s)`` plays the same day as
    ``simulate(..., seed=s)``); else a random day.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        scenario: Scenario | World | str | None = None,
        params: EnvParams | None = None,
        *,
        day_seeds: Sequence[int] | range | None = None,
        cycle: bool = False,
    ) -> None:
        from rl_agents.scenario import load_scenario_spec, standard_scenario

        if scenario is None:
            scenario = standard_scenario()
        elif isinstance(scenario, str):
            scenario = load_scenario_spec(scenario)
        self.world = scenario if isinstance(scenario, World) else compile_world(scenario)
        self.params = params if params is not None else EnvParams()
        self.day_seeds = day_seeds
        self.cycle = cycle
        self._next_day = 0
        p = self.params
        self.sim = DispatchSimulator(
            self.world,
            params=SimParams(
                tick_s=p.tick_s,
                decide_on_arrival=True,
                decide_on_courier_free=False,
                num_candidates=1,
            ),
        )
        self.featurizer = Featurizer(p.feature_params())
        self._space: spaces.Dict = self.featurizer.space
        self.observation_space = self._space  # type: ignore[assignment]
        self.action_space = spaces.Discrete(self.featurizer.num_actions)
        w = self.world
        self._rate = np.asarray(w.cost_per_hour_cents, dtype=np.float64)
        self._fixed = np.asarray(w.fixed_cost_cents, dtype=np.float64)
        self._shift_end = np.asarray(w.shift_end_s, dtype=np.float64)
        # The same as Python floats (scalar arithmetic on them is several times faster).
        self._rate_list = [float(x) for x in self._rate]
        self._fixed_list = [float(x) for x in self._fixed]
        self._shift_end_list = [float(x) for x in self._shift_end]
        self._dur_rows = matrix_rows(w.travel.duration_s)
        self._late_per_s = float(w.scenario.costs.lateness_cents_per_min) / 60.0
        # When each node stops working for good (a parcel not collected by then is lost).
        self._node_final = [node.closes_for_good_s() for node in w.nodes]
        finite = [t for t in self._node_final if math.isfinite(t)]
        self._first_final = min(finite) if finite else math.inf
        self._check_losses_from = self._first_final - 6 * 3600.0
        # When the twin closes a day with an order still waiting: at its first tick at or
        # after the horizon's end (it keeps the day open until then for such an order).
        ticks = math.ceil(max(0.0, w.horizon_end_s - w.horizon_start_s) / self.params.tick_s)
        self._doomed_close = w.horizon_start_s + ticks * self.params.tick_s
        self._decision: Decision | None = None
        self._state: DecisionState | None = None
        self._done = True
        self._end_unreported = False
        self.day_seed = -1
        self.num_steps = 0

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, NDArray[np.float32]], dict[str, Any]]:
        """Start a day: ``seed`` picks it (``options={"day_seed": s}`` names it directly)."""
        super().reset(seed=seed)
        if seed is not None:
            self._next_day = 0  # a seeded reset replays from the cycle's first day
        if options and "day_seed" in options:
            day = int(options["day_seed"])
        elif self.day_seeds is not None and self.cycle:
            day = int(self.day_seeds[self._next_day % len(self.day_seeds)])
            self._next_day += 1
        elif self.day_seeds is not None:
            seeds = self.day_seeds
            day = int(seeds[int(self.np_random.integers(len(seeds)))])
        elif seed is not None:
            day = int(seed)
        else:
            day = int(self.np_random.integers(2**31 - 1))
        self.day_seed = day
        sim = self.sim
        sim.reset(seed=day)
        self.featurizer.reset(sim)
        od = sim.orders
        self._penalty = np.asarray(od.penalty_cents, dtype=np.float64)
        self._tw_start = np.asarray(od.tw_start, dtype=np.float64)
        self._tw_end = np.asarray(od.tw_end, dtype=np.float64)
        created = np.asarray(od.created_s, dtype=np.float64)
        released = np.maximum(created, self.world.horizon_start_s)
        self._release_order = np.argsort(released, kind="stable")
        # The day's last release: the twin closes the day no earlier (see _potential).
        self._last_release_s = float(released.max()) if released.size else -math.inf
        self._release_ptr = 0
        self._live: set[int] = set()
        self._lost_penalty = 0.0
        self._done = False
        self.num_steps = 0
        self.episode_cost = math.nan
        self._exo = 0.0
        self._phi = 0.0
        terminal = self._advance()
        self._exo = 0.0
        self._end_unreported = terminal
        if terminal:
            # A day without a single decision: the observation is all zeros, and the next
            # step() only reports the end (reward 0: no action can change this day's cost).
            obs = self._zero_obs()
            return obs, self._info()
        self._phi = self._potential()
        assert self._decision is not None
        return self._decision.obs, self._info()

    def step(
        self, action: int | np.integer[Any]
    ) -> tuple[dict[str, NDArray[np.float32]], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` to the focus order, run to the next decision, return the reward.

        On a day that ended during ``reset`` (no decision at all) the first step ignores the
        action and returns the zero observation, reward 0, ``terminated=True`` and the KPIs.
        """
        if self._end_unreported:
            self._end_unreported = False
            self.num_steps += 1
            return self._zero_obs(), 0.0, True, False, self._info()
        if self._done or self._decision is None or self._state is None:
            raise RuntimeError("call reset() before step() (the episode is over)")
        a = int(action)
        decision, state = self._decision, self._state
        o = state.focus_order
        k = self.params.num_candidates
        if 0 <= a < k and a < len(decision.slot_courier) and decision.mask[a]:
            self.sim.apply(Assign(o, decision.slot_courier[a], resequence=self.params.resequence))
        else:
            self.sim.apply(Postpone(o))  # postpone, or an action the mask forbids
        self.num_steps += 1
        before = self._phi
        self._exo = 0.0
        terminal = self._advance()
        after = self.episode_cost if terminal else self._potential()
        reward = (-(after - before) + self._exo) * self.params.reward_scale
        self._phi = after
        truncated = (
            not terminal
            and self.params.max_steps is not None
            and self.num_steps >= self.params.max_steps
        )
        if terminal:
            obs = self._zero_obs()
        else:
            assert self._decision is not None
            obs = self._decision.obs
        return obs, float(reward), terminal, bool(truncated), self._info()

    def action_masks(self) -> NDArray[np.bool_]:
        """Valid actions now: feasible courier slots, and postpone unless the order must go now."""
        if self._decision is None or self._done:
            mask = np.zeros(self.featurizer.num_actions, dtype=bool)
            mask[-1] = True
            return mask
        return self._decision.mask.copy()

    # ------------------------------------------------------------------ internals
    def _zero_obs(self) -> dict[str, NDArray[np.float32]]:
        return {
            k: np.zeros(space.shape or (), dtype=np.float32) for k, space in self._space.items()
        }

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"day_seed": self.day_seed, "time_s": self.sim.now}
        if self._done:
            info["kpis"] = dict(self.sim.result().metrics)
        elif self._state is not None:
            info["order"] = self._state.focus_order
        return info

    def _advance(self) -> bool:
        """Run the twin to the next decision the agent takes; True when the day is over."""
        sim = self.sim
        horizon = self.params.dispatch_horizon_s
        fz = self.featurizer

        def screen(o: int) -> float | None:
            # What the loop below does with a state, for decisions it needs no state for:
            # ticks with nobody offered, and orders held back by the dispatch horizon.
            self._track_releases()
            if o < 0:
                return -math.inf
            release = fz.release_s(o, horizon)
            return release if release > sim.now else None

        while True:
            state = sim.next_decision(screen)
            if state is None or state.focus_order < 0:
                self._track_releases()  # (screen has just done it for an order's decision)
            if state is None:
                self._done = True
                self._decision = None
                self._state = None
                self.episode_cost = float(sim.result().metrics["cost_cents"])
                return True
            o = state.focus_order
            if o < 0:
                continue
            release = fz.release_s(o, horizon)
            if release > state.time_s:
                sim.apply(Postpone(o, until_s=release))
                continue
            decision = fz.decide_inputs(state)
            if not decision.any_feasible:
                sim.apply(Postpone(o))  # nobody can take it now: it waits for the next tick
                continue
            self._decision = decision
            self._state = state
            return False

    def _track_releases(self) -> None:
        """Charge the penalty of orders lost since the last call.

        An order lost during the day (its parcel's node closed before a courier collected it)
        is charged when it happens, not only at the end of the day. An order that cannot be
        filled at release is charged and credited back at once (``_exo``): no policy can
        change that.
        """
        status = self.sim.status
        live = self._live
        if live:
            done = [o for o in live if status[o] in _FINAL]
            for o in done:
                live.discard(o)
                if status[o] in _LOST:
                    self._lost_penalty += float(self._penalty[o])
        order = self._release_order
        ptr = self._release_ptr
        n = order.shape[0]
        while ptr < n:
            o = int(order[ptr])
            s = status[o]
            if s == _UNKNOWN:
                break
            if s in _LOST:
                pen = float(self._penalty[o])
                self._exo += pen
                self._lost_penalty += pen
            elif s not in _FINAL:
                live.add(o)
            ptr += 1
        self._release_ptr = ptr

    def _potential(self) -> float:
        """Estimated cost of the day so far plus what is already committed (cents)."""
        sim = self.sim
        state = self._state
        assert state is not None
        # projected = realised + remaining routes + penalties of waiting orders. A waiting order
        # is not lost yet, so its penalty is left out; what waiting has already cost it (the
        # lateness it will have at the earliest, capped at its penalty) is counted.
        total = sim.projected_cost_cents() + self._lost_penalty
        now = sim.now
        pending = state.pending
        # A waiting order whose parcel waits at a node closed for good (left waiting past the
        # closing; one picked too late is lost at the closing since twin version 10, and its
        # penalty is in _lost_penalty) is never collected: the twin keeps it waiting until
        # the horizon's end, then it is unserved at its penalty (until REWARD_VERSION 3 that
        # penalty, and the couriers' wait until then, came with the day's last reward).
        doomed = self._doomed(pending, now) if pending.size and now >= self._first_final else []
        if doomed:
            pending = np.asarray([o for o in pending.tolist() if o not in doomed], dtype=np.int64)
        if pending.size:
            total -= float(self._penalty[pending].sum())
            over = now - self._tw_end[pending]
            if (over > 0.0).any():
                late = np.minimum(self._late_per_s * np.maximum(over, 0.0), self._penalty[pending])
                total += float(late.sum())
        on_shift = state.courier_on_shift.tolist()
        routes = state.routes
        committed = state.committed
        rate = self._rate_list
        fixed = self._fixed_list
        shift_end = self._shift_end_list
        # When each courier with work leaves its last stop, and when the day closes: the twin
        # closes it once every order of the day is released and every courier has done its
        # route; then a courier done and waiting goes home, before its shift ends. (Until
        # session 74 the wait ran to the shift's end, and the day's end gave back the hours
        # of a close before it in one lump: the last step's reward.)
        last_dep: list[float | None] = [None] * len(routes)
        close = max(now, self._last_release_s, self._doomed_close if doomed else -math.inf)
        for c, route in enumerate(routes):
            if committed[c] is not None or any(st.kind != _BREAK for st in route):
                dep = last_dep[c] = sim.last_departure_s(c)
                close = max(close, dep)
        for c in range(self.world.num_vehicles):
            if not on_shift[c]:
                continue
            unused = math.isnan(sim.first_departure(c))
            # (an unused courier with only its breaks to take takes them where it stands: no
            # departure, no cost)
            doing = committed[c]
            if (
                unused
                and (doing is None or doing.kind == StopType.BREAK)
                and all(st.kind == StopType.BREAK for st in routes[c])
            ):
                continue
            end = min(shift_end[c], close)
            if unused:
                total += fixed[c]
            if math.isfinite(end):
                # done, it waits where it is until its shift ends or the day closes, then
                # drives home (its way home is in its route's planned cost; until session 73
                # the wait ran from its return home, so the way home after its shift went
                # uncounted)
                known = last_dep[c]
                t = known if known is not None else sim.last_departure_s(c)
                wait = end - max(now, t)
                if wait > 0.0:
                    total += rate[c] * (wait + self._home_after_wait_s(c, end)) / 3600.0
        if now >= self._check_losses_from:
            total += self._planned_losses(state)
        return total

    def _doomed(self, pending: NDArray[np.int64], now: float) -> list[int]:
        """The waiting orders with a parcel at a node closed for good by ``now`` (a waiting
        order has none of its parcels collected: nobody ever will)."""
        final = self._node_final
        return [
            o
            for o in pending.tolist()
            if any(st.node >= 0 and final[st.node] <= now for st in self.sim.pickup_stops(o))
        ]

    def _home_after_wait_s(self, c: int, leave_s: float) -> float:
        """How much longer courier ``c``'s way home takes leaving at ``leave_s``, after a wait,
        than its planned cost counts (s): the twin drives it at the travel factor then, the
        route's plan at its own (until REWARD_VERSION 3 the potential kept the plan's)."""
        a, b, counted_s = self.sim.way_home(c)
        if a == b or not math.isfinite(counted_s):
            return 0.0
        return float(self._dur_rows[a][b]) * self.sim.travel_factor(leave_s) - counted_s

    def _planned_losses(self, state: DecisionState) -> float:
        """Penalties of assigned orders whose planned pickup comes after their node closed.

        A forward pass over each route with expected times (travel factor at the courier's
        free time, waits for parcels and windows), like the twin's insertion quotes.
        """
        sim = self.sim
        dur = self._dur_rows if self._dur_rows is not None else self.world.travel.duration_s
        od = sim.orders
        final = self._node_final
        node_svc = float(sim.params.node_pickup_service_s)
        ready_estimate = sim.ready_estimate
        tw_start, service = od.tw_start, od.service_s
        loss = 0.0
        avail: list[float] | None = None
        for c, route in enumerate(state.routes):
            if not route or not any(st.kind == _PICKUP and st.node >= 0 for st in route):
                continue
            if avail is None:
                avail = state.courier_available_s.tolist()
            t = avail[c]
            loc = int(state.courier_location[c])
            f = sim.travel_factor(t)
            for kind, o, location, node, _ in route:
                t += float(dur[loc][location]) * f
                loc = location
                if kind == _PICKUP:
                    if node >= 0:
                        t = max(t, ready_estimate(o, node))
                        if t > final[node]:
                            loss += float(self._penalty[o])
                        t += node_svc
                    else:
                        t = max(t, od.pickup_tw_start[o]) + od.pickup_service_s[o]
                elif kind == _DELIVERY:
                    t = max(t, tw_start[o]) + service[o]
        return loss


def make_env(
    scenario: Scenario | World | str | None = None,
    params: EnvParams | None = None,
    *,
    day_seeds: Sequence[int] | range | None = None,
    cycle: bool = False,
) -> DynamicDispatchEnv:
    """A new environment (what ``gymnasium.make(ENV_ID, ...)`` builds, without wrappers)."""
    return DynamicDispatchEnv(scenario, params, day_seeds=day_seeds, cycle=cycle)


__all__ = ["ENV_ID", "REWARD_VERSION", "DynamicDispatchEnv", "EnvParams", "make_env"]
