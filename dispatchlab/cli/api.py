"""CLI commands of the service: ``serve`` (and ``demo``), ``keys create|list|revoke``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dispatchlab.cli._common import cli_errors, console, err_console, fail

ROLES = ("oms", "planner", "researcher", "admin")

keys_app = typer.Typer(help="Manage API keys (stored hashed; a key is shown only when made).")

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="folder of the SQLite database (default data/runtime)"),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL, e.g. postgresql://... (or DATABASE_URL)"),
]


def _apply_env(data_dir: Path | None, database_url: str | None) -> None:
    """Hand storage options to the settings (and to uvicorn's worker processes) via env."""
    if data_dir is not None:
        os.environ["DISPATCHLAB_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["DATABASE_URL"] = database_url
    from api.core.config import get_settings

    get_settings.cache_clear()


def _session():  # type: ignore[no-untyped-def]
    from api.core.config import get_settings
    from api.db.session import make_engine, make_sessionmaker, migrate

    engine = make_engine(get_settings().resolved_database_url())
    migrate(engine)
    return make_sessionmaker(engine)()


@keys_app.command("create")
@cli_errors
def keys_create(
    role: Annotated[str, typer.Option("--role", help=f"one of {', '.join(ROLES)}")],
    name: Annotated[str, typer.Option("--name", help="who or what uses the key")] = "",
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Make an API key with a role and print it (alone on the last line)."""
    from api.core.security import Role
    from api.keys import create_key

    if role not in ROLES:
        raise fail(f"--role: unknown role {role!r}; choose one of {', '.join(ROLES)}")
    _apply_env(data_dir, database_url)
    with _session() as session:
        key, row = create_key(session, role=Role(role), name=name)
    err_console.print(f"key {row.id} ({row.role}) created; it is shown only once:", markup=False)
    typer.echo(key)


@keys_app.command("list")
@cli_errors
def keys_list(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List active keys (ids, roles, names; never the keys)."""
    from rich.markup import escape
    from rich.table import Table

    from api.keys import list_keys

    _apply_env(data_dir, database_url)
    with _session() as session:
        rows = list_keys(session)
    table = Table("id", "role", "name", "created")
    for row in rows:
        created = row.created_at.isoformat(timespec="seconds")
        table.add_row(escape(row.id), escape(row.role), escape(row.name), created)
    console.print(table)


@keys_app.command("revoke")
@cli_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after dlk_)")],
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from api.keys import revoke_key

    _apply_env(data_dir, database_url)
    with _session() as session:
        row = revoke_key(session, key_id)
    if row is None:
        raise fail(f"key_id: no key {key_id!r}")
    console.print(f"key {row.id} revoked", markup=False)


def _serve(
    host: str,
    port: int,
    workers: int,
    job_workers: int | None,
    demo: bool,
    data_dir: Path | None,
    database_url: str | None,
    log_level: str,
    access_log: bool,
    cpu_affinity: bool = False,
) -> None:
    from api.serve import serve_workers

    _apply_env(data_dir, database_url)
    if job_workers is not None:
        os.environ["DISPATCHLAB_JOB_WORKERS"] = str(job_workers)
    if demo:
        os.environ["DISPATCHLAB_DEMO"] = "1"
        from api.core.security import Role
        from api.keys import create_key

        with _session() as session:
            key, _row = create_key(session, role=Role.ADMIN, name="demo")
        console.print("demo admin key (send it as the X-API-Key header):")
        typer.echo(key)
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    typer.echo(f"dispatchlab service: docs at http://{shown}:{port}/docs")
    serve_workers(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        cpu_affinity=cpu_affinity,
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``demo`` and ``keys`` to the main app."""

    @app.command("serve")
    @cli_errors
    def serve(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        workers: Annotated[int, typer.Option(min=1, help="API processes (replicas)")] = 1,
        job_workers: Annotated[
            int | None, typer.Option(min=1, help="jobs run at once per replica")
        ] = None,
        demo: Annotated[bool, typer.Option(help="load a generated demo scenario")] = False,
        data_dir: DataDirOpt = None,
        database_url: DatabaseOpt = None,
        log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
        access_log: Annotated[
            bool,
            typer.Option(
                help="log every request to stderr (off by default: the audit log in the "
                "database records every request, and a stderr line costs ~0.1 ms each)"
            ),
        ] = False,
        cpu_affinity: Annotated[
            bool,
            typer.Option(
                help="with --workers > 1 (Linux): run each API process on a CPU of its own "
                "(job processes still use every CPU); for a machine that runs the service alone"
            ),
        ] = False,
    ) -> None:
        """Start the HTTP service (SQLite under data/runtime unless DATABASE_URL is set)."""
        _serve(
            host,
            port,
            workers,
            job_workers,
            demo,
            data_dir,
            database_url,
            log_level,
            access_log,
            cpu_affinity,
        )

    @app.command("demo")
    @cli_errors
    def demo(
        host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Start the service on SQLite with a demo scenario loaded (serve --demo --access-log)."""
        _serve(host, port, 1, None, True, data_dir, None, "info", True)

    app.add_typer(keys_app, name="keys")
