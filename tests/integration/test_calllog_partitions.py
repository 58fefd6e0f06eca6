"""CALLS consumed by partition over a real nats-server, on SQLite and PostgreSQL: replicas
share the partitions out, a crashed one's move to the others within the bound, a joining
one gets its share, and every call is stored once, each account's in stream order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.js import api
from sqlalchemy import select

from contracts.calllog import (
    PARTITIONS,
    calls_stream,
    partition_transform,
    recorded_subject,
    stored_subject,
)
from services.calllog import partitioned, projection
from services.calllog.runtime import Runtime
from services.calllog.store import calls, create_schema
from services.common.sql import make_engine, use_wal
from tests.drivers.calllog import publish
from tests.fakes.calllog import a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from contracts.calllog import CallRecorded

pytestmark = pytest.mark.nats
TAKEOVER = 2.0  # seconds: the setting's floor is 1; the bound is what is checked, not speed
WAIT = 30.0  # correctness, not performance: how long a test waits for a state to come


class Applied:
    """Every stream sequence each account's records were first committed at, in order."""

    def __init__(self) -> None:
        self.order: dict[str, list[int]] = {}
        self.seen: set[int] = set()

    def note(self, batch: list[tuple[int, Any]]) -> None:
        for seq, (subject, _data) in batch:
            if seq not in self.seen:
                self.seen.add(seq)
                self.order.setdefault(subject.rsplit(".", 1)[-1], []).append(seq)


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> Applied:
    """Wraps the projection the partitions (and the legacy drain) apply through."""
    found, real = Applied(), projection.project

    async def project(engine: Any, batch: list[tuple[int, Any]], *args: Any) -> int:
        rows = await real(engine, batch, *args)
        found.note(batch)
        return rows

    monkeypatch.setattr(partitioned.projection, "project", project)
    return found


