"""A compact, JSON-able summary of a scenario: what ``dispatchlab scenario show`` prints."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from scenarios.model import Scenario


def summarize(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """Sections of facts about a scenario: size, time, travel, load, stock, windows, source."""
    s = scenario
    dims = list(s.capacity_dims)
    horizon_s = s.horizon.end_s - s.horizon.start_s
    kinds = Counter(node.kind.value for node in s.nodes)
    counts: dict[str, Any] = {
        "orders": len(s.orders),
        "pickup_delivery_pairs": sum(1 for o in s.orders if o.pickup is not None),
        "order_lines": sum(len(o.lines) for o in s.orders),
        "nodes": len(s.nodes),
        "nodes_by_kind": dict(sorted(kinds.items())),
        "skus": len(s.skus),
        "vehicles": len(s.vehicles),
        "vip_orders": sum(1 for o in s.orders if o.tier.value == "vip"),
    }
    if s.arrivals is not None:
        counts["expected_arrivals_per_day"] = round(sum(s.arrivals.hourly_rate), 1)
        if s.arrivals.templates:
            counts["arrival_templates"] = len(s.arrivals.templates)

    time: dict[str, Any] = {
        "horizon_s": [s.horizon.start_s, s.horizon.end_s],
        "horizon_h": round(horizon_s / 3600, 2),
    }
    if s.source.time_divisor != 1:
        time["horizon_source_units"] = [
            s.horizon.start_s / s.source.time_divisor,
            s.horizon.end_s / s.source.time_divisor,
        ]
    shifts = [v.shift for v in s.vehicles if v.shift is not None]
    if shifts:
        time["shift_hours_total"] = round(sum(w.end_s - w.start_s for w in shifts) / 3600, 1)

    load: dict[str, Any] = {"capacity_dims": dims}
    if s.orders:
        demand = [0] * len(dims)
        for order in s.orders:
            for i, value in enumerate(order.demand_vector(dims)):
                demand[i] += value
        load["demand"] = dict(zip(dims, demand, strict=True))
    if s.vehicles:
        if all(v.capacity for v in s.vehicles):
            capacity = [sum(v.capacity[i] for v in s.vehicles) for i in range(len(dims))]
            load["fleet_capacity"] = dict(zip(dims, capacity, strict=True))
            if s.orders:
                load["demand_over_capacity"] = {
                    dim: round(d / c, 3) if c else None
                    for dim, d, c in zip(dims, demand, capacity, strict=True)
                }
        else:
            load["fleet_capacity"] = "unlimited on some vehicles"
    skills = Counter(skill for o in s.orders for skill in o.required_skills)
    if skills:
        load["orders_needing_skill"] = dict(sorted(skills.items()))

    stock: dict[str, Any] = {}
    if s.nodes and any(o.lines for o in s.orders):
        wanted: Counter[str] = Counter()
        for order in s.orders:
            for line in order.lines:
                wanted[line.sku] += line.quantity
        available: Counter[str] = Counter()
        for node in s.nodes:
            for sku in node.inventory:
                available[sku] += node.available(sku)
        stock = {
            "units_ordered": sum(wanted.values()),
            "units_available": sum(available.values()),
            "skus_short": sum(1 for sku, q in wanted.items() if available[sku] < q),
        }

    windows: dict[str, Any] = {}
    widths = [sum(w.end_s - w.start_s for w in o.time_windows) for o in s.orders if o.time_windows]
    if s.orders:
        windows["orders_with_windows"] = f"{len(widths)} of {len(s.orders)}"
    if widths:
        median = statistics.median(widths)
        windows["width_s_min_median_max"] = [min(widths), int(median), max(widths)]
        if horizon_s > 0:
            windows["median_width_over_horizon"] = round(median / horizon_s, 3)
    if s.orders:
        windows["service_s_mean"] = round(statistics.fmean(o.service_s for o in s.orders), 1)

    source: dict[str, Any] = {"format": s.source.format}
    for key in ("name", "path"):
        value = getattr(s.source, key)
        if value:
            source[key] = value
    if s.source.distance_divisor != 1 or s.source.time_divisor != 1:
        source["divisors"] = (
            f"distance_m / {s.source.distance_divisor}, seconds / {s.source.time_divisor} "
            "= source units"
        )
    if s.source.notes:
        source["notes"] = s.source.notes

    out = {
        "scenario": {"name": s.name, **counts},
        "time": time,
        "travel": describe_travel(s),
        "load": load,
    }
    if stock:
        out["stock"] = stock
    out["windows"] = windows
    out["source"] = source
    return out


def describe_travel(scenario: Scenario) -> dict[str, Any]:
    """The travel model's kind and the parameters that matter to read its numbers."""
    t = scenario.travel
    info: dict[str, Any] = {"kind": t.kind}
    if t.kind == "matrix":
        info["size"] = f"{t.size} x {t.size}"
        info["distances"] = "given" if t.distance_m is not None else "= durations"
    elif t.kind == "euclidean":
        info["metres_per_unit"] = t.metres_per_unit
        info["speed_m_per_s"] = t.speed_m_per_s
        info["rounding"] = t.rounding
    elif t.kind == "haversine":
        info["speed_m_per_s"] = t.speed_m_per_s
        info["detour_factor"] = t.detour_factor
    else:
        if t.grid is not None:
            g = t.grid
            info["grid"] = (
                f"{g.rows} x {g.cols} nodes, {g.spacing_m:g} m blocks, arterials every "
                f"{g.arterial_every} at {g.arterial_speed_m_per_s:g} m/s, streets "
                f"{g.street_speed_m_per_s:g} m/s"
            )
        else:
            info["graphml_path"] = t.graphml_path
    if t.profile:
        info["profile"] = ", ".join(
            f"{p.start_s // 3600:02d}:{p.start_s % 3600 // 60:02d} x{p.duration_factor:g}"
            for p in t.profile
        )
    return info


__all__ = ["describe_travel", "summarize"]
