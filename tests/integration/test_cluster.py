"""A 3-node JetStream cluster on loopback: kill -9 the KEYS leader under load, then restart it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import pytest
from faststream import TestApp
from sqlalchemy import func, select

from contracts.calllog import CALLS_STREAM, CallRecorded, recorded_subject
from contracts.keys import KEYS_STREAM
from keyledger.audit.replay import read_stream, verify_chain
from keyledger.local.cluster import NatsCluster
from services.calllog.app import create_app as create_calllog
from services.calllog.settings import CallLogSettings
from services.calllog.store import calls
from services.common.sql import make_engine
from services.keys.app import create_app as create_keys
from services.keys.settings import KeysSettings
from services.keys.store import audit
from services.keys.vault import new_master_key
from services.notifier import projection as notifier_projection
from tests.drivers.notifier import running_notifier, settings_for
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from nats.aio.client import Client
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = [pytest.mark.nats, pytest.mark.postgres]
RETRYABLE = {"unavailable"}
REQUEST_TIMEOUT = 12.0  # above the service's 5 s append timeout: its answer arrives first
# a new stream leader takes about 6 s here (missed raft heartbeats, then an election)
FAILOVER_BUDGET = 60.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    with NatsCluster.start(tmp_path / "cluster", die_with_parent=True) as started:
        await started.wait_ready()
        yield started


@dataclass
class Load:
    """What the clients sent and what they were told."""

    succeeded: list[str] = field(default_factory=list)  # command ids with an ok reply
    retryable: int = 0  # clear retryable errors or time-outs seen (then retried)
    refused: list[dict[str, Any]] = field(default_factory=list)  # any other refusal
    calls_acked: set[str] = field(default_factory=set)
    calls_sent: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def command(nc: Client, load: Load, verb: str, body: dict[str, Any]) -> None:
    """Send until answered ok, retrying with the same command id as a client should."""
    body = {"command_id": uuid.uuid4().hex, **body}
    deadline = asyncio.get_running_loop().time() + FAILOVER_BUDGET
    while asyncio.get_running_loop().time() < deadline:
        try:
            msg = await nc.request(f"keys.cmd.{verb}", json.dumps(body).encode(), REQUEST_TIMEOUT)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            load.retryable += 1
            continue
        reply = json.loads(msg.data)
        if reply["ok"]:
            load.succeeded.append(body["command_id"])
            return
        if reply["error"]["code"] not in RETRYABLE:
            load.refused.append(reply)
            return
        load.retryable += 1
        await asyncio.sleep(0.2)
    raise AssertionError(f"{verb} never succeeded after failover")


async def admin_traffic(nc: Client, load: Load) -> None:
    account = new_account(length=10)
    await command(nc, load, "open_account", {"account_id": account, "owner": "o", "email": "o@x"})
    await command(nc, load, "generate", {"account_id": account, "actor": "o"})
    while not load.stop.is_set():
        await command(nc, load, "rotate", {"account_id": account, "actor": "o", "confirm": True})
        await command(nc, load, "reveal", {"account_id": account, "actor": "o"})


async def gateway_traffic(nc: Client, load: Load) -> None:
    js = nc.jetstream()
    while not load.stop.is_set():
        call = a_call("acct-calls", datetime.now(UTC))
        load.calls_sent.add(call.call_id)
        await publish_call(js, load, call)


async def publish_call(js: Any, load: Load, call: CallRecorded) -> None:
    data = call.model_dump_json().encode()
    deadline = asyncio.get_running_loop().time() + FAILOVER_BUDGET
    # a gateway keeps the record and retries (keyledger.gateway.buffer)
    while asyncio.get_running_loop().time() < deadline:
        try:
            await js.publish(
                recorded_subject(call.account_id),
                data,
                timeout=5,
                stream=CALLS_STREAM.name,
                headers={"Nats-Msg-Id": call.call_id},
            )
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(0.2)
            continue
        load.calls_acked.add(call.call_id)
        return


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def converged(engine: AsyncEngine, table: Any, expected: int) -> int:
    for _ in range(300):
        if (rows := await count(engine, table)) >= expected:
            return rows
        await asyncio.sleep(0.1)
    return await count(engine, table)


async def progressed(load: Load, mark: int, commands: int = 20) -> bool:
    """Wait until `commands` more commands succeed after `mark` (a failover takes ~6 s)."""
    for _ in range(int(FAILOVER_BUDGET * 10)):
        if len(load.succeeded) >= mark + commands:
            return True
        await asyncio.sleep(0.1)
    return False


async def caught_up_to(engine: AsyncEngine, last_seq: int) -> bool:
    """The notifier's KEYS projection has applied the stream up to `last_seq`."""
    for _ in range(300):
        if await notifier_projection.position(engine) >= last_seq:
            return True
        await asyncio.sleep(0.1)
    return False


