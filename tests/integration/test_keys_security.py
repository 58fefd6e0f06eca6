"""Secrets stay secret: no key in events, logs, the database, errors or stray NATS messages."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import nats
import pytest
from sqlalchemy import MetaData, select

from contracts import keyformat
from services.common.sql import make_engine
from tests.random_refs import new_account

if TYPE_CHECKING:
    from services.keys.settings import KeysSettings
    from tests.drivers.keys import Request

pytestmark = pytest.mark.nats


async def lifecycle(request_json: Request, account: str) -> list[str]:
    """Every key-bearing command, some refusals, and verification by fingerprint."""
    keys: list[str] = []
    alice = {"account_id": account, "actor": "alice"}
    await request_json(
        "keys.cmd.open_account", {"account_id": account, "owner": "alice", "email": "a@x.io"}
    )
    keys.append((await request_json("keys.cmd.generate", alice))["result"]["key"])
    assert (await request_json("keys.cmd.reveal", alice))["result"]["key"] == keys[0]
    rotated = await request_json("keys.cmd.rotate", alice | {"confirm": True, "grace_seconds": 1})
    keys.append(rotated["result"]["key"])
    for key in keys:
        await request_json("keys.verify", {"fingerprint": keyformat.fingerprint(key)})
    await request_json("keys.cmd.reveal", {"account_id": account, "actor": "mallory"})
    await request_json("keys.cmd.rotate", alice)
    await asyncio.sleep(1.1)  # grace ends
    keys.append((await request_json("keys.cmd.rotate", alice | {"confirm": True}))["result"]["key"])
    await request_json("keys.cmd.deactivate", alice | {"confirm": True})
    return keys


async def test_no_key_leaves_the_authorised_replies(
    keys_service: KeysSettings,
    request_json: Request,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    tap = await nats.connect(keys_service.nats_url)
    seen: list[tuple[str, bytes]] = []

    async def record(msg: Any) -> None:
        seen.append((msg.subject, msg.data))

    await tap.subscribe(">", cb=record)
    await tap.flush()
    account = new_account()
    keys = await lifecycle(request_json, account)
    await asyncio.sleep(0.5)  # let the audit projection catch up
    await tap.drain()

    leaking = [(subject, data) for subject, data in seen if any(k.encode() in data for k in keys)]
    assert leaking, "the wiretap should at least see the key-bearing replies"
    for subject, data in leaking:
        reply = json.loads(data)
        assert subject.startswith("_INBOX."), subject
        assert reply["ok"]
        assert set(reply["result"]) >= {"key", "key_id", "recommended_rotation_at"}
    assert any(s.startswith("keys.events.") for s, _ in seen), "events were on the wire too"

    logged = caplog.text + "".join(capfd.readouterr())
    assert not [k for k in keys if k in logged]

    engine = make_engine(keys_service.db_url)
    meta = MetaData()
    async with engine.connect() as conn:
        await conn.run_sync(meta.reflect)
        dump = ""
        for table in meta.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            dump += repr(rows)
    await engine.dispose()
    assert "keys_audit" in meta.tables
    assert not [k for k in keys if k in dump]


async def test_retired_keys_can_neither_be_revealed_nor_verified(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    keys = await lifecycle(request_json, account)
    for key in keys:
        verdict = await request_json("keys.verify", {"key": key})
        assert verdict["result"]["valid"] is False
        assert verdict["result"]["reason"] in {"deactivated", "expired"}
    reveal = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    assert reveal["error"]["code"] == "no_active_key"
    engine = make_engine(keys_service.db_url)
    async with engine.connect() as conn:
        meta = MetaData()
        await conn.run_sync(meta.reflect)
        left = (await conn.execute(select(meta.tables["keys_vault"]))).all()
    await engine.dispose()
    assert left == [], "the ciphertext of every retired key is destroyed"


async def test_error_messages_never_echo_the_input(
    keys_service: KeysSettings, request_json: Request
) -> None:
    key = keyformat.generate()
    for subject, body in [
        ("keys.cmd.generate", {"account_id": "a", "actor": "b", "key": key}),
        ("keys.cmd.generate", {"account_id": key + "!", "actor": "b"}),
        ("keys.cmd.rotate", {"account_id": "a", "actor": key, "confirm": True}),
        ("keys.verify", {"key": [key]}),
        ("keys.verify", {"fingerprint": key}),
        ("keys.query.audit", {"account_id": "a", "before": key}),
    ]:
        reply = await request_json(subject, body)
        assert key not in json.dumps(reply), subject
