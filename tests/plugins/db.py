"""Database fixtures: every projection test runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.drivers.db import pg_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

# for tests where the database makes no difference: the db_url fixture's SQLite case only
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/test.db"
        return
    async with pg_database() as url:
        yield url
