"""Dispatch policies on the twin's policy hook, registered by name for simulate/whatif/evaluate.

- ``greedy``: nearest idle courier (the classic greedy dispatcher; same as ``nearest``);
- ``euro-greedy[:MIN]`` / ``euro-lazy[:MIN]``: EURO Meets NeurIPS 2022-style epoch dispatch:
  decisions only at epoch boundaries every MIN minutes (default 5); *greedy* dispatches every
  waiting order, *lazy* only the orders that must go now (waiting one more epoch would make
  them late); each dispatched order is inserted at its cheapest feasible place;
- ``slots`` / ``slots-tc``: cheapest insertion over the agent's candidate slots (couriers
  already working first, see :class:`~rl_agents.features.FeatureParams`), with the
  environment's waiting rules; ``-tc`` also charges a courier's first assignment the shift hours
  it commits (:meth:`~rl_agents.features.Featurizer.tail_cost`);
- ``model:PATH``: a trained SB3 model (MaskablePPO, PPO or DQN) deciding through the same
  :class:`~rl_agents.features.Featurizer` as the environment; ``model`` or ``model:standard`` is
  the model shipped for the standard scenario.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rl_agents.env import EnvParams
from rl_agents.features import Featurizer
from scenarios.errors import InputError
from simulation.decisions import Action, Assign, DecisionKind, DecisionState, Postpone
from simulation.policies import NearestIdlePolicy, register_policy
from simulation.policies.base import DispatchView, Policy

if TYPE_CHECKING:
    from rl_agents.model_io import LoadedModel


class SlotInsertionPolicy:
    """Cheapest insertion over the agent's K candidate slots (the imitation expert).

    The environment's rules for waiting apply (orders whose window opens more than
    ``dispatch_horizon_s`` ahead wait; an order that fits nowhere is offered again at the next
    tick). With ``true_cost`` a courier's first assignment is also charged the shift hours it
    commits (:meth:`~rl_agents.features.Featurizer.tail_cost`).
    """

    def __init__(self, *, true_cost: bool = False, params: EnvParams | None = None) -> None:
        self.env_params = params if params is not None else EnvParams()
        self.true_cost = true_cost
        self.name = "slots-tc" if true_cost else "slots"
        self.featurizer = Featurizer(self.env_params.feature_params())
        self._view: DispatchView | None = None

    @property
    def tick_s(self) -> int | None:
        """Waiting orders are offered again this often."""
        return self.env_params.tick_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Remember the simulator view."""
        self._view = view
        self.featurizer.reset(view)

    def decide(self, state: DecisionState) -> Action | None:
        """Assign the focus order to the cheapest feasible candidate slot, or let it wait."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            return None
        wait = _waits(self.featurizer, self.env_params, state)
        if wait is not None:
            return wait
        decision = self.featurizer.decide_inputs(state)
        a = self.featurizer.heuristic_action(decision, true_cost=self.true_cost)
        if a < len(decision.slot_courier):
            return Assign(o, decision.slot_courier[a], resequence=self.env_params.resequence)
        return Postpone(o)


def _waits(featurizer: Featurizer, params: EnvParams, state: DecisionState) -> Postpone | None:
    """The environment's automatic wait for orders not due for dispatch yet."""
    o = state.focus_order
    release = featurizer.release_s(o, params.dispatch_horizon_s)
    if release > state.time_s:
        return Postpone(o, until_s=release)
    return None


