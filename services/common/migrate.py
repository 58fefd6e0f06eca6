"""A service's schema as an Alembic history: upgrade at start, refuse a newer database."""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect, text

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("keyledger.migrate")
# Alembic says "Context impl ..." at INFO several times per start; the one line that
# matters, what changed, is logged here
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
BASELINE = "0001"
# Alembic's `context` and `op` are module globals: one migration at a time per process,
# across event loops and threads (tests run services on TestApp's portal threads)
_IN_PROCESS = threading.Lock()


@dataclass(frozen=True)
class MigrationSpec:
    """One service's schema history, declared by the service (its migrations/__init__.py).

    `version_table` is the service's own, so services can share one database;
    `pre_alembic_tables` is what metadata.create_all made before the migrations existed:
    a database holding all of them is stamped at the baseline rather than created again.
    """

    name: str
    folder: Path
    version_table: str
    pre_alembic_tables: frozenset[str]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer build: running on it could corrupt it."""

    def __init__(self, service: str, current: str, head: str) -> None:
        super().__init__(
            f"database at {service} revision {current} is newer than this build knows "
            f"(head {head}); upgrade keyledger"
        )
        self.service, self.current, self.head = service, current, head


@dataclass(frozen=True)
class Upgrade:
    """What one upgrade did: the revision found and the revision left."""

    service: str
    before: str | None
    after: str | None


@cache
def _script(spec: MigrationSpec) -> ScriptDirectory:
    return ScriptDirectory(str(spec.folder))


def head_revision(spec: MigrationSpec) -> str:
    head = _script(spec).get_current_head()
    assert head is not None, f"{spec.name} has no migrations"
    return head


def refuse_unknown(spec: MigrationSpec, current: str | None) -> None:
    """Raise SchemaTooNew if `current` is not in this build's history for the service."""
    known = {script.revision for script in _script(spec).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNew(spec.name, current, head_revision(spec))


async def current_revision(engine: AsyncEngine, spec: MigrationSpec) -> str | None:
    """The revision recorded in the database; None before the first migration."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current, spec)


async def upgrade_to_head(engine: AsyncEngine, spec: MigrationSpec) -> Upgrade:
    """Bring the service's tables to this build's head in one transaction, serialised with
    any other replica doing the same; raises SchemaTooNew instead of touching a newer one."""
    # polled: an Event cannot cross threads, and a cancelled acquire in a worker thread
    # would leave the lock taken for good
    while not _IN_PROCESS.acquire(blocking=False):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        async with engine.begin() as conn:
            done = await conn.run_sync(_upgrade, spec)
    finally:
        _IN_PROCESS.release()
    if done.before != done.after:
        log.info("%s: schema migrated from %s to %s", spec.name, done.before or "empty", done.after)
    return done


def _upgrade(conn: Connection, spec: MigrationSpec) -> Upgrade:
    _serialise(conn, spec.name)
    before = _current(conn, spec)
    refuse_unknown(spec, before)
    config = _config(conn, spec)
    if before is None and spec.pre_alembic_tables <= set(inspect(conn).get_table_names()):
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    return Upgrade(spec.name, before, _current(conn, spec))


def _serialise(conn: Connection, service: str) -> None:
    """Replicas starting at once would both find no tables and both CREATE them."""
    if conn.dialect.name == "postgresql":
        # held until this transaction ends, so the second replica then sees the migrated schema
        key = zlib.crc32(f"keyledger-migrate-{service}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif conn.dialect.name == "sqlite":
        driver: Any = conn.connection.driver_connection
        # pysqlite runs DDL outside any transaction: take the write lock so the whole
        # migration is one transaction and a second process waits on the busy timeout
        # (an engine made with use_wal(begin_immediate=True) begins IMMEDIATE itself)
        if not driver.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _current(conn: Connection, spec: MigrationSpec) -> str | None:
    migration = MigrationContext.configure(conn, opts={"version_table": spec.version_table})
    return migration.get_current_revision()


def _config(conn: Connection, spec: MigrationSpec) -> Config:
    config = Config()
    config.set_main_option("script_location", _script(spec).dir)
    config.attributes["connection"] = conn
    config.attributes["version_table"] = spec.version_table
    return config


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py: migrate on the connection handed over."""
    conn = context.config.attributes.get("connection")
    if conn is None:
        raise RuntimeError("run migrations with `keyledger migrate`, not the alembic command")
    context.configure(
        connection=conn,
        target_metadata=metadata,
        version_table=context.config.attributes["version_table"],
        # SQLite cannot ALTER most things: later migrations recreate tables in batch mode
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
