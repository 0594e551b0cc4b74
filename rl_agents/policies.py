"""Dispatch policies on the twin's policy hook, registered by name for simulate/whatif/evaluate.

- ``greedy``: nearest idle courier (the classic greedy dispatcher; same as ``nearest``);
- ``euro-greedy[:MIN]`` / ``euro-lazy[:MIN]``: EURO Meets NeurIPS 2022-style epoch dispatch:
  decisions only at epoch boundaries every MIN minutes (default 5, at least 1:
  :data:`EPOCH_MIN_MIN`); *greedy* dispatches every
  waiting order, *lazy* only the orders that must go now (waiting one more epoch would make
  them late); each dispatched order is inserted at its cheapest feasible place;
- ``slots`` / ``slots-tc``: cheapest insertion over the agent's candidate slots (couriers
  already working first, see :class:`~rl_agents.features.FeatureParams`), with the
  environment's waiting rules; ``-tc`` also charges a courier's first assignment the shift hours
  it commits (:meth:`~rl_agents.features.Featurizer.tail_cost`);
- ``slots-drop``: ``slots`` plus the first decision guard below (an order whose lateness
  alone would cost more than its penalty is left out): the guard without a learned model;
- ``model:PATH``: a trained SB3 model (MaskablePPO, PPO or DQN) deciding through the same
  :class:`~rl_agents.features.Featurizer` as the environment, inside two *decision guards*
  (:class:`DecisionGuards`); ``model`` or ``model:standard`` is the model shipped for the
  standard scenario; ``model-plain:PATH`` is the network alone (as the environment plays it).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rl_agents.env import EnvParams
from rl_agents.features import COURIER_FEATURES, Decision, Featurizer
from simulation.decisions import Action, Assign, DecisionKind, DecisionState, Postpone, Quote
from simulation.policies import NearestIdlePolicy, minutes_arg, no_argument, register_policy
from simulation.policies.base import DispatchView, Policy
from simulation.policies.insertion import cheapest_quote

if TYPE_CHECKING:
    from rl_agents.model_io import LoadedModel


# ---------------------------------------------------------------------- decision guards

_MARGIN = COURIER_FEATURES.index("pickup_margin_h")


def least_lateness_cost(quotes: Sequence[Quote], cents_per_min: float) -> float:
    """What the least late feasible insertion's lateness alone costs (cents; inf: none)."""
    late = min((q.lateness_s for q in quotes if q.feasible), default=math.inf)
    return late * cents_per_min / 60.0


def lost_if_postponed(decision: Decision, tick_s: float) -> bool:
    """True when every feasible slot collects the parcel less than a tick before its node closes.

    By the observation's estimate ``pickup_margin_h`` (delivery start minus the last leg, so
    pessimistic: a courier may collect earlier and wait). Postponing such an order to the next
    tick likely loses it for the day (its parcel can no longer be collected): it becomes
    unserved at its penalty.
    """
    margins = [
        float(decision.obs["couriers"][i, _MARGIN])
        for i, q in enumerate(decision.quotes)
        if q.feasible
    ]
    return bool(margins) and max(margins) * 3600.0 < tick_s


@dataclass(frozen=True)
class DecisionGuards:
    """Two rules around a learned dispatcher, for choices its action mask cannot express.

    - ``leave_out_hopeless``: an order whose least late feasible insertion would already pay
      more lateness than the order's penalty is left out for the day (unserved at its
      penalty, the cheaper of the two; later it can only be later) and hidden from the
      network's view of the waiting orders. The environment's mask does not allow postponing
      an order that is already late, so the network cannot make this choice itself; the
      hindsight reference makes it.
    - ``keep_factor``: postponing is not allowed when it would likely lose the order (its
      parcel could no longer be collected after the next tick, :func:`lost_if_postponed`) and the
      order's penalty is more than ``keep_factor`` x its cheapest quoted insertion (None:
      off). Chosen (3) on validation days, not benchmark days.
    """

    leave_out_hopeless: bool = True
    keep_factor: float | None = 3.0

    def hopeless(self, decision: Decision, penalty_cents: float, cents_per_min: float) -> bool:
        """True when the order should be left out for the day."""
        if not self.leave_out_hopeless:
            return False
        return least_lateness_cost(decision.quotes, cents_per_min) > penalty_cents

    def mask(self, decision: Decision, penalty_cents: float, tick_s: float) -> np.ndarray:
        """The decision's action mask, with postponing removed when it would lose the order."""
        mask = decision.mask
        if self.keep_factor is None or not mask[-1] or not decision.any_feasible:
            return mask
        best = min(q.cost_delta_cents for q in decision.quotes if q.feasible)
        if penalty_cents > self.keep_factor * best and lost_if_postponed(decision, tick_s):
            mask = mask.copy()
            mask[-1] = False
        return mask


#: Guards that change nothing (the network alone).
NO_GUARDS = DecisionGuards(leave_out_hopeless=False, keep_factor=None)


