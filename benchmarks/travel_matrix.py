"""Speed of road-network travel matrices (scenarios.roads.RoadGraph) on synthetic city grids.

One command reproduces the table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/travel_matrix.py

For each grid (50 x 50 = 2,500 and 100 x 100 = 10,000 intersections, 200 m blocks, arterials
every 5th street) and each location count (100, 1,000, 5,000 points drawn uniformly over the
city with a fixed seed) it measures, as the median of ``--repeats`` runs:

* ``build``: constructing the graph (CSR, components, k-d tree, packed weights);
* ``cold``: ``RoadGraph.matrix(locations)``, the full N x N integer matrix on a fresh graph
  (projection + snapping + one Dijkstra per unique snapped origin + assembly + rounding);
* ``cached``: the same matrix again (every row from the per-source cache);
* ``twin``: 20 origins among the cached ones to all N destinations (the twin's typical query);
* ``networkx`` (100 locations only): the same durations with networkx
  ``single_source_dijkstra_path_length`` from each unique origin node, as a reference.

Writes ``benchmarks/results/travel-matrix.md`` and ``.csv``. There are no pass/fail targets in
the issue beyond "fast"; the table is the record.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_PREFIX = "travel-matrix"

from benchmarks.measures import (  # noqa: E402
    command_line,
    count_arg,
    ctrl_c_writes_nothing,
    dict_csv_text,
    output_folder_arg,
    output_options,
    provenance,
    run_script,
    table_name_arg,
    write_table_files,
)
from scenarios.geo import Location  # noqa: E402
from scenarios.roads import RoadGraph  # noqa: E402
from scenarios.travel import GridSpec  # noqa: E402

GRIDS = (50, 100)
SIZES = (100, 1_000, 5_000)


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time (s) of ``fn`` over ``repeats`` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _networkx_seconds(spec: GridSpec, graph: RoadGraph, xy: np.ndarray) -> float:
    """Durations from each unique origin node with networkx (reference only)."""
    import networkx as nx

    g = nx.DiGraph()
    for u, v, data in graph.to_networkx().edges(data=True):
        g.add_edge(u, v, t=data["travel_time"])
    nodes, _ = graph.snap_xy(xy)
    t0 = time.perf_counter()
    for src in np.unique(nodes).tolist():
        nx.single_source_dijkstra_path_length(g, src, weight="t")
    return time.perf_counter() - t0


def run(repeats: int, grids: tuple[int, ...], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Measure every (grid, size) pair; one row each."""
    rows = []
    for side in grids:
        spec = GridSpec(rows=side, cols=side, spacing_m=200.0, arterial_every=5)
        extent = (side - 1) * spec.spacing_m
        build_s, graph = _median_time(partial(RoadGraph.from_grid, spec), repeats)
        for n in sizes:
            rng = np.random.default_rng(n + side)
            xy = rng.uniform(0.0, extent, size=(n, 2))
            locs = [Location(x=float(x), y=float(y)) for x, y in xy]

            cold_times = []
            warm_graph = graph
            for _ in range(repeats):
                warm_graph = RoadGraph.from_grid(spec)  # fresh graph, empty cache (untimed)
                t0 = time.perf_counter()
                warm_graph.matrix(locs)
                cold_times.append(time.perf_counter() - t0)
            cold_s = statistics.median(cold_times)
            cached_s, _ = _median_time(partial(warm_graph.matrix, locs), repeats)
            twin_s, _ = _median_time(partial(warm_graph.matrix, locs[:20], locs), max(repeats, 5))
            info = warm_graph.cache_info()
            sources = info["rows"]
            row = {
                "grid": f"{side}x{side}",
                "graph_nodes": graph.num_nodes,
                "locations": n,
                "unique_sources": sources,
                "build_s": round(build_s, 4),
                "cold_s": round(cold_s, 3),
                "cold_ms_per_source": round(1000 * cold_s / max(1, sources), 3),
                "cached_s": round(cached_s, 4),
                "twin_20xN_s": round(twin_s, 4),
                "cache_mb": round(info["bytes"] / 2**20, 1),
                "networkx_s": "",
            }
            if n == 100:
                row["networkx_s"] = round(_networkx_seconds(spec, graph, xy), 3)
            rows.append(row)
            print(row, flush=True)
    return rows


def write(
    rows: list[dict[str, Any]], prefix: str, args: argparse.Namespace, made: str = ""
) -> None:
    """Write the CSV and the markdown table (``made``: the run's :func:`provenance`)."""
    out_dir = Path(getattr(args, "out_dir", RESULTS))
    csv_path = out_dir / f"{prefix}.csv"
    import scipy

    head = [
        "# Road-network travel matrices",
        "",
        "Reproduce: `flock -x /tmp/dispatchlab-cpu.lock .venv/bin/"
        + (
            getattr(args, "command", None)  # main's: every option, defaults included
            or "python benchmarks/travel_matrix.py "
            f"--repeats {args.repeats} --grids {' '.join(map(str, args.grids))} "
            f"--sizes {' '.join(map(str, args.sizes))}"
            f"{output_options(prefix, DEFAULT_PREFIX, out_dir, RESULTS)}"
        )
        + "`",
        "",
        made or provenance(),
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}. "
        "Grids of 200 m blocks with arterials every 5th street; uniform random locations "
        f"(seeded); median of {args.repeats} runs (twin query: of max(repeats, 5)).",
        "",
        "Columns: `cold` = `RoadGraph.matrix(locations)`, the full N x N int64 matrices on a "
        "fresh graph (projection, snapping, one Dijkstra per unique snapped origin, assembly, "
        "rounding; graph build excluded); `cached` = the same query again "
        "(rows from the per-source cache); `twin 20xN` = 20 cached origins to all N; "
        "`networkx` = networkx single-source Dijkstra from the same unique origins (durations "
        "only), 100 locations only.",
        "",
    ]
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    write_table_files(
        out_dir,
        {
            f"{prefix}.csv": dict_csv_text(list(rows[0]), rows),
            f"{prefix}.md": "\n".join(head + lines) + "\n",
        },
    )
    print(f"wrote {csv_path} and {prefix}.md")


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=count_arg,
        default=3,
        help="timed runs of each size (the median is reported)",
    )
    parser.add_argument(
        "--grids",
        type=count_arg,
        nargs="+",
        default=list(GRIDS),
        help="sides of the road grids timed (intersections a side)",
    )
    parser.add_argument(
        "--sizes",
        type=count_arg,
        nargs="+",
        default=list(SIZES),
        help="matrix sizes (locations) to time",
    )
    parser.add_argument(
        "--out-prefix",
        type=table_name_arg,
        default=DEFAULT_PREFIX,
        help="file name of the table, without .md/.csv",
    )
    parser.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(RESULTS),
        help="where the table goes (benchmarks/results)",
    )
    args = parser.parse_args()
    made = provenance()
    args.command = command_line(parser, None, "travel_matrix.py")
    rows = run(args.repeats, tuple(args.grids), tuple(args.sizes))
    write(rows, args.out_prefix, args, made)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
