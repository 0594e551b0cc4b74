"""Is a recorded 10 s literature answer within 0.1 % of the true optimum? A reduced-cost proof.

The batch solve's bound is the Dantzig-Wolfe LP value; longer runs never raise it. This
script applies the argument of ``solvers.allocation.lns.certify`` with time to spare: at the
master LP's duals (Lagrangian value ``L``) any allocation that uses a pattern of reduced cost
above ``delta`` costs at least ``L + delta``. With ``L + delta = T`` (the recorded cost times
``1 - 0.00099``), every pattern of reduced cost <= ``delta`` is enumerated and the pattern MIP
over them is solved with the cutoff ``T``: if it finds nothing below ``T``, the optimum is at
least ``T`` and the recorded answer is within 0.099 % of it.

Usage::

    python benchmarks/allocation_certify.py --seeds 7,18,29 --seconds 300 \\
        --runs benchmarks/results/allocation-literature-runs.csv

The duals come from a fresh 9.5 s solve of the same seed (any duals give a valid bound).

The other way round, ``--long-solve S`` runs a one-thread batch solve of S seconds per seed
instead: an allocation below the recorded cost times ``1 - 0.001`` shows that the recorded
answer is *not* within 0.1 % of the optimum (its cost depends on timing: the search stops
on the clock)::

    python benchmarks/allocation_certify.py --seeds 28 --long-solve 1800

``--known benchmarks/results/allocation-literature-known.csv`` writes what each seed's proof
or solve shows (a proved bound, an allocation found) into the known-bounds file that the
literature table judges its answers by, where it is better than what the file holds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import solvers.allocation.batch as batch  # noqa: E402
from benchmarks.allocation import (  # noqa: E402
    NOTHING_KNOWN,
    FastAnswer,
    improved,
    literature_request,
    read_known,
    recorded_answers,
    seed_list,
    write_known,
)
from benchmarks.measures import (  # noqa: E402
    WrittenThenInterrupted,
    progress_bar,
    run_script,
    seconds_arg,
)
from solvers.allocation import AllocationParams, allocate  # noqa: E402
from solvers.allocation.enumerate import near_columns  # noqa: E402
from solvers.allocation.highs_model import dual_bound, reduced_costs, run_highs  # noqa: E402
from solvers.allocation.lns import CERT_OPTIONS, SubMip  # noqa: E402

#: the proof asks for the optimum to be at least cost x (1 - MARGIN)
MARGIN = 0.99e-3
#: patterns the proof may list, beyond which it answers "too many patterns" (the former limit
#: was 10^8): on 2026-12-03 seed 21's 1,589,186 patterns gave no MIP bound in 1,002 s, and
#: one listing of seed 7 still ran after 56 minutes (the count it had reached is unknown;
#: the listing's time is not bounded by this alone: leaves that leave a node of the subset
#: unused are not counted)
MAX_PATTERNS = 2_000_000


@dataclass
class Finding:
    """What a proof or a long solve showed of one seed: a line of text and the bounds."""

    text: str
    #: a proved lower bound on the optimum (None: none)
    at_least: float | None = None
    #: the cost of an allocation found (None: none)
    at_most: float | None = None


def certify(seed: int, recorded: float, seconds: float, listing_s: float = 300.0) -> Finding:
    """One seed's proof attempt: the proved bound (and any allocation below it) or why none.

    ``listing_s`` bounds the listing of the patterns within delta (``seconds`` the MIP).
    """
    captured: dict[str, Any] = {}
    search = batch._search

    def capture(
        prob: Any, master: Any, params: Any, x: Any, z: Any, duals: Any, *a: Any, **k: Any
    ) -> Any:
        out = search(prob, master, params, x, z, duals, *a, **k)
        captured.update(prob=prob, master=master, duals=duals, x=x if out.x is None else out.x)
        return out

    setattr(batch, "_search", capture)  # noqa: B010 (a typed module attribute)
    try:
        allocate(literature_request(seed), AllocationParams(time_limit_s=9.5, mip_rel_gap=1e-3))
    finally:
        setattr(batch, "_search", search)  # noqa: B010
    if not captured:
        return Finding(
            f"seed {seed}: the solve certified itself before any search (no proof needed)"
        )
    prob, master, duals = captured["prob"], captured["master"], captured["duals"]
    target = recorded * (1.0 - MARGIN)
    c_arc, c_pair = reduced_costs(prob, duals)
    rhs = master.shared_rhs_term(duals)
    base = near_columns(prob, c_arc, c_pair, rhs, 0.0, per_order=10**6, total=10**8)
    if base is None:
        return Finding(f"seed {seed}: the Lagrangian value could not be evaluated")
    delta = target - base.bound
    if delta <= 0:
        return Finding(
            f"seed {seed}: proved opt >= {base.bound:.6f} (the Lagrangian value alone)", base.bound
        )
    t_list = time.perf_counter()
    near = near_columns(
        prob,
        c_arc,
        c_pair,
        rhs,
        delta,
        per_order=10**6,
        total=MAX_PATTERNS,
        deadline=t_list + listing_s,
    )
    if near is None and time.perf_counter() > t_list + listing_s:
        return Finding(
            f"seed {seed}: listing the patterns within {delta:.4f} stopped after "
            f"{listing_s:g} s (--listing-seconds): unknown"
        )
    if near is None or not near.complete:
        return Finding(f"seed {seed}: too many patterns within {delta:.4f} to enumerate")
    master.add(near.orders, near.arcs, near.qty)
    master.add_solution(captured["x"])
    sub = SubMip(master, seed=0, threads=None)
    allowed = master.pool_values(duals) - near.best[sub.col_order] <= delta + 1e-7
    cutoff = near.bound + delta
    model = sub.build(
        np.ones(prob.num_orders, dtype=bool), master.column_of(captured["x"]), columns=allowed
    )
    h, _ = sub.load(model.arrays, seconds, {**CERT_OPTIONS, "objective_bound": cutoff})
    t0 = time.perf_counter()
    run_highs(h)
    status = h.modelStatusToString(h.getModelStatus())
    mip_bound = dual_bound(h)  # (-inf, no bound, when stopped in its root LP)
    # an allocation below the cutoff (HiGHS' objective includes the fixed orders' offset)
    found = None
    if h.getInfo().primal_solution_status == 2:
        found = float(h.getInfo().objective_function_value)
    if status != "Optimal" and not np.isfinite(mip_bound):
        return Finding(
            f"seed {seed}: {len(near.orders)} patterns; HiGHS {status} after "
            f"{time.perf_counter() - t0:.1f} s with no bound: unknown",
            at_most=found,
        )
    # the Lagrangian value bounds the optimum too (HiGHS' bound can be far below it when
    # stopped early: 65.1 for seed 18 after 200 s)
    proved = max(base.bound, min(cutoff, mip_bound) - 1e-7 * max(1.0, abs(cutoff)))
    gap = 100 * (recorded - proved) / recorded
    also = "" if found is None else f"; the MIP's best allocation {found:.6f}"
    return Finding(
        f"seed {seed}: {len(near.orders)} patterns, HiGHS {status} in "
        f"{time.perf_counter() - t0:.1f} s; proved opt >= {proved:.6f}; recorded "
        f"{recorded:.6f} is within {gap:.4f} % of the optimum{also}",
        proved,
        found,
    )


def long_solve(seed: int, recorded: float, seconds: float) -> Finding:
    """One seed's long one-thread batch solve as a line: does it beat the recorded cost by 0.1 %?"""
    t0 = time.perf_counter()
    params = AllocationParams(time_limit_s=seconds, mip_rel_gap=1e-9, threads=1, explain=False)
    res = allocate(literature_request(seed), params)
    cost, took = res.cost.total, time.perf_counter() - t0
    above = recorded / cost - 1.0
    verdict = (
        "the recorded answer is NOT within 0.1 % of the optimum"
        if above > 1e-3
        else "no verdict (this allocation does not beat it by more than 0.1 %)"
    )
    return Finding(
        f"seed {seed}: {seconds:.0f} s solve {cost:.4f} (bound {res.bound}, {took:.1f} s); "
        f"recorded {recorded:.4f} is {100 * above:.3f} % above it: {verdict}",
        res.bound,
        cost,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the proof for the chosen seeds and print one line per seed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--seeds", type=seed_list, required=True, help="comma-separated literature seeds"
    )
    ap.add_argument("--seconds", type=seconds_arg, default=300.0, help="limit of the proof's MIP")
    ap.add_argument(
        "--listing-seconds",
        type=seconds_arg,
        default=300.0,
        help="limit of the listing of the patterns within delta, before the MIP",
    )
    ap.add_argument(
        "--runs",
        type=Path,
        default=REPO / "benchmarks" / "results" / "allocation-literature-runs.csv",
        help="a literature runs CSV holding the recorded 10 s answers",
    )
    ap.add_argument(
        "--long-solve",
        type=seconds_arg,
        default=None,
        metavar="S",
        help="instead of the proof, a one-thread batch solve of S seconds per seed",
    )
    ap.add_argument(
        "--known",
        type=Path,
        default=None,
        help="a known-bounds CSV (benchmarks/results/allocation-literature-known.csv) to "
        "update with what each seed's proof or solve shows, where it is better",
    )
    args = ap.parse_args(argv)
    if not args.runs.is_file():
        ap.error(f"argument --runs: no such file: {args.runs}")
    if args.known is not None and not args.known.parent.is_dir():  # found after hours of proofs
        ap.error(f"argument --known: no such folder: {args.known.parent}")
    answers = recorded_answers(ap, args.runs, args.seeds)
    # a bar on stderr naming the seed at work, drawn between the seeds (not during a solve
    # on the clock)
    done: list[int] = []  # the seeds whose line is printed
    kept: list[int] = []  # ... and whose findings the --known file holds
    try:
        certify_seeds(args, answers, done, kept)
    except KeyboardInterrupt:
        # a seed's proof can run for hours: the ones finished stand (printed, and in --known)
        left = [s for s in args.seeds if s not in done]
        known = f"; {args.known} updated for: {_seeds(kept)}" if args.known is not None else ""
        print(
            f"interrupted: seeds finished: {_seeds(done)}{known}; not finished: {_seeds(left)}",
            file=sys.stderr,
        )
        return 130
    return 0


