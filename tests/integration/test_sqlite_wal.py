"""use_wal: every SQLite connection in WAL mode; begin_immediate takes the write lock at BEGIN."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from services.common.sql import make_engine, use_wal

if TYPE_CHECKING:
    from pathlib import Path


async def test_every_connection_is_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    use_wal(engine)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await engine.dispose()


async def test_begin_immediate_holds_the_write_lock_from_the_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}"
    engine = make_engine(url)
    use_wal(engine, begin_immediate=True)
    other = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.begin() as conn:
            # a read-only transaction so far, yet it already blocks another writer
            await conn.execute(text("SELECT count(*) FROM t"))
            async with other.connect() as writer:
                await writer.execute(text("PRAGMA busy_timeout = 0"))
                try:
                    await writer.execute(text("INSERT INTO t VALUES (1)"))
                    await writer.commit()
                    blocked = False
                except Exception as exc:  # sqlite3.OperationalError: database is locked
                    blocked = "locked" in str(exc)
        assert blocked
    finally:
        await engine.dispose()
        await other.dispose()
