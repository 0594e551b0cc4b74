"""Small batches (under 100 orders): how often and how fast the answer is certified.

Below ``batch.LNS_MIN_ORDERS`` orders a batch's integer phase is the MIP over the pattern
pool, then (session 58) the reduced-cost certificate of its answer
(``batch.SMALL_CERTIFICATE``), then the compact MIP while the gap target is not met. This
script allocates literature requests (``solvers.allocation.literature``, 10 FCs) of each
size and seed twice, with the certificate and without it (the code before session 58), at
the same time limit and one HiGHS thread, and reports per size and code: the answers
certified within the gap target (``status`` optimal), the CPU seconds of ``allocate``
(median, 90th percentile, most), the mean certified gap, the paired mean CPU difference
with its 95 % CI, and the seeds where the two answers cost differently. CPU time, not wall
time: the figure does not depend on what else the machine runs. Writes
``allocation-small.md`` and ``.csv``::

    flock -s /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/allocation_small.py

The defaults (sizes 30, 50, 70, 90; seeds 1..30; 10 s) take 10-20 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.allocation import RUN_LINES, fmt_ci, progress, write_table  # noqa: E402
from benchmarks.allocation_certify import seconds_arg  # noqa: E402
from benchmarks.measures import (  # noqa: E402
    command_line,
    int_list,
    output_folder_arg,
    provenance,
    run_script,
    seeds_arg,
)
from simulation.stats import paired_diff  # noqa: E402
from solvers.allocation import AllocationParams, allocate, batch  # noqa: E402
from solvers.allocation.literature import generate_literature  # noqa: E402

HEADER = [
    "orders",
    "code",
    "certified",
    "CPU median (s)",
    "CPU p90 (s)",
    "CPU max (s)",
    "mean gap (%)",
    "CPU, certificate - compact only [95% CI] (s)",
    "seeds cheaper / dearer with the certificate",
]
#: the two codes compared: with the certificate, and the compact MIP alone (before)
CODES = {"certificate": True, "compact only": False}


@dataclass
class SmallRun:
    """One allocation of one request by one code."""

    certified: bool
    cpu_s: float
    gap: float
    cost: float


def sizes_arg(text: str) -> list[int]:
    """``--sizes``: comma-separated order counts of 1..LNS_MIN_ORDERS - 1 (else exit 2)."""
    sizes = int_list(text, least=1, what="positive order counts")
    if max(sizes) >= batch.LNS_MIN_ORDERS:
        raise argparse.ArgumentTypeError(
            f"sizes must be below {batch.LNS_MIN_ORDERS} orders (the small-batch path)"
        )
    return sizes


def measure(num_orders: int, seed: int, limit_s: float, certificate: bool) -> SmallRun:
    """Allocate one literature request with or without the small-batch certificate."""
    req = generate_literature(seed=seed, num_orders=num_orders)
    params = AllocationParams(mode="batch", time_limit_s=limit_s, threads=1, explain=False)
    saved = batch.SMALL_CERTIFICATE
    batch.SMALL_CERTIFICATE = certificate
    try:
        t0 = time.process_time()
        res = allocate(req, params)
        cpu = time.process_time() - t0
    finally:
        batch.SMALL_CERTIFICATE = saved
    gap = np.nan if res.gap is None else res.gap
    return SmallRun(res.status == "optimal", cpu, gap, res.cost.total)


def size_rows(num_orders: int, runs: dict[str, list[SmallRun]]) -> list[list[object]]:
    """The table's two rows of one size."""
    new, old = runs["certificate"], runs["compact only"]
    diff = paired_diff([r.cpu_s for r in new], [r.cpu_s for r in old])
    cheaper = sum(a.cost < b.cost - 1e-6 for a, b in zip(new, old, strict=True))
    dearer = sum(a.cost > b.cost + 1e-6 for a, b in zip(new, old, strict=True))
    rows: list[list[object]] = []
    for code, got in runs.items():
        cpu = np.array([r.cpu_s for r in got])
        first = code == "certificate"
        rows.append(
            [
                num_orders,
                code,
                f"{sum(r.certified for r in got)}/{len(got)}",
                f"{np.median(cpu):.2f}",
                f"{np.percentile(cpu, 90):.2f}",
                f"{cpu.max():.2f}",
                f"{100 * np.nanmean([r.gap for r in got]):.4f}",
                fmt_ci(diff, 2) if first else "",
                f"{cheaper} / {dearer}" if first else "",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Allocate every size and seed with both codes and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=sizes_arg, default=[30, 50, 70, 90], help="orders per request")
    ap.add_argument("--seeds", type=seeds_arg, default=list(range(1, 31)), help="A..B or A,B,C")
    ap.add_argument("--limit", type=seconds_arg, default=10.0, help="time limit of each call (s)")
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    args = ap.parse_args(argv)
    RUN_LINES[:] = [provenance()]  # when, which code, which machine: as the run starts
    rows: list[list[object]] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        with progress() as bar:
            task = bar.add_task(
                "Allocation: small batches", total=len(args.sizes) * len(args.seeds) * len(CODES)
            )
            for size in args.sizes:
                runs: dict[str, list[SmallRun]] = {code: [] for code in CODES}
                for seed in args.seeds:
                    for code, on in CODES.items():
                        runs[code].append(measure(size, seed, args.limit, on))
                        bar.advance(task)
                rows += size_rows(size, runs)
    except KeyboardInterrupt:  # was a traceback
        print("interrupted: no table written", file=sys.stderr)
        return 130
    first, last = args.seeds[0], args.seeds[-1]
    run_of_seeds = len(args.seeds) > 1 and args.seeds == list(range(first, last + 1))
    seeds = f"{first}..{last}" if run_of_seeds else ",".join(map(str, args.seeds))
    notes = (
        f"Literature requests (10 FCs, seeds {seeds}), batch mode, `threads=1`, no "
        f"explanations, time limit {args.limit:g} s, gap target 0.01 % (the default). "
        "'certificate': the pool MIP's answer gets the reduced-cost certificate before the "
        "compact MIP; 'compact only': `batch.SMALL_CERTIFICATE = False` (the code before "
        "session 58). Certified = status "
        "optimal (certified gap within the target). CPU = `time.process_time()` of "
        "`allocate`; the paired difference is certificate minus compact only, same seeds. "
        f"Run {started} on {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()}. Command: "
        f"`{command_line(ap, argv, 'allocation_small.py')}`."
    )
    write_table(
        args.out_dir,
        "allocation-small",
        "Allocation: small batches, certified answers and CPU time",
        HEADER,
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
