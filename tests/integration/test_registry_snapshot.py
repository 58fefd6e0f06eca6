"""A keys replica started from the registry snapshot holds what a fold from sequence 1 holds."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats
import pytest

from contracts.keys import KEYS_STREAM, event_subject
from tests.drivers.keys import Request, running
from tests.drivers.snapshot import fields, folded
from tests.random_refs import new_account

if TYPE_CHECKING:
    from services.keys.settings import KeysSettings

pytestmark = pytest.mark.nats
ADMINS = ["alice", "bob", "carol", "dave"]


@dataclass
class History:
    """A randomised history of commands and foreign messages on a few accounts."""

    request_json: Request
    nats_url: str
    rng: random.Random
    accounts: list[str] = field(default_factory=lambda: [new_account() for _ in range(5)])
    keys: list[str] = field(default_factory=list)  # every key ever made, to verify them all
    admins: dict[str, set[str]] = field(default_factory=dict)

    async def command(self, verb: str, **body: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.request_json(f"keys.cmd.{verb}", body, 30.0)
        if reply["ok"] and isinstance(reply["result"].get("key"), str):
            self.keys.append(reply["result"]["key"])
        return reply

    async def open_all(self) -> None:
        for account in self.accounts:
            await self.command("open_account", account_id=account, owner="alice", email="a@x.io")
            self.admins[account] = {"alice"}

    async def step(self) -> None:
        account = self.rng.choice(self.accounts)
        admins = self.admins[account]
        actor = self.rng.choice(sorted(admins))
        body = {"account_id": account, "actor": actor}
        match self.rng.choice(
            ["grant", "revoke", "generate", "reveal", "reveal", "rotate", "deactivate", "foreign"]
        ):
            case "grant":
                user = self.rng.choice(ADMINS)
                if (await self.command("grant_admin", **body, user=user, email="u@x.io"))["ok"]:
                    admins.add(user)
            case "revoke":
                user = self.rng.choice(sorted(admins))
                if (await self.command("revoke_admin", **body, user=user))["ok"]:
                    admins.discard(user)
            case "generate":
                await self.command("generate", **body)
            case "reveal":
                await self.command("reveal", **body)
            case "rotate":
                # 1 s: expired by the time the registries are compared; an hour: still live
                grace = self.rng.choice([0, 1, 3600])
                await self.command("rotate", **body, confirm=True, grace_seconds=grace)
            case "deactivate":
                await self.command("deactivate", **body, confirm=True)
            case "foreign":
                await self.foreign(account)

    async def graced(self, account: str) -> None:
        """An account of its own (no random step touches it) with two keys in grace: one
        for a second, expired by the time the registries load, and one for an hour."""
        await self.command("open_account", account_id=account, owner="alice", email="a@x.io")
        body = {"account_id": account, "actor": "alice", "confirm": True}
        assert (await self.command("generate", account_id=account, actor="alice"))["ok"]
        assert (await self.command("rotate", **body, grace_seconds=3600))["ok"]
        assert (await self.command("rotate", **body, grace_seconds=1))["ok"]

    async def foreign(self, account: str) -> None:
        """A message on the account's subject that is not its next event: skipped."""
        nc = await nats.connect(self.nats_url)
        try:
            copy = {"stream_id": account, "sequence": 1, "payload": {"kind": "KeyViewed"}}
            data = self.rng.choice([b"not json", json.dumps(copy).encode()])
            await nc.jetstream().publish(event_subject(account), data, stream=KEYS_STREAM.name)
        finally:
            await nc.close()


def snapshotting(settings: KeysSettings, *, on: bool = True) -> KeysSettings:
    """A replica that writes its snapshot after every few events (or none at all)."""
    return settings.model_copy(
        update={"snapshot": on, "snapshot_every_seconds": 0.1, "snapshot_every_events": 3}
    )


async def last_seq(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq)
    finally:
        await nc.close()


@pytest.mark.parametrize("seed", [13, 2026])
async def test_a_registry_from_the_snapshot_equals_one_folded_from_sequence_one(
    keys_settings: KeysSettings, request_json: Request, seed: int
) -> None:
    history = History(request_json, keys_settings.nats_url, random.Random(seed))
    # on an account no random step touches: a retry answers from the account's state now
    quiet = new_account()
    retried = {"account_id": quiet, "actor": "alice", "user": "erin", "email": "e@x.io"}
    retried["command_id"] = "granted-before-the-restart"
    # two replicas answer the commands and both write the snapshot as they go
    async with running(snapshotting(keys_settings)), running(snapshotting(keys_settings)):
        await history.open_all()
        await history.command("open_account", account_id=quiet, owner="alice", email="a@x.io")
        first = await history.command("grant_admin", **retried)
        for _ in range(70):
            await history.step()
        await history.graced(new_account())
        await asyncio.sleep(0.3)  # some snapshot writes land while both replicas follow
    # a replica that writes none: what it adds is the tail a snapshot start reads
    async with running(snapshotting(keys_settings, on=False)):
        for _ in range(25):
            await history.step()
    await asyncio.sleep(1.1)  # every 1 s grace is over when the registries load

    full, _ = await folded(keys_settings.nats_url)
    restored, stored = await folded(keys_settings.nats_url, keys_settings.db_url)
    assert stored is not None
    assert 0 < stored.position < await last_seq(keys_settings.nats_url)
    assert fields(restored) == fields(full)
    now = datetime.now(UTC)
    reasons = [full.verify(key, now)[0] for key in history.keys]
    assert reasons == [restored.verify(key, now)[0] for key in history.keys]
    assert {"expired", None, "deactivated"} <= set(reasons)
    assert any(len(entries) == 2 for entries in full._grace.values())

    # a command retried after a restart from the snapshot is answered as the first time,
    # not refused (erin is a super-admin already) and not appended again
    before = await last_seq(keys_settings.nats_url)
    async with running(snapshotting(keys_settings)):
        assert await history.command("grant_admin", **retried) == first
    assert await last_seq(keys_settings.nats_url) == before
