"""Fixtures of the service tests: settings on a temporary SQLite file, apps, clients, keys."""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.core.security import Role
from api.jobs import TaskRegistry, TaskSpec
from api.keys import create_key
from api.main import create_app
from api.tasks import default_registry

TEST_SPECS = (
    TaskSpec("test_sleep", "tests.api.helpers:sleep_task", solver="test"),
    TaskSpec("test_crash", "tests.api.helpers:crash_task", solver="test"),
    TaskSpec(
        "test_crash_fallback",
        "tests.api.helpers:crash_task",
        fallback="tests.api.helpers:fallback_task",
        solver="test",
    ),
    TaskSpec("test_segfault", "tests.api.helpers:segfault_task", solver="test"),
    TaskSpec("test_bad_input", "tests.api.helpers:bad_input_task", solver="test"),
)


#: PostgreSQL for the ``postgres`` variants, e.g. ``postgresql://postgres@127.0.0.1:5432/test``
#: (its public schema is wiped before each test; each pytest-xdist worker uses a database of
#: its own next to it, see :func:`worker_database_url`); unset = those variants are skipped.
POSTGRES_URL = os.environ.get("DISPATCHLAB_TEST_DATABASE_URL")


def worker_database_url(url: str, worker: str | None) -> str:
    """The database URL of one pytest-xdist worker: ``url``'s database name suffixed with the
    worker id (``test`` -> ``test_gw0``), ``url`` itself outside xdist (``worker`` None)."""
    if not worker:
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def _worker_postgres(url: str) -> str:
    """This process's PostgreSQL URL (:func:`worker_database_url`), its database created on the
    server of ``url`` if missing: two workers on one database wiped each other's tables
    mid-test (``-n 2`` failed dozens of tests)."""
    worker_url = worker_database_url(url, os.environ.get("PYTEST_XDIST_WORKER"))
    if worker_url == url:
        return url
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from api.db.session import make_engine

    name = make_url(worker_url).database
    engine = make_engine(Settings(database_url=url).resolved_database_url())
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return worker_url


def _fresh_postgres(url: str) -> str:
    from sqlalchemy import text

    from api.db.session import make_engine

    url = _worker_postgres(url)
    engine = make_engine(Settings(database_url=url).resolved_database_url())
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on a fresh database (SQLite file; PostgreSQL when configured), fast polling."""
    database_url = None
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("set DISPATCHLAB_TEST_DATABASE_URL to test on PostgreSQL")
        database_url = _fresh_postgres(POSTGRES_URL)
    return service_settings(tmp_path, database_url)


def service_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    """The tests' settings of a service keeping its data in ``data_dir``: fast polling."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        job_poll_s=0.1,
        heartbeat_s=0.5,
        job_lease_s=5.0,
        job_workers=2,
        key_cache_s=0.0,
    )


@pytest.fixture(autouse=True, scope="session")
def one_job_fork_server() -> Iterator[None]:
    """The services a test process starts share one job fork server (each service stops its
    own as it stops, and a new one spends seconds of CPU on its imports: the suite took
    twice the CPU); stopped when the tests are done."""
    from api.jobs.executors import fork_server_kept

    with fork_server_kept():
        yield


def registry_with_test_kinds() -> TaskRegistry:
    """The service's kinds plus the test kinds."""
    registry = default_registry()
    for spec in TEST_SPECS:
        registry.add(spec)
    return registry


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database migrated to the head, made once per test process (with the
    service's own :func:`~api.db.session.migrate`), for :func:`make_client` to copy."""
    from api.db.session import make_engine, migrate

    path = tmp_path_factory.mktemp("migrated") / "dispatchlab.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()  # its last connection closed: the WAL is checkpointed into the file
    return path


def start_on_migrated_copy(settings: Settings, migrated: Path) -> None:
    """Put a copy of the ``migrated`` database where ``settings``' service keeps its SQLite
    file, if it has none yet: its start then finds the schema at the head instead of running
    every migration on a new file (0.2-0.5 s of CPU per service, most of a client's set-up).
    The start-up's migration of a new database is tested on its own (``test_infra``)."""
    if settings.database_url:  # PostgreSQL (or a URL of its own): migrated as it starts
        return
    target = settings.data_dir / "dispatchlab.sqlite3"
    if target.exists():  # a service's database already (a restart): started as it is
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated, target)


#: the OpenAPI document of the apps :func:`make_client` built in this test process, by what
#: each was built from (:func:`share_openapi`)
_OPENAPI: dict[str, dict[str, Any]] = {}


