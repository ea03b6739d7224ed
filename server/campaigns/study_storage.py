"""Where the service's Optuna studies live: beside its own tables, in its own database.

Optuna's RDB storage keeps its own Alembic revision in an `alembic_version` table, which the service's
tables already use, so the studies get a namespace of their own: the `optuna` schema of the same
PostgreSQL database, or for SQLite a sibling file (<home>/lowdino-optuna.db next to lowdino.db). Every
API process opens the same storage, so they share each study; one storage object per process.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from lowdino.search.engine import optuna_module

OPTUNA_SCHEMA = "optuna"
SQLITE_SUFFIX = "-optuna"
SQLITE_BUSY_TIMEOUT_S = 30


def study_name(search_id: str) -> str:
    return f"search-{search_id}"


def optuna_url(database_url: str) -> tuple[str, dict[str, Any]]:
    """The storage URL and engine keywords of the Optuna studies that go with `database_url`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return "sqlite://", {}
        path = Path(url.database)
        sibling = path.with_name(f"{path.stem}{SQLITE_SUFFIX}{path.suffix or '.db'}")
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        return url.set(database=str(sibling)).render_as_string(hide_password=False), engine_kwargs
    engine_kwargs = {"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}, "pool_pre_ping": True}
    return url.render_as_string(hide_password=False), engine_kwargs


def _create_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    except DBAPIError:  # another API process created it at the same moment
        pass
    finally:
        engine.dispose()


@functools.lru_cache(maxsize=8)
def optuna_storage(database_url: str) -> Any:
    """This process's Optuna RDB storage for the service at `database_url` (tables created on first use)."""
    optuna = optuna_module()
    url, engine_kwargs = optuna_url(database_url)
    if not url.startswith("sqlite"):
        _create_schema(url)
    try:
        return optuna.storages.RDBStorage(url=url, engine_kwargs=engine_kwargs)
    except DBAPIError:  # two processes creating Optuna's tables at once: the loser finds them made
        return optuna.storages.RDBStorage(url=url, engine_kwargs=engine_kwargs)
