"""Speed and size of the seeded city generator (scenarios.generate.generate_city).

One command reproduces the table::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/generate_city.py

For 10, 1,000, 10,000 and 50,000 orders (nodes and couriers growing with the order count) it
measures the median time of ``generate_city`` (including pydantic validation) and of writing
the JSON, the file size, and whether two runs with the same seed give the same bytes (sha256).
Target from the issue: 50,000 orders in "a few seconds". Writes
``benchmarks/results/generate-city.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_PREFIX = "generate-city"

from benchmarks.measures import (  # noqa: E402
    command_line,
    count_arg,
    dict_csv_text,
    output_folder_arg,
    output_options,
    provenance,
    run_script,
    seed_arg,
    table_name_arg,
    write_table_files,
)
from scenarios.generate import generate_city  # noqa: E402
from scenarios.io import to_json  # noqa: E402

SIZES = ((10, 3, 2), (1_000, 10, 40), (10_000, 25, 300), (50_000, 40, 800))
TARGET_50K_S = 5.0


def run(repeats: int, seed: int) -> list[dict[str, Any]]:
    """One row per size."""
    rows = []
    for orders, nodes, couriers in SIZES:
        gen_times, json_times, digests = [], [], set()
        text = ""
        for _ in range(repeats):
            t0 = time.perf_counter()
            scenario = generate_city(
                seed=seed, num_orders=orders, num_nodes=nodes, num_couriers=couriers
            )
            gen_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            text = to_json(scenario)
            json_times.append(time.perf_counter() - t0)
            digests.add(hashlib.sha256(text.encode()).hexdigest())
        gen_s = statistics.median(gen_times)
        travel = scenario.travel
        grid = getattr(travel, "grid", None)
        row = {
            "orders": orders,
            "nodes": nodes,
            "couriers": couriers,
            "skus": len(scenario.skus),
            "grid_nodes": grid.num_nodes if grid is not None else "",
            "generate_s": round(gen_s, 3),
            "to_json_s": round(statistics.median(json_times), 3),
            "json_mb": round(len(text.encode()) / 2**20, 2),
            "identical_bytes": len(digests) == 1,
            "sha256_prefix": next(iter(digests))[:12],
            "target": f"<= {TARGET_50K_S:g} s" if orders == 50_000 else "",
            "met": (gen_s <= TARGET_50K_S) if orders == 50_000 else "",
        }
        rows.append(row)
        print(row, flush=True)
    return rows


def write(
    rows: list[dict[str, Any]], prefix: str, args: argparse.Namespace, made: str = ""
) -> None:
    """Write the CSV and the markdown table (``made``: the run's :func:`provenance`)."""
    out_dir = Path(getattr(args, "out_dir", RESULTS))
    head = [
        "# City generator: speed, size, determinism",
        "",
        "Reproduce: `flock -x /tmp/dispatchlab-cpu.lock .venv/bin/"
        + (
            getattr(args, "command", None)  # main's: every option, defaults included
            or "python benchmarks/generate_city.py "
            f"--repeats {args.repeats} --seed {args.seed}"
            f"{output_options(prefix, DEFAULT_PREFIX, out_dir, RESULTS)}"
        )
        + "`",
        "",
        made or provenance(),
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}. Median of "
        f"{args.repeats} runs; `generate_s` includes pydantic validation of the Scenario; "
        "`identical_bytes` = every run gave the same JSON (sha256). The 50,000-order target "
        f"({TARGET_50K_S:g} s) is this project's reading of the issue's \"a few seconds\".",
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
    print(f"wrote {out_dir / prefix}.md and .csv")


def main() -> int:
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
    parser.add_argument("--seed", type=seed_arg, default=1, help="seed of the generated cities")
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
    args.command = command_line(parser, None, "generate_city.py")
    try:
        rows = run(args.repeats, args.seed)
    except KeyboardInterrupt:  # was a traceback
        print("interrupted: no table written", file=sys.stderr)
        return 130
    write(rows, args.out_prefix, args, made)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