def _hide(state: DecisionState, left_out: set[int]) -> DecisionState:
    """``state`` without the orders left out in its list of waiting orders."""
    if not left_out:
        return state
    pending = state.pending
    keep = [x for x in pending.tolist() if x not in left_out]
    if len(keep) == pending.shape[0]:
        return state
    return dataclasses.replace(state, pending=np.asarray(keep, dtype=pending.dtype))


class _EnvironmentRules:
    """The environment's rules around a slot decision, shared by the slot and model policies.

    Each day starts from :meth:`reset`; at a decision an order left out for the day stays out
    and an order not due for dispatch yet waits (as in the environment), else the subclass's
    :meth:`_choose` decides.
    """

    env_params: EnvParams
    featurizer: Featurizer
    _view: DispatchView | None
    _left_out: set[int]

    @property
    def tick_s(self) -> int | None:
        """The environment's tick: waiting orders are offered again this often."""
        return self.env_params.tick_s

    def reset(self, view: DispatchView, *, seed: int) -> None:
        """Prepare the featurizer for the day; no order is left out yet."""
        self._view = view
        self.featurizer.reset(view)
        self._left_out = set()

    def decide(self, state: DecisionState) -> Action | None:
        """The environment's wait or leave-out for the focus order, else :meth:`_choose`."""
        view = self._view
        assert view is not None, "call reset() first"
        o = state.focus_order
        if o < 0:
            return None
        if o in self._left_out:
            return Postpone(o, until_s=math.inf)
        wait = _waits(self.featurizer, self.env_params, state)
        if wait is not None:
            return wait
        return self._choose(view, state, o)

    def _choose(self, view: DispatchView, state: DecisionState, o: int) -> Action:
        raise NotImplementedError


class SlotInsertionPolicy(_EnvironmentRules):
    """Cheapest insertion over the agent's K candidate slots (the imitation expert).

    The environment's rules for waiting apply (orders whose window opens more than
    ``dispatch_horizon_s`` ahead wait; an order that fits nowhere is offered again at the next
    tick). With ``true_cost`` a courier's first assignment is also charged the shift hours it
    commits (:meth:`~rl_agents.features.Featurizer.tail_cost`).
    """

    def __init__(
        self,
        *,
        true_cost: bool = False,
        params: EnvParams | None = None,
        leave_out_hopeless: bool = False,
    ) -> None:
        self.env_params = params if params is not None else EnvParams()
        self.true_cost = true_cost
        self.leave_out_hopeless = leave_out_hopeless
        self.name = "slots-tc" if true_cost else "slots-drop" if leave_out_hopeless else "slots"
        self.featurizer = Featurizer(self.env_params.feature_params())
        self._view: DispatchView | None = None
        self._guards = DecisionGuards(leave_out_hopeless=True, keep_factor=None)
        self._left_out: set[int] = set()

    def _choose(self, view: DispatchView, state: DecisionState, o: int) -> Action:
        """Assign the focus order to the cheapest feasible candidate slot, or let it wait."""
        decision = self.featurizer.decide_inputs(state)
        if (
            self.leave_out_hopeless
            and decision.any_feasible
            and self._guards.hopeless(
                decision, float(view.orders.penalty_cents[o]), _lateness_rate(view)
            )
        ):
            self._left_out.add(o)
            return Postpone(o, until_s=math.inf)
        a = self.featurizer.heuristic_action(decision, true_cost=self.true_cost)
        if a < len(decision.slot_courier):
            return Assign(o, decision.slot_courier[a], resequence=self.env_params.resequence)
        return Postpone(o)


def _lateness_rate(view: DispatchView) -> float:
    """The scenario's lateness price, cents per minute."""
    return float(view.world.scenario.costs.lateness_cents_per_min)


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
        found = cheapest_quote(view, o, view.nearest_couriers(o, self.num_candidates))
        if found is None:
            return Postpone(o)
        best_c, best_q = found
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


class ModelPolicy(_EnvironmentRules):
    """A trained model deciding at each waiting order, with the environment's own rules.

    The model file carries the environment parameters it was trained with (tick, number of
    candidate slots, dispatch horizon), so observations match training exactly. Inference runs
    in numpy (well under a millisecond). ``guards`` (:class:`DecisionGuards`, on by default)
    leave out orders whose lateness would cost more than their penalty and keep valuable
    orders from being lost by postponing; ``NO_GUARDS`` plays the network alone, exactly as
    in the environment (``model-plain:PATH``). The network acts greedily: the allowed action
    of the highest score (no sampling; a ``deterministic`` switch that did nothing is gone).
    """

    def __init__(self, path: str, *, guards: DecisionGuards | None = None) -> None:
        from rl_agents.model_io import load_model

        self.path = path
        self.guards = guards if guards is not None else DecisionGuards()
        self.name = f"model:{path}" if self.guards != NO_GUARDS else f"model-plain:{path}"
        self.model: LoadedModel = load_model(path)
        self.env_params = self.model.env_params
        self.featurizer = Featurizer(self.env_params.feature_params())
        self._view: DispatchView | None = None
        self._left_out: set[int] = set()

    @property
    def left_out(self) -> frozenset[int]:
        """Orders the guards left out today."""
        return frozenset(self._left_out)

    def _choose(self, view: DispatchView, state: DecisionState, o: int) -> Action:
        """Assign or postpone the focus order as the model says (within the guards)."""
        decision = self.featurizer.decide_inputs(_hide(state, self._left_out))
        if not decision.any_feasible:
            return Postpone(o)
        mask = decision.mask
        guards = self.guards
        if guards != NO_GUARDS:
            penalty = float(view.orders.penalty_cents[o])
            if guards.hopeless(decision, penalty, _lateness_rate(view)):
                self._left_out.add(o)
                return Postpone(o, until_s=math.inf)
            mask = guards.mask(decision, penalty, float(self.env_params.tick_s))
        a = self.model.act(decision.obs, mask)
        if a < len(decision.slot_courier) and mask[a]:
            return Assign(o, decision.slot_courier[a], resequence=self.env_params.resequence)
        return Postpone(o)


