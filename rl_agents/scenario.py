"""The standard dynamic-dispatch scenario of the RL benchmark, and scenario specs for the CLI.

The *standard scenario* is a documented variant of
:func:`scenarios.generate.generate_city`::

    generate_city(seed=1, num_orders=100, num_nodes=4, num_couriers=12,
                  params=CityParams(extra_arrivals_per_day=100, num_skus=50,
                                    dc_days_of_cover=4.5, dark_store_days_of_cover=1.2,
                                    store_days_of_cover=0.75, generator_version=1))

with three changes, each chosen so that the benchmark measures *dispatching*:

- the noise is off (``StochasticParams.deterministic()``): travel, service and pick times are
  their expected values, like the EURO Meets NeurIPS 2022 dynamic VRPTW, so the only uncertainty
  is which orders arrive when, and the hindsight reference is an exact replay;
- drivers' breaks are removed (until session 55 the twin took only a plan's breaks, so a
  dynamic policy never took them while a hindsight plan did; the trained models and every
  stored RL table were made on days without breaks, which play as before);
- a 50-SKU catalogue with three times the default stock cover (the generator sizes stock for
  the listed orders only, and a day has twice as many), so that few orders are unfillable
  (their penalty is the same for every policy and only dilutes differences).

A day is the scenario's 100 orders (released at their ``created_s``) plus the day's Poisson
arrivals (about 100 more, drawn from the day's seed), over 4 nodes and 12 couriers (4 vans,
8 bikes) on shifts between 07:00 and 24:00. The fleet is generator version 1's (shifts from
fixed patterns): the trained models and every stored RL table were made on it, so the
standard day stays the same as the generator's default moved to version 2 (session 53).

Seeds: training draws days from ``TRAIN_SEEDS`` (1,000,000 and up); evaluation uses seeds
below 1,000,000 (``dispatchlab evaluate --seeds 1..100``), so they never overlap.
"""

from __future__ import annotations

from pathlib import Path

from scenarios.errors import InputError
from scenarios.generate import CityParams, generate_city
from scenarios.geo import MAX_SEED
from scenarios.model import Scenario
from scenarios.stochastic import StochasticParams

STANDARD = "standard"
#: Training days are drawn from this range of day seeds; evaluation seeds lie below it.
TRAIN_SEEDS = range(1_000_000, 2_000_000)
#: Seeds the benchmark evaluates on (held out: disjoint from ``TRAIN_SEEDS``).
EVAL_SEEDS = range(1, 101)
#: Seeds of the evaluation callback during training (held out too, not the benchmark's).
VALIDATION_SEEDS = range(900_001, 900_031)
#: Most day seeds one ``--seeds`` takes (a day each; the HTTP service takes 1,000).
MAX_SEEDS = 100_000

_COVER = 3.0


def standard_scenario() -> Scenario:
    """The benchmark's city day: 100 + ~100 arriving orders, 4 nodes, 12 couriers, no noise."""
    params = CityParams(
        extra_arrivals_per_day=100.0,
        num_skus=50,
        dc_days_of_cover=1.5 * _COVER,
        dark_store_days_of_cover=0.4 * _COVER,
        store_days_of_cover=0.25 * _COVER,
        generator_version=1,  # the fleet the models and the stored RL tables were made on
    )
    city = generate_city(seed=1, num_orders=100, num_nodes=4, num_couriers=12, params=params)
    return dispatch_variant(city, name="rl-standard")


def dispatch_variant(scenario: Scenario, *, name: str | None = None) -> Scenario:
    """``scenario`` without noise and without drivers' breaks (what the benchmark measures)."""
    vehicles = [v.model_copy(update={"breaks": []}) for v in scenario.vehicles]
    return scenario.model_copy(
        update={
            "name": name or f"{scenario.name}-dispatch",
            "stochastic": StochasticParams.deterministic(),
            "vehicles": vehicles,
        }
    )


