"""The FastAPI app factory: wires settings, database, jobs, limits and the routers."""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.context import KeyCache, Lane, ServiceContext
from api.core.audit import AuditWriter
from api.core.config import Settings, get_settings
from api.core.errors import install_error_handlers
from api.core.metrics import Metrics
from api.core.middleware import ServiceMiddleware
from api.db.session import make_engine, make_sessionmaker, migrate
from api.deps import ROUTERS, no_unknown_query_parameters
from api.jobs import JobService, TaskRegistry
from api.jobs.executors import Executor, LocalExecutor
from api.routes import health, jobs, keys
from api.routes.docs import install_docs
from api.tasks import default_registry, result_hooks
from dispatchlab import __version__

log = logging.getLogger("api")

DESCRIPTION = """
Order dispatch as a service: fulfilment allocation, courier routing, dispatch plans checked
in a digital twin, what-if studies and policy evaluation.

* Send your key in the **`X-API-Key`** header (`dispatchlab keys create --role ROLE`).
* Bad input gets **422** naming every bad field; infeasible problems get **200** with
  `status: "infeasible"` and a diagnosis.
* Long work answers **202** with a job; follow it at `GET /v1/jobs/{id}`.
* Every `GET` endpoint also answers **`HEAD`** (same status and headers, no body).
* Retries with the same **`Idempotency-Key`** header get the first answer.
"""

FAST_LANE_THREADS = 32
#: past a synchronous solve's longest wait (time limit + grace), what it may still take:
#: a plan's twin evaluation (30 s budget), the fallback, storing the answer
SYNC_STALE_MARGIN_S = 300.0

_process_prepared = False


def prepare_process(ctx: ServiceContext) -> None:
    """Once per process: warm the allocation path up, then freeze the heap for the GC.

    One example allocation imports the solver's modules and fills its caches, the ``pyomo``
    backend's worker process is started (it imports Pyomo, see
    :mod:`~solvers.allocation.pyomo_worker`) and the modules of the other solves
    (:func:`solve_modules`) are imported, so the first client does not pay for them.
    ``gc.freeze()`` then moves every object alive at start-up (modules, solver tables,
    SQLAlchemy metadata) out of the collector's reach: a full collection no longer walks
    them, which otherwise stalls every request in flight for tens of ms each time it runs.
    """
    global _process_prepared
    if _process_prepared:
        return
    _process_prepared = True
    if PYOMO_KINDS & set(ctx.registry.specs):
        # params.backend "pyomo" solves in a worker process with Pyomo imported: started
        # here, in the background (its start, 2-3 s, runs beside the warm-up below and the
        # service's first requests; not waited for, so the service answers as soon as
        # before), not by the first client's solve
        from solvers.allocation.pyomo_worker import start_worker

        if not start_worker():  # a pyomo solve then starts one (or falls back)
            log.warning("pyomo worker not started")
    if "allocations" in ctx.registry:
        from api.examples import ALLOCATION_EXAMPLE
        from api.jobs.registry import import_target

        try:
            body = ALLOCATION_EXAMPLE["online"]["value"]
            import_target(ctx.registry.get("allocations").target)(body, progress=None)
        except Exception as err:  # a broken solver must not stop the service (fallback)
            log.warning("allocation warm-up failed: %s: %s", type(err).__name__, err)
    for name in solve_modules(ctx.registry):
        try:
            importlib.import_module(name)
        except Exception as err:  # the solve that needs it fails as it would have
            log.warning("import of %s failed: %s: %s", name, type(err).__name__, err)
    gc.collect()
    gc.freeze()


#: job kinds whose allocation parameters may ask for ``backend: "pyomo"``
PYOMO_KINDS = frozenset({"allocations", "plans", "reoptimise"})
#: the module whose import starts the pyomo worker process (it imports Pyomo), preloaded by
#: each Ray worker before its first job (not by the local job workers' fork server: a worker
#: started there would be of no use to the job processes forked from it)
PYOMO_PRELOAD = "solvers.allocation.pyomo_preload"
#: the module whose import imports Pyomo (no worker), preloaded by the local job workers'
#: fork server: a job process forked from it forks its pyomo worker from itself, ready in
#: milliseconds (a spawned one took ~2.7 s, Pyomo's import the most of it)
PYOMO_IMPORT = "solvers.allocation.pyomo_import"
#: job kinds that route couriers (and, for plans, play them in the twin)
ROUTING_KINDS = frozenset({"routes", "plans", "reoptimise"})
#: the modules a routing solve imports on its first call (the engines, the twin for a plan's
#: KPIs): 0.3-0.6 s, which the first plan of a process paid within its time limit (under
#: load a 0.3 s plan spent it all on them and returned orders unplaced)
ROUTING_PRELOAD = (
    # the road graphs' shortest paths (SciPy's csgraph and KD-tree): 0.26-0.33 s that the
    # first solve on a road network (the generated city's, the demo's) paid within its limit
    "scenarios.roads",
    "simulation.evaluate",
    "solvers.explain",
    "solvers.routing.engines.ortools_engine",
    "solvers.routing.engines.pyvrp_engine",
    "solvers.routing.greedy",
    # the break-aware post-optimisation of an engine's plan (~0.03 s)
    "solvers.routing.polish",
    "solvers.routing.repair",
)


