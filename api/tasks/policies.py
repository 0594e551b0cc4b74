"""Policy evaluation jobs: every policy on the same day seeds, paired with the greedy baseline."""

from __future__ import annotations

import time

from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.policies import PolicyEvaluationCreate, PolicyEvaluationResult
from api.schemas.routes import SolverInfo
from api.tasks.stored import read_payload
from api.versions import solver_versions


def run_evaluation(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Evaluate a :class:`PolicyEvaluationCreate` payload (model names already resolved)."""
    import rl_agents
    from rl_agents.evaluate import evaluate_policies, report_json, table_markdown
    from simulation.executors import SerialExecutor

    body = read_payload(PolicyEvaluationCreate, payload)
    scenario = body.scenario if body.scenario is not None else rl_agents.standard_scenario()

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(1, total))

    t0 = time.perf_counter()
    summaries = evaluate_policies(
        scenario,
        body.policies,
        body.seeds,
        executor=SerialExecutor(),
        hindsight_params=body.hindsight_params() or None,
        progress=tick,
    )
    return PolicyEvaluationResult(
        policies=list(summaries),
        seeds=body.seeds,
        summaries=report_json(summaries),
        table_markdown=table_markdown(summaries),
        solver=SolverInfo(
            engine="twin (policy evaluation)",
            versions=solver_versions(),
            runtime_s=round(time.perf_counter() - t0, 4),
        ),
    ).model_dump(mode="json")