def share_openapi(app: FastAPI, settings: Settings, registry: TaskRegistry) -> None:
    """Have ``app`` serve (``/openapi.json``, ``app.openapi()``) a copy of the OpenAPI document
    generated for an app built earlier in this process from the same settings (its data dir
    and database aside) and kinds, else generate it and keep it for the next such app: its
    generation took about 2 s of CPU in each test that read the document or /docs."""
    specs = sorted((kind, repr(spec)) for kind, spec in registry.specs.items())
    made_of = settings.model_dump(mode="json", exclude={"data_dir", "database_url"})
    key = json.dumps([made_of, specs], sort_keys=True)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            if key in _OPENAPI:
                app.openapi_schema = copy.deepcopy(_OPENAPI[key])
            else:
                _OPENAPI[key] = copy.deepcopy(generate())  # generate() keeps its own
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@pytest.fixture
def make_client(migrated_sqlite: Path) -> Iterator[Callable[..., TestClient]]:
    """Build started TestClients (closed at teardown): ``make_client(settings, registry=...)``;
    a new SQLite database starts as a copy of :func:`migrated_sqlite`; apps built from the
    same settings and kinds share their OpenAPI document (:func:`share_openapi`)."""
    opened: list[TestClient] = []

    def build(settings: Settings, registry: TaskRegistry | None = None) -> TestClient:
        start_on_migrated_copy(settings, migrated_sqlite)
        registry = registry or registry_with_test_kinds()
        app = create_app(settings, registry=registry)
        share_openapi(app, settings, registry)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in reversed(opened):
        client.__exit__(None, None, None)


@dataclass(frozen=True)
class MadeOnce:
    """What a module's tests share instead of each making it (a module's ``made_once``
    fixture): the database of the stopped service that made it, the keys stored in it (the
    owner's among them), and the answer."""

    database: Path
    keys: dict[str, dict[str, str]]
    answer: dict[str, Any]
    #: what made ``answer`` (a test on PostgreSQL makes its own with it)
    make: Callable[[TestClient, dict[str, dict[str, str]]], dict[str, Any]]


def make_once(
    data_dir: Path,
    migrated: Path,
    make: Callable[[TestClient, dict[str, dict[str, str]]], dict[str, Any]],
) -> MadeOnce:
    """Start a service on SQLite in ``data_dir``, store a key of every role and what ``make``
    makes with them, and stop it."""
    settings = service_settings(data_dir)
    start_on_migrated_copy(settings, migrated)
    with TestClient(create_app(settings, registry=registry_with_test_kinds())) as client:
        keys = make_keys(client)
        answer = make(client, keys)
    return MadeOnce(settings.data_dir / "dispatchlab.sqlite3", keys, answer, make)