#: the modules an allocation solve imports on its first call (the solve, its batch path,
#: SciPy): ``solvers.allocation`` imports its names on first use, so a task module importing
#: ``allocate`` inside its function no longer imports them with the package
ALLOCATION_PRELOAD = ("solvers.allocation.progress", "solvers.allocation.solve")


def first_call_modules(registry: TaskRegistry) -> list[str]:
    """The modules the registry's solves import on their first call: :data:`ALLOCATION_PRELOAD`
    for a kind that allocates, :data:`ROUTING_PRELOAD` for one that routes."""
    kinds = set(registry.specs)
    allocating = list(ALLOCATION_PRELOAD) if PYOMO_KINDS & kinds else []
    return allocating + (list(ROUTING_PRELOAD) if ROUTING_KINDS & kinds else [])


def solve_modules(registry: TaskRegistry) -> list[str]:
    """The modules the registry's jobs import: their task modules and :func:`first_call_modules`."""
    tasks = {spec.target.split(":")[0] for spec in registry.specs.values()}
    return sorted(tasks.union(first_call_modules(registry)))


def _make_executor(settings: Settings, registry: TaskRegistry) -> Executor:
    if settings.job_executor == "ray":
        from api.jobs.executors import RayExecutor

        # a Ray worker runs job after job: the first job on each started the pyomo worker
        # process in its own solve's time limit (or got the highspy backend for want of time)
        ray_preload = [PYOMO_PRELOAD] if PYOMO_KINDS & set(registry.specs) else []
        ray_preload += first_call_modules(registry)
        return RayExecutor(settings.job_workers, address=settings.ray_address, preload=ray_preload)
    # not PYOMO_PRELOAD: a pyomo solve runs in a worker process of the job process's own
    # (its pipes cannot be shared by the processes forked from the fork server), which the
    # job process forks from itself first thing when its payload asks for the pyomo backend
    # (executors.start_pyomo_worker), with Pyomo imported by the fork server (PYOMO_IMPORT)
    preload = solve_modules(registry)
    if PYOMO_KINDS & set(registry.specs):
        preload.append(PYOMO_IMPORT)
    return LocalExecutor(settings.job_workers, preload=preload)


def start_service(ctx: ServiceContext) -> None:
    """Connect and migrate the database, start the job service and the audit writer."""
    ctx.starts += 1
    if ctx.starts > 1:  # the app's lifespan entered again (e.g. by a test tool): already up
        return
    settings = ctx.settings
    try:  # first: a Ray address nobody answers at fails here, before anything else starts
        executor = _make_executor(settings, ctx.registry)
    except BaseException:
        ctx.starts -= 1
        raise
    ctx.stopping = threading.Event()  # the one set by a previous stop stays set
    ctx.engine = make_engine(settings.resolved_database_url())
    migrate(ctx.engine)
    ctx.sessions = make_sessionmaker(ctx.engine)
    ctx.audit = AuditWriter(ctx.sessions, metrics=ctx.metrics)
    ctx.solver_pool = ThreadPoolExecutor(
        max_workers=settings.max_sync_solves + FAST_LANE_THREADS, thread_name_prefix="solver"
    )
    ctx.jobs = JobService(
        sessions=ctx.sessions,
        registry=ctx.registry,
        executor=executor,
        metrics=ctx.metrics,
        max_queued=settings.max_queued_jobs,
        max_attempts=settings.job_max_attempts,
        lease_s=settings.job_lease_s,
        heartbeat_s=settings.heartbeat_s,
        poll_s=settings.job_poll_s,
        retention_s=settings.job_retention_s or None,
        housekeeping=[functools.partial(idempotency.purge, ttl_s=settings.idempotency_ttl_s)],
        on_finished=result_hooks(),
        sync_stale_s=settings.max_sync_time_limit_s
        + settings.fallback_grace_s
        + SYNC_STALE_MARGIN_S,
    )
    ctx.jobs.start()
    prepare_process(ctx)
    if settings.demo:
        from api.demo import load_demo

        ctx.demo = load_demo(ctx)
    # local job processes: their fork server starts now (in ~10 ms), not with the first job,
    # which waited for its imports (seconds with Pyomo); it imports in a process of its own,
    # started after the start-up's own work so as not to take CPU from it
    executor.warm_up()
    ctx.ready = True
    log.info("dispatchlab service ready (replica %s)", ctx.jobs.instance_id)


def build_routes(app: FastAPI) -> int:
    """Build every route's parameter and body validators now; returns the number of routes.

    FastAPI builds them on the first request that reaches a route, for that route and every
    one matched before it: 0.15 s of CPU on a new process's first ``GET /healthz`` (its
    body models' pydantic schemas, the most of it), about 0.18 s for all the routes, on a
    slow machine. Done at start-up, a client's first request after a deploy or restart does
    not pay it.
    """
    return sum(1 for _ in iter_route_contexts(app.routes))


