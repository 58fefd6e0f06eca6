"""`via` on a real nats-server with two accounts: FRONTENDS imports keys.cmd.> from SERVICES."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import nats
import pytest

from contracts.accounts import FRONTENDS, REQUEST_INFO_HEADER, SERVICES
from keyledger.local.server import NatsServer
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers.keys import running, stored_events
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from nats.aio.client import Client

pytestmark = pytest.mark.nats

ACCOUNTS = f"""
accounts {{
  {SERVICES} {{
    jetstream: enabled
    users: [{{user: keys, password: keys-pw}}, {{user: admin, password: admin-pw}}]
    exports: [{{service: "keys.cmd.>"}}]
  }}
  {FRONTENDS} {{
    users: [{{user: bob, password: bob-pw}}]
    imports: [{{service: {{account: {SERVICES}, subject: "keys.cmd.>"}}, share: true}}]
  }}
}}
"""


@pytest.fixture
def two_accounts(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer.start(tmp_path / "js", authorization=ACCOUNTS, die_with_parent=True) as server:
        yield server


@pytest.fixture
async def service(two_accounts: NatsServer, db_url: str) -> AsyncIterator[KeysSettings]:
    settings = KeysSettings(
        nats_url=two_accounts.url,
        db_url=db_url,
        master_key=new_master_key(),
        nats_user="keys",
        nats_password="keys-pw",  # type: ignore[arg-type]
    )
    async with running(settings):
        yield settings


async def connect(url: str, user: str) -> Client:
    return await nats.connect(url, user=user, password=f"{user}-pw")


async def ask(nc: Client, verb: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    reply = await nc.request(f"keys.cmd.{verb}", json.dumps(body).encode(), 10, headers=headers)
    return dict(json.loads(reply.data))


async def audit(nc: Client, account: str) -> list[dict[str, Any]]:
    reply = await nc.request("keys.query.audit", json.dumps({"account_id": account}).encode(), 10)
    return list(json.loads(reply.data)["result"]["items"])


async def test_events_record_the_frontend_a_command_came_through(service: KeysSettings) -> None:
    admin, bob = await connect(service.nats_url, "admin"), await connect(service.nats_url, "bob")
    account = new_account()
    body = {"account_id": account, "actor": "alice"}
    try:
        # from inside SERVICES (no header): no via
        opened = {"account_id": account, "owner": "alice", "email": "a@x.io"}
        assert (await ask(admin, "open_account", opened))["ok"]
        assert (await ask(bob, "generate", body))["ok"]
        # bob cannot pass himself off as someone inside SERVICES: the server's header wins
        forged = json.dumps({"acc": SERVICES, "user": "root"})
        assert (await ask(bob, "reveal", body, **{REQUEST_INFO_HEADER: forged}))["ok"]
        # inside SERVICES the header is not rewritten, so acc SERVICES is never trusted
        assert (await ask(admin, "reveal", body, **{REQUEST_INFO_HEADER: forged}))["ok"]
        events = await stored_events(service.nats_url.replace("//", "//admin:admin-pw@"), account)
        for _ in range(100):  # the audit projection follows the stream
            entries = await audit(admin, account)
            if len(entries) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
        await bob.close()
    bob_via = {"account": FRONTENDS, "user": "bob"}
    assert [e["via"] for e in events] == [None, bob_via, bob_via, None]
    assert [e["via"] for e in reversed(entries)] == [None, bob_via, bob_via, None]
    assert [e["action"] for e in reversed(entries)] == [
        "account_opened",
        "created",
        "viewed",
        "viewed",
    ]
