"""Service settings: one pydantic-settings class behind a cached getter.

Every setting can be given as an environment variable ``DISPATCHLAB_<NAME>`` (for example
``DISPATCHLAB_JOB_WORKERS=4``); the database URL is also read from ``DATABASE_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from scenarios.errors import InputError, error_location

PosFloat = Annotated[float, Field(gt=0.0)]
PosInt = Annotated[int, Field(gt=0)]
#: the most jobs a replica runs at once (``job_workers``; ``serve --job-workers``): its pool
#: is sized from it, and on Ray as many warm-up tasks are submitted at start
MAX_JOB_WORKERS = 64


class Settings(BaseSettings):
    """Everything the service can be tuned with; defaults suit one machine and SQLite."""

    model_config = SettingsConfigDict(env_prefix="DISPATCHLAB_", extra="ignore")

    # storage
    data_dir: Path = Field(
        default=Path("data/runtime"), description="where the SQLite file and run files live"
    )
    models_dir_override: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("DISPATCHLAB_MODELS_DIR", "models_dir_override"),
        description="folder of dispatch models callable as model:NAME (default <data_dir>/models)",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "DISPATCHLAB_DATABASE_URL"),
        description="SQLAlchemy URL; None = SQLite file <data_dir>/dispatchlab.sqlite3",
    )

    # jobs
    job_executor: Literal["local", "ray"] = Field(
        default="local", description="local = bounded pool of worker processes; ray = Ray tasks"
    )
    ray_address: str | None = Field(default=None, description="Ray cluster address; None = local")
    job_workers: int = Field(
        default=2, gt=0, le=MAX_JOB_WORKERS, description="jobs running at once on this replica"
    )
    max_queued_jobs: PosInt = Field(default=100, description="queued jobs before 429")
    job_max_attempts: PosInt = Field(
        default=2, description="runs of a job before a crash marks it failed"
    )
    job_timeout_s: PosFloat = Field(
        default=3600.0,
        description="hard limit of each run of a job without a limit of its own (a rerun "
        "after a crash has it whole again)",
    )
    job_lease_s: PosFloat = Field(
        default=30.0, description="a replica silent this long is dead; its jobs are recovered"
    )
    heartbeat_s: PosFloat = Field(default=5.0, description="replica heartbeat interval")
    job_poll_s: PosFloat = Field(default=1.0, description="how often queued jobs are looked for")
    job_retention_s: float = Field(
        default=30 * 86_400.0,
        ge=0.0,
        description="finished jobs (request, result, events) are deleted this long after they "
        "were created, looked for every 10 minutes; 0 = kept for ever (plans, the audit log, "
        "idempotency records and the rows of replicas gone have their own lifetimes)",
    )

    # limits
    max_body_bytes: PosInt = Field(default=10_000_000, description="larger bodies get 413")
    max_orders_sync: PosInt = Field(
        default=1_000, description="orders answered synchronously; more become a job (routes)"
    )
    max_orders: PosInt = Field(default=10_000, description="orders per request, jobs included")
    max_nodes: PosInt = Field(
        default=2_000,
        description="fulfilment nodes per allocation request or plan scenario (more -> 422)",
    )
    max_order_lines: PosInt = Field(
        default=100_000,
        description="order lines per allocation request, plan scenario or re-plan's new "
        "orders, all orders together (more -> 422)",
    )
    max_vehicles: PosInt = Field(
        default=2_000,
        description="vehicles per routing request or plan scenario (more -> 422)",
    )
    max_capacity_dims: PosInt = Field(
        default=20,
        description="capacity dimensions (capacity_dims) of a routing request, plan scenario "
        "or played scenario (more -> 422)",
    )
    max_skills: PosInt = Field(
        default=100,
        description="skills per vehicle (skills) or order (required_skills) of a routing "
        "request, plan scenario, re-plan's new orders or played scenario (more -> 422)",
    )
    max_time_windows: PosInt = Field(
        default=1_000,
        description="time windows per order or pickup, of a routing request, plan scenario, "
        "re-plan's new orders or played scenario (more -> 422)",
    )
    max_breaks: PosInt = Field(
        default=100,
        description="breaks per vehicle of a routing request, plan scenario or played "
        "scenario (more -> 422)",
    )
    max_time_limit_s: PosFloat = Field(default=600.0, description="largest time_limit_s accepted")
    max_sync_time_limit_s: PosFloat = Field(
        default=30.0, description="time limits above this are answered 202 with a job"
    )
    max_sync_solves: PosInt = Field(default=4, description="routing solves at once before 429")
    fast_lane_concurrency: int = Field(
        default=2,
        ge=0,
        le=32,
        description="allocation requests worked on at once per replica, the others wait in "
        "arrival order (0 = no admission control: every request gets a thread at once)",
    )
    fast_lane_queue: PosInt = Field(
        default=256, description="allocation requests waiting for the fast lane before 429"
    )
    max_replications: PosInt = Field(default=200, description="largest replications accepted")
    max_whatif_runs: PosInt = Field(
        default=2_000,
        description="simulated days in one what-if study",
    )
    retry_after_s: PosInt = Field(default=5, description="Retry-After sent with 429")

    # robustness
    fallback_grace_s: PosFloat = Field(
        default=2.0, description="extra wait past a time limit before serving the fallback"
    )
    breaker_failures: PosInt = Field(
        default=3, description="consecutive solver failures that open the circuit breaker"
    )
    breaker_reset_s: PosFloat = Field(
        default=30.0, description="time the breaker stays open before letting a probe through"
    )

    # security
    auth_enabled: bool = Field(default=True, description="False = every request is admin")
    key_cache_s: float = Field(default=5.0, ge=0.0, description="how long a key lookup is cached")
    idempotency_ttl_s: PosInt = Field(default=86_400, description="how long answers are kept")

    # demo
    demo: bool = Field(default=False, description="load a generated demo scenario at start-up")
    demo_seed: int = 7

    @property
    def models_dir(self) -> Path:
        """Folder of the dispatch models the API may load (``model:NAME``)."""
        return self.models_dir_override or self.data_dir / "models"

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL to connect to (SQLite under ``data_dir`` unless configured)."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'dispatchlab.sqlite3').resolve()}"


ENV_PREFIX = "DISPATCHLAB_"


def setting_env_name(field: str, environ: Mapping[str, str] | None = None) -> str:
    """The environment variable that gives setting ``field`` (of its aliases, the one set)."""
    env = os.environ if environ is None else environ
    info = Settings.model_fields.get(field)
    if info is None:  # an alias already (a location pydantic gave by the name it read)
        return field if field.isupper() else ENV_PREFIX + field.upper()
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        given = {k.upper() for k in env}  # pydantic-settings reads names in any case
        for name in names:
            if name in given:
                return name
        if names:
            return names[0]
    return ENV_PREFIX + field.upper()


def load_settings() -> Settings:
    """The settings of the environment; a bad value is an InputError naming its variable."""
    try:
        return Settings()
    except ValidationError as err:
        errors = err.errors(include_url=False)
        loc, reason = error_location(errors[0])
        field = str(loc[0]) if loc else ""
        if len(errors) > 1:
            reason += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
        raise InputError(setting_env_name(field), reason) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