class EpochDispatchPolicy:
    """EURO-style epoch dispatch: decide only every ``epoch_s``; ``lazy`` sends must-go orders only.

    An order *must go* when even its cheapest insertion now delivers less than one epoch before
    its window closes (so waiting for the next epoch would make it late), or when it is
    already late. Orders are inserted at their cheapest feasible place among the
    ``num_candidates`` nearest couriers.
    """

    def __init__(self, *, lazy: bool, epoch_s: int = 300, num_candidates: int = 8) -> None:
        if epoch_s <= 0:
            raise ValueError("epoch_s must be positive")
        self.lazy = lazy
        self.epoch_s = epoch_s
        self.num_candidates = num_candidates
        minutes = epoch_s / 60
        self.name = f"euro-{'lazy' if lazy else 'greedy'}:{minutes:g}"
        self._view: DispatchView | None = None

    @property
    def tick_s(self) -> int | None:
        """The epoch length."""
        return self.epoch_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Remember the simulator view."""
        self._view = view

    def decide(self, state: DecisionState) -> Action | None:
        """Wait for the epoch; then insert every (greedy) or every must-go (lazy) order."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            return None
        if state.kind != DecisionKind.TICK:
            return Postpone(o)
        best_c, best_q = -1, None
        for c in view.nearest_couriers(o, self.num_candidates):
            q = view.quote(o, int(c))
            if q.feasible and (best_q is None or q.cost_delta_cents < best_q.cost_delta_cents):
                best_c, best_q = int(c), q
        if best_q is None:
            return Postpone(o)
        if self.lazy:
            end = view.orders.tw_end[o]
            must_go = (
                not math.isfinite(end)
                or best_q.lateness_s > 0.0
                or best_q.delivery_start_s + self.epoch_s > end
            )
            if not must_go and math.isfinite(end):
                return Postpone(o)
        return Assign(o, best_c)


class ModelPolicy:
    """A trained model deciding at each waiting order, with the environment's own rules.

    The model file carries the environment parameters it was trained with (tick, number of
    candidate slots, dispatch horizon), so observations match training exactly. Inference runs
    in numpy when the network is a plain MLP (sub-millisecond), else through torch.
    """

    def __init__(self, path: str, *, deterministic: bool = True) -> None:
        from rl_agents.model_io import load_model

        self.path = path
        self.name = f"model:{path}"
        self.model: LoadedModel = load_model(path)
        self.env_params = self.model.env_params
        self.featurizer = Featurizer(self.env_params.feature_params())
        self.deterministic = deterministic
        self._view: DispatchView | None = None

    @property
    def tick_s(self) -> int | None:
        """The environment's tick."""
        return self.env_params.tick_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Prepare the featurizer for the day."""
        self._view = view
        self.featurizer.reset(view)

    def decide(self, state: DecisionState) -> Action | None:
        """Assign or postpone the focus order as the model says."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            return None
        wait = _waits(self.featurizer, self.env_params, state)
        if wait is not None:
            return wait
        decision = self.featurizer.decide_inputs(state)
        if not decision.any_feasible:
            return Postpone(o)
        a = self.model.act(decision.obs, decision.mask)
        if a < len(decision.slot_courier) and decision.mask[a]:
            return Assign(o, decision.slot_courier[a], resequence=self.env_params.resequence)
        return Postpone(o)


# ---------------------------------------------------------------------- registry


def _minutes(name: str, arg: str | None, default: float) -> int:
    if arg is None:
        return round(default * 60)
    try:
        minutes = float(arg)
    except ValueError:
        raise InputError("policies", f"{name}:{arg}: expected minutes, e.g. {name}:5") from None
    if not minutes > 0:
        raise InputError("policies", f"{name}:{arg}: the epoch must be positive")
    return max(1, round(minutes * 60))


def _greedy(arg: str | None) -> Policy:
    return NearestIdlePolicy()


def _euro_greedy(arg: str | None) -> Policy:
    return EpochDispatchPolicy(lazy=False, epoch_s=_minutes("euro-greedy", arg, 5))


def _euro_lazy(arg: str | None) -> Policy:
    return EpochDispatchPolicy(lazy=True, epoch_s=_minutes("euro-lazy", arg, 5))


def _slots(arg: str | None) -> Policy:
    return SlotInsertionPolicy(true_cost=False)


def _slots_tc(arg: str | None) -> Policy:
    return SlotInsertionPolicy(true_cost=True)


def _model(arg: str | None) -> Policy:
    return ModelPolicy(arg or "standard")


def register_policies() -> None:
    """Register ``greedy``, ``euro-greedy``, ``euro-lazy``, ``slots``, ``slots-tc``, ``model``."""
    register_policy("greedy", _greedy)
    register_policy("euro-greedy", _euro_greedy)
    register_policy("euro-lazy", _euro_lazy)
    register_policy("slots", _slots)
    register_policy("slots-tc", _slots_tc)
    register_policy("model", _model)


__all__ = [
    "EpochDispatchPolicy",
    "ModelPolicy",
    "SlotInsertionPolicy",
    "register_policies",
]