# ---------------------------------------------------------------------- registry


#: Shortest ``euro-greedy`` / ``euro-lazy`` epoch in minutes, as ``reopt``'s period
#: (:data:`simulation.policies.REOPT_MIN_PERIOD_MIN`): every epoch the twin offers each waiting
#: order again (a 1 s epoch: 86,400 rounds a day, 300 times the default 5 minutes' 288), and
#: ``euro-lazy`` holds back what would not be late within one epoch, which below a minute is
#: shorter than any leg or service the day is made of (it then sends nothing until it is late).
EPOCH_MIN_MIN = 1.0


def _minutes(name: str, arg: str | None, default: float) -> int:
    if arg is None:
        return round(default * 60)
    return minutes_arg(f"{name}:{arg}", arg, "epoch", least_min=EPOCH_MIN_MIN)


def _greedy(arg: str | None) -> Policy:
    no_argument("greedy", arg)
    return NearestIdlePolicy()


def _euro_greedy(arg: str | None) -> Policy:
    return EpochDispatchPolicy(lazy=False, epoch_s=_minutes("euro-greedy", arg, 5))


def _euro_lazy(arg: str | None) -> Policy:
    return EpochDispatchPolicy(lazy=True, epoch_s=_minutes("euro-lazy", arg, 5))


def _slots(arg: str | None) -> Policy:
    no_argument("slots", arg)
    return SlotInsertionPolicy(true_cost=False)


def _slots_tc(arg: str | None) -> Policy:
    no_argument("slots-tc", arg)
    return SlotInsertionPolicy(true_cost=True)


def _slots_drop(arg: str | None) -> Policy:
    no_argument("slots-drop", arg)
    return SlotInsertionPolicy(leave_out_hopeless=True)


def _model(arg: str | None) -> Policy:
    return ModelPolicy(arg or "standard")


def _model_plain(arg: str | None) -> Policy:
    return ModelPolicy(arg or "standard", guards=NO_GUARDS)


def _greedy_spelling(arg: str | None) -> str:
    no_argument("greedy", arg)
    return "nearest"  # the same policy: NearestIdlePolicy()


def _epoch_spelling(name: str) -> Callable[[str | None], str]:
    def spelling(arg: str | None) -> str:
        return f"{name}:{_minutes(name, arg, 5) / 60:g}"  # the seconds it runs, as minutes

    return spelling


def _model_spelling(name: str) -> Callable[[str | None], str]:
    def spelling(arg: str | None) -> str:
        from rl_agents.model_io import shipped_model_path

        # the file load_model reads ('standard', or nothing, the shipped one): 'standard' when
        # it is the shipped one, else the path as given, normalised ('./m.zip' is 'm.zip'), not
        # resolved: an error message shows no install path or working folder (the service's)
        if arg in (None, "standard"):
            return f"{name}:standard"
        shipped = os.path.realpath(shipped_model_path())
        same = os.path.realpath(Path(str(arg))) == shipped
        return f"{name}:{'standard' if same else os.path.normpath(str(arg))}"

    return spelling


def register_policies() -> None:
    """Register the greedy, EURO-style, slot and model policies by name."""
    register_policy("greedy", _greedy, spelling=_greedy_spelling)
    register_policy("euro-greedy", _euro_greedy, spelling=_epoch_spelling("euro-greedy"))
    register_policy("euro-lazy", _euro_lazy, spelling=_epoch_spelling("euro-lazy"))
    register_policy("slots", _slots)
    register_policy("slots-tc", _slots_tc)
    register_policy("slots-drop", _slots_drop)
    register_policy("model", _model, spelling=_model_spelling("model"))
    register_policy("model-plain", _model_plain, spelling=_model_spelling("model-plain"))


__all__ = [
    "EPOCH_MIN_MIN",
    "NO_GUARDS",
    "DecisionGuards",
    "EpochDispatchPolicy",
    "ModelPolicy",
    "SlotInsertionPolicy",
    "least_lateness_cost",
    "lost_if_postponed",
    "register_policies",
]
