"""Dispatch policies on the twin's policy hook, and a registry of them by name.

A policy spec is ``name`` or ``name:argument``:

- ``plan``: no decisions (replay the plan; orders outside it stay unserved);
- ``nearest``: nearest idle courier;
- ``insertion`` / ``insertion:K``: cheapest insertion (over the K couriers nearest the pickup,
  8 by default, or ``all``); ``insertion:ontime`` / ``insertion:K:ontime``: the cheapest
  insertion that delivers the order on time, the cheapest of all only when none does (a
  courier not yet used is opened for it only when the lateness it avoids costs as much as the
  extra);
- ``reopt:MIN`` / ``reopt:MIN:ENGINE`` / ``reopt:MIN:ENGINE:BUDGET``: re-plan all open orders
  with the routing solver every MIN minutes (at least 1; engine ``greedy`` by default: one
  construction, no search, deterministic; ``pyvrp``, ``ortools``, ``auto``). The searches stop
  on their work, about 1 s of CPU on the RL standard scenario's larger re-plans, so the day depends
  on the seed only: PyVRP after 1,000 iterations, OR-Tools after 100 solutions (``auto``:
  whichever runs), 120 s of wall time only a safety cap. ``BUDGET`` ``N`` sets the iterations
  (``reopt:5:pyvrp:3000``) or solutions (``reopt:5:ortools:300``; not for ``auto``), ``Ns``
  a wall-clock limit of N seconds instead (``reopt:5:pyvrp:1s``: as every engine but greedy
  ran before session 57; the day then depends on the machine's load).

Other packages add their own with :func:`register_policy` (the RL agents do).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Sequence

from scenarios.errors import InputError
from scenarios.geo import MAX_INT
from simulation.policies.base import DispatchView, Policy
from simulation.policies.insertion import CheapestInsertionPolicy
from simulation.policies.nearest import NearestIdlePolicy
from simulation.policies.reopt import (
    REOPT_CAP_S,
    REOPT_ITERATIONS,
    REOPT_SOLUTIONS,
    PeriodicReoptPolicy,
)

PolicyFactory = Callable[[str | None], Policy | None]
#: ``spelling(argument)``: the one spelling of the policy ``name[:argument]`` runs (an
#: InputError for a bad argument), see :func:`canonical_spec`
PolicySpelling = Callable[[str | None], str]

_REGISTRY: dict[str, PolicyFactory] = {}
_SPELLINGS: dict[str, PolicySpelling] = {}


def register_policy(
    name: str, factory: PolicyFactory, *, spelling: PolicySpelling | None = None
) -> None:
    """Make ``name[:argument]`` specs build policies with ``factory(argument)``.

    ``spelling`` gives the one spelling of the policy a spec runs, when several spellings run
    the same one (a default argument written out, another name for it): :func:`repeated_policy`
    then refuses the second of them.
    """
    _REGISTRY[name] = factory
    if spelling is not None:
        _SPELLINGS[name] = spelling
    else:
        _SPELLINGS.pop(name, None)


def available_policies() -> list[str]:
    """Registered policy names."""
    return sorted(_REGISTRY)


def unknown_policy(name: str, names: Iterable[str]) -> str:
    """The reason a policy ``name`` outside ``names`` is refused."""
    return f"unknown policy {name!r}; choose from {', '.join(sorted(names))}"


def make_policy(spec: str) -> Policy | None:
    """Build the policy a spec names (None for ``plan``: no decisions)."""
    name, sep, arg = spec.strip().partition(":")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise InputError("policies", unknown_policy(name, available_policies()))
    if sep and not arg:  # 'reopt:' ran the default period, as if the ':' were not there
        raise InputError("policies", empty_argument(spec.strip()))
    return factory(arg or None)


def empty_argument(spec: str) -> str:
    """The reason a spec ending in ':' is refused."""
    return f"{spec}: nothing after ':' (give an argument, or leave out the ':')"


def check_policy(
    spec: str,
    field: str,
    *,
    has_plan: bool,
    hint: str = "",
    only: Collection[str] | None = None,
) -> None:
    """InputError under ``field`` for an unknown or malformed spec, or ``plan`` without a plan.

    ``hint`` ends the no-plan message (where to give the plan); ``only``: the policy names
    taken (default every registered one).
    """
    name = spec.strip().partition(":")[0]
    if only is not None and name not in only:
        raise InputError(field, unknown_policy(name, only))
    try:
        make_policy(spec)
    except InputError as err:
        raise InputError(field, err.reason) from None
    if spec.strip().partition(":")[0] == "plan" and not has_plan:
        raise InputError(field, f"policy 'plan' needs a plan{hint}")


def minutes_arg(spec: str, text: str, what: str, *, least_min: float = 0.0) -> int:
    """Seconds (at least 1) of the minutes ``text`` of ``spec``: finite, above 0, at most MAX_INT s.

    ``what`` names the quantity in the errors (``period``, ``epoch``); ``least_min``, when
    above 0, is the fewest minutes allowed. A period that rounds to 0 s would make the twin
    decide again at the same instant for ever; NaN and infinities cannot be rounded to seconds.
    """
    try:
        minutes = float(text)
    except ValueError:
        name = spec.partition(":")[0]
        raise InputError("policies", f"{spec}: expected minutes, e.g. {name}:5") from None
    if not math.isfinite(minutes):
        raise InputError("policies", f"{spec}: the {what} must be a finite number of minutes")
    if minutes <= 0:
        raise InputError("policies", f"{spec}: the {what} must be positive")
    if minutes < least_min:
        unit = "minute" if least_min == 1 else "minutes"
        raise InputError("policies", f"{spec}: the {what} must be at least {least_min:g} {unit}")
    if minutes * 60 > MAX_INT:
        raise InputError("policies", f"{spec}: the {what} must be at most {MAX_INT / 60:.4g} min")
    return max(1, round(minutes * 60))


def no_argument(name: str, arg: str | None) -> None:
    """InputError when a policy that takes no argument is given one (``nearest:5``).

    The argument was ignored: a typo ran another policy than meant, under the spec's name.
    """
    if arg is not None:
        raise InputError("policies", f"{name}:{arg}: {name} takes no argument")


def _plan(arg: str | None) -> None:
    no_argument("plan", arg)  # no decisions: the plan is replayed


def _nearest(arg: str | None) -> Policy:
    no_argument("nearest", arg)
    return NearestIdlePolicy()


def _insertion(arg: str | None) -> CheapestInsertionPolicy:
    spec = f"insertion:{arg}"
    count, sep, choice = (arg or "").partition(":")
    on_time = False
    if count == ONTIME and not sep:  # insertion:ontime
        count, on_time = "", True
    elif sep:
        if not choice:
            raise InputError("policies", empty_argument(spec))
        if count == ONTIME:
            raise InputError(
                "policies", f"{spec}: '{ONTIME}' comes last (insertion:{choice}:{ONTIME})"
            )
        if choice != ONTIME:
            raise InputError(
                "policies", f"{spec}: expected '{ONTIME}' after the couriers (insertion:8:{ONTIME})"
            )
        if not count:
            raise InputError("policies", f"{spec}: expected a number of couriers or 'all'")
        on_time = True
    if not count:
        return CheapestInsertionPolicy(num_candidates=8, on_time_first=on_time)
    if count == "all":
        return CheapestInsertionPolicy(num_candidates=None, on_time_first=on_time)
    try:
        k = int(count)
    except ValueError:
        raise InputError("policies", f"{spec}: expected a number of couriers") from None
    if k < 1:
        raise InputError("policies", f"{spec}: needs at least one courier")
    return CheapestInsertionPolicy(num_candidates=k, on_time_first=on_time)


#: ``insertion:K:ontime``'s word for the cheapest on-time insertion first.
ONTIME = "ontime"


#: Shortest ``reopt`` period in minutes: each re-plan solves the whole open day again, so a
#: period of seconds ran a 5-order day for minutes and a larger one until the job's timeout.
REOPT_MIN_PERIOD_MIN = 1.0

#: Longest wall-clock budget a ``reopt`` spec may give (RoutingParams' bound).
REOPT_MAX_S = 86_400.0


def _reopt(arg: str | None) -> PeriodicReoptPolicy:
    spec = f"reopt:{arg}"
    minutes_s, _, rest = (arg or "5").partition(":")
    every_s = minutes_arg(spec, minutes_s, "period", least_min=REOPT_MIN_PERIOD_MIN)
    engine, sep, budget = rest.partition(":")
    engine = engine or "greedy"
    if engine not in ("greedy", "pyvrp", "ortools", "auto"):
        raise InputError("policies", f"{spec}: unknown engine {engine!r}")
    if sep and not budget:
        raise InputError("policies", empty_argument(spec))
    if engine == "greedy" and budget:  # no search: the time limit only caps the construction
        raise InputError(
            "policies", f"{spec}: the greedy engine builds one plan and takes no budget"
        )
    if not budget:  # the engine's work budget (auto: both; greedy: none), the clock a cap
        return PeriodicReoptPolicy(every_s=every_s, engine=engine)
    if re.fullmatch(r"[0-9]+(\.[0-9]*)?s", budget):
        seconds = float(budget[:-1])
        if not 0 < seconds <= REOPT_MAX_S:
            raise InputError(
                "policies", f"{spec}: the time limit must be above 0 and at most {REOPT_MAX_S:g} s"
            )
        return PeriodicReoptPolicy(
            every_s=every_s,
            engine=engine,
            max_iterations=None,
            max_solutions=None,
            time_limit_s=seconds,
        )
    what = {"pyvrp": "iterations", "ortools": "solutions"}.get(engine)
    if what is None:
        raise InputError(
            "policies",
            f"{spec}: auto may run PyVRP or OR-Tools, whose budgets count different things: "
            f"name the engine (reopt:{minutes_s}:pyvrp:N iterations, reopt:{minutes_s}:"
            f"ortools:N solutions) or give seconds (reopt:{minutes_s}:auto:1s)",
        )
    default = REOPT_ITERATIONS if engine == "pyvrp" else REOPT_SOLUTIONS
    if not re.fullmatch(r"[0-9]+", budget):
        raise InputError(
            "policies",
            f"{spec}: expected a number of {what} (reopt:{minutes_s}:{engine}:{default}) "
            f"or seconds (reopt:{minutes_s}:{engine}:1s)",
        )
    count = int(budget)
    if not 1 <= count <= MAX_INT:
        raise InputError(
            "policies", f"{spec}: the {what} must be at least 1 and at most {MAX_INT:.0e}"
        )
    return PeriodicReoptPolicy(
        every_s=every_s,
        engine=engine,
        max_iterations=count if engine == "pyvrp" else None,
        max_solutions=count if engine == "ortools" else None,
        time_limit_s=REOPT_CAP_S,
    )


def canonical_spec(spec: str) -> str:
    """One spelling per policy: ``insertion`` is ``insertion:8``, ``insertion:ontime`` is
    ``insertion:8:ontime``, ``reopt:5:greedy`` is ``reopt:5``, and those a policy registered
    with its ``spelling`` (the RL agents': ``euro-greedy`` is ``euro-greedy:5``, ``greedy`` is
    ``nearest``, ``model`` is ``model:standard``, the shipped model's file).

    A spec this module cannot read comes back stripped (its own check names what is wrong).
    """
    text = spec.strip()
    name, sep, arg = text.partition(":")
    try:
        if name == "insertion":
            policy = _insertion(arg or None)
            k = policy.num_candidates
            tail = f":{ONTIME}" if policy.on_time_first else ""
            return f"insertion:{'all' if k is None else k}{tail}"
        if name == "reopt":
            return _reopt(arg or None).name
        spelling = _SPELLINGS.get(name)
        if spelling is not None and (arg or not sep):  # 'model:' is refused, not 'model'
            return spelling(arg or None)
    except InputError:
        pass
    return text


def repeated_policy(specs: Sequence[str]) -> tuple[int, str] | None:
    """The first spec that runs a policy an earlier one runs, and why (None: all differ).

    Such a pair would play the same days twice: duplicate rows in the tables and a Holm
    family counted twice the size.
    """
    seen: dict[str, str] = {}
    for i, spec in enumerate(specs):
        key = canonical_spec(spec)
        if key in seen:
            first = seen[key]
            if first == spec.strip():
                return i, f"{first!r} is given twice"
            return (
                i,
                f"{spec.strip()!r} is given twice: it runs the same policy as {first!r} ({key})",
            )
        seen[key] = spec.strip()
    return None


register_policy("plan", _plan)
register_policy("nearest", _nearest)
register_policy("insertion", _insertion)
register_policy("reopt", _reopt)
#: the policies this package registers itself: every process has them, whatever it imported
#: (the service's simulation endpoints take these only, see :func:`check_policy`)
BUILTIN_POLICIES = frozenset(_REGISTRY)

__all__ = [
    "BUILTIN_POLICIES",
    "REOPT_CAP_S",
    "REOPT_ITERATIONS",
    "REOPT_MIN_PERIOD_MIN",
    "REOPT_SOLUTIONS",
    "CheapestInsertionPolicy",
    "DispatchView",
    "NearestIdlePolicy",
    "PeriodicReoptPolicy",
    "Policy",
    "PolicyFactory",
    "PolicySpelling",
    "available_policies",
    "canonical_spec",
    "empty_argument",
    "make_policy",
    "minutes_arg",
    "no_argument",
    "register_policy",
    "repeated_policy",
]
