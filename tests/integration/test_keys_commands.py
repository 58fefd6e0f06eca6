"""On a real nats-server: superseded rotates, deadlines, reused command ids, keys.query.key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from keyledger.client import KeyledgerClient, Refused
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers.keys import Request, running, stored_events
from tests.random_refs import new_account

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.nats
ROTATES = 30


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> KeysSettings:
    # SQLite only: what is tested here is the command path, not the projection's database
    db = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    return KeysSettings(nats_url=nats_url, db_url=db, master_key=new_master_key())


async def account_with_key(request_json: Request) -> tuple[str, dict[str, Any]]:
    account = new_account()
    opened = {"account_id": account, "owner": "alice", "email": "a@x.io"}
    assert (await request_json("keys.cmd.open_account", opened))["ok"]
    reply = await request_json("keys.cmd.generate", {"account_id": account, "actor": "alice"})
    assert reply["ok"]
    return account, reply["result"]


async def rotate_like_the_cli(
    url: str, account: str, all_read: asyncio.Barrier | None = None
) -> dict[str, Any]:
    """What `keyledger key rotate --yes` does: read the live key, then rotate that one."""
    async with await KeyledgerClient.connect(url, request_timeout=60) as client:
        try:
            seen = (await client.live_key(account))["key_id"]
            if all_read is not None:
                await all_read.wait()
            return await client.rotate(account, "alice", confirm=True, expected_key_id=seen)
        except Refused as exc:
            return {"refused": exc.code, "message": exc.message}


async def test_concurrent_rotates_one_succeeds_the_rest_are_superseded(
    settings: KeysSettings, request_json: Request
) -> None:
    async with running(settings), running(settings):
        account, first = await account_with_key(request_json)
        # thirty people who all saw the same key press "rotate" at once
        all_read = asyncio.Barrier(ROTATES)
        outcomes = await asyncio.gather(
            *(rotate_like_the_cli(settings.nats_url, account, all_read) for _ in range(ROTATES))
        )
        live = await request_json("keys.query.key", {"account_id": account})
    printed = [o for o in outcomes if "key" in o]
    refused = [o for o in outcomes if "refused" in o]
    assert len(printed) == 1, outcomes
    assert [o["refused"] for o in refused] == ["superseded"] * (ROTATES - 1)
    # every refusal names the key that replaced the one it read
    assert all(printed[0]["key_id"] in o["message"] for o in refused)
    assert printed[0]["previous_key_id"] == first["key_id"]
    assert live["result"]["key_id"] == printed[0]["key_id"]  # nobody printed a dead key
    events = await stored_events(settings.nats_url, account)
    assert [e["type"] for e in events] == ["AccountOpened", "KeyGenerated", "KeyRotated"]


async def test_unsynchronised_cli_rotates_replace_each_key_at_most_once(
    settings: KeysSettings, request_json: Request
) -> None:
    async with running(settings), running(settings):
        account, first = await account_with_key(request_json)
        outcomes = await asyncio.gather(
            *(rotate_like_the_cli(settings.nats_url, account) for _ in range(ROTATES))
        )
        live = await request_json("keys.query.key", {"account_id": account})
    # a CLI that read the key after an earlier rotate rotates the new one: a chain, in which
    # each printed key was live when rotated and was replaced only by a later CLI's rotate
    printed = [o for o in outcomes if "key" in o]
    assert {o["refused"] for o in outcomes if "refused" in o} <= {"superseded"}
    replaced = [o["previous_key_id"] for o in printed]
    assert len(set(replaced)) == len(replaced)
    chain = {o["previous_key_id"]: o["key_id"] for o in printed}
    key, steps = first["key_id"], 0
    while key in chain:
        key, steps = chain[key], steps + 1
    assert steps == len(printed)
    assert key == live["result"]["key_id"]


async def test_the_key_query_shows_metadata_only_and_records_no_view(
    settings: KeysSettings, request_json: Request
) -> None:
    async with running(settings):
        account, key = await account_with_key(request_json)
        reply = await request_json("keys.query.key", {"account_id": account})
        unknown = await request_json("keys.query.key", {"account_id": "nobody"})
        bad = await request_json("keys.query.key", {"account_id": account, "x": 1})
    assert reply["ok"]
    assert key["key"] not in str(reply)
    assert reply["result"]["key_id"] == key["key_id"]
    assert reply["result"]["created_by"] == "alice"
    assert unknown["error"]["code"] == "unknown_account"
    assert bad["error"]["code"] == "invalid_request"
    assert len(await stored_events(settings.nats_url, account)) == 2


async def test_an_expired_reveal_is_not_run_nor_audited(
    settings: KeysSettings, request_json: Request
) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    async with running(settings):
        account, _ = await account_with_key(request_json)
        body = {"account_id": account, "actor": "alice", "deadline": past}
        late = await request_json("keys.cmd.reveal", body)
        malformed = await request_json("keys.cmd.reveal", body | {"deadline": "soon"})
        far = await request_json("keys.cmd.reveal", body | {"deadline": "9999-12-31T00:00:00Z"})
    assert late["error"]["code"] == "deadline_exceeded"
    assert malformed["error"]["code"] == "invalid_request"
    assert far["ok"]
    events = await stored_events(settings.nats_url, account)
    assert [e["type"] for e in events] == ["AccountOpened", "KeyGenerated", "KeyViewed"]


async def test_a_reused_command_id_is_refused_and_changes_nothing(
    settings: KeysSettings, request_json: Request
) -> None:
    async with running(settings):
        account = new_account()
        opened = {"account_id": account, "owner": "alice", "email": "a@x.io"}
        await request_json("keys.cmd.open_account", opened)
        generate = {"account_id": account, "actor": "alice", "command_id": "c-1"}
        key = (await request_json("keys.cmd.generate", generate))["result"]
        deactivate = generate | {"confirm": True}
        reused = await request_json("keys.cmd.deactivate", deactivate)
        retried = await request_json("keys.cmd.generate", generate)
        verified = await request_json("keys.verify", {"key": key["key"]})
    # a restarted service rebuilds the bindings from the stream
    async with running(settings):
        after_restart = await request_json("keys.cmd.deactivate", deactivate)
    assert reused["error"]["code"] == "idempotency_conflict"
    assert "c-1 already belongs to another request: generate by alice" in reused["error"]["message"]
    assert retried["result"] == key
    assert verified["result"]["valid"]
    assert after_restart["error"]["code"] == "idempotency_conflict"
    assert len(await stored_events(settings.nats_url, account)) == 2
