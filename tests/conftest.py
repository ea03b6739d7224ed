"""Fixtures every test folder may use: the migrated PostgreSQL database of this test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from services import temporary_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    from server.storage.engine import create_db_engine, upgrade_database

    with temporary_postgres() as url:
        engine = create_db_engine(url)
        upgrade_database(engine)
        engine.dispose()
        yield url
