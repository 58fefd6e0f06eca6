"""Two OS processes of every service against one nats-server and PostgreSQL: no double effects."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import nats
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from contracts.calendar import add_months
from contracts.calllog import CALLS_STREAM
from contracts.keys import KEYS_STREAM, event_subject
from keyledger.audit.replay import read_stream, verify_chain
from keyledger.client import KeyledgerClient, Unreachable
from keyledger.local.server import NatsServer
from services.calllog.store import calls
from services.common.sql import make_engine
from services.keys.vault import new_master_key
from tests.drivers.calllog import listed, publish
from tests.drivers.db import pg_database
from tests.drivers.replicas import SPECS, Replica, Replicas, health, wait_serving
from tests.drivers.smtp import SmtpSink
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from nats.aio.client import Client

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

RETRY_AFTER = 1.0  # seconds: a command lost with a killed replica is sent again after this
RETRY_FOR = 15.0
PROPAGATION_BOUND = 2.0  # seconds; correctness, not performance (bench/replicas.py measures)


@dataclass
class Cluster:
    """One nats-server, one PostgreSQL database per service, two processes of each."""

    nats_url: str
    nc: Client
    client: KeyledgerClient
    replicas: Replicas
    env: dict[str, dict[str, str]]
    db: dict[str, str]
    smtp: SmtpSink

    def spawn(self, service: str) -> Replica:
        return self.replicas.spawn(service, self.env[service])

    def running(self, service: str) -> list[Replica]:
        return [
            r for r in self.replicas.children if r.spec.name == service and r.proc.poll() is None
        ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    smtp = SmtpSink().start()
    replicas = Replicas(folder)
    # die_with_parent, as the nats_server fixture: a killed pytest leaves no server behind
    with NatsServer.start(folder / "jetstream", die_with_parent=True) as server:
        async with pg_database() as keys_db, pg_database() as notifier_db, pg_database() as log_db:
            common = {"KEYLEDGER_NATS_URL": server.url, "KEYLEDGER_DATA_DIR": str(folder)}
            env = {
                "keys": common
                | {"KEYLEDGER_DB_URL": keys_db, "KEYLEDGER_MASTER_KEY": new_master_key()},
                "notifier": common
                | {
                    "KEYLEDGER_DB_URL": notifier_db,
                    "KEYLEDGER_SMTP_HOST": "127.0.0.1",
                    "KEYLEDGER_SMTP_PORT": str(smtp.port),
                    "KEYLEDGER_SMTP_TIMEOUT": "5",
                    "KEYLEDGER_ALLOW_TIME_TRAVEL": "1",
                    "KEYLEDGER_SWEEP_INTERVAL_SECONDS": "3600",  # the test sweeps on demand
                    "KEYLEDGER_RETRY_BASE_SECONDS": "0.2",
                    "KEYLEDGER_RETRY_MAX_SECONDS": "1",
                    # small batches: the two replicas' sweeps overlap on the same keys
                    "KEYLEDGER_SWEEP_BATCH": "4",
                    "KEYLEDGER_DELIVERY_CHUNK": "3",
                },
                "calllog": common | {"KEYLEDGER_DB_URL": log_db},
            }
            nc = await nats.connect(server.url)
            try:
                found = Cluster(
                    server.url,
                    nc,
                    KeyledgerClient(nc),
                    replicas,
                    env,
                    {"keys": keys_db, "notifier": notifier_db, "calllog": log_db},
                    smtp,
                )
                # both of a service start at once, racing on its empty database and streams
                started = [found.spawn(name) for name in env for _ in range(2)]
                await wait_serving(nc, *started)
                yield found
            finally:
                replicas.stop_all()
                await nc.close()
                smtp.stop()


# --- helpers ------------------------------------------------------------------------------


async def retried(call: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any], int]:
    """Send until answered; the same command id each time, so a retry is never applied twice.

    Returns the result and how many attempts went unanswered (a replica died with them).
    """
    deadline = time.monotonic() + RETRY_FOR
    lost = 0
    while True:
        try:
            return await call(), lost
        except Unreachable:
            lost += 1
            if time.monotonic() > deadline:
                raise


async def keyed_account(client: KeyledgerClient, owner: str, *admins: str) -> dict[str, Any]:
    """A new account with admins and a key; the generate result."""
    account = new_account(length=10)
    await client.open_account(account, owner, f"{owner}@{account}.test")
    for user in admins:
        await client.grant_admin(account, owner, user, f"{user}@{account}.test")
    return await client.generate(account, owner)


async def replica_positions(nc: Client, service: str, pids: set[int]) -> dict[int, int]:
    """stream_seq reported by each of `pids`, asking until every one has answered."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 10
    while not pids <= seen.keys():
        assert time.monotonic() < deadline, f"{pids - seen.keys()} never answered"
        replies = await asyncio.gather(*(health(nc, SPECS[service]) for _ in range(4)))
        seen |= {int(r["pid"]): int(r["stream_seq"]) for r in replies}
    return seen


