"""Engines, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL (at scale).

SQLite connections get WAL journaling (readers never block the writer, so the SSE pollers and the
worker's ingestion run side by side), a 30 s busy timeout (writers from the API and the worker queue
up instead of failing with "database is locked"), foreign keys (ON DELETE CASCADE of metrics and
events) and synchronous=NORMAL (safe with WAL; a crash loses at most the last commits, never the file).

Typical use (API and worker alike)::

    engine = create_db_engine(settings.database_url)
    upgrade_database(engine)              # alembic upgrade head (idempotent)
    with session_scope(engine) as session:
        crud.update_run_status(session, run_id=..., status=RunStatus.RUNNING)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lowdino.errors import LowDinoError

SERVER_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = SERVER_DIR / "alembic.ini"
MIGRATIONS_DIR = SERVER_DIR / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(LowDinoError):
    """The configured database URL is unusable."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An Engine for `url`; SQLite files get their folder created and the pragmas above."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseError(
            f"database URL {url!r} is not valid; use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg", ""):
        if parsed.get_driver_name() != "psycopg":
            # psycopg 3 is the driver we install; "postgresql://" alone would pick psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: crud functions commit, and callers keep reading the returned rows.
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that is rolled back on error and always closed (crud functions commit themselves)."""
    session = make_session_factory(engine)()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine | None = None) -> Any:
    """Alembic Config for the packaged migrations; with `engine`, env.py migrates that engine."""
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


# Any constant shared by every LowDINO process: the key of the advisory lock around migrations.
MIGRATION_LOCK_KEY = 0x4C6F7744494E4F  # "LowDINO"


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """`alembic upgrade head` on `engine` (creates the schema on an empty database).

    On PostgreSQL the upgrade holds a session-level advisory lock: API replicas and workers that start
    together on an empty database would otherwise each try to create the same tables; with the lock,
    the first one migrates and the others find the schema at head.
    """
    from alembic import command

    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate_database(url: str) -> str | None:
    """`alembic upgrade head` on the database at `url`; its revision after, or a one-line DatabaseError."""
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_db_engine(url)
    try:
        upgrade_database(engine)
        return current_revision(engine)
    except SQLAlchemyError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).splitlines() or [cause.__class__.__name__])[0][:200]
        raise DatabaseError(
            f"cannot migrate the database {shown} ({reason}); start it or fix LOWDINO_DATABASE_URL"
        ) from exc
    finally:
        engine.dispose()
