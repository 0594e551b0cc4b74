"""``POST /v1/policies/evaluate``: compare dispatch policies on held-out days, as a job."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from api.core.config import Settings
from api.core.errors import ERROR_RESPONSES
from api.deps import CtxDep, IdempotencyKeyHeader, ResearcherDep, SessionDep
from api.examples import POLICY_EXAMPLE
from api.fastpath import BodyRoute
from api.limits import check_played_scenario, check_simulated_days, check_time_limit
from api.schemas.common import JobAccepted
from api.schemas.policies import PolicyEvaluationCreate
from api.solve import queue_job
from api.tasks.policies import MODEL_POLICIES
from scenarios.errors import InputError

router = APIRouter(
    prefix="/v1/policies", tags=["policies"], responses=ERROR_RESPONSES, route_class=BodyRoute
)

MODEL_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def resolve_model(name: str, settings: Settings, *, field: str) -> str:
    """A model name -> the file it names (service models folder, then shipped models)."""
    from rl_agents.model_io import shipped_model_path

    if name in ("", "standard"):
        return "standard"
    if not MODEL_NAME.match(name) or ".." in name:
        raise InputError(
            field, "give a model name (no paths): a file <name>.zip in the service's models folder"
        )
    for candidate in (settings.models_dir / f"{name}.zip", shipped_model_path(name)):
        if Path(candidate).is_file():
            return str(Path(candidate).resolve())
    raise InputError(field, f"no model named {name!r}")


def _hindsight_default_s() -> float:
    """Seconds per hindsight solver run when ``hindsight`` comes without them (its default)."""
    from rl_agents.hindsight import HindsightParams

    return float(HindsightParams.model_fields["time_limit_s"].default)


def check_specs(body: PolicyEvaluationCreate, settings: Settings) -> list[str]:
    """Validate every policy spec (422 naming it); model names become file paths."""
    import rl_agents  # noqa: F401  (registers the RL policies)
    from rl_agents.evaluate import check_policy_name, repeated_spec
    from simulation.policies import empty_argument, make_policy

    out: list[str] = []
    for i, raw in enumerate(body.policies):
        field = f"policies.{i}"
        spec = raw.strip()
        name, sep, arg = spec.partition(":")
        check_policy_name(name, field)
        if sep and not arg:  # 'model:' played the shipped model, 'hindsight:' its default
            raise InputError(field, empty_argument(spec))  # (the command line refuses them)
        if name == "hindsight":
            try:
                seconds = float(arg) if arg else _hindsight_default_s()
            except ValueError:
                raise InputError(field, "expected hindsight:SECONDS, e.g. hindsight:30") from None
            if not seconds > 0:  # NaN too
                raise InputError(field, "hindsight seconds must be a positive number")
            check_time_limit(settings, seconds, field=field)
        elif name in MODEL_POLICIES:
            spec = f"{name}:{resolve_model(arg, settings, field=field)}"
        if name != "hindsight":
            try:
                make_policy(spec)
            except InputError as err:  # never echo a server path back
                reason = err.reason.replace(spec.partition(":")[2], arg) if arg else err.reason
                raise InputError(field, reason) from None
        out.append(spec)
    # " greedy" and "greedy", insertion:8 and insertion, model and model:standard (the job
    # refused the first kind after the 202); after the specs' own checks, so that a path
    # refused there is never resolved on the server into this check's reason
    repeated = repeated_spec(body.policies)  # nearest: the greedy baseline
    if repeated is not None:
        raise InputError(f"policies.{repeated[0]}", repeated[1])
    return out


@router.post(
    "/evaluate", status_code=202, response_model=JobAccepted, summary="Evaluate policies (job)"
)
def evaluate_policies(
    body: Annotated[PolicyEvaluationCreate, Body(openapi_examples=POLICY_EXAMPLE)],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    principal: ResearcherDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Queue a comparison: mean cost [95% CI], on-time rate, paired difference to greedy,
    cost / hindsight and gap closed, per policy, on the same day seeds."""
    settings = ctx.settings
    if body.scenario is not None:
        from rl_agents.scenario import check_dispatch_scenario

        check_played_scenario(settings, body.scenario, field="scenario")
        try:  # a day without orders or couriers: the job played identical rows
            check_dispatch_scenario(body.scenario)
        except InputError as err:
            raise InputError(f"scenario.{err.field}", err.reason) from None
    from rl_agents.evaluate import BASELINE

    specs = check_specs(body, settings)
    played = len(specs) + (BASELINE not in specs)  # greedy is added only when not asked for
    runs = played * len(body.seeds)
    check_simulated_days(
        settings,
        runs,
        field="seeds",
        counted=f"{played} policies with the {BASELINE} baseline x seeds",
    )
    payload = body.model_dump(mode="json")
    payload["policies"] = specs
    return queue_job(
        ctx,
        session,
        request,
        principal=principal,
        idem_key=idempotency_key,
        kind="policies",
        payload=payload,
        seed=body.seeds[0],
    )