def load_scenario_spec(spec: str) -> Scenario:
    """``standard`` (the benchmark scenario) or a path to any supported scenario file."""
    if spec.strip() == STANDARD:
        return standard_scenario()
    path = Path(spec)
    if not path.exists():
        raise InputError("scenario", f"{spec!r} is neither 'standard' nor an existing file")
    from scenarios.io import load_scenario

    try:
        return load_scenario(path)
    except InputError as err:
        # the file itself, not a field inside it: the reader's advice to pass --format names
        # an option that train and evaluate do not have (the format is always told from it)
        # (errors about the path itself, a folder or a file past the size cap, stay ``path:``
        # as every command says them)
        if err.field != "format":
            raise
        told = err.reason.removesuffix("; pass --format")
        reason = f"{told} (a scenario file: JSON, Solomon, Li & Lim, VRPLIB or VROOM)"
        raise InputError("scenario", reason, source=err.source) from None


def check_dispatch_scenario(scenario: Scenario) -> None:
    """Refuse a scenario whose days hold no dispatch decision to compare or learn from: no
    orders and no arrivals expected (field ``orders``), or no couriers (``vehicles``).

    Every policy played such a day the same way (cost 0, or every order unserved at the same
    cost): ``evaluate`` printed a table of identical rows, and the service queued the job.
    """
    from simulation.world import check_has_demand

    check_has_demand(scenario, why="the day has nothing to dispatch (every policy would cost 0)")
    if not scenario.vehicles:
        raise InputError(
            "vehicles",
            "no couriers: every policy would leave every order unserved at the same cost; "
            "give at least one vehicle",
        )


def free_fleet_note(scenario: Scenario) -> str | None:
    """A line when no vehicle of ``scenario`` costs anything to run, else None.

    Benchmark instances (Solomon, Li & Lim, CVRPLIB) load with vehicle costs of 0: policies
    then differ in cost only by lateness and unserved orders (on a CVRP day every policy cost
    0 on every day, and ``evaluate`` printed identical rows without a word).
    """
    vehicles = scenario.vehicles
    if not vehicles or any(
        v.fixed_cost_cents or v.cost_per_km_cents or v.cost_per_hour_cents for v in vehicles
    ):
        return None
    return (
        "no vehicle costs anything to run (fixed_cost_cents, cost_per_km_cents and "
        "cost_per_hour_cents are 0 on every one, as benchmark instances load): the policies' "
        "costs differ only by lateness and unserved orders; give the vehicles costs to compare "
        "their routes"
    )


def parse_seeds(spec: str) -> list[int]:
    """Seeds from ``A..B`` (inclusive), ``A,B,C`` or a single number.

    Each seed is in 0..MAX_SEED and there are at most MAX_SEEDS, checked before a range is
    made (``0..99999999999`` built a list of 10^11 integers until memory ran out).
    """
    text = spec.strip()
    try:
        if ".." in text:
            lo_s, _, hi_s = text.partition("..")
            lo, hi = int(lo_s), int(hi_s)
            if hi < lo:
                raise InputError("seeds", f"{spec!r}: the range ends before it starts")
            ends = [lo, hi]
        else:
            parts = text.split(",")
            if len(parts) > 1 and not all(part.strip() for part in parts):
                # '1,,2' was read as 1,2: a seed left out by a typo ran without a word
                raise InputError("seeds", f"{spec!r}: an empty seed between commas")
            ends = [int(part) for part in parts if part.strip()]
    except ValueError:
        raise InputError("seeds", f"{spec!r}: expected A..B, A,B,C or a number") from None
    if not ends:
        raise InputError("seeds", "no seeds given")
    if any(s < 0 for s in ends):
        raise InputError("seeds", "seeds must be non-negative")
    if any(s > MAX_SEED for s in ends):
        raise InputError("seeds", f"{spec!r}: seeds are at most {MAX_SEED} (32 bits)")
    count = ends[1] - ends[0] + 1 if ".." in text else len(ends)
    if count > MAX_SEEDS:
        raise InputError("seeds", f"{spec!r}: {count} seeds; at most {MAX_SEEDS}")
    return list(range(ends[0], ends[1] + 1)) if ".." in text else ends


__all__ = [
    "EVAL_SEEDS",
    "MAX_SEEDS",
    "STANDARD",
    "TRAIN_SEEDS",
    "VALIDATION_SEEDS",
    "check_dispatch_scenario",
    "dispatch_variant",
    "load_scenario_spec",
    "parse_seeds",
    "standard_scenario",
]
