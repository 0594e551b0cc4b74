"""Policy evaluation jobs: every policy on the same day seeds, paired with the greedy baseline."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import PurePath

from api.jobs.registry import JsonDict, ProgressFn
from api.schemas.policies import PolicyEvaluationCreate, PolicyEvaluationResult
from api.schemas.routes import SolverInfo
from api.tasks.stored import read_payload
from api.versions import solver_versions
from scenarios.errors import InputError

#: policies whose argument is a model file: the caller names it, the service finds it
MODEL_POLICIES = ("model", "model-plain")

#: what a folder of the service is called in a message shown to a client
SERVER_FOLDER = "<the service's models folder>"


def public_spec(spec: str) -> str:
    """A policy spec as a client names it: a model policy's file (the route resolves the name
    ``NAME`` to ``<folder>/NAME.zip``) is shown as ``NAME``, never as a path of the server."""
    name, _, arg = spec.partition(":")
    if name in MODEL_POLICIES and ("/" in arg or os.sep in arg):
        return f"{name}:{PurePath(arg).stem}"
    return spec


def without_paths(text: str, files: dict[str, str]) -> str:
    """``text`` with each model file of ``files`` (path -> model name) named by its model
    name, and any other mention of its folder by :data:`SERVER_FOLDER`."""
    for path, name in files.items():
        text = text.replace(path, name)
    for path in files:
        text = text.replace(str(PurePath(path).parent), SERVER_FOLDER)
    return text


def _scrubbed(err: Exception, files: dict[str, str]) -> Exception:
    """``err``, or an exception of its type whose message names no model file by its path."""
    message = without_paths(str(err), files)
    if message == str(err):
        return err
    if isinstance(err, InputError):
        return InputError(err.field, without_paths(err.reason, files))
    try:
        return type(err)(message)
    except Exception:  # a type made otherwise: its name kept in the message
        return RuntimeError(f"{type(err).__name__}: {message}")


def run_evaluation(payload: JsonDict, *, progress: ProgressFn | None = None) -> JsonDict:
    """Evaluate a :class:`PolicyEvaluationCreate` payload (model names already resolved).

    The payload names each model by its file (resolved by the route, server-side); the result
    and any error name it as the client did (:func:`public_spec`): they showed the service's
    models folder.
    """
    import rl_agents
    from rl_agents.evaluate import evaluate_policies, report_json, table_markdown
    from simulation.executors import SerialExecutor

    body = read_payload(PolicyEvaluationCreate, payload)
    scenario = body.scenario if body.scenario is not None else rl_agents.standard_scenario()
    shown = {spec: public_spec(spec) for spec in body.policies}
    files = {
        spec.partition(":")[2]: public.partition(":")[2]
        for spec, public in shown.items()
        if public != spec
    }

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(1, total))

    t0 = time.perf_counter()
    try:
        found = evaluate_policies(
            scenario,
            body.policies,
            body.seeds,
            executor=SerialExecutor(),
            hindsight_params=body.hindsight_params() or None,
            progress=tick,
        )
    except Exception as err:
        raise _scrubbed(err, files) from None
    summaries = {
        shown.get(spec, spec): dataclasses.replace(s, policy=shown.get(s.policy, s.policy))
        for spec, s in found.items()
    }
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