@pytest.fixture
def made(
    made_once: MadeOnce,
    settings: Settings,
    client: TestClient,
    keys: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """What the module's ``made_once`` made, in ``client``'s service: on SQLite its answer (the
    service started on a copy of its database), on PostgreSQL made anew there."""
    if not settings.database_url:
        return copy.deepcopy(made_once.answer)
    return made_once.make(client, keys)


def uses_made_once(request: pytest.FixtureRequest, settings: Settings) -> bool:
    """Whether this test's service starts on a copy of its module's ``made_once`` database:
    a test that uses it, on SQLite (on PostgreSQL each test makes its own)."""
    return "made_once" in request.fixturenames and not settings.database_url


#: a test marked so (``@pytest.mark.shares_service``) gets its module's one service on SQLite
#: (:func:`shared_service`) as ``client`` and ``keys`` instead of a fresh one: for tests that
#: write nothing another test of the mark reads (422s before anything is queued, reads)
SHARES_SERVICE = "shares_service"


@dataclass(frozen=True)
class SharedService:
    """A module's one started service (:func:`shared_service`) and a key of every role."""

    client: TestClient
    keys: dict[str, dict[str, str]]


def serve_shared(
    data_dir: Path, migrated: Path, made: MadeOnce | None = None
) -> Iterator[SharedService]:
    """Start a service on SQLite in ``data_dir`` (on a copy of ``made``'s database, with its
    keys, if given; else on a copy of ``migrated``, with new keys) and yield it; stop it."""
    settings = service_settings(data_dir)
    if made is None:
        start_on_migrated_copy(settings, migrated)
    else:
        copy_database(made.database, settings)
    registry = registry_with_test_kinds()
    app = create_app(settings, registry=registry)
    share_openapi(app, settings, registry)
    with TestClient(app) as client:
        yield SharedService(client, made.keys if made else make_keys(client))


@pytest.fixture(scope="module")
def shared_service(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path
) -> Iterator[SharedService]:
    """One service on SQLite for the module's tests marked :data:`SHARES_SERVICE` (a module
    of a ``made_once`` overrides it with :func:`serve_shared` on that database): a new app's
    first request builds its routes (FastAPI's dependants and pydantic adapters of every
    body, about 0.2 s of CPU), which was most of a 422 test's time."""
    yield from serve_shared(tmp_path_factory.mktemp("shared"), migrated_sqlite)


def shares_service(request: pytest.FixtureRequest, settings: Settings) -> bool:
    """Whether this test uses its module's :func:`shared_service`: a test marked
    :data:`SHARES_SERVICE`, on SQLite (on PostgreSQL each test makes its own)."""
    return request.node.get_closest_marker(SHARES_SERVICE) is not None and not settings.database_url


@pytest.fixture
def client(
    request: pytest.FixtureRequest, settings: Settings, make_client: Callable[..., TestClient]
) -> TestClient:
    """A started client of a fresh service; for a test of its module's ``made_once``
    (:func:`uses_made_once`), started on a copy of that database; for a test marked
    :data:`SHARES_SERVICE` (:func:`shares_service`), its module's shared service."""
    if shares_service(request, settings):
        shared: SharedService = request.getfixturevalue("shared_service")
        return shared.client
    if uses_made_once(request, settings):
        made: MadeOnce = request.getfixturevalue("made_once")
        copy_database(made.database, settings)
    return make_client(settings)


def copy_database(database: Path, settings: Settings) -> None:
    """Put a copy of the SQLite ``database`` where ``settings``' service keeps its own."""
    target = settings.data_dir / "dispatchlab.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(database)) as source_db,
        contextlib.closing(sqlite3.connect(target)) as target_db,
    ):
        source_db.backup(target_db)


def app_of(client: TestClient) -> FastAPI:
    """The app behind a TestClient."""
    app: FastAPI = client.app  # type: ignore[assignment]
    return app


@pytest.fixture
def keys(
    request: pytest.FixtureRequest, settings: Settings, client: TestClient
) -> dict[str, dict[str, str]]:
    """Headers carrying a fresh key of every role: ``keys["oms"]``; for a test of its
    module's ``made_once`` (:func:`uses_made_once`), the keys stored with it; for a test
    marked :data:`SHARES_SERVICE`, its module's shared service's."""
    if shares_service(request, settings):
        shared: SharedService = request.getfixturevalue("shared_service")
        return copy.deepcopy(shared.keys)
    if uses_made_once(request, settings):
        made: MadeOnce = request.getfixturevalue("made_once")
        return copy.deepcopy(made.keys)
    return make_keys(client)


def make_keys(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers carrying a new key of every role, stored in ``client``'s service."""
    ctx = app_of(client).state.ctx
    out: dict[str, dict[str, str]] = {}
    with ctx.sessions() as session:
        for role in Role:
            key, _ = create_key(session, role=role, name=f"test-{role.value}")
            out[role.value] = {"X-API-Key": key}
    return out


def wait_for(
    fetch: Callable[[], Any], done: Callable[[Any], bool], *, timeout_s: float = 60.0
) -> Any:
    """Poll ``fetch`` until ``done(value)``; fail the test after ``timeout_s``.

    A passing wait returns as soon as ``done`` holds; the limit is generous because a job's
    solve shares the machine with the other test worker (20 s failed at load 15 and more).
    """
    import time

    deadline = time.monotonic() + timeout_s
    value = fetch()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting; last value: {value!r}")
        time.sleep(0.05)
        value = fetch()
    return value


def run_fork_server_script(
    tmp_path: Path, source: str, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a script in a fresh interpreter (in ``tmp_path``, the repo
    importable); skip the test where multiprocessing has no fork server (jobs spawned)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server here: job processes are spawned, nothing preloaded")
    script = tmp_path / "script.py"
    script.write_text(source)
    repo = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the cases that send SIGHUP when this run ignores it (``nohup make test``): the
    servers they start inherit the ignored SIGHUP and keep it so, as they should."""
    del config
    if not hasattr(signal, "SIGHUP") or signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        return
    skip = pytest.mark.skip(
        reason="SIGHUP is ignored in this run (nohup): the servers started keep it ignored"
    )
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(value is signal.SIGHUP for value in params.values()):
            item.add_marker(skip)