def _seeds(seeds: list[int]) -> str:
    """``seeds`` comma-separated, or 'none'."""
    return ", ".join(map(str, seeds)) or "none"


def certify_seeds(
    args: argparse.Namespace, answers: dict[int, FastAnswer], done: list[int], kept: list[int]
) -> None:
    """Prove (or long-solve) each seed of ``args`` and print its line (then in ``done``), and
    update the ``--known`` file with it (then in ``kept``)."""
    with progress_bar(timed=True) as bar:
        task = bar.add_task(f"seed {args.seeds[0]}", total=len(args.seeds))
        for i, seed in enumerate(args.seeds):
            bar.update(task, completed=i, description=f"seed {seed}", refresh=True)
            if args.long_solve is not None:
                found = long_solve(seed, answers[seed].cost, args.long_solve)
                how = f"a {args.long_solve:g} s one-thread batch solve"
            else:
                found = certify(seed, answers[seed].cost, args.seconds, args.listing_seconds)
                how = "a reduced-cost proof (allocation_certify.py)"
            print(found.text, flush=True)
            done.append(seed)
            if args.known is not None:
                when = time.strftime("%Y-%m-%d", time.gmtime())
                try:
                    update_known(args.known, seed, found, f"{how}, {when}")
                except WrittenThenInterrupted:  # Ctrl-C held back until the file was in place
                    kept.append(seed)
                    raise
                kept.append(seed)
        bar.update(task, completed=len(args.seeds), description="seeds", refresh=True)


def update_known(path: Path, seed: int, found: Finding, source: str) -> None:
    """``path`` (a known-bounds CSV) with ``seed``'s bounds improved by ``found``."""
    known = read_known(path)
    old = known.get(seed, NOTHING_KNOWN)
    k = improved(
        old, found.at_least, f"{source}: proved bound", found.at_most, f"{source}: an allocation"
    )
    if k != old:
        known[seed] = k
        write_known(path, known)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
