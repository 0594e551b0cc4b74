"""Seeded generator of realistic omnichannel city scenarios.

:func:`generate_city` builds one day (horizon ``[0, 86400]`` s from midnight) in a synthetic
square city laid out as a street grid with faster arterials (:class:`~scenarios.travel.GridSpec`,
travel by :class:`~scenarios.travel.RoadNetworkTravel`). Coordinates are **planar metres**
(``x`` east, ``y`` north, origin at the south-west corner).

What is in it:

- fulfilment nodes: DCs on the outskirts (deep stock, long opening hours), stores in the
  neighbourhoods (shallow stock with safety stock, shop hours), dark stores near the densest
  neighbourhoods (fast movers, fast picking); each with pickers, packing stations, pick/pack
  times, daily capacity, handling cost and a region (the city's quadrant);
- a long-tail SKU catalogue: Zipf popularity, log-normal weights and volumes, a few bulky
  SKUs and a few SKUs restricted in one region (they also need an ``age_check`` courier);
- orders over the day following an hourly arrival profile (``created_s``), with channels,
  customer tiers (some VIP), a service level (express / same-day slot / scheduled slot) that
  sets the promised window, service time, priority, a load vector over
  ``["units", "weight_g", "volume_cm3"]``, required skills and a penalty for not serving;
- a courier fleet of bikes and vans with shifts, breaks, multi-dimensional capacity, skills
  and fixed / per-km / per-hour costs, starting at nodes;
- the hourly arrival process (:class:`~scenarios.stochastic.ArrivalProcess`) and a
  time-of-day congestion profile.

Every draw comes from one ``numpy.random.Generator`` seeded with ``seed``; the same arguments
give a byte-identical JSON file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationError, model_validator

from scenarios.bulk import collector_paused
from scenarios.errors import InputError, input_error_from_validation
from scenarios.geo import StrictModel
from scenarios.model import Scenario

#: The latest generator version (the default of ``CityParams.generator_version``).
GENERATOR_VERSION: Final = 2
DAY_S = 86_400
HOUR_S = 3_600
MAX_ORDERS = 200_000
MAX_NODES = 1_000
MAX_COURIERS = 10_000
#: the largest ``CityParams.node_capacity_factor``: far above any real day (2.0 sizes a node
#: for twice its expected orders), and small enough that no capacity overflows the model
MAX_NODE_CAPACITY_FACTOR = 100.0
CAPACITY_DIMS = ["units", "weight_g", "volume_cm3"]
REGIONS = ("sw", "se", "nw", "ne")
DELIVERY_OPENS_S = 7 * HOUR_S

#: Relative order intake per hour of day (web + app + marketplace), 0 = midnight.
#: Ordering closes at 23:00 so every promise fits inside the day.
DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    0.25, 0.12, 0.06, 0.05, 0.05, 0.12, 0.35, 0.75,
    1.15, 1.35, 1.40, 1.55, 1.75, 1.60, 1.30, 1.20,
    1.30, 1.65, 2.05, 2.20, 1.95, 1.45, 0.85, 0.0,
)  # fmt: skip

#: Congestion: duration multipliers by time of day (start hour, factor).
CONGESTION: tuple[tuple[float, float], ...] = (
    (0.0, 0.85),
    (6.5, 1.0),
    (7.25, 1.35),
    (9.5, 1.1),
    (16.0, 1.4),
    (19.0, 1.1),
    (21.0, 0.9),
)

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class CityParams(StrictModel):
    """Tuning knobs of :func:`generate_city` (defaults give a mid-sized European city)."""

    city_side_m: Annotated[float, Field(ge=1_000, le=50_000)] | None = Field(
        default=None, description="side of the square city; None = grows with the order count"
    )
    block_m: Annotated[float, Field(ge=50, le=1_000)] = 200.0
    arterial_every: Annotated[int, Field(ge=1, le=50)] = 5
    street_speed_m_per_s: Positive = 8.3
    arterial_speed_m_per_s: Positive = 13.9
    num_skus: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        default=None, description="catalogue size; None = grows with the order count"
    )
    zipf_exponent: Annotated[float, Field(gt=0.0, le=3.0)] = 1.05
    restricted_sku_share: Share = 0.01
    bulky_sku_share: Share = 0.02
    dc_share: Share = 0.15
    dark_store_share: Share = 0.3
    vip_share: Share = 0.08
    van_share: Share = 0.35
    age_check_share: Share = 0.6
    express_share: Share = 0.25
    scheduled_share: Share = 0.25
    mean_extra_lines: Annotated[float, Field(ge=0.0, le=20.0)] = 1.0
    max_lines: Annotated[int, Field(ge=1, le=50)] = 8
    channel_mix: dict[str, Positive] = Field(
        default_factory=lambda: {"web": 0.45, "app": 0.38, "marketplace": 0.12, "phone": 0.05}
    )
    hourly_profile: list[Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=lambda: list(DEFAULT_HOURLY_PROFILE), min_length=24, max_length=24
    )
    dc_days_of_cover: Annotated[float, Field(ge=0.0)] = 1.5
    dark_store_days_of_cover: Annotated[float, Field(ge=0.0)] = 0.4
    store_days_of_cover: Annotated[float, Field(ge=0.0)] = 0.25
    node_capacity_factor: Annotated[float, Field(gt=0.0, le=MAX_NODE_CAPACITY_FACTOR)] = 1.4
    neighbourhoods: Annotated[int, Field(ge=1, le=200)] | None = None
    extra_arrivals_per_day: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0,
        description="expected orders arriving during the day on top of the listed ones "
        "(the twin draws them from `arrivals`); 0 = no arrival process",
    )
    generator_version: Literal[1, 2] = Field(
        default=GENERATOR_VERSION,
        description="2 = couriers' shifts follow the day's delivery windows and cover every "
        "order; 1 = shifts from fixed patterns, independent of the orders (scenarios made "
        "before session 53); nodes, SKUs, stock and orders are the same in both",
    )

    @model_validator(mode="after")
    def _profile_has_orders(self) -> CityParams:
        if sum(self.hourly_profile) <= 0:
            raise ValueError("hourly_profile must have a positive total")
        if self.express_share + self.scheduled_share > 1.0:
            raise ValueError("express_share + scheduled_share must be at most 1")
        return self


def generate_city(
    *,
    seed: int,
    num_orders: int,
    num_nodes: int,
    num_couriers: int,
    params: CityParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> Scenario:
    """Generate a seeded omnichannel city day: nodes, SKUs, orders, couriers, road grid."""
    _check_count("num_orders", num_orders, 1, MAX_ORDERS)
    _check_count("num_nodes", num_nodes, 1, MAX_NODES)
    _check_count("num_couriers", num_couriers, 1, MAX_COURIERS)
    if not isinstance(seed, int) or seed < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed!r}")
    p = params if params is not None else CityParams()
    say = progress if progress is not None else (lambda _stage: None)
    with collector_paused():  # a large city is millions of objects (see scenarios.bulk)
        return _generate(seed, num_orders, num_nodes, num_couriers, p, say)


def _generate(
    seed: int,
    num_orders: int,
    num_nodes: int,
    num_couriers: int,
    p: CityParams,
    say: Callable[[str], None],
) -> Scenario:
    """The city of :func:`generate_city`, its arguments checked."""
    rng = np.random.default_rng(seed)

    say("city")
    side = p.city_side_m if p.city_side_m is not None else _auto_side(num_orders)
    cells = max(2, round(side / p.block_m))
    side = cells * p.block_m
    grid = {
        "rows": cells + 1,
        "cols": cells + 1,
        "spacing_m": p.block_m,
        "street_speed_m_per_s": p.street_speed_m_per_s,
        "arterial_every": p.arterial_every,
        "arterial_speed_m_per_s": p.arterial_speed_m_per_s,
    }
    k_hoods = p.neighbourhoods or int(np.clip(round(2 + math.sqrt(num_orders) / 12), 3, 16))
    hood_xy = rng.uniform(0.15 * side, 0.85 * side, size=(k_hoods, 2))
    hood_sigma = rng.uniform(0.04, 0.1, size=k_hoods) * side
    hood_weight = rng.dirichlet(np.full(k_hoods, 2.0))

    say("catalogue")
    num_skus = p.num_skus if p.num_skus is not None else _auto_skus(num_orders)
    skus, sku_weight, sku_volume, restricted = _catalogue(rng, num_skus, p)
    popularity = 1.0 / np.arange(1, num_skus + 1, dtype=np.float64) ** p.zipf_exponent
    popularity /= popularity.sum()

    say("nodes")
    kinds = _node_kinds(num_nodes, p)
    node_xy = _node_positions(rng, kinds, side, hood_xy, hood_sigma, hood_weight)
    mean_units = (1.0 + p.mean_extra_lines) * 1.4
    expected = num_orders * mean_units * popularity
    sku_ids = [s["id"] for s in skus]
    nodes = _nodes(rng, kinds, node_xy, side, expected, sku_ids, num_orders, p)

    say("orders")
    orders = _orders(
        rng, num_orders, side, hood_xy, hood_sigma, hood_weight, popularity, skus,
        sku_weight, sku_volume, restricted, p,
    )  # fmt: skip

    say("fleet")
    if p.generator_version == 1:
        vehicles = _fleet(rng, num_couriers, kinds, nodes, p)
    else:
        vehicles = _fleet_v2(rng, num_couriers, kinds, nodes, orders, p)

    say("validate")
    profile = np.asarray(p.hourly_profile, dtype=np.float64)
    rate = profile / profile.sum() * p.extra_arrivals_per_day
    data: dict[str, Any] = {
        "name": f"city-s{seed}-o{num_orders}-n{num_nodes}-c{num_couriers}",
        "horizon": {"start_s": 0, "end_s": DAY_S},
        "travel": {
            "kind": "road_network",
            "grid": grid,
            "default_speed_m_per_s": p.street_speed_m_per_s,
            "profile": [
                {"start_s": round(h * HOUR_S), "duration_factor": f} for h, f in CONGESTION
            ],
        },
        "capacity_dims": CAPACITY_DIMS,
        "skus": skus,
        "nodes": nodes,
        "orders": orders,
        "vehicles": vehicles,
        "costs": {"lateness_cents_per_min": 25, "unserved_cents": 8_000},
        "stochastic": {
            "travel_time_cv": 0.2,
            "service_time_cv": 0.3,
            "pick_time_cv": 0.3,
            "breakdown_rate_per_hour": 0.002,
            "failed_delivery_prob": 0.02,
            "stock_discrepancy_prob": 0.01,
        },
        "arrivals": (
            {"hourly_rate": [round(float(r), 3) for r in rate], "promise_s": 7_200}
            if p.extra_arrivals_per_day > 0
            else None
        ),
        "source": {
            "format": "generated",
            "name": f"generate_city(seed={seed})",
            "notes": (
                f"dispatchlab generate_city v{p.generator_version}; planar metres "
                f"(x east, y north), {side / 1000:g} km square city, street grid every "
                f"{p.block_m:g} m with arterials every {p.arterial_every}; horizon = one day "
                "from midnight"
            ),
        },
    }
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:  # a params combination the model rejects
        raise input_error_from_validation(err, source="generate_city") from None


# ---------------------------------------------------------------------- sizes


def _check_count(field: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(field, f"must be an integer from {low} to {high}, got {value!r}")


def _auto_side(num_orders: int) -> float:
    """City side (m) growing slowly with the order count: 3 km up to 16 km."""
    return float(np.clip(3_000.0 * (num_orders / 100.0) ** 0.25, 3_000.0, 16_000.0))


def _auto_skus(num_orders: int) -> int:
    """Catalogue size growing with the order count: 40 up to 3,000 SKUs."""
    return int(np.clip(round(20.0 * math.sqrt(num_orders)), 40, 3_000))


def _region(x: NDArray[np.float64], y: NDArray[np.float64], side: float) -> NDArray[np.int64]:
    """Quadrant index (0 sw, 1 se, 2 nw, 3 ne) of each point."""
    return (x >= side / 2).astype(np.int64) + 2 * (y >= side / 2).astype(np.int64)


# ---------------------------------------------------------------------- catalogue


def _catalogue(
    rng: np.random.Generator, num_skus: int, p: CityParams
) -> tuple[list[dict[str, Any]], NDArray[np.int64], NDArray[np.int64], dict[int, str]]:
    """SKUs (rank 0 = most popular) with weights, volumes and regional restrictions."""
    weight = np.exp(rng.normal(math.log(350.0), 0.9, size=num_skus))
    bulky = rng.random(num_skus) < p.bulky_sku_share
    weight = np.where(bulky, rng.uniform(8_000.0, 25_000.0, size=num_skus), weight)
    weight = np.clip(np.round(weight), 20, 30_000).astype(np.int64)
    density = rng.uniform(0.25, 1.2, size=num_skus)  # g per cm3
    volume = np.maximum(10, np.round(weight / density)).astype(np.int64)
    restricted: dict[int, str] = {}
    num_restricted = round(num_skus * p.restricted_sku_share)
    if p.restricted_sku_share > 0 and num_skus >= 20:
        num_restricted = max(1, num_restricted)
    if num_restricted:
        # Mid-popularity items (think spirits, fireworks): not the head, not the far tail.
        lo, hi = max(1, num_skus // 20), max(2, num_skus // 2)
        picks = rng.choice(np.arange(lo, hi), size=min(num_restricted, hi - lo), replace=False)
        for rank in sorted(int(r) for r in picks):
            restricted[rank] = REGIONS[int(rng.integers(len(REGIONS)))]
    width = max(4, len(str(num_skus)))
    skus = []
    for k in range(num_skus):
        sku: dict[str, Any] = {
            "id": f"sku-{k + 1:0{width}d}",
            "weight_g": int(weight[k]),
            "volume_cm3": int(volume[k]),
        }
        if k in restricted:
            sku["restricted_regions"] = [restricted[k]]
        skus.append(sku)
    return skus, weight, volume, restricted


# ---------------------------------------------------------------------- nodes


_KIND_PREFIX = {"dc": "dc", "dark_store": "ds", "store": "st"}


def _node_kinds(num_nodes: int, p: CityParams) -> list[str]:
    """Kinds of the nodes in id order: DCs, then dark stores, then stores."""
    num_dc = max(1, round(num_nodes * p.dc_share))
    num_dark = round(num_nodes * p.dark_store_share) if num_nodes >= 3 else 0
    num_dark = min(num_dark, num_nodes - num_dc)
    num_store = num_nodes - num_dc - num_dark
    return ["dc"] * num_dc + ["dark_store"] * num_dark + ["store"] * num_store


def _node_positions(
    rng: np.random.Generator,
    kinds: list[str],
    side: float,
    hood_xy: NDArray[np.float64],
    hood_sigma: NDArray[np.float64],
    hood_weight: NDArray[np.float64],
) -> NDArray[np.float64]:
    """DCs on the outskirts, dark stores at the busiest neighbourhoods, stores among people."""
    xy = np.empty((len(kinds), 2), dtype=np.float64)
    busiest = np.argsort(-hood_weight, kind="stable")
    dark_seen = 0
    for i, kind in enumerate(kinds):
        if kind == "dc":
            edge = int(rng.integers(4))
            along = rng.uniform(0.1, 0.9) * side
            depth = rng.uniform(0.02, 0.12) * side
            pos = [(along, depth), (side - depth, along), (along, side - depth), (depth, along)]
            xy[i] = pos[edge]
        elif kind == "dark_store":
            h = int(busiest[dark_seen % len(busiest)])
            dark_seen += 1
            xy[i] = hood_xy[h] + rng.normal(0.0, 0.5, size=2) * hood_sigma[h]
        else:
            h = int(rng.choice(len(hood_weight), p=hood_weight))
            xy[i] = hood_xy[h] + rng.normal(0.0, 1.0, size=2) * hood_sigma[h]
    return np.asarray(np.round(np.clip(xy, 0.0, side)), dtype=np.float64)


def _nodes(
    rng: np.random.Generator,
    kinds: list[str],
    xy: NDArray[np.float64],
    side: float,
    expected: NDArray[np.float64],
    sku_ids: list[str],
    num_orders: int,
    p: CityParams,
) -> list[dict[str, Any]]:
    """Node records with skewed inventory, capacity sized to the expected demand."""
    num_skus = len(expected)
    count = {kind: kinds.count(kind) for kind in ("dc", "dark_store", "store")}
    weight = {"dc": 3.0, "dark_store": 2.0, "store": 1.0}
    total_weight = sum(weight[k] for k in kinds)
    regions = _region(xy[:, 0], xy[:, 1], side)
    seen = {"dc": 0, "dark_store": 0, "store": 0}
    nodes = []
    for i, kind in enumerate(kinds):
        seen[kind] += 1
        share = weight[kind] / total_weight
        cap_orders = max(10, math.ceil(num_orders * p.node_capacity_factor * share))
        if kind == "dc":
            held = rng.random(num_skus) < 0.97
            cover = p.dc_days_of_cover / count["dc"]
            open_s, opening = DAY_S, []
            pick, pack, processing, handling, min_pickers = 45, 90, 2_700, 35, 4
            safety = 0
        elif kind == "dark_store":
            top = np.arange(num_skus) < max(1, int(0.3 * num_skus))
            held = top | (rng.random(num_skus) < 0.05)
            cover = p.dark_store_days_of_cover / count["dark_store"]
            opening = [{"start_s": 7 * HOUR_S, "end_s": DAY_S}]
            open_s = DAY_S - 7 * HOUR_S
            pick, pack, processing, handling, min_pickers = 30, 60, 600, 50, 2
            safety = 1
        else:
            top = np.arange(num_skus) < max(1, int(0.45 * num_skus))
            held = top | (rng.random(num_skus) < 0.1)
            cover = p.store_days_of_cover / max(1, count["store"])
            start_h = int(rng.choice([8, 9]))
            close_h = int(rng.choice([20, 21, 22]))
            opening = [{"start_s": start_h * HOUR_S, "end_s": close_h * HOUR_S}]
            open_s = (close_h - start_h) * HOUR_S
            pick, pack, processing, handling, min_pickers = 90, 150, 1_800, 90, 1
            safety = int(rng.integers(1, 3))
        # Skew: each node over- or under-stocks each SKU (log-normal factor).
        skew = np.exp(rng.normal(0.0, 0.7, size=num_skus))
        # A held SKU keeps a presentation minimum: 2 units at a DC, the safety stock elsewhere.
        qty = rng.poisson(expected * cover * skew) + (2 if kind == "dc" else safety)
        qty = np.where(held, qty, 0)
        qty_k = qty.tolist()  # Python ints (as int(qty[k])), read without a conversion each
        inventory = {sku_ids[k]: qty_k[k] for k in np.flatnonzero(qty > 0).tolist()}
        per_order_s = pick * (1.0 + p.mean_extra_lines)
        pickers = max(min_pickers, math.ceil(cap_orders * per_order_s / open_s))
        stations = max(1, math.ceil(cap_orders * pack / open_s))
        node: dict[str, Any] = {
            "id": f"{_KIND_PREFIX[kind]}-{seen[kind]:02d}",
            "kind": kind,
            "location": {"x": float(xy[i, 0]), "y": float(xy[i, 1])},
            "region": REGIONS[int(regions[i])],
            "inventory": inventory,
            "capacity_units": cap_orders * 3,
            "capacity_orders": cap_orders,
            "opening_hours": opening,
            "handling_cost_cents_per_unit": handling,
            "processing_s": processing,
            "pickers": pickers,
            "packing_stations": stations,
            "pick_time_s_per_line": pick,
            "pack_time_s_per_order": pack,
        }
        if safety:
            node["safety_stock"] = safety
        nodes.append(node)
    return nodes


# ---------------------------------------------------------------------- orders


def _orders(
    rng: np.random.Generator,
    num_orders: int,
    side: float,
    hood_xy: NDArray[np.float64],
    hood_sigma: NDArray[np.float64],
    hood_weight: NDArray[np.float64],
    popularity: NDArray[np.float64],
    skus: list[dict[str, Any]],
    sku_weight: NDArray[np.int64],
    sku_volume: NDArray[np.int64],
    restricted: dict[int, str],
    p: CityParams,
) -> list[dict[str, Any]]:
    """Order records sorted by creation time."""
    n = num_orders
    profile = np.asarray(p.hourly_profile, dtype=np.float64)
    hours = rng.choice(24, size=n, p=profile / profile.sum())
    created = np.sort(hours * HOUR_S + rng.integers(0, HOUR_S, size=n))

    # Where: 75 % in neighbourhoods, the rest anywhere in the city.
    in_hood = rng.random(n) < 0.75
    hood = rng.choice(len(hood_weight), size=n, p=hood_weight)
    xy = np.where(
        in_hood[:, None],
        hood_xy[hood] + rng.normal(size=(n, 2)) * hood_sigma[hood][:, None],
        rng.uniform(0.0, side, size=(n, 2)),
    )
    xy = np.round(np.clip(xy, 0.0, side))
    region = _region(xy[:, 0], xy[:, 1], side)

    channels = sorted(p.channel_mix)
    mix = np.asarray([p.channel_mix[c] for c in channels], dtype=np.float64)
    channel = rng.choice(len(channels), size=n, p=mix / mix.sum())
    vip = rng.random(n) < p.vip_share
    level = rng.random(n)  # < express: express; > 1 - scheduled: scheduled; else same-day

    num_lines = 1 + np.minimum(rng.poisson(p.mean_extra_lines, size=n), p.max_lines - 1)
    total = int(num_lines.sum())
    line_sku = rng.choice(len(popularity), size=total, p=popularity)
    line_qty = 1 + np.minimum(rng.geometric(0.65, size=total) - 1, 5)
    service_jitter = rng.integers(0, 61, size=n)
    offsets = np.concatenate([[0], np.cumsum(num_lines)])
    ids = [s["id"] for s in skus]
    width = max(5, len(str(n)))

    # The loop below reads Python numbers (``tolist``: the same values as ``int(a[i])`` and
    # ``float(a[i])``), not numpy scalars, which cost a conversion per element read.
    at = offsets.tolist()
    line_sku_k, line_qty_k = line_sku.tolist(), line_qty.tolist()
    # an order's units, grams and cm3 summed over its lines at once (every order has a line:
    # no empty segment; a SKU drawn twice adds up as its merged line does, in exact integers)
    starts = offsets[:-1]
    units_i = np.add.reduceat(line_qty, starts).tolist()
    grams_i = np.add.reduceat(sku_weight[line_sku] * line_qty, starts).tolist()
    cm3_i = np.add.reduceat(sku_volume[line_sku] * line_qty, starts).tolist()
    created_i, level_i, vip_i = created.tolist(), level.tolist(), vip.tolist()
    channel_i, region_i, jitter_i = channel.tolist(), region.tolist(), service_jitter.tolist()
    xy_i = xy.tolist()
    orders = []
    for i in range(n):
        merged: dict[int, int] = {}
        for j in range(at[i], at[i + 1]):
            k = line_sku_k[j]
            merged[k] = merged.get(k, 0) + line_qty_k[j]
        lines = [{"sku": ids[k], "quantity": q} for k, q in sorted(merged.items())]
        units, grams, cm3 = units_i[i], grams_i[i], cm3_i[i]
        t = created_i[i]
        if level_i[i] < p.express_share:
            start, width_s, priority = t + 30 * 60, 90 * 60, 1
        elif level_i[i] > 1.0 - p.scheduled_share:
            start, width_s, priority = _next_hour(t + 4 * HOUR_S), HOUR_S, 0
        else:
            start, width_s, priority = _next_hour(t + 2 * HOUR_S), 2 * HOUR_S, 0
        start = max(start, DELIVERY_OPENS_S)
        end = start + width_s
        if end > DAY_S:
            end = DAY_S
            start = max(t, end - width_s)
        skills = []
        if grams > 12_000 or cm3 > 40_000:
            skills.append("bulky")
        if not restricted.keys().isdisjoint(merged):
            skills.append("age_check")
        is_vip = vip_i[i]
        tier = "vip" if is_vip else "standard"
        penalty = 3_000 + 400 * units
        x, y = xy_i[i]
        order: dict[str, Any] = {
            "id": f"o{i + 1:0{width}d}",
            "channel": channels[channel_i[i]],
            "location": {"x": x, "y": y},
            "region": REGIONS[region_i[i]],
            "lines": lines,
            "created_s": t,
            "time_windows": [{"start_s": start, "end_s": end}],
            "service_s": 60 + 20 * len(lines) + jitter_i[i] + (60 if is_vip else 0),
            "priority": priority + (2 if is_vip else 0),
            "demand": [units, grams, cm3],
            "penalty_cents": penalty * (3 if is_vip else 1),
        }
        if tier != "standard":
            order["tier"] = tier
        if skills:
            order["required_skills"] = skills
        orders.append(order)
    return orders


def _next_hour(t: int) -> int:
    """``t`` rounded up to a whole hour."""
    return -(-t // HOUR_S) * HOUR_S


# ---------------------------------------------------------------------- fleet

_SHIFTS = ((7, 15), (9, 17), (11, 19), (14, 22), (16, 24), (11, 15), (17, 21))
_SHIFT_WEIGHTS = (0.18, 0.16, 0.2, 0.16, 0.14, 0.08, 0.08)


def _fleet(
    rng: np.random.Generator,
    num_couriers: int,
    kinds: list[str],
    nodes: list[dict[str, Any]],
    p: CityParams,
) -> list[dict[str, Any]]:
    """Version 1: bikes at stores / dark stores, vans at DCs, shifts from fixed patterns."""
    num_vans = _num_vans(num_couriers, p)
    dcs = [i for i, k in enumerate(kinds) if k == "dc"]
    shops = [i for i, k in enumerate(kinds) if k != "dc"] or dcs
    vehicles = []
    shift_idx = rng.choice(len(_SHIFTS), size=num_couriers, p=np.asarray(_SHIFT_WEIGHTS))
    for c in range(num_couriers):
        is_van = c < num_vans
        base = nodes[int(rng.choice(dcs if is_van else shops))]
        start_h, end_h = _SHIFTS[int(shift_idx[c])]
        skills = ["bulky"] if is_van else []
        # The first van is always age-checked, so every order has a courier with its skills.
        if rng.random() < p.age_check_share or c == 0:
            skills.append("age_check")
        vehicles.append(
            _vehicle(
                c,
                num_vans,
                base,
                start_h * HOUR_S,
                min(DAY_S, end_h * HOUR_S),
                skills,
                with_break=end_h - start_h >= 6,
            )
        )
    return vehicles


def _num_vans(num_couriers: int, p: CityParams) -> int:
    """Vans in the fleet: at least one (bulky orders); a single courier drives a van."""
    return max(1, round(num_couriers * p.van_share)) if num_couriers >= 2 else num_couriers


def _vehicle(
    c: int,
    num_vans: int,
    base: dict[str, Any],
    start_s: int,
    end_s: int,
    skills: list[str],
    *,
    with_break: bool,
) -> dict[str, Any]:
    """The record of courier ``c`` (vans first): capacity, costs, shift and break."""
    is_van = c < num_vans
    vehicle: dict[str, Any] = {
        "id": f"van-{c + 1:03d}" if is_van else f"bike-{c - num_vans + 1:03d}",
        "start_location": base["location"],
        "shift": {"start_s": start_s, "end_s": end_s},
        "capacity": [250, 700_000, 3_000_000] if is_van else [25, 20_000, 60_000],
        "skills": skills,
        "fixed_cost_cents": 3_500 if is_van else 1_500,
        "cost_per_km_cents": 30 if is_van else 4,
        "cost_per_hour_cents": 2_000 if is_van else 1_600,
        "max_duration_s": end_s - start_s,
    }
    if with_break:
        vehicle["breaks"] = [
            {
                "window": {"start_s": start_s + 3 * HOUR_S, "end_s": start_s + 5 * HOUR_S},
                "duration_s": 30 * 60,
            }
        ]
    return vehicle


#: Version 2 shift lengths (hours) and their shares: full shifts and short peak shifts.
_V2_LENGTHS_H = (8, 4)
_V2_LENGTH_WEIGHTS = (0.84, 0.16)
#: A shift stretched to reach an order starts and ends on a quarter hour.
_QUARTER_S = 900
#: Travel allowance: Manhattan metres at street speed times the worst congestion factor.
_TRAVEL_SLACK = max(f for _, f in CONGESTION)


def _fleet_v2(
    rng: np.random.Generator,
    num_couriers: int,
    kinds: list[str],
    nodes: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    p: CityParams,
) -> list[dict[str, Any]]:
    """Version 2: vans and bikes as in version 1, shifts following and covering the orders.

    Shift starts are drawn to bring the couriers on shift per hour close to the hourly
    delivery demand (the orders' windows); then every order that no courier with its
    skills can reach in its window (leaving its base at the shift start, home by the shift
    end) stretches the shift of the courier that needs the fewest extra minutes.
    """
    num_vans = _num_vans(num_couriers, p)
    dcs = [i for i, k in enumerate(kinds) if k == "dc"]
    shops = [i for i, k in enumerate(kinds) if k != "dc"] or dcs
    base_idx = np.asarray(
        [int(rng.choice(dcs if c < num_vans else shops)) for c in range(num_couriers)],
        dtype=np.int64,
    )
    age = rng.random(num_couriers) < p.age_check_share
    age[0] = True  # the first courier (a van) can serve every order's skills
    lengths_h = np.asarray(_V2_LENGTHS_H)[
        rng.choice(len(_V2_LENGTHS_H), size=num_couriers, p=np.asarray(_V2_LENGTH_WEIGHTS))
    ]
    win_start = np.asarray([o["time_windows"][0]["start_s"] for o in orders], dtype=np.int64)
    win_end = np.asarray([o["time_windows"][0]["end_s"] for o in orders], dtype=np.int64)
    starts_h = _shift_starts(rng, lengths_h, win_start, win_end)
    start = starts_h * HOUR_S
    end = np.minimum(DAY_S, (starts_h + lengths_h) * HOUR_S)

    node_xy = np.asarray([[n["location"]["x"], n["location"]["y"]] for n in nodes])
    order_xy = np.asarray([[o["location"]["x"], o["location"]["y"]] for o in orders])
    service = np.asarray([o["service_s"] for o in orders], dtype=np.int64)
    needs_age = np.asarray(["age_check" in o.get("required_skills", ()) for o in orders])
    needs_bulky = np.asarray(["bulky" in o.get("required_skills", ()) for o in orders])
    has_bulky = np.arange(num_couriers) < num_vans

    def reach(
        b: NDArray[np.int64], idx: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Latest shift start and earliest shift end reaching orders ``idx`` from nodes ``b``.

        Out from the base at the shift start, the order served in its window, home by the
        shift end; rounded to quarter hours (earlier starts, later ends) and cut to the day.
        """
        metres = np.abs(node_xy[b] - order_xy[idx]).sum(axis=-1)
        travel = np.ceil(metres / p.street_speed_m_per_s * _TRAVEL_SLACK).astype(np.int64)
        latest = np.maximum(0, (win_end[idx] - travel) // _QUARTER_S * _QUARTER_S)
        earliest = -(-(win_start[idx] + service[idx] + travel) // _QUARTER_S) * _QUARTER_S
        return latest, np.minimum(DAY_S, earliest)

    def reaches(c: int, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which orders ``idx`` courier ``c`` has the skills and the hours for."""
        latest, earliest = reach(base_idx[c : c + 1], idx)
        ok = (start[c] <= latest) & (end[c] >= earliest)
        ok &= (age[c] | ~needs_age[idx]) & (has_bulky[c] | ~needs_bulky[idx])
        return np.asarray(ok)

    uncovered = np.arange(len(orders), dtype=np.int64)
    for c in range(num_couriers):
        uncovered = uncovered[~reaches(c, uncovered)]
    uncovered = uncovered[np.argsort(win_start[uncovered], kind="stable")]
    while uncovered.size:
        o = uncovered[:1]
        able = np.flatnonzero((age | ~needs_age[o]) & (has_bulky | ~needs_bulky[o]))
        latest, earliest = reach(base_idx[able], np.repeat(o, able.size))
        extra = np.maximum(0, start[able] - latest) + np.maximum(0, earliest - end[able])
        pick = int(np.argmin(extra))
        c = int(able[pick])
        start[c] = min(int(start[c]), int(latest[pick]))
        end[c] = max(int(end[c]), int(earliest[pick]))
        uncovered = uncovered[~reaches(c, uncovered)]

    vehicles = []
    for c in range(num_couriers):
        skills = (["bulky"] if has_bulky[c] else []) + (["age_check"] if age[c] else [])
        s, e = int(start[c]), int(end[c])
        base = nodes[int(base_idx[c])]
        vehicles.append(_vehicle(c, num_vans, base, s, e, skills, with_break=e - s >= 6 * HOUR_S))
    return vehicles


def _delivery_profile(
    win_start: NDArray[np.int64], win_end: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Orders to deliver per hour of day: each order spread evenly over its window."""
    hours = np.arange(24, dtype=np.int64) * HOUR_S
    lo = np.maximum(win_start[:, None], hours[None, :])
    hi = np.minimum(win_end[:, None], hours[None, :] + HOUR_S)
    width = np.maximum(1, win_end - win_start)[:, None]
    return np.asarray((np.maximum(0, hi - lo) / width).sum(axis=0), dtype=np.float64)


def _shift_starts(
    rng: np.random.Generator,
    lengths_h: NDArray[np.int64],
    win_start: NDArray[np.int64],
    win_end: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Whole-hour shift starts drawn so that couriers on shift follow the delivery demand.

    The target is the delivery demand scaled to the fleet's hours; each start is drawn with
    weight (how much a shift there brings the hours on shift closer to the target, in squared
    error) ** 4, which favours the best starts and still varies with the seed.
    """
    demand = _delivery_profile(win_start, win_end)
    first_h = int(win_start.min()) // HOUR_S
    last_h = -(-int(win_end.max()) // HOUR_S)
    target = demand / demand.sum() * float(lengths_h.sum())
    on_shift = np.zeros(24, dtype=np.float64)
    starts = np.empty(len(lengths_h), dtype=np.int64)
    for c in np.argsort(-lengths_h, kind="stable"):  # long shifts first, short ones fill gaps
        length = int(lengths_h[c])
        # starts keeping the shift inside the delivery hours when they are long enough
        hi = max(first_h, last_h - length)
        options = np.arange(first_h, hi + 1)
        stop = np.minimum(options + length, 24)
        gain = np.concatenate([[0.0], np.cumsum(2.0 * (target - on_shift) - 1.0)])
        weight = np.clip(gain[stop] - gain[options], 0.0, None) ** 4  # squared error saved
        if weight.sum() <= 0:
            cum = np.concatenate([[0.0], np.cumsum(demand)])
            weight = cum[stop] - cum[options]
        if weight.sum() <= 0:
            weight = np.ones(len(options))
        s = int(options[int(rng.choice(len(options), p=weight / weight.sum()))])
        starts[c] = s
        on_shift[s : s + length] += 1.0
    return starts


__all__ = ["DEFAULT_HOURLY_PROFILE", "GENERATOR_VERSION", "CityParams", "generate_city"]
