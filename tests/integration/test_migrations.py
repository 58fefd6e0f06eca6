"""Each service's Alembic history on SQLite and PostgreSQL: shape, idempotence, races, refusal."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner, Result

from keyledger.cli import app
from services.common.migrate import (
    MigrationSpec,
    SchemaTooNew,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from services.common.sql import make_engine
from services.keys import store as keys_store
from tests.drivers.schema import (
    METADATA,
    SPECS,
    autogenerate_diff,
    before_micros,
    database_shape,
    metadata_shape,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine

ENTRY_POINT = Path(sys.executable).parent / "keyledger"
REPLICAS = 6
# columns and tables added by revisions after the baseline (0001), per service
ADDED_SINCE_BASELINE = {"keys": [("keys_audit", "via_account"), ("keys_audit", "via_user")]}
TABLES_SINCE_BASELINE = {
    "notifier": ["notifier_heads"],
    "keys": ["keys_snapshot", "keys_snapshot_accounts", "keys_snapshot_commands"],
}
# a row each service's upgrade must keep (default: its projection's tracking row)
KEPT_ROW = {
    "console": (
        "console_signin_failures",
        {"subject": "user:p", "failures": 7, "last_failure_at": datetime(2025, 1, 2, tzinfo=UTC)},
    )
}
SERVICES = list(SPECS)
each_service = pytest.mark.parametrize("service", SERVICES)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


def spec(service: str) -> MigrationSpec:
    return SPECS[service]


def version_table(service: str) -> str:
    return SPECS[service].version_table


async def set_revision(engine: AsyncEngine, service: str, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {version_table(service)} SET version_num = :v"), {"v": revision}
        )


@each_service
async def test_migrations_create_the_tables_the_metadata_describes(
    engine: AsyncEngine, service: str
) -> None:
    metadata = METADATA[service]
    done = await upgrade_to_head(engine, spec(service))
    assert (done.before, done.after) == (None, head_revision(spec(service)))
    async with engine.connect() as conn:
        shape = await conn.run_sync(database_shape)
        assert shape == metadata_shape(metadata, conn.dialect.name)
        assert await conn.run_sync(autogenerate_diff, metadata) == []


async def test_services_share_one_database_with_a_version_table_each(
    engine: AsyncEngine,
) -> None:
    for service in SERVICES:
        await upgrade_to_head(engine, spec(service))
    async with engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    every = set().union(*(m.tables for m in METADATA.values()))
    assert names == every | {version_table(s) for s in SERVICES}
    for service in SERVICES:
        assert await current_revision(engine, spec(service)) == head_revision(spec(service))


@each_service
async def test_upgrading_twice_changes_nothing_and_keeps_the_rows(
    engine: AsyncEngine, service: str
) -> None:
    await upgrade_to_head(engine, spec(service))
    name, row = KEPT_ROW.get(service, (f"{service}_tracking", {"projection": "p", "last_seq": 7}))
    table = METADATA[service].tables[name]
    async with engine.begin() as conn:
        await conn.execute(table.insert(), row)
    again = await upgrade_to_head(engine, spec(service))
    assert again.before == again.after == head_revision(spec(service))
    async with engine.connect() as conn:
        assert (await conn.execute(table.select())).all() == [tuple(row.values())]


async def test_replica_processes_migrating_a_fresh_database_at_once_all_succeed(
    db_url: str,
) -> None:
    # separate processes: no in-process lock helps, only the database's own locking
    procs = [
        await asyncio.create_subprocess_exec(
            str(ENTRY_POINT),
            "migrate",
            "--db-url",
            db_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(REPLICAS)
    ]
    outputs = [(await p.communicate())[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * REPLICAS, outputs
    for service in SERVICES:
        lines = [line for out in outputs for line in out.splitlines() if line.startswith(service)]
        # exactly one replica created each schema; the others found it at head
        assert sorted(lines) == [
            f"{service}: at {head_revision(spec(service))} (head), nothing to do",
        ] * (REPLICAS - 1) + [
            f"{service}: migrated from empty to {head_revision(spec(service))}"
        ], outputs


async def test_replicas_migrating_in_one_process_at_once_all_succeed(db_url: str) -> None:
    # an engine per replica: separate connections, as separate processes would have
    engines = [make_engine(db_url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(upgrade_to_head(e, spec(s)) for e in engines for s in SERVICES)
        )
        for service in SERVICES:
            mine = [r for r in results if r.service == service]
            # exactly one replica created the schema; the others found it at head
            head = head_revision(spec(service))
            assert sorted(r.before or "" for r in mine) == ["", head, head]
            assert {r.after for r in mine} == {head_revision(spec(service))}
    finally:
        for engine in engines:
            await engine.dispose()


@each_service
async def test_a_database_from_before_migrations_is_adopted_not_recreated(
    engine: AsyncEngine, service: str
) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(before_micros(METADATA[service]).create_all)
        # what create_all made back then had none of the columns later revisions add
        for table, column in ADDED_SINCE_BASELINE.get(service, ()):
            await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for table in TABLES_SINCE_BASELINE.get(service, ()):
            await conn.execute(text(f"DROP TABLE {table}"))
    done = await upgrade_to_head(engine, spec(service))
    assert (done.before, done.after) == (None, head_revision(spec(service)))


@each_service
async def test_a_database_newer_than_this_build_is_refused(
    engine: AsyncEngine, service: str
) -> None:
    await upgrade_to_head(engine, spec(service))
    await set_revision(engine, service, "9999")
    with pytest.raises(SchemaTooNew) as refused:
        await upgrade_to_head(engine, spec(service))
    assert str(refused.value) == (
        f"database at {service} revision 9999 is newer than this build knows "
        f"(head {head_revision(spec(service))}); upgrade keyledger"
    )
    assert await current_revision(engine, spec(service)) == "9999"  # left as it was


async def test_the_keys_service_refuses_to_start_on_a_newer_schema(
    engine: AsyncEngine,
) -> None:
    await keys_store.create_schema(engine)
    await set_revision(engine, "keys", "9999")
    with pytest.raises(SchemaTooNew, match="keys revision 9999"):
        await keys_store.create_schema(engine)  # what the app's on_startup hook awaits


async def migrate_cli(*args: str) -> Result:
    # in a thread: the command runs its own event loop
    return await asyncio.to_thread(CliRunner().invoke, app, ["migrate", *args])


async def test_the_migrate_command_upgrades_then_checks(db_url: str) -> None:
    behind = await migrate_cli("--db-url", db_url, "--check")
    assert behind.exit_code == 1
    assert f"keys: at empty, head {head_revision(spec('keys'))}: behind" in behind.stdout

    first = await migrate_cli("--db-url", db_url)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        f"{s}: migrated from empty to {head_revision(spec(s))}" for s in SERVICES
    ]
    again = await migrate_cli("--db-url", db_url, "--service", "calllog")
    assert again.stdout == f"calllog: at {head_revision(spec('calllog'))} (head), nothing to do\n"

    checked = await migrate_cli("--db-url", db_url, "--check")
    assert checked.exit_code == 0
    assert checked.stdout.splitlines() == [
        f"{s}: at {head_revision(spec(s))} (head)" for s in SERVICES
    ]


async def test_the_migrate_command_reports_a_newer_schema(engine: AsyncEngine, db_url: str) -> None:
    await upgrade_to_head(engine, spec("notifier"))
    await set_revision(engine, "notifier", "0099")
    for args in ([], ["--check"]):
        result = await migrate_cli("--db-url", db_url, "--service", "notifier", *args)
        assert result.exit_code == 1
        assert "notifier: error: database at notifier revision 0099 is newer" in result.stderr


async def test_the_migrate_command_defaults_to_the_data_dir_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEYLEDGER_DB_URL", "KEYLEDGER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = await migrate_cli("--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "calllog.db",
        "console.db",
        "keys.db",
        "notifier.db",
    ]
    missing = await migrate_cli("--data-dir", str(tmp_path / "elsewhere"), "--check")
    assert missing.exit_code == 1
    assert not (tmp_path / "elsewhere").exists()  # a check creates nothing
