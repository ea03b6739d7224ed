"""Alembic migrations create the schema the models describe, on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from services import temporary_postgres
from sqlalchemy import Engine, inspect, text

from server.storage.engine import alembic_config, create_db_engine, current_revision, upgrade_database
from server.storage.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'fresh' / 'lowdino.db'}")
        yield engine
        engine.dispose()
        return
    with temporary_postgres() as url:
        engine = create_db_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()  # type: ignore[return-value]


def test_upgrade_creates_the_models_schema(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade_database(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert {"runs", "metrics", "events", "workers"} <= set(inspect(empty_engine).get_table_names())
    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    upgrade_database(empty_engine)  # idempotent
    assert current_revision(empty_engine) == head_revision()


def test_downgrade_and_upgrade_again(empty_engine: Engine) -> None:
    from alembic import command

    upgrade_database(empty_engine)
    command.downgrade(alembic_config(empty_engine), "base")
    assert "runs" not in inspect(empty_engine).get_table_names()
    upgrade_database(empty_engine)
    assert "runs" in inspect(empty_engine).get_table_names()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'lowdino.db'}")
    upgrade_database(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        table_sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'metrics'"
        ).scalar()
    assert "WITHOUT ROWID" in table_sql
    engine.dispose()


def test_packaged_alembic_ini_works_from_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from server.storage.engine import ALEMBIC_INI

    env_db = tmp_path / "cli.db"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"],
        env={"LOWDINO_DATABASE_URL": f"sqlite:///{env_db}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine = create_db_engine(f"sqlite:///{env_db}")
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_0002_backfills_metric_blocks_from_existing_points(empty_engine: Engine) -> None:
    from alembic import command

    from server.metrics import queries as metric_queries
    from server.metrics.downsample import downsample_series
    from server.storage.engine import session_scope

    command.upgrade(alembic_config(empty_engine), "0001")
    values = [((step * 7919) % 1000) / 10 for step in range(1, 3001)]
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, kind, tags, status, config, created_at, latest_metrics, best_metrics, "
                "cancel_requested, attempt) VALUES ('r1', 'pretrain', '[]', 'completed', '{}', "
                "'2026-01-01 00:00:00', '{}', '{}', false, 1)"
            )
        )
        connection.execute(
            text("INSERT INTO metrics (run_id, key, step, value) VALUES ('r1', 'loss', :s, :v)"),
            [{"s": step, "v": value} for step, value in enumerate(values, start=1)],
        )
    upgrade_database(empty_engine)
    with session_scope(empty_engine) as session:
        blocks = session.execute(
            text("SELECT block, count, min_value, max_value FROM metric_blocks ORDER BY block")
        ).all()
        assert [row[0] for row in blocks] == list(range(3001 // 256 + 1))
        assert sum(row[1] for row in blocks) == 3000
        assert blocks[0][2] == min(values[:255])  # block 0 holds steps 1-255
        series = downsample_series(session, run_id="r1", key="loss", max_points=12)
        assert min(series.values) == min(values)
        assert max(series.values) == max(values)
        assert metric_queries.count_points(session, run_id="r1") == 3000
