"""CLI commands of the service: ``serve`` (and ``demo``), ``keys create|list|revoke|rotate``."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from dispatchlab.cli._common import (
    Bounds,
    check_range,
    cli_errors,
    console,
    err_console,
    fail,
    int_range_option,
    os_error_line,
)

ROLES = ("oms", "planner", "researcher", "admin")
#: the most API processes ``serve --workers`` starts (as many as the other worker options'
#: 64): 10**20 was taken, and uvicorn spawned replicas until the machine ran out of memory
MAX_API_WORKERS = 64
#: the most jobs ``serve --job-workers`` runs at once per replica (a job process, or a Ray
#: task, each): 10**12 was taken (the pool is sized from it, and on Ray as many warm-up
#: tasks are submitted at start); ``api.core.config.MAX_JOB_WORKERS`` (not imported here:
#: the command line starts without the service's modules)
MAX_JOB_WORKERS = 64

keys_app = typer.Typer(help="Manage API keys (stored hashed; a key is shown only when made).")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="folder of the SQLite database (default data/runtime); made if missing, not its "
        "parents",
    ),
]
#: uvicorn's log levels
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
PortOpt = Annotated[
    int, int_range_option(0, 65_535, help="TCP port (0: a free port the system picks)")
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


def _storage_option(data_dir: Path | None, database_url: str | None) -> str:
    """The option (or environment variable) that chose the database, for error messages."""
    from api.core.config import get_settings

    if get_settings().database_url:
        if database_url is not None:
            return "--database-url"
        return "DATABASE_URL" if os.environ.get("DATABASE_URL") else "DISPATCHLAB_DATABASE_URL"
    if data_dir is None and os.environ.get("DISPATCHLAB_DATA_DIR"):
        return "DISPATCHLAB_DATA_DIR"
    return "--data-dir"


def _one_line(err: BaseException) -> str:
    """The reason of a database error on one line (the driver's message, without the URL)."""
    orig = getattr(err, "orig", None)  # a DBAPIError: the driver's own message
    text = str(orig if orig is not None else err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("(Background on this error at")]
    return "; ".join(lines) or type(err).__name__


def _check_storage(data_dir: Path | None, database_url: str | None) -> None:
    """Fail (one line, exit 2) unless the configured database can be connected to.

    Run before the service starts (and before ``keys`` commands), so a bad URL, an
    unreachable server or a data dir that is a file is one line, not a traceback from
    every worker process.
    """
    from api.core.config import get_settings

    try:
        _check_database(data_dir, database_url)
    finally:
        # the settings read here must not outlive the check: the caller sets more of the
        # environment after it (DISPATCHLAB_DEMO), and the service in this process reads it
        get_settings.cache_clear()


def _check_database(data_dir: Path | None, database_url: str | None) -> None:
    """:func:`_check_storage` on the settings of the environment as it is now."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from api.core.config import get_settings
    from api.db.session import make_engine

    settings = get_settings()
    option = _storage_option(data_dir, database_url)
    if not settings.database_url:  # SQLite under the data dir
        folder = settings.data_dir
        if folder.exists() and not folder.is_dir():
            raise fail(f"{option}: {folder} is not a folder")
        given = data_dir is not None or bool(os.environ.get("DISPATCHLAB_DATA_DIR"))
        if given and not folder.exists() and not folder.parent.is_dir():
            # the folder itself is made, not its parents: a typo's whole path was
            raise fail(
                f"{option}: the folder {folder.parent} does not exist (only the data dir "
                "itself is made, not its parents)"
            )
    url = settings.resolved_database_url()
    try:
        parsed = make_url(url)
    except (SQLAlchemyError, ValueError):
        raise fail(f"{option}: not a database URL (e.g. postgresql://user@host/db)") from None
    shown = parsed.render_as_string(hide_password=True)
    if settings.database_url and parsed.get_backend_name() == "sqlite":
        # a given SQLite file's folder is not made (a typo's whole path was); the default
        # one under the data dir is
        name = parsed.database or ""
        if name and name != ":memory:" and not Path(name).parent.is_dir():
            raise fail(f"{option}: folder {Path(name).parent} does not exist")
    try:
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            engine = make_engine(url)  # also makes the data dir
        else:  # a connection check that does not wait minutes for a host that never answers
            args = {"connect_timeout": 10} if backend == "postgresql" else {}
            engine = create_engine(url, poolclass=NullPool, connect_args=args)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except NoSuchModuleError:
        raise fail(f"{option}: unknown database kind {parsed.drivername!r} in {shown}") from None
    except ImportError as err:
        raise fail(f"{option}: no driver for {shown}: {err}") from None
    except OSError as err:
        raise fail(f"{option}: {os_error_line(err)}") from None
    except SQLAlchemyError as err:
        raise fail(f"{option}: cannot connect to {shown}: {_one_line(err)}") from None


def _check_job_executor() -> None:
    """Fail (one line, exit 2) unless the configured job executor can be used.

    With ``DISPATCHLAB_JOB_EXECUTOR=ray``, Ray must be installed and a Ray cluster must
    answer at ``DISPATCHLAB_RAY_ADDRESS`` (when given) within seconds: the service would
    otherwise hang at start-up while Ray retries the address for minutes.
    """
    from importlib.util import find_spec

    from api.core.config import get_settings
    from api.jobs.executors import RAY_ADDRESS_SETTING
    from simulation.executors import check_ray_address

    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()  # as in _check_storage: the caller sets more of the env
    if settings.job_executor != "ray":
        return
    if find_spec("ray") is None:
        raise fail(
            "DISPATCHLAB_JOB_EXECUTOR: ray is not installed "
            "(pip install 'dispatchlab[distributed]')"
        )
    if settings.ray_address:
        check_ray_address(settings.ray_address, option=RAY_ADDRESS_SETTING)


def _session(data_dir: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from api.core.config import get_settings
    from api.db.session import make_engine, make_sessionmaker, migrate

    _check_storage(data_dir, database_url)
    engine = make_engine(get_settings().resolved_database_url())
    try:
        migrate(engine)
    except (SQLAlchemyError, CommandError) as err:
        option = _storage_option(data_dir, database_url)
        raise fail(
            f"{option}: cannot bring the database schema up to date: {_one_line(err)}"
        ) from None
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
    from api.schemas.common import key_name_problem

    if role not in ROLES:
        raise fail(f"--role: unknown role {role!r}; choose one of {', '.join(ROLES)}")
    problem = key_name_problem(name)
    if problem is not None:
        raise fail(f"--name: {problem}")
    _apply_env(data_dir, database_url)
    with _session(data_dir, database_url) as session:
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
    with _session(data_dir, database_url) as session:
        rows = list_keys(session)
    table = Table("id", "role", "name", "account", "created", "expires")
    for row in rows:
        created = row.created_at.isoformat(timespec="seconds")
        expires = row.expires_at.isoformat(timespec="seconds") if row.expires_at else ""
        table.add_row(
            escape(row.id), escape(row.role), escape(row.name), row.account_id, created, expires
        )
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
    with _session(data_dir, database_url) as session:
        row = revoke_key(session, key_id)
    if row is None:
        raise fail(f"key_id: no key {key_id!r}")
    console.print(f"key {row.id} revoked", markup=False)


@keys_app.command("rotate")
@cli_errors
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="the key's id (the part after dlk_)")],
    grace_s: Annotated[
        int,
        typer.Option(
            "--grace-s",
            help="seconds the old key keeps working (0: revoked at once; at most 604800)",
        ),
    ] = 0,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Replace a key by a new one of the same role and account (its jobs and plans kept)
    and print it (alone on the last line); the old key ends at once or after --grace-s."""
    from api.core.security import MAX_GRACE_S
    from api.keys import KeyNotRotatable, rotate_key

    check_range("--grace-s", grace_s, Bounds(0, MAX_GRACE_S, integer=True, unit="seconds"))
    _apply_env(data_dir, database_url)
    with _session(data_dir, database_url) as session:
        try:
            made = rotate_key(session, key_id, grace_s=grace_s)
        except KeyNotRotatable as err:
            raise fail(f"key_id: {err}") from None
        if made is None:
            raise fail(f"key_id: no key {key_id!r}")
        key, row, old = made
        if old.revoked_at is not None:
            ends = "revoked now"
        else:
            assert old.expires_at is not None
            ends = f"valid until {old.expires_at.isoformat(timespec='seconds')}"
        line = (
            f"key {row.id} ({row.role}, account {row.account_id}) replaces key {old.id} "
            f"({ends}); it is shown only once:"
        )
    err_console.print(line, markup=False, soft_wrap=True)
    typer.echo(key)


def _check_listen(host: str, port: int) -> None:
    """Fail naming ``--host`` or ``--port`` unless a socket can listen there.

    The server found out only after the app had started: an ``ERROR:`` line of uvicorn's
    and exit 3 (``--host 999.1.1.1``), not the exit 2 of bad input.
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise fail(f"--host: cannot listen on {host!r} ({reason})") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            option = "--port" if err.errno == errno.EADDRINUSE else "--host"
            reason = err.strerror or err
            raise fail(f"{option}: cannot listen on {host}:{port} ({reason})") from None


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
    _check_storage(data_dir, database_url)  # one line now, not a traceback per worker
    _check_job_executor()
    _check_listen(host, port)
    if job_workers is not None:
        os.environ["DISPATCHLAB_JOB_WORKERS"] = str(job_workers)
    if demo:
        os.environ["DISPATCHLAB_DEMO"] = "1"
        from api.core.security import Role
        from api.keys import create_key

        with _session(data_dir, database_url) as session:
            key, _row = create_key(session, role=Role.ADMIN, name="demo")
        console.print("demo admin key (send it as the X-API-Key header):")
        typer.echo(key)
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    if port == 0:
        typer.echo("dispatchlab service on a free port (uvicorn's log names it); docs at /docs")
    else:
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
        port: PortOpt = 8000,
        workers: Annotated[
            int, int_range_option(1, MAX_API_WORKERS, help="API processes (replicas)")
        ] = 1,
        job_workers: Annotated[
            int | None,
            int_range_option(1, MAX_JOB_WORKERS, help="jobs run at once per replica"),
        ] = None,
        demo: Annotated[bool, typer.Option(help="load a generated demo scenario")] = False,
        data_dir: DataDirOpt = None,
        database_url: DatabaseOpt = None,
        log_level: Annotated[
            LogLevel, typer.Option(case_sensitive=False, help="uvicorn log level")
        ] = "info",
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
        port: PortOpt = 8000,
        data_dir: DataDirOpt = None,
    ) -> None:
        """Start the service on SQLite with a demo scenario loaded (serve --demo --access-log)."""
        _serve(host, port, 1, None, True, data_dir, None, "info", True)

    app.add_typer(keys_app, name="keys")
