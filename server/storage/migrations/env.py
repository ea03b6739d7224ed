"""Alembic environment: migrates the engine handed over by server.storage.engine, else the Settings' database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from server.storage.models import Base

target_metadata = Base.metadata


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    from server.settings import Settings
    from server.storage.engine import create_db_engine

    return create_db_engine(Settings().database_url)


def run_migrations_offline() -> None:
    from server.settings import Settings

    context.configure(
        url=Settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode recreates tables for later migrations.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
