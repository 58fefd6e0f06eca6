"""A projection dropped and rebuilt by replaying its stream equals the live one, row for row."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from sqlalchemy import Table, delete, select, text

from contracts.calendar import add_months
from contracts.calllog import CALLS_STREAM, PARTITIONS, partition_durable
from contracts.keys import KEYS_STREAM
from contracts.notifier import KEYS_DURABLE
from services.calllog.store import calls
from services.calllog.store import tracking as calls_tracking
from services.common.sql import as_utc, make_engine
from services.keys import projection
from services.keys.store import audit as keys_audit
from services.keys.store import tracking as keys_tracking
from services.notifier import migrations as notifier_migrations
from services.notifier import projection as notifier_projection
from services.notifier.store import heads, people
from services.notifier.store import keys as notifier_keys
from services.notifier.store import tracking as notifier_tracking
from tests.drivers.calllog import calllog_running, ingested, publish, publish_raw
from tests.drivers.db import PG_ADMIN_DSN
from tests.drivers.keys import Request, running
from tests.drivers.notifier import Notify, running_notifier, settings_for
from tests.fakes.calllog import Clock, a_call
from tests.random_refs import db_name, new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from nats.aio.client import Client

    from services.calllog.settings import CallLogSettings
    from services.keys.settings import KeysSettings

pytestmark = pytest.mark.nats
# a rebuild deletes the durable, or keeps it: the projector then fills the new database
# from the stream, since the durable would never deliver what it had acknowledged
DURABLE = pytest.mark.parametrize("drop_durable", [True, False], ids=["new-durable", "kept"])
Dump = dict[str, list[dict[str, Any]]]


@pytest.fixture
async def fresh_db_url(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second empty database of the same kind as db_url, for the rebuilt projection."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/rebuilt.db"
        return
    name = db_name()
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{db_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def canonical(value: Any) -> Any:
    """SQLite hands back naive datetimes and PostgreSQL aware ones: compare them as UTC text."""
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


async def dump(url: str, tables: list[Table]) -> Dump:
    """Every row of the tables, values normalised, rows in one fixed order."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            found: Dump = {}
            for table in tables:
                rows = (await conn.execute(select(table))).mappings().all()
                normal = [{k: canonical(v) for k, v in row.items()} for row in rows]
                found[table.name] = sorted(normal, key=repr)
            return found
    finally:
        await engine.dispose()


async def empty(url: str, tables: list[Table]) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for table in tables:
                await conn.execute(delete(table))
    finally:
        await engine.dispose()


async def last_seq(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.last_seq)


async def command(request_json: Request, verb: str, **body: Any) -> None:
    reply = await request_json(f"keys.cmd.{verb}", body)
    assert reply["ok"], reply


async def keys_traffic(request_json: Request, nc: Client, accounts: int = 4) -> None:
    """Every kind of KEYS event, an unreadable one among them."""
    for n in range(accounts):
        on = functools.partial(command, request_json, account_id=new_account())
        await on("open_account", owner="alice", email="alice@x.io")
        await on("grant_admin", actor="alice", user="bob", email="bob@x.io")
        await on("generate", actor="alice")
        await on("reveal", actor="bob")
        await on("rotate", actor="bob", confirm=True)
        if n % 2:
            await on("deactivate", actor="alice", confirm=True)
            await on("revoke_admin", actor="alice", user="bob")
        if n == 1:
            await nc.jetstream().publish(f"keys.events.acct-{uuid.uuid4().hex[:8]}", b"not json")


async def audit_caught_up(url: str, nc: Client) -> None:
    engine = make_engine(url)
    try:
        target = await last_seq(nc, KEYS_STREAM.name)
        for _ in range(500):
            if await projection.position(engine) >= target:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"audit stuck at {await projection.position(engine)} < {target}")
    finally:
        await engine.dispose()


@DURABLE
async def test_the_keys_audit_log_rebuilt_by_replay_equals_the_live_one(
    keys_settings: KeysSettings, request_json: Request, nc: Client, drop_durable: bool
) -> None:
    tables = [keys_audit, keys_tracking]
    async with running(keys_settings):
        await keys_traffic(request_json, nc)
        await audit_caught_up(keys_settings.db_url, nc)
    live = await dump(keys_settings.db_url, tables)
    assert len(live["keys_audit"]) == 24
    assert live["keys_tracking"] == [
        {"projection": projection.PROJECTION, "last_seq": await last_seq(nc, KEYS_STREAM.name)}
    ]

    # the vault stays: only the projection's rows go, and the durable that remembers them
    await empty(keys_settings.db_url, tables)
    if drop_durable:
        await nc.jetstream().delete_consumer(KEYS_STREAM.name, projection.PROJECTION)
    async with running(keys_settings):
        await audit_caught_up(keys_settings.db_url, nc)
    assert await dump(keys_settings.db_url, tables) == live


