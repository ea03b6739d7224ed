"""Fixtures every test folder may use: the migrated PostgreSQL database of this test session; and the
order files run in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import temporary_postgres

# Seconds each test file took in a whole-suite run (files under 5 s are left out). Refresh after adding a
# slow file: `pytest -n 2 --dist loadfile --junitxml=suite.xml`, then `python tests/file_durations.py suite.xml`.
FILE_DURATIONS = Path(__file__).with_name("file_durations.json")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Longest files first, each file's tests kept together and in their own order.

    `make test` hands whole files to two workers in collection order (`--no-loadscope-reorder`: xdist
    would otherwise order files by their number of tests); alphabetical order left a long file (the
    schemathesis command, minutes) to start near the end, so one worker ran it alone while the other sat
    idle. Longest-first is the classic remedy for that tail; a file missing from the record counts as short.
    """
    durations: dict[str, float] = json.loads(FILE_DURATIONS.read_text()) if FILE_DURATIONS.exists() else {}
    root = Path(str(config.rootpath))
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(Path(str(item.path)).relative_to(root).as_posix(), index)

    def key(item: pytest.Item) -> tuple[float, int]:
        file = Path(str(item.path)).relative_to(root).as_posix()
        return (-durations.get(file, 0.0), first_seen[file])

    items.sort(key=key)  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this session (dropped at the end)."""
    from server.storage.engine import create_db_engine, upgrade_database

    with temporary_postgres() as url:
        engine = create_db_engine(url)
        upgrade_database(engine)
        engine.dispose()
        yield url