async def all_caught_up(nc: Client, service: str, pids: set[int], seq: int) -> None:
    """Until every replica in `pids` reports stream_seq >= seq."""
    deadline = time.monotonic() + 20
    while min((await replica_positions(nc, service, pids)).values()) < seq:
        assert time.monotonic() < deadline, f"{service} replicas never reached {seq}"
        await asyncio.sleep(0.02)


def pids(group: list[Replica]) -> set[int]:
    return {r.pid for r in group}


async def keys_events(nc: Client) -> list[tuple[int, bytes]]:
    return [(seq, data) async for seq, data in read_stream(nc)]


async def audited(client: KeyledgerClient, account: str, count: int) -> None:
    """Until the account's audit log lists `count` entries, sequences 1..count, once each."""
    deadline = time.monotonic() + 10
    while True:
        page = await client.audit(account, limit=500)
        found = sorted(item["sequence"] for item in page["items"])
        if found == list(range(1, count + 1)):
            return
        assert time.monotonic() < deadline, f"audit of {account}: {len(found)} of {count}"
        await asyncio.sleep(0.05)


# --- a. commands: either keys replica answers, and a SIGKILL loses or doubles nothing -------


async def test_commands_survive_a_keys_replica_killed_mid_run(cluster: Cluster) -> None:
    client, nc = cluster.client, cluster.nc
    impatient = KeyledgerClient(nc, request_timeout=RETRY_AFTER)
    keys = cluster.running("keys")
    assert len(keys) == 2
    served = await replica_positions(nc, "keys", pids(keys))  # each of the two answers
    assert served.keys() == pids(keys)

    accounts = [(await keyed_account(client, "alice"))["account_id"] for _ in range(4)]
    rounds, done, lost = 8, 0, 0
    half_done = asyncio.Event()

    async def worker(account: str) -> None:
        nonlocal done, lost
        for _ in range(rounds):
            rotate = partial(impatient.rotate, account, "alice", confirm=True)
            reveal = partial(impatient.reveal, account, "alice")
            rotated, missed = await retried(partial(rotate, command_id=str(uuid.uuid4())))
            shown, missed_too = await retried(partial(reveal, command_id=str(uuid.uuid4())))
            # a retried rotate answers with the key it created, and a reveal by either
            # replica right after it shows that very key
            assert shown["key"] == rotated["key"], (account, rotated["key_id"], shown["key_id"])
            done, lost = done + 1, lost + missed + missed_too
            if done >= len(accounts) * rounds // 2:
                half_done.set()

    async def killer() -> None:
        await half_done.wait()
        keys[0].kill()  # while the other workers still have commands in flight

    await asyncio.gather(killer(), *(worker(a) for a in accounts))
    survivor = await replica_positions(nc, "keys", {keys[1].pid})
    assert survivor.keys() == {keys[1].pid}

    events = await keys_events(nc)
    assert verify_chain(events) is None
    mine = [e for e in map(json.loads, (data for _, data in events)) if e["stream_id"] in accounts]
    # open + generate + one rotate and one reveal per round: nothing lost, nothing twice
    assert len(mine) == len(accounts) * (2 + 2 * rounds), f"{lost} requests were lost"
    assert len({e["causation_id"] for e in mine}) == len(mine)
    for account in accounts:
        assert [e["sequence"] for e in mine if e["stream_id"] == account] == list(
            range(1, 3 + 2 * rounds)
        )

    # the audit projection (one durable shared by the replicas) holds every event once
    for account in accounts:
        await audited(client, account, 2 + 2 * rounds)

    # a replacement replica rebuilds its state from the stream and serves
    replacement = cluster.spawn("keys")
    await wait_serving(nc, replacement)
    last = (await nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq
    await all_caught_up(nc, "keys", {keys[1].pid, replacement.pid}, last)


# --- b. a rotate or deactivate on one replica: the other refuses the old key soon after -----


async def test_the_other_replica_refuses_a_retired_key_within_the_bound(cluster: Cluster) -> None:
    client, nc, js = cluster.client, cluster.nc, cluster.nc.jetstream()
    keys = pids(cluster.running("keys"))
    assert len(keys) == 2
    current = await keyed_account(client, "alice")
    account = current["account_id"]
    delays = []
    for i in range(12):
        old = current["key"]
        # a new key, too, reaches the other replica a moment after the reply
        created = (await js.get_last_msg(KEYS_STREAM.name, event_subject(account))).seq
        await all_caught_up(nc, "keys", keys, created)
        assert (await client.verify(old))["valid"]
        if i % 2:
            await client.deactivate(account, "alice", confirm=True)
        else:
            current = await client.rotate(account, "alice", confirm=True)
        answered = time.monotonic()
        retired = (await js.get_last_msg(KEYS_STREAM.name, event_subject(account))).seq
        # verify cannot be addressed to one replica: ask verify and health side by side
        # until both replicas report the event applied; verify sees what health reports
        accepted_at: float | None = None
        while True:
            checks = await asyncio.gather(client.verify(old), client.verify(old))
            if any(c["valid"] for c in checks):
                accepted_at = time.monotonic()
            positions = await replica_positions(nc, "keys", keys)
            if min(positions.values()) >= retired:
                break
            assert time.monotonic() - answered < PROPAGATION_BOUND, positions
        delays.append(time.monotonic() - answered)
        if accepted_at is not None:
            assert accepted_at - answered < PROPAGATION_BOUND
        # from here on every replica refuses it: 20 tries reach both with p = 1 - 2**-19
        refusals = await asyncio.gather(*(client.verify(old) for _ in range(20)))
        assert {(r["valid"], r["reason"]) for r in refusals} == {(False, "deactivated")}
        if i % 2:
            current = await client.generate(account, "alice")
    assert max(delays) < PROPAGATION_BOUND, delays


# --- c. two notifiers: every reminder is delivered once ------------------------------------


async def test_two_notifiers_deliver_each_reminder_exactly_once(cluster: Cluster) -> None:
    client, nc, smtp = cluster.client, cluster.nc, cluster.smtp
    notifiers = pids(cluster.running("notifier"))
    assert len(notifiers) == 2
    # keys created while both notifiers follow KEYS: they share one durable consumer
    made = await asyncio.gather(*(keyed_account(client, "carol", "dave") for _ in range(8)))
    accounts = {m["account_id"] for m in made}
    last = (await nc.jetstream().stream_info(KEYS_STREAM.name)).state.last_seq
    await all_caught_up(nc, "notifier", notifiers, last)

    newest = max(datetime.fromisoformat(m["created_at"]) for m in made)
    body = json.dumps({"as_of": add_months(newest, 12).isoformat()}).encode()

    async def sweep() -> dict[str, Any]:
        reply = json.loads((await nc.request("notify.cmd.sweep", body, timeout=30)).data)
        assert reply["ok"], reply
        return dict(reply["result"])

    # the queue group spreads these over both replicas; they claim the same reminders
    results = await asyncio.gather(*(sweep() for _ in range(8)))
    final = await sweep()
    assert (final["waiting"], final["retrying"], final["failed"]) == (0, 0, 0), final

    ids = smtp.ids()
    assert len(ids) == len(set(ids))  # no mail twice, whoever's keys they were
    ours = [
        m for m in smtp.messages if str(m["To"]).split("@")[1].removesuffix(".test") in accounts
    ]
    assert len(ours) == 2 * len(accounts)  # carol and dave, 12-month email
    sent = [
        json.loads(data)["payload"]
        async for _, data in read_stream(nc, "NOTIFY", "notify.events.>")
    ]
    reminder_ids = [p["reminder_id"] for p in sent]
    assert len(reminder_ids) == len(set(reminder_ids))
    assert len([p for p in sent if p["recipient"] in ("carol", "dave")]) == 4 * len(accounts)
    # every reminder claimed by one sweep only, and delivered by it
    assert sum(r["claimed"] for r in [*results, final]) == len(sent)
    assert sum(r["delivered"] for r in [*results, final]) == len(sent)


# --- d. two call logs: every call stored once, and either answers queries -------------------


async def test_two_call_logs_store_each_call_once_and_both_answer(cluster: Cluster) -> None:
    nc = cluster.nc
    logs = cluster.running("calllog")
    assert len(logs) == 2
    accounts = [new_account(length=10) for _ in range(3)]
    now = datetime.now(UTC)
    records = [
        a_call(accounts[i % 3], now - timedelta(milliseconds=i), path=f"/v1/r/{i}")
        for i in range(3000)
    ]
    # several gateways publishing at once, while both replicas ingest
    await asyncio.gather(*(publish(nc, *records[i::6]) for i in range(6)))
    # a gateway's retries: within the dedup window (dropped by the stream) and past it
    # (stored again: the projection must keep one row)
    await publish(nc, *records[:300])
    last = await publish(nc, *records[300:600], msg_id=False)
    assert last == (await nc.jetstream().stream_info(CALLS_STREAM.name)).state.last_seq
    await all_caught_up(nc, "calllog", pids(logs), last)

    engine = make_engine(cluster.db["calllog"])
    try:
        async with engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).select_from(calls))
    finally:
        await engine.dispose()
    assert stored == len(records)

    async def listing() -> list[str]:
        found = [c["call_id"] for a in accounts for c in await listed(nc, a)]
        assert len(found) == len(set(found)) == len(records)
        return sorted(found)

    expected = sorted(r.call_id for r in records)
    assert await listing() == expected
    # each replica alone answers the same: stop one, then the other (a new one stands in)
    logs[0].kill()
    assert await listing() == expected
    stand_in = cluster.spawn("calllog")
    await wait_serving(nc, stand_in)
    logs[1].kill()
    assert await listing() == expected
