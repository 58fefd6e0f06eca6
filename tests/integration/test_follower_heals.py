"""After a nats-server restart every keys replica follows KEYS again within seconds."""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

import nats
import pytest

from contracts.keys import KEYS_STREAM
from keyledger.client import KeyledgerClient, Refused, Unreachable
from keyledger.local.server import NatsServer
from services.keys.vault import new_master_key
from tests.drivers.db import pg_database
from tests.drivers.replicas import SPECS, Replica, Replicas, health, wait_serving
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from nats.aio.client import Client

pytestmark = [pytest.mark.nats, pytest.mark.postgres]

# a key deactivated through one replica must not verify on the other for longer than this;
# measured from the deactivate's reply: ~2 s with the follower's 1 s idle heartbeat, ~18 s
# with nats-py's default of 5 s (the lost ordered consumer is noticed after two missed beats)
REFUSED_WITHIN = 5.0
RECOVER_SECONDS = 15.0  # nats-server back up and the replicas reconnected
VERIFIES = 20  # keys.verify is a queue group: enough requests that each replica answers


async def retried(call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Until answered ok; the caller passes the same command id each time (one effect)."""
    deadline = time.monotonic() + RECOVER_SECONDS
    while True:
        try:
            return await call()
        except (Unreachable, Refused) as exc:
            # unavailable: the replica is not reconnected to nats-server yet
            if isinstance(exc, Refused) and exc.code != "unavailable":
                raise
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def positions(nc: Client, pids: set[int]) -> dict[int, int]:
    """Each replica's last applied stream sequence (health carries its pid)."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + RECOVER_SECONDS
    while not pids <= seen.keys():
        assert time.monotonic() < deadline, f"{pids - seen.keys()} never answered health"
        try:
            replies = await asyncio.gather(*(health(nc, SPECS["keys"], 1.0) for _ in range(4)))
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.1)  # not resubscribed yet
            continue
        seen |= {int(r["pid"]): int(r["stream_seq"]) for r in replies}
    return seen


async def key_seen(client: KeyledgerClient, nc: Client, key: str, pids: set[int]) -> str:
    """'valid' or 'refused' when every replica has applied the stream's last event and all
    verifies of `key` agree; otherwise which replica is behind and how many verifies passed.

    The stream sequence each replica reports with its pid is what proves that both of them,
    not just the one the queue group happened to pick, know of the last event.
    """
    last = (await nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq
    behind = {pid: seq for pid, seq in (await positions(nc, pids)).items() if seq < last}
    accepted = sum([(await client.verify(key))["valid"] for _ in range(VERIFIES)])
    if not behind and accepted in (0, VERIFIES):
        return "valid" if accepted else "refused"
    return f"replicas behind stream seq {last}: {behind}; {accepted}/{VERIFIES} verifies ok"


async def until(wanted: str, within: float, seen: Callable[[], Awaitable[str]]) -> None:
    """Poll `seen` until it answers `wanted`; fail with its last answer after `within` s."""
    started = time.monotonic()
    while (found := await seen()) != wanted:
        waited = time.monotonic() - started
        assert waited < within, f"not {wanted} after {waited:.1f} s: {found}"
        await asyncio.sleep(0.1)


async def test_a_replica_sees_a_deactivation_soon_after_a_nats_server_restart(
    tmp_path: Path,
) -> None:
    """kill -9 of nats-server loses every replica's ordered consumer; the replica that does
    not handle the next deactivate learns of it only through a new one, and until then the
    deactivated key still verifies there."""
    replicas = Replicas(tmp_path)
    with NatsServer.start(tmp_path / "jetstream", die_with_parent=True) as server:
        async with pg_database() as db_url:
            env = {
                "KEYLEDGER_NATS_URL": server.url,
                "KEYLEDGER_DATA_DIR": str(tmp_path),
                "KEYLEDGER_DB_URL": db_url,
                "KEYLEDGER_MASTER_KEY": new_master_key(),
            }
            nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
            try:
                keys: list[Replica] = [replicas.spawn("keys", env) for _ in range(2)]
                await wait_serving(nc, *keys)
                pids = {r.pid for r in keys}
                client = KeyledgerClient(nc, request_timeout=2.0)
                account = new_account(length=10)
                await client.open_account(account, "alice", "alice@example.com")
                key = str((await client.generate(account, "alice"))["key"])
                seen = partial(key_seen, client, nc, key, pids)
                # both replicas applied the generate: their last activity is just before the
                # kill, so nats-py's missed-heartbeat count starts there
                await until("valid", RECOVER_SECONDS, seen)

                server.kill()  # kill -9: the replicas' ordered consumers die with it
                server.respawn()  # same port, same store
                deadline = time.monotonic() + RECOVER_SECONDS
                while not server.ready():
                    assert time.monotonic() < deadline, "nats-server did not come back"
                    await asyncio.sleep(0.05)
                await positions(nc, pids)  # both reconnected and serve again
                command_id = str(uuid.uuid4())
                await retried(
                    lambda: client.deactivate(account, "alice", confirm=True, command_id=command_id)
                )
                await until("refused", REFUSED_WITHIN, seen)
            finally:
                replicas.stop_all()
                await nc.close()
