"""Random draws of one replication, with common random numbers across compared plans.

Every source of randomness has its own :class:`numpy.random.Generator`, derived from the
replication seed and a fixed source key (``SeedSequence(seed, spawn_key=(key,))``), so that
changing a plan, a policy or another source's parameters does not shift the noise of the
others. Noise is tied to *entities*, not to the order in which events happen:

- orders: each order has its own counter-based generator keyed by its **id**, which draws a
  fixed block of uniforms whatever the parameters: travel multipliers for the legs into its
  pickups and into its delivery, service multipliers for pickup handling and delivery, a pack
  multiplier, a failed-delivery uniform, then one pick multiplier and one stock-discrepancy
  uniform per line;
- couriers: the leg home (one multiplier) and breakdowns (a Poisson process), each a child
  stream keyed by the vehicle's **id**;
- arrivals: the day's new orders (times and templates): the base process (hour-of-day rate)
  has its own stream; each demand surge adds arrivals from its own stream or thins arrivals
  in its window (:func:`draw_day_arrivals`).

As entities are keyed by id (:func:`entity_key`), not by position, a variant that drops some
listed orders, adds arrivals or removes a courier leaves every other order's and courier's
noise as it was.

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
from scipy.special import ndtri

from scenarios.stochastic import (
    ArrivalProcess,
    DemandSurge,
    StochasticParams,
    arrival_order_id,
    lognormal_sigma_mu,
)

# The version of the random draws below. BUMP IT WITH EVERY CHANGE TO THE DRAWS (what a seed
# produces for any source): it enters the keys of caches of simulated days.
# 1: before versions existed (courier noise by fleet position)
# 2: courier noise (breakdowns, home leg) keyed by vehicle id
# 3: per-order noise keyed by order id (one Philox generator per order)
# 4: arrivals: each demand surge adds or thins arrivals only in its window (own streams)
DRAWS_VERSION = 4

SOURCE_KEYS: dict[str, int] = {
    "arrivals": 1,
    "travel": 2,
    "service": 3,
    "pick": 4,
    "failed": 5,
    "stock": 6,
    "breakdown": 7,
    "policy": 8,
    "orders": 9,
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


# Philox4x64-10 (Salmon et al. 2011; numpy's ``Philox``): multipliers and key increments.
_PHILOX_M0, _PHILOX_M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_PHILOX_W0, _PHILOX_W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_LOW32, _SHIFT32 = np.uint64(0xFFFFFFFF), np.uint64(32)
U64Array = NDArray[np.uint64]


def _mulhilo(a: np.uint64, b: U64Array) -> tuple[U64Array, U64Array]:
    """The high and low 64-bit words of the 128-bit products ``a * b``."""
    a_lo, a_hi = a & _LOW32, a >> _SHIFT32
    b_lo, b_hi = b & _LOW32, b >> _SHIFT32
    cross1, cross2 = a_lo * b_hi, a_hi * b_lo
    mid = ((a_lo * b_lo) >> _SHIFT32) + (cross1 & _LOW32) + (cross2 & _LOW32)
    hi = a_hi * b_hi + (cross1 >> _SHIFT32) + (cross2 >> _SHIFT32) + (mid >> _SHIFT32)
    return hi, a * b


def _philox_blocks(key0: U64Array, key1: U64Array, counter0: U64Array) -> U64Array:
    """Philox4x64-10 blocks ``[rows, 4]`` of keys ``(key0, key1)`` at counters ``(counter0,
    0, 0, 0)``, one row each: the words numpy's ``Philox`` draws at those counters."""
    zero = np.zeros_like(counter0)
    c0, c1, c2, c3 = counter0, zero, zero, zero
    k0, k1 = key0.copy(), key1.copy()
    for round_ in range(10):
        if round_:
            k0 += _PHILOX_W0
            k1 += _PHILOX_W1
        hi0, lo0 = _mulhilo(_PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(_PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack([c0, c1, c2, c3], axis=1)


def _order_uniforms(seed: int, order_ids: Sequence[str], widths: Sequence[int]) -> FloatArray:
    """``widths[i]`` uniforms in [0, 1) for each order, keyed by the order's id, concatenated.

    Each order has its own counter-based generator (Philox keyed by the replication's seed
    word and :func:`entity_key` of the id), so an order's draws do not depend on which other
    orders the day has or where it stands among them. The blocks of every order are computed
    at once: the same numbers as ``Generator(Philox(key=word << 64 | entity_key(id)))
    .random(width)`` for each order (a generator per order cost ~0.1 ms, most of a day's
    noise on a day of thousands of orders).
    """
    w = np.asarray(widths, dtype=np.int64)
    if w.size == 0:
        return np.empty(0, dtype=np.float64)
    word = np.random.SeedSequence(seed, spawn_key=(SOURCE_KEYS["orders"],))
    high = word.generate_state(1, dtype=np.uint64)[0]
    keys = np.fromiter((entity_key(oid) for oid in order_ids), dtype=np.uint64, count=w.size)
    blocks = (w + 3) // 4  # numpy's Philox draws 4 words a block, from counter 1 on
    owner = np.repeat(np.arange(w.size), blocks)
    first = np.cumsum(blocks) - blocks
    counter = (np.arange(owner.size) - first[owner] + 1).astype(np.uint64)
    with np.errstate(over="ignore"):  # 64-bit arithmetic wraps, as Philox's does
        words = _philox_blocks(keys[owner], np.full(owner.size, high, np.uint64), counter)
    word_owner = np.repeat(owner, 4)
    keep = np.arange(word_owner.size) - 4 * first[word_owner] < w[word_owner]
    # numpy's random(): the top 53 bits of each word, times 2**-53
    return (words.reshape(-1)[keep] >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _lognormal_of(u: FloatArray, cv: float) -> FloatArray:
    """Lognormal multipliers (mean 1, coefficient of variation ``cv``) from uniforms ``u``."""
    if cv <= 0.0:
        return np.ones(u.size, dtype=np.float64)
    sigma, mu = lognormal_sigma_mu(cv)
    z = ndtri(np.maximum(u, 2.0**-54))
    return np.asarray(np.exp(mu + sigma * z), dtype=np.float64)


# Per-order uniforms, in this order, then one pick and one stock uniform per line.
_ORDER_SLOTS = ("travel_pickup", "travel_delivery", "service_pickup", "service_delivery", "pack",
                "failed")  # fmt: skip


def draw_noise(
    params: StochasticParams,
    *,
    seed: int,
    order_ids: Sequence[str],
    lines_per_order: Sequence[int],
    courier_ids: Sequence[str],
    start_s: float,
    end_s: float,
) -> NoiseDraws:
    """Draw every per-entity multiplier and disruption of one replication.

    Per-order noise is keyed by the order's id and courier noise by the vehicle's id, so a
    variant that drops or adds orders or couriers leaves everybody else's draws as they were.
    """
    n = len(order_ids)
    offsets = [0]
    for k in lines_per_order:
        offsets.append(offsets[-1] + k)
    m = offsets[-1]
    k0 = len(_ORDER_SLOTS)
    exponential = params.pick_time_distribution == "exponential"
    noisy_orders = (
        params.travel_time_cv > 0
        or params.service_time_cv > 0
        or params.pick_time_cv > 0
        or exponential
        or params.failed_delivery_prob > 0
        or params.stock_discrepancy_prob > 0
    )
    if noisy_orders and n:
        # One fixed-width block per order, whatever the parameters: changing one source's
        # parameters moves none of the other sources' draws.
        lines = np.asarray(lines_per_order, dtype=np.int64)
        flat = _order_uniforms(seed, order_ids, (k0 + 2 * lines).tolist())
        starts = np.concatenate(([0], np.cumsum(k0 + 2 * lines)[:-1]))
        per_order = flat[starts[:, None] + np.arange(k0)]  # [n, k0]
        line_order = np.repeat(np.arange(n), lines)
        line_rank = np.arange(m) - np.repeat(np.asarray(offsets[:-1]), lines)
        pick_u = flat[starts[line_order] + k0 + line_rank]
        stock_u = flat[starts[line_order] + k0 + lines[line_order] + line_rank]
    else:
        per_order = np.full((n, k0), 0.5)
        pick_u = np.full(m, 0.5)
        stock_u = np.ones(m)
    t_pick = _lognormal_of(per_order[:, 0], params.travel_time_cv)
    t_del = _lognormal_of(per_order[:, 1], params.travel_time_cv)
    s_pick = _lognormal_of(per_order[:, 2], params.service_time_cv)
    s_del = _lognormal_of(per_order[:, 3], params.service_time_cv)
    if exponential:
        pack = -np.log1p(-per_order[:, 4])
        pick_line = -np.log1p(-pick_u)
    else:
        pack = _lognormal_of(per_order[:, 4], params.pick_time_cv)
        pick_line = _lognormal_of(pick_u, params.pick_time_cv)
    fail_u = per_order[:, 5] if params.failed_delivery_prob > 0 else np.ones(n)
    if params.stock_discrepancy_prob <= 0:
        stock_u = np.ones(m)
    courier_keys = [entity_key(c) for c in courier_ids]
    cv = params.travel_time_cv
    t_home = [
        float(lognormal_factors(stream(seed, "travel", 1, key), cv, 1)[0]) if cv > 0 else 1.0
        for key in courier_keys
    ]
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

    ``rate_at`` lists ``(start_s, end_s, rate_per_s)`` segments in time order. The base
    arrival process of :func:`draw_day_arrivals` (stream ``arrivals``).
    """
    return _poisson_arrivals(stream(seed, "arrivals"), rate_at, num_templates)


def _poisson_arrivals(
    rng: np.random.Generator, rate_at: list[tuple[float, float, float]], num_templates: int
) -> tuple[list[float], list[int]]:
    """Times (per segment: a Poisson count, then sorted uniforms), then one template each."""
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


@dataclass(frozen=True)
class DayArrivals:
    """The day's new orders in time order: release times, template indices and ids."""

    times: list[float]
    templates: list[int]
    ids: list[str]


def _active(surge: DemandSurge, t_s: float) -> bool:
    return surge.window is None or surge.window.start_s <= t_s < surge.window.end_s


def draw_day_arrivals(
    process: ArrivalProcess, *, seed: int, start_s: float, end_s: float, num_templates: int
) -> DayArrivals:
    """The day's arrivals, with common random numbers across demand surges.

    The rate is the hour-of-day rate times every active surge's factor
    (:meth:`ArrivalProcess.rate_per_s_at`), built so that a surge only changes arrivals inside
    its window:

    - the base process (hour-of-day rate, no surges) has its own stream, so its times and
      templates do not depend on the surges (ids ``arrival-000123``, numbered among the base
      arrivals; a scenario without surges draws exactly what it drew before surges were
      split off);
    - a surge with factor > 1 adds its own arrivals at the base rate x the factors of the
      earlier such surges x (factor - 1), from a stream keyed by its position in
      ``surges`` (ids ``arrival-surge<j>-000123``), times and templates alike;
    - surges with factor < 1 thin: each arrival carries a uniform drawn with it and is kept
      when that is below the product of the active thinning factors at its time.
    """
    hours = range(int(start_s // 3600) * 3600, int(end_s) + 3600, 3600)
    points = [float(h) for h in hours]

    def base_rate(t_s: float) -> float:
        return process.hourly_rate[int(t_s // 3600) % 24] / 3600.0

    times, templates = draw_arrivals(
        rate_segments(points, base_rate, start_s, end_s), seed=seed, num_templates=num_templates
    )
    keep_u = stream(seed, "arrivals", 1).random(len(times)).tolist()
    ids = [arrival_order_id(k) for k in range(len(times))]
    surges = process.surges
    for j, surge in enumerate(surges):
        if surge.factor <= 1.0:
            continue
        earlier = [s for s in surges[:j] if s.factor > 1.0]
        cuts = list(points)
        for s in (*earlier, surge):
            if s.window is not None:
                cuts += [float(s.window.start_s), float(s.window.end_s)]

        def extra_rate(
            t_s: float, surge: DemandSurge = surge, earlier: list[DemandSurge] = earlier
        ) -> float:
            if not _active(surge, t_s):
                return 0.0
            rate = base_rate(t_s) * (surge.factor - 1.0)
            for s in earlier:
                if _active(s, t_s):
                    rate *= s.factor
            return rate

        rng = stream(seed, "arrivals", 2, j)
        more, more_templates = _poisson_arrivals(
            rng, rate_segments(cuts, extra_rate, start_s, end_s), num_templates
        )
        times += more
        templates += more_templates
        keep_u += rng.random(len(more)).tolist()
        ids += [arrival_order_id(k, j) for k in range(len(more))]
    thinning = [s for s in surges if s.factor < 1.0]
    order = sorted(range(len(times)), key=lambda k: (times[k], ids[k]))
    kept = []
    for k in order:
        share = 1.0
        for s in thinning:
            if _active(s, times[k]):
                share *= s.factor
        if keep_u[k] < share:
            kept.append(k)
    return DayArrivals(
        times=[times[k] for k in kept],
        templates=[templates[k] for k in kept],
        ids=[ids[k] for k in kept],
    )


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
