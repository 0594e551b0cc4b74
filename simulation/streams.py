"""Random draws of one replication, with common random numbers across compared plans.

Every source of randomness has its own :class:`numpy.random.Generator`, derived from the
replication seed and a fixed source key (``SeedSequence(seed, spawn_key=(key,))``), so that
changing a plan, a policy or another source's parameters does not shift the noise of the
others. Noise is tied to *entities*, not to the order in which events happen:

- travel: one multiplier per order for the legs into its pickups, one for the leg into its
  delivery, one per courier for the leg home (its own child stream);
- service: one multiplier per order for pickup handling, one for delivery service;
- pick: one multiplier per order line (pick) and one per order (pack);
- failed deliveries and stock discrepancies: one uniform per order / per line;
- breakdowns: one Poisson process per courier (its own child stream);
- arrivals: the day's new orders (times and templates).

Draws are made for base orders first, then for new orders, so the base orders' noise is the
same whether or not a variant changes the number of arrivals. Courier streams are keyed by the
vehicle's id (:func:`entity_key`), not its position, so removing one courier from the fleet
leaves every other courier's breakdowns and home leg as they were.

:data:`DRAWS_VERSION` names the current draws: **bump it with every change to what a seed
draws** (a new stream, another key, another order of draws), so results cached by seed (the
hindsight days of :mod:`rl_agents.evaluate`) are recomputed rather than silently reused.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scenarios.stochastic import StochasticParams, lognormal_sigma_mu

# The version of the random draws below. BUMP IT WITH EVERY CHANGE TO THE DRAWS (what a seed
# produces for any source): it enters the keys of caches of simulated days.
# 1: before versions existed (courier noise by fleet position)
# 2: courier noise (breakdowns, home leg) keyed by vehicle id
DRAWS_VERSION = 2

SOURCE_KEYS: dict[str, int] = {
    "arrivals": 1,
    "travel": 2,
    "service": 3,
    "pick": 4,
    "failed": 5,
    "stock": 6,
    "breakdown": 7,
    "policy": 8,
}

FloatArray = NDArray[np.float64]


def stream(seed: int, source: str, *extra: int) -> np.random.Generator:
    """The generator of one source of randomness for replication ``seed``."""
    key = (SOURCE_KEYS[source], *extra)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def entity_key(entity_id: str) -> int:
    """A stable 64-bit stream key of an entity's id (the same in every process and run)."""
    return int.from_bytes(hashlib.sha256(entity_id.encode()).digest()[:8], "big")


def lognormal_factors(rng: np.random.Generator, cv: float, size: int) -> FloatArray:
    """``size`` lognormal multipliers with mean 1 and coefficient of variation ``cv``."""
    if cv <= 0.0:
        return np.ones(size, dtype=np.float64)
    sigma, mu = lognormal_sigma_mu(cv)
    return rng.lognormal(mu, sigma, size)


@dataclass(frozen=True)
class NoiseDraws:
    """Per-entity noise of one replication (indices: orders, lines, couriers)."""

    travel_to_pickup: list[float]
    travel_to_delivery: list[float]
    travel_home: list[float]
    service_pickup: list[float]
    service_delivery: list[float]
    pick_line: list[float]
    pack: list[float]
    line_offset: list[int]
    fail_u: list[float]
    stock_u: list[float]
    breakdowns: list[list[float]]


def draw_noise(
    params: StochasticParams,
    *,
    seed: int,
    num_orders: int,
    lines_per_order: list[int],
    courier_ids: Sequence[str],
    start_s: float,
    end_s: float,
) -> NoiseDraws:
    """Draw every per-entity multiplier and disruption of one replication."""
    n = num_orders
    # One child stream per array, so no array's values depend on another's length.
    t_pick = lognormal_factors(stream(seed, "travel", 0), params.travel_time_cv, n)
    t_del = lognormal_factors(stream(seed, "travel", 2), params.travel_time_cv, n)
    courier_keys = [entity_key(c) for c in courier_ids]
    cv = params.travel_time_cv
    t_home = [
        float(lognormal_factors(stream(seed, "travel", 1, key), cv, 1)[0]) if cv > 0 else 1.0
        for key in courier_keys
    ]
    s_pick = lognormal_factors(stream(seed, "service", 0), params.service_time_cv, n)
    s_del = lognormal_factors(stream(seed, "service", 1), params.service_time_cv, n)
    offsets = [0]
    for k in lines_per_order:
        offsets.append(offsets[-1] + k)
    pick = stream(seed, "pick", 0)
    pack_rng = stream(seed, "pick", 1)
    if params.pick_time_distribution == "exponential":
        pick_line = pick.exponential(1.0, offsets[-1])
        pack = pack_rng.exponential(1.0, n)
    else:
        pick_line = lognormal_factors(pick, params.pick_time_cv, offsets[-1])
        pack = lognormal_factors(pack_rng, params.pick_time_cv, n)
    fail_u = stream(seed, "failed").random(n) if params.failed_delivery_prob > 0 else np.ones(n)
    stock_u = (
        stream(seed, "stock").random(offsets[-1])
        if params.stock_discrepancy_prob > 0
        else np.ones(offsets[-1])
    )
    breakdowns: list[list[float]] = []
    rate = params.breakdown_rate_per_hour / 3600.0
    for key in courier_keys:
        times: list[float] = []
        if rate > 0 and end_s > start_s:
            rng = stream(seed, "breakdown", key)
            count = int(rng.poisson(rate * (end_s - start_s)))
            times = sorted(float(x) for x in rng.uniform(start_s, end_s, count))
        breakdowns.append(times)
    return NoiseDraws(
        travel_to_pickup=t_pick.tolist(),
        travel_to_delivery=t_del.tolist(),
        travel_home=t_home,
        service_pickup=s_pick.tolist(),
        service_delivery=s_del.tolist(),
        pick_line=pick_line.tolist(),
        pack=pack.tolist(),
        line_offset=offsets,
        fail_u=fail_u.tolist(),
        stock_u=stock_u.tolist(),
        breakdowns=breakdowns,
    )


def draw_arrivals(
    rate_at: list[tuple[float, float, float]], *, seed: int, num_templates: int
) -> tuple[list[float], list[int]]:
    """Arrival times and template indices of a piecewise-constant Poisson process.

    ``rate_at`` lists ``(start_s, end_s, rate_per_s)`` segments in time order.
    """
    rng = stream(seed, "arrivals")
    times: list[float] = []
    for start, end, rate in rate_at:
        mean = rate * (end - start)
        if mean <= 0:
            continue
        count = int(rng.poisson(mean))
        times.extend(sorted(float(x) for x in rng.uniform(start, end, count)))
    if not times or num_templates == 0:
        return [], []
    templates = rng.integers(0, num_templates, len(times)).tolist()
    return times, templates


def rate_segments(
    breakpoints: list[float], rate_fn: Callable[[float], float], start_s: float, end_s: float
) -> list[tuple[float, float, float]]:
    """Split ``[start_s, end_s)`` at ``breakpoints`` and evaluate ``rate_fn`` on each piece."""
    points = sorted({start_s, end_s, *(b for b in breakpoints if start_s < b < end_s)})
    out = []
    for a, b in itertools.pairwise(points):
        rate = float(rate_fn(a))
        if rate > 0 and math.isfinite(rate):
            out.append((a, b, rate))
    return out