async def leader(js: Any, stream: str) -> str:
    for _ in range(100):
        try:
            info = await js.stream_info(stream)
        except (nats.errors.Error, TimeoutError):  # our connection may be failing over too
            info = None
        if info and info.cluster and info.cluster.leader:
            return str(info.cluster.leader)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{stream} has no leader")


async def caught_up(js: Any, node: str) -> bool:
    """True once the restarted node is a current replica of KEYS again."""
    for _ in range(200):
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            info = await js.stream_info(KEYS_STREAM.name)
            peers = {p.name: p for p in (info.cluster.replicas or [])}
            if node == info.cluster.leader or (node in peers and peers[node].current):
                return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_killing_the_keys_leader_loses_and_duplicates_nothing(
    cluster: NatsCluster, db_url: str, tmp_path: Path
) -> None:
    # one database per service in production; here the three share one, as they may
    keys = KeysSettings(
        nats_url=cluster.url, db_url=db_url, master_key=new_master_key(), stream_replicas=3
    )
    calllog = CallLogSettings(nats_url=cluster.url, db_url=db_url, stream_replicas=3)
    notifier = settings_for(cluster.url, db_url, tmp_path, None, stream_replicas=3)
    nc = await nats.connect(cluster.url.split(","), max_reconnect_attempts=-1)
    js = nc.jetstream()
    load = Load()
    async with (
        TestApp(create_keys(keys)),
        TestApp(create_calllog(calllog)),
        running_notifier(notifier),
    ):
        assert (await js.stream_info(KEYS_STREAM.name)).config.num_replicas == 3
        workers = [asyncio.create_task(admin_traffic(nc, load)) for _ in range(4)]
        workers.append(asyncio.create_task(gateway_traffic(nc, load)))
        await asyncio.sleep(2)
        victim = cluster.node(await leader(js, KEYS_STREAM.name))
        victim.kill()
        mark = len(load.succeeded)
        assert await progressed(load, mark), "commands did not resume after failover"
        assert await leader(js, KEYS_STREAM.name) != victim.server_name
        victim.restart()
        assert await progressed(load, len(load.succeeded)), "commands stalled after the restart"
        load.stop.set()
        await asyncio.gather(*workers)

        assert await caught_up(js, victim.server_name), "the restarted node never caught up"
        events = [item async for item in read_stream(nc)]
        engine = make_engine(db_url)
        try:
            audited = await converged(engine, audit, len(events))
            stored_calls = await converged(engine, calls, len(load.calls_acked))
            followed = await caught_up_to(engine, events[-1][0])
        finally:
            await engine.dispose()
    await nc.close()

    assert load.retryable > 0, "the failover went unnoticed: the test did not test it"
    assert load.refused == []
    causes = Counter(json.loads(data)["causation_id"] for _, data in events)
    assert max(causes.values()) == 1, "a command was stored twice"
    assert set(load.succeeded) <= set(causes), "an acknowledged command is missing"
    assert verify_chain(events) is None
    assert audited == len(events)
    assert followed, "the notifier's KEYS projection did not converge"
    assert load.calls_acked <= load.calls_sent
    assert len(load.calls_acked) <= stored_calls <= len(load.calls_sent)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_concurrent_rotates_on_a_cluster_only_conflict(
    cluster: NatsCluster, db_url: str
) -> None:
    """A clustered stream reports a lost race with another error code than a single server."""
    keys = KeysSettings(
        nats_url=cluster.url, db_url=db_url, master_key=new_master_key(), stream_replicas=3
    )
    account = new_account()
    nc = await nats.connect(cluster.url.split(","))
    load = Load()
    async with TestApp(create_keys(keys)), TestApp(create_keys(keys)):
        await command(
            nc, load, "open_account", {"account_id": account, "owner": "o", "email": "o@x"}
        )
        await command(nc, load, "generate", {"account_id": account, "actor": "o"})
        rotate = {"account_id": account, "actor": "o", "confirm": True}
        replies = await asyncio.gather(
            *(
                nc.request("keys.cmd.rotate", json.dumps(rotate).encode(), REQUEST_TIMEOUT)
                for _ in range(40)
            )
        )
        events = [item async for item in read_stream(nc)]
    await nc.close()
    answers = [json.loads(reply.data) for reply in replies]
    assert {a["error"]["code"] for a in answers if not a["ok"]} <= {"conflict"}
    assert len(events) == 2 + sum(a["ok"] for a in answers)
    assert verify_chain(events) is None
