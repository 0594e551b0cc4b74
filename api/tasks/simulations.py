"""Twin jobs: replications of one scenario, and what-if sweeps over variants."""

from __future__ import annotations

import time
from collections.abc import Callable

from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.routes import SolverInfo
from api.schemas.simulations import (
    ComparisonCreate,
    ComparisonResult,
    SimulationCreate,
    SimulationResult,
    WhatIfCreate,
    WhatIfResult,
    WhatIfRow,
    WhatIfSample,
)
from api.tasks.stored import read_payload
from api.versions import solver_versions


def _progress(progress: ProgressFn | None) -> Callable[[int, int], None] | None:
    if progress is None:
        return None

    def tick(done: int, total: int) -> None:
        progress(done / max(1, total))

    return tick


def default_policy(body: SimulationCreate) -> str:
    """The policy a simulation request runs."""
    if body.policy is not None:
        return body.policy
    return "plan" if body.plan is not None else "insertion"


def run_simulation(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Replicate a :class:`SimulationCreate` and estimate every KPI with a 95% CI."""
    from simulation.evaluate import evaluate, undefined_notes
    from simulation.executors import SerialExecutor

    body = read_payload(SimulationCreate, payload)
    policy = default_policy(body)
    t0 = time.perf_counter()
    kpis = evaluate(
        body.scenario,
        body.plan,
        policy=policy,
        replications=body.replications,
        seed=body.seed,
        params=body.params,
        executor=SerialExecutor(),
        progress=_progress(progress),
    )
    solver = SolverInfo(
        engine=f"twin ({policy})",
        versions=solver_versions(),
        seed=body.seed,
        runtime_s=round(time.perf_counter() - t0, 4),
    )
    notes = []
    if body.plan is not None:  # a re-plan's plan lacks the orders it completed: say so
        from simulation.twin import plan_coverage_note

        note = plan_coverage_note(body.scenario, body.plan, policy)
        notes = [note] if note is not None else []
    # a KPI undefined on some days (no order due, none delivered): over how many, and why
    notes += undefined_notes(kpis)
    return SimulationResult(policy=policy, kpis=kpis, solver=solver, notes=notes).model_dump(
        mode="json"
    )


def candidate_policies(body: ComparisonCreate) -> dict[str, str]:
    """The policy each candidate of a comparison runs under."""
    return {
        c.name: c.policy or body.policy or ("plan" if c.plan is not None else "insertion")
        for c in body.candidates
    }


def run_comparison(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Compare a :class:`ComparisonCreate`'s plans on the same seeds and recommend one."""
    from simulation.evaluate import RiskRule, compare
    from simulation.executors import SerialExecutor
    from simulation.twin import candidate_coverage_notes

    body = read_payload(ComparisonCreate, payload)
    t0 = time.perf_counter()
    result = compare(
        body.scenario,
        {c.name: c.plan for c in body.candidates},
        policies=candidate_policies(body),
        replications=body.replications,
        seed=body.seed,
        params=body.params,
        executor=SerialExecutor(),
        progress=_progress(progress),
        rule=RiskRule(risk_aversion=body.risk_aversion, max_on_time_drop=body.max_on_time_drop),
    )
    solver = SolverInfo(
        engine="twin (plan comparison)",
        versions=solver_versions(),
        seed=body.seed,
        runtime_s=round(time.perf_counter() - t0, 4),
    )
    return ComparisonResult.model_validate(
        {
            **result.as_json(),
            "policies": candidate_policies(body),
            "replications": body.replications,
            "table_markdown": result.markdown(),
            "solver": solver,
            # a re-plan's plan as a candidate lacks the orders it completed: say so
            "notes": candidate_coverage_notes(
                body.scenario,
                {c.name: c.plan for c in body.candidates},
                candidate_policies(body),
            ),
        }
    ).model_dump(mode="json")


def run_whatif(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Run a :class:`WhatIfCreate` sweep and compare every variant with the base."""
    from scenarios.variants import LoadedVariants, VariantFile
    from simulation.executors import SerialExecutor
    from simulation.report import markdown_table
    from simulation.result import METRICS
    from simulation.sweep import run_sweep

    body = read_payload(WhatIfCreate, payload)
    spec = VariantFile(base="(request)", variants=body.variants)
    loaded = LoadedVariants(spec, body.scenario, body.plan, "request")
    t0 = time.perf_counter()
    result = run_sweep(
        loaded,
        policies=body.policies,
        replications=body.replications,
        seed=body.seed,
        executor=SerialExecutor(),
        progress=_progress(progress),
        params=body.params,
    )
    solver = SolverInfo(
        engine="twin (what-if sweep)",
        versions=solver_versions(),
        seed=body.seed,
        runtime_s=round(time.perf_counter() - t0, 4),
    )
    return WhatIfResult(
        base=result.base,
        variants=result.variants,
        policies=result.policies,
        replications=body.replications,
        # every KPI, as comparison.csv of ``dispatchlab whatif`` has them (the table: 11)
        rows=[WhatIfRow.model_validate(r) for r in result.rows(METRICS)],
        table_markdown=markdown_table(result),
        solver=solver,
        seed=body.seed,
        samples=[WhatIfSample.model_validate(r) for r in result.sample_records()],
        notes=result.notes,
        changes=result.changes,
    ).model_dump(mode="json")