@contextlib.asynccontextmanager
async def replica(
    nats_url: str, db_url: str, partitions: int | None = PARTITIONS
) -> AsyncIterator[Runtime]:
    """One calllog consumer (no queries), with its own engine as a process would have."""
    engine = make_engine(db_url)
    use_wal(engine)
    await create_schema(engine)
    runtime = Runtime(
        nats_url=nats_url,
        stream=calls_stream(3600, partitions),
        replicas=1,
        engine=engine,
        batch=500,
        takeover_seconds=TAKEOVER,
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        with contextlib.suppress(nats.errors.Error):
            await runtime.stop()
        await engine.dispose()


async def crash(runtime: Runtime) -> None:
    """Gone without a word: its connection drops, its leases are not given back."""
    await runtime.connection.close()


def owned(runtime: Runtime) -> list[int]:
    assert runtime.partitioned is not None
    return runtime.partitioned.leases.owned


async def until(what: str, check: Any) -> float:
    """Wait for check() to hold; the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > WAIT:
            raise AssertionError(f"not after {WAIT} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - start


def shared_out(*runtimes: Runtime) -> bool:
    """Every partition owned by exactly one replica, and the shares as even as can be."""
    shares = [owned(r) for r in runtimes]
    every = sorted(p for share in shares for p in share)
    sizes = sorted(len(share) for share in shares)
    return every == list(range(PARTITIONS)) and sizes[-1] - sizes[0] <= 1


async def caught_up(runtime: Runtime, nc: nats.NATS) -> None:
    assert runtime.partitioned is not None
    last = (await nc.jetstream().stream_info("CALLS")).state.last_seq
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while await runtime.partitioned.applied_through() < last:
        assert loop.time() < deadline, "the projection did not catch up"
        await asyncio.sleep(0.05)


def traffic(accounts: list[str], n: int) -> list[CallRecorded]:
    now = datetime.now(UTC)
    return [a_call(accounts[i % len(accounts)], now - timedelta(milliseconds=i)) for i in range(n)]


async def stored(db_url: str) -> dict[str, tuple[str, int]]:
    """call_id -> (account, stream_seq) of every row."""
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(calls.c.call_id, calls.c.account_id, calls.c.stream_seq)
            )
            return {call_id: (account, seq) for call_id, account, seq in rows.all()}
    finally:
        await engine.dispose()


def in_stream_order(applied: Applied) -> None:
    for account, seqs in applied.order.items():
        assert seqs == sorted(seqs), f"{account}'s calls applied out of order"


async def test_replicas_share_the_partitions_and_a_joining_one_gets_its_share(
    nats_url: str, db_url: str, nc: nats.NATS, applied: Applied
) -> None:
    accounts = [new_account() for _ in range(24)]
    records = traffic(accounts, 3000)
    async with replica(nats_url, db_url) as one, replica(nats_url, db_url) as two:
        await until("two replicas share the partitions", lambda: shared_out(one, two))
        sending = asyncio.gather(*(publish(nc, *records[i::4]) for i in range(4)))
        async with replica(nats_url, db_url) as three:
            await until("three replicas share them", lambda: shared_out(one, two, three))
            await sending
            await caught_up(three, nc)
    rows = await stored(db_url)
    assert set(rows) == {r.call_id for r in records}  # each call once (the key is call_id)
    assert {seq for _account, seq in rows.values()} <= applied.seen
    in_stream_order(applied)


async def test_a_crashed_replicas_partitions_move_within_the_bound_and_nothing_is_lost(
    nats_url: str, db_url: str, nc: nats.NATS, applied: Applied
) -> None:
    accounts = [new_account() for _ in range(16)]
    records = traffic(accounts, 2000)
    async with replica(nats_url, db_url) as one, replica(nats_url, db_url) as two:
        await until("two replicas share the partitions", lambda: shared_out(one, two))
        await publish(nc, *records[:1000])
        await crash(two)
        took = await until("the survivor owns every partition", lambda: shared_out(one))
        assert took <= TAKEOVER + 1.0  # the bound, plus a moment for a busy machine
        await publish(nc, *records[1000:])
        await caught_up(one, nc)
    rows = await stored(db_url)
    assert set(rows) == {r.call_id for r in records}
    in_stream_order(applied)


async def test_records_from_before_partitions_are_projected_once_and_first(
    nats_url: str, db_url: str, nc: nats.NATS, applied: Applied
) -> None:
    """An existing deployment: CALLS without partitions, some of it projected by the single
    durable, some not; then the operator adds the transform (README) and replicas restart."""
    accounts = [new_account() for _ in range(6)]
    before, after = traffic(accounts, 600), traffic(accounts, 600)
    async with replica(nats_url, db_url, partitions=None) as old:  # CALLS created unpartitioned
        assert old.partitioned is None
        await publish(nc, *before[:300])
        await until_position(db_url, await publish(nc, *before[300:400]))
    await publish(nc, *before[400:])  # stored while no calllog runs: not projected yet
    js = nc.jetstream()
    config = (await js.stream_info("CALLS")).config
    source, destination = partition_transform(PARTITIONS)
    config.subject_transform = api.SubjectTransform(src=source, dest=destination)
    await js.update_stream(config)
    await publish(nc, *after)
    assert (await js.get_msg("CALLS", seq=1)).subject == recorded_subject(before[0].account_id)
    last = await js.get_msg("CALLS", seq=(await js.stream_info("CALLS")).state.last_seq)
    # the server's partition is the one contracts.calllog computes (FNV-1a of the account)
    assert last.subject == stored_subject(after[-1].account_id, PARTITIONS)
    async with replica(nats_url, db_url) as one, replica(nats_url, db_url) as two:
        await until("two replicas share the partitions", lambda: shared_out(one, two))
        await caught_up(one, nc)
    rows = await stored(db_url)
    assert set(rows) == {r.call_id for r in before + after}
    in_stream_order(applied)  # every account's old records before its new ones


async def until_position(db_url: str, seq: int) -> None:
    engine = make_engine(db_url)
    try:
        for _ in range(int(WAIT / 0.05)):
            if await projection.position(engine) >= seq:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the single durable did not catch up")
    finally:
        await engine.dispose()


async def test_health_names_the_partitions_this_replica_consumes(
    nats_url: str, db_url: str, nc: nats.NATS
) -> None:
    async with replica(nats_url, db_url) as one:
        await one.announce([])
        last = await publish(nc, *traffic([new_account() for _ in range(4)], 40))
        await caught_up(one, nc)
        reply = json.loads((await nc.request("calls.query.health", b"{}", timeout=5)).data)
        assert reply["result"]["partitions"] == owned(one) == list(range(PARTITIONS))
    assert reply["result"]["stream_seq"] == last  # every record up to it is in the database
