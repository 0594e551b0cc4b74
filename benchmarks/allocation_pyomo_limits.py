"""How far past its time limit the ``pyomo`` backend answers, by request size.

Literature requests (``solvers.allocation.literature``, seed 0, 10 FCs) of each size are
allocated with ``backend="pyomo"`` at the given limit, the pyomo worker process started
and ready first (its start, Pyomo's import, is not what is measured). Each row: the limit,
the wall time of ``allocate``, how far past the limit it came, the Pyomo model's build
time, the HiGHS call's time (the hand-over to HiGHS included; the parent's wait for the
worker where the worker was killed), HiGHS' status ("killed" where the worker did not
answer by ``solve.pyomo_deadlines``' kill time), the baseline the answer fell back to
("no": HiGHS' answer; session 43: the cheapest complete one of the nearest-node, myopic and
rule-chain baselines computed while the worker ran, taken where the worker was killed or
HiGHS' answer cost more), the answer's cost, the nearest-node answer's cost and the orders
explained (``--explain``: with explanations, whose share of the limit the solve keeps
back; without, 0). Writes ``allocation-pyomo-limits.md`` and ``.csv``::

    flock -x /tmp/dispatchlab-cpu.lock .venv/bin/python benchmarks/allocation_pyomo_limits.py

Sizes ``--sizes 300,600,1000,1400,2000`` at ``--limit 1`` take about half a minute on a
2-core machine (each size waits for a fresh worker after the last one was killed; before
session 42, in the calling thread, they took four minutes, the 2,000 orders alone some
two: HiGHS' MIP set-up does not watch the clock).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.allocation import RUN_LINES, progress, write_table  # noqa: E402
from benchmarks.allocation_certify import seconds_arg  # noqa: E402
from benchmarks.measures import (  # noqa: E402
    command_line,
    ctrl_c_writes_nothing,
    int_list,
    output_folder_arg,
    provenance,
    run_script,
)
from solvers.allocation import AllocationParams, allocate  # noqa: E402
from solvers.allocation.heuristics import nearest  # noqa: E402
from solvers.allocation.literature import generate_literature  # noqa: E402
from solvers.allocation.problem import MICRO, compile_request  # noqa: E402
from solvers.allocation.pyomo_worker import warm_worker  # noqa: E402
from solvers.allocation.solve import PYOMO_KILLED_NOTE, pyomo_fallback  # noqa: E402

HEADER = [
    "orders",
    "limit (s)",
    "wall (s)",
    "past the limit (s)",
    "model build (s)",
    "HiGHS call (s)",
    "HiGHS status",
    "fallback baseline",
    "cost",
    "nearest-node cost",
    "explained orders",
]


def sizes_arg(text: str) -> list[int]:
    """``--sizes``: comma-separated positive order counts (argparse type: else exit 2)."""
    return int_list(text, least=1, what="positive order counts")


def measure(num_orders: int, limit_s: float, explain: bool = False) -> list[object]:
    """One pyomo allocation of ``num_orders`` literature orders: a row of :data:`HEADER`."""
    req = generate_literature(seed=0, num_orders=num_orders, num_nodes=10, vip_share=0.1)
    warm_worker()  # the last size's worker may have been killed: its successor is starting
    params = AllocationParams(backend="pyomo", time_limit_s=limit_s, explain=explain)
    t0 = time.perf_counter()
    res = allocate(req, params)
    wall = time.perf_counter() - t0
    killed = any(n.startswith(PYOMO_KILLED_NOTE) for n in res.stats.notes)
    status = next(
        (n.removeprefix("HiGHS status ") for n in res.stats.notes if n.startswith("HiGHS status")),
        "killed" if killed else "",
    )
    prob = compile_request(req)
    nearest_cost = prob.evaluate(nearest(prob)).total / MICRO
    return [
        num_orders,
        f"{limit_s:g}",
        f"{wall:.2f}",
        f"{wall - limit_s:+.2f}",
        f"{res.stats.build_s:.2f}",
        f"{res.stats.mip_s:.2f}",
        status.split(":")[0],
        pyomo_fallback(res.stats.notes) or "no",
        f"{res.cost.total:.2f}",
        f"{nearest_cost:.2f}",
        len(res.explanations),
    ]


@ctrl_c_writes_nothing  # Ctrl-C: a KeyboardInterrupt traceback
def main(argv: list[str] | None = None) -> int:
    """Measure every size and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sizes", type=sizes_arg, default=[300, 600, 1000, 1400, 2000], help="orders per request"
    )
    ap.add_argument("--limit", type=seconds_arg, default=1.0, help="time limit of each call (s)")
    ap.add_argument(
        "--explain", action="store_true", help="with explanations (their share kept back)"
    )
    ap.add_argument(
        "--out-dir",
        type=output_folder_arg("--out-dir"),
        default=str(REPO / "benchmarks" / "results"),
        help="where the table goes (default benchmarks/results)",
    )
    args = ap.parse_args(argv)
    RUN_LINES[:] = [provenance()]  # when, which code, which machine: as the run starts
    rows = []
    with progress() as bar:
        task = bar.add_task("Allocation: pyomo backend against its limit", total=len(args.sizes))
        for size in args.sizes:
            rows.append(measure(size, args.limit, args.explain))
            bar.advance(task)
    notes = (
        'Literature requests (seed 0, 10 FCs), `backend="pyomo"`, its worker process ready '
        "before each; "
        f"one run per size on {os.cpu_count()} CPUs ({platform.machine()}), "
        f"Python {platform.python_version()}. "
        "'HiGHS call' is Pyomo's solve call: the hand-over of the model to HiGHS and HiGHS' "
        "run (where the worker was killed: the parent's wait for it). "
        f"Command: `{command_line(ap, argv, 'allocation_pyomo_limits.py')}`."
    )
    write_table(
        args.out_dir,
        "allocation-pyomo-limits",
        "Allocation: the pyomo backend against its time limit",
        HEADER,
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
