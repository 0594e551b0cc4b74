"""Alembic environment: runs on the connection handed over by ``api.db.session.migrate``.

From a shell: ``alembic -c api/db/alembic.ini upgrade head`` (uses ``DATABASE_URL`` or the
default SQLite file of the settings).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from api.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the given connection, or open one from the settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from api.core.config import get_settings
    from api.db.session import make_engine

    engine = make_engine(get_settings().resolved_database_url())
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run_migrations_online()