def stop_service(ctx: ServiceContext) -> None:
    """Stop the synchronous solves still running (:attr:`ServiceContext.stopping`) and jobs
    (re-queueing running ones), flush the audit log, close the database, end the pyomo
    worker processes (idle, and busy in a solve)."""
    if ctx.starts <= 0:  # never started, or stopped already: nothing left to stop
        return
    ctx.starts -= 1
    if ctx.starts > 0:
        return
    ctx.ready = False
    # first: the synchronous solves still running stop (their requests were answered 503,
    # or the server gave up on them), rather than run on to their time limits with the
    # process's exit waiting for them
    ctx.stopping.set()
    # each step taken whatever the one before it raised (a database error, a fork server
    # gone): logged, and the shutdown goes on (an error escaping one step left the audit
    # writer open, its rows lost, and the pyomo worker processes running)
    steps: list[tuple[str, Callable[[], object]]] = []
    if ctx.jobs is not None:
        steps.append(("the job service", ctx.jobs.stop))
    if ctx.solver_pool is not None:
        pool = ctx.solver_pool
        steps.append(("the solver pool", lambda: pool.shutdown(wait=False, cancel_futures=True)))
    if ctx.audit is not None:
        steps.append(("the audit writer", ctx.audit.close))
    if ctx.engine is not None:
        steps.append(("the database engine", ctx.engine.dispose))
    # the pyomo backend's worker processes: none is left behind the service (one busy in a
    # solve still running is killed, that solve answers with its fallback; a later solve
    # starts another)
    steps.append(("the pyomo worker processes", _end_pyomo_workers))
    for name, step in steps:
        try:
            step()
        except Exception:
            log.exception("%s could not be stopped cleanly at shutdown", name)


def _end_pyomo_workers() -> None:
    """End the pyomo backend's worker processes of this process."""
    from solvers.allocation import pyomo_worker

    pyomo_worker.end_workers()


def create_app(
    settings: Settings | None = None, *, registry: TaskRegistry | None = None
) -> FastAPI:
    """Build the service app (the database is opened in the app's lifespan)."""
    settings = settings or get_settings()
    ctx = ServiceContext(
        settings=settings,
        metrics=Metrics(),
        registry=registry or default_registry(),
        key_cache=KeyCache(ttl_s=settings.key_cache_s),
    )
    ctx.lanes = {
        "fast": Lane(
            "fast",
            threading.BoundedSemaphore(FAST_LANE_THREADS),
            FAST_LANE_THREADS,
            admit=settings.fast_lane_concurrency,
            max_waiting=settings.fast_lane_queue,
        ),
        "heavy": Lane(
            "heavy",
            threading.BoundedSemaphore(settings.max_sync_solves),
            settings.max_sync_solves,
        ),
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the service says it is ready: the first request does not build them
        await run_in_threadpool(build_routes, app)
        await run_in_threadpool(start_service, ctx)
        try:
            yield
        finally:
            await run_in_threadpool(stop_service, ctx)

    app = FastAPI(
        title="dispatchlab",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # a query parameter a /v1/ endpoint does not take is a 422, not ignored
        dependencies=[Depends(no_unknown_query_parameters)],
        docs_url=None,  # served by install_docs from installed files, not a CDN
        redoc_url=None,
        openapi_tags=[
            {"name": "allocations", "description": "which node ships each order line"},
            {"name": "routes", "description": "which courier carries what, in which order"},
            {"name": "plans", "description": "allocation + routing + twin evaluation"},
            {"name": "simulations", "description": "the digital twin and what-if studies"},
            {"name": "policies", "description": "dispatch policy evaluation"},
            {"name": "jobs", "description": "long work: follow, list, cancel"},
            {"name": "keys", "description": "API keys (admin)"},
            {"name": "health", "description": "liveness, readiness, metrics"},
            {"name": "demo", "description": "the demo scenario (with --demo only)"},
        ],
    )
    app.state.ctx = ctx
    app.add_middleware(ServiceMiddleware, ctx=ctx)
    install_error_handlers(app)
    app.add_exception_handler(idempotency.Replayed, _replayed)
    install_docs(app)
    # the solve endpoints first: routes are matched in order, and they carry the load
    routers = [*_solve_routers(ctx.registry), health.router, jobs.router, keys.router]
    if settings.demo:
        from api.routes import demo

        routers.append(demo.router)
    for router in routers:
        app.include_router(router)
    setattr(app.state, ROUTERS, routers)  # the body middleware's role check (endpoint_role)
    return app


async def _replayed(request: Request, exc: Exception) -> Response:
    """The stored answer of a retry the ``Idempotency-Key`` dependency found (see
    :func:`api.deps.idempotency_key`), audited as a replay."""
    from api.solve import note_audit

    assert isinstance(exc, idempotency.Replayed)
    note_audit(request, result="idempotent_replay")
    return exc.response


def _solve_routers(registry: TaskRegistry) -> list[APIRouter]:
    """Routers of the solve endpoints whose job kinds are registered."""
    from api.routes import solve_routers

    return solve_routers(registry)
