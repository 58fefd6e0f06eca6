"""Throwaway PostgreSQL databases on the machine's server, dropped when the block ends."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg

from tests.random_refs import db_name

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# CI has PostgreSQL: a test that cannot reach it fails rather than skips
PG_ADMIN_DSN = os.environ.get("KEYLEDGER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    name = db_name()
    await _admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
