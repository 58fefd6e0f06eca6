"""A snapshot that is missing, of an older schema or ahead of KEYS: a full replay, by itself."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, text

from services.common.sql import make_engine
from services.keys.snapshot_rows import SCHEMA
from services.keys.store import snapshot, snapshot_accounts
from tests.drivers.keys import Request, running
from tests.integration.test_registry_snapshot import last_seq, snapshotting
from tests.random_refs import new_account

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

    from services.keys.settings import KeysSettings

pytestmark = pytest.mark.nats
# each case: what is done to the stored snapshot, and what the replica logs about it
BROKEN = {
    # the documented way to force a full replay (README, "Registry snapshot")
    "missing": ("DELETE FROM keys_snapshot", "no registry snapshot"),
    "older schema": ("UPDATE keys_snapshot SET schema = 0", "has schema 0"),
    "ahead of the stream": ("UPDATE keys_snapshot SET position = 1000000", "ahead of KEYS"),
    # a row that does not decode: the half-restored registry must not be served
    "unreadable": (
        "INSERT INTO keys_snapshot_accounts VALUES ('broken', 1, '[1, 2]')",
        "snapshot unreadable",
    ),
}


async def sql(db_url: str, *statements: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def stored(db_url: str) -> tuple[Row[tuple[int, int, str]], int]:
    """The snapshot row (position, schema, generation) and how many account rows it has."""
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            meta = (
                await conn.execute(
                    select(snapshot.c.position, snapshot.c.schema, snapshot.c.generation)
                )
            ).one()
            rows = len((await conn.execute(select(snapshot_accounts))).all())
            return meta, rows
    finally:
        await engine.dispose()


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_snapshot_that_cannot_be_used_means_a_full_replay_then_a_new_snapshot(
    keys_settings: KeysSettings,
    request_json: Request,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    settings = snapshotting(keys_settings)
    account = new_account()
    async with running(settings):
        body = {"account_id": account, "owner": "alice", "email": "a@x.io"}
        assert (await request_json("keys.cmd.open_account", body))["ok"]
        generated = await request_json(
            "keys.cmd.generate", {"account_id": account, "actor": "alice"}
        )
        key = generated["result"]["key"]
    (position, _, generation), rows = await stored(settings.db_url)
    assert (position, rows) == (await last_seq(settings.nats_url), 1)
    # without its account rows, a snapshot used anyway would not know the key
    statement, logged = BROKEN[case]
    await sql(settings.db_url, "DELETE FROM keys_snapshot_accounts", statement)

    with caplog.at_level(logging.INFO, logger="keyledger.keys"):
        async with running(settings):
            reply = await request_json("keys.verify", {"key": key})
            assert reply["result"]["valid"], reply
    assert logged in caplog.text
    assert "replaying KEYS from the start" in caplog.text
    # the replica that replayed wrote a snapshot of its own, complete, in this build's form
    (position, schema, fresh), rows = await stored(settings.db_url)
    assert (position, schema, rows) == (await last_seq(settings.nats_url), SCHEMA, 1)
    assert fresh not in ("", generation)
