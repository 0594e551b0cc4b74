"""``benchmarks/routing.py``'s tables: each anchor compared with ours instance by instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.stats import paired_diff
from tests.conftest import benchmark_script, routing_table_args


@pytest.fixture(scope="module")
def routing() -> Iterator[ModuleType]:
    """The benchmark script, imported as a module (nothing runs on import)."""
    with benchmark_script("routing.py", "routing_paired_script") as module:
        yield module


#: one instance's plan by one solver: its distance, or None for no feasible plan
plans = st.one_of(st.none(), st.integers(min_value=800, max_value=1_200).map(float))


def _cells(line: str) -> list[str]:
    """The cells of a markdown table line."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


@settings(max_examples=100, deadline=None)
@given(days=st.lists(st.tuples(plans, plans), min_size=1, max_size=12))
def test_the_paired_line_counts_every_instance_and_gives_the_paired_interval(
    routing: ModuleType, days: list[tuple[float | None, float | None]]
) -> None:
    """The anchor's line: the instances both solved, its longer / same / shorter plans among
    them, the ones only one solved, and the mean gap difference (its minus ours) of the pairs
    with the paired t-interval: the mean gap of the summary table's rows only compared the
    two solvers' means, over different instances when one failed some."""
    rows = []
    for i, (mine, theirs) in enumerate(days):
        for solver, distance in (("ours:pyvrpx2", mine), ("raw:pyvrp", theirs)):
            feasible = distance is not None
            rows.append(routing.Row(f"I{i}", solver, feasible, distance, 10, 1.0, 1_000.0, 10))
    lines = routing.paired_lines(rows, ["ours:pyvrpx2", "raw:pyvrp"])
    solver, n, shown, signs, only = _cells(lines[-1])
    both = [(m, t) for m, t in days if m is not None and t is not None]
    assert solver == "raw:pyvrp" and int(n) == len(both)
    longer, same, shorter = (int(x) for x in signs.split(" / "))
    assert (longer, same, shorter) == (
        sum(t > m for m, t in both),
        sum(t == m for m, t in both),
        sum(t < m for m, t in both),
    )
    assert only == (
        f"{sum(m is not None and t is None for m, t in days)} / "
        f"{sum(m is None and t is not None for m, t in days)}"
    )
    if not both:
        assert shown == "-"
        return
    gap = routing.Row("I", "s", True, 0.0, 10, 1.0, 1_000.0, 10)

    def gap_of(distance: float) -> float:
        gap.distance = distance
        return float(gap.gap_pct)

    diff = paired_diff([gap_of(t) for _, t in both], [gap_of(m) for m, _ in both])
    assert shown.split()[0] == f"{diff.mean:+.3f}".replace("-0.000", "+0.000")
    if len(both) >= 2 and not diff.degenerate:
        assert shown.endswith(f"[{diff.low:+.3f}, {diff.high:+.3f}]".replace("-0.000", "+0.000"))
    if longer == len(both):  # every plan of the anchor longer: it is worse on average
        assert diff.mean > 0


def test_a_routing_table_with_anchors_has_the_paired_comparison(
    routing: ModuleType, tmp_path: Path
) -> None:
    """The table written holds one paired line per anchor; a table of one solver none."""
    rows = [
        routing.Row(name, solver, True, dist, 10, 1.0, 827.3, 10)
        for name, ours, raw in (("C101", 828.9, 830.0), ("C102", 827.3, 827.3))
        for solver, dist in (("ours:pyvrpx2", ours), ("raw:pyvrp", raw))
    ]
    args = routing_table_args("pyvrp")
    routing.write_outputs(rows, tmp_path / "r", args, "dimacs_distance")
    table = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "Paired against `ours:pyvrpx2`" in table
    assert "| raw:pyvrp | 2 |" in table and "| 1 / 1 / 0 | 0 / 0 |" in table
    routing.write_outputs(rows[::2], tmp_path / "s", args, "dimacs_distance")
    assert "Paired against" not in (tmp_path / "s.md").read_text(encoding="utf-8")