@DURABLE
async def test_the_notifier_keys_projection_rebuilt_by_replay_equals_the_live_one(
    keys_service: KeysSettings,
    request_json: Request,
    nc: Client,
    notify: Notify,
    db_url: str,
    fresh_db_url: str,
    tmp_path: Path,
    drop_durable: bool,
) -> None:
    tables = [notifier_keys, people, notifier_tracking]
    settings = settings_for(keys_service.nats_url, db_url, tmp_path, None)
    async with running_notifier(settings):
        await keys_traffic(request_json, nc)
        await notify.caught_up()
    live = await dump(settings.db_url, tables)
    assert (len(live["notifier_keys"]), len(live["notifier_people"])) == (2, 8)

    if drop_durable:
        await nc.jetstream().delete_consumer(KEYS_STREAM.name, KEYS_DURABLE)
    async with running_notifier(settings.model_copy(update={"db_url": fresh_db_url})):
        await notify.caught_up()
    assert await dump(fresh_db_url, tables) == live


async def test_a_notifier_database_from_0001_is_rebuilt_from_keys_with_its_chain_heads(
    keys_service: KeysSettings,
    request_json: Request,
    nc: Client,
    notify: Notify,
    db_url: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(keys_service.nats_url, db_url, tmp_path, None)
    tables = [notifier_keys, people, heads, notifier_tracking]
    a_year_on = add_months(datetime.now(UTC), 13)
    async with running_notifier(settings):
        await keys_traffic(request_json, nc)
        sent = await notify.sweep(a_year_on)
    assert (sent["due_keys"], sent["delivered"]) == (2, 8)  # two live keys, two admins each
    live = await dump(settings.db_url, tables)
    assert len(live["notifier_heads"]) == 4  # the unreadable message has no chain

    # what 0001 left: no heads, its own tracking row, and rows it may have got wrong (a
    # key revived by an old KeyGenerated published again, which it did not check)
    now = datetime.now(UTC)
    revived = {
        "account_id": "acct-revived", "key_id": "key_dead", "hint": "klk_…dead",
        "in_use_since": now, "last_creator": "alice", "source_event_id": str(uuid.uuid4()),
        "next_months": 5, "next_due_at": add_months(now, 5),  # due by a_year_on, were it kept
    }  # fmt: skip
    engine = make_engine(settings.db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE notifier_heads"))
            versions = notifier_migrations.MIGRATIONS.version_table
            await conn.execute(text(f"UPDATE {versions} SET version_num = '0001'"))
            await conn.execute(delete(notifier_tracking))
            legacy = {"projection": "notifier-keys", "last_seq": await last_seq(nc, "KEYS")}
            await conn.execute(notifier_tracking.insert(), legacy)
            await conn.execute(notifier_keys.insert(), revived)
    finally:
        await engine.dispose()

    # 0002 at start; the projection, at 0 under its new name, empties its rows and rebuilds
    # them from KEYS (the durable is kept: it has nothing more to deliver)
    async with running_notifier(settings):
        again = await notify.sweep(a_year_on)
    # every rebuilt key starts its schedule afresh and is due; the claims kept from before
    # (deterministic ids) make the sweep move each past what was sent, sending nothing twice
    assert (again["due_keys"], again["claimed"], again["delivered"]) == (2, 0, 0)
    rebuilt = await dump(settings.db_url, tables)
    assert rebuilt["notifier_tracking"] == sorted(
        [legacy, {"projection": notifier_projection.PROJECTION, "last_seq": legacy["last_seq"]}],
        key=repr,
    )  # 0001's row is left to notifiers of that release still running in a rolling upgrade
    assert rebuilt | {"notifier_tracking": []} == live | {"notifier_tracking": []}


@DURABLE
async def test_the_call_log_rebuilt_by_replay_equals_the_live_one(
    calllog_settings: CallLogSettings,
    clock: Clock,
    nc: Client,
    fresh_db_url: str,
    drop_durable: bool,
) -> None:
    tables = [calls, calls_tracking]
    async with calllog_running(calllog_settings, clock):
        records = [
            a_call(f"acct-{n % 3}", clock.now - timedelta(minutes=n), key_id=f"key_{n % 2}")
            for n in range(60)
        ]
        await publish(nc, *records[:30])
        await publish_raw(nc, "acct-0", b"{not json")
        await publish(nc, *records[30:])
        await publish(nc, records[0], msg_id=False)  # a gateway retry past the dedup window
        await ingested(nc, await last_seq(nc, CALLS_STREAM.name))
    live = await dump(calllog_settings.db_url, tables)
    assert len(live["calllog_calls"]) == 60

    if drop_durable:  # every partition's
        for partition in range(PARTITIONS):
            await nc.jetstream().delete_consumer(CALLS_STREAM.name, partition_durable(partition))
    rebuilt = calllog_settings.model_copy(update={"db_url": fresh_db_url})
    async with calllog_running(rebuilt, clock):
        await ingested(nc, await last_seq(nc, CALLS_STREAM.name))
    assert await dump(fresh_db_url, tables) == live
