"""The calllog projection over a real nats-server, on SQLite and PostgreSQL: the 7-day
window, late and duplicate calls, malformed records and retention."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from contracts.calllog import PARTITIONS, partition_of
from services.calllog.retention import delete_expired
from services.calllog.store import calls
from services.common.sql import make_engine
from tests.drivers.calllog import calllog_running, ingested, listed, publish, publish_raw, query
from tests.fakes.calllog import Clock, a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from nats.aio.client import Client

    from services.calllog.settings import CallLogSettings

pytestmark = pytest.mark.nats
WEEK = timedelta(days=7)
SECOND = timedelta(seconds=1)


async def test_only_calls_younger_than_7_days_are_ever_returned(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now = new_account(), clock.now
    inside = a_call(account, now - WEEK + SECOND, path="/v1/inside")
    edge = a_call(account, now - WEEK, path="/v1/exactly-7-days")
    outside = a_call(account, now - WEEK - SECOND, path="/v1/outside")
    newest = a_call(account, now, path="/v1/now")
    await ingested(nc, await publish(nc, inside, edge, outside, newest))

    assert [c["path"] for c in await listed(nc, account)] == ["/v1/now", "/v1/inside"]
    stats = await query(nc, "stats", {"account_id": account, "by": "day"})
    assert stats["result"]["total"] == 2
    used = await query(nc, "last_used", {"account_id": account, "key_id": "key_1"})
    assert used["result"]["last_used_at"] == now.isoformat().replace("+00:00", "Z")

    clock.advance(1)  # the oldest one is now exactly 7 days old: out, though not deleted yet
    assert [c["path"] for c in await listed(nc, account)] == ["/v1/now"]
    early = await query(nc, "list", {"account_id": account, "since": (now - 30 * WEEK).isoformat()})
    assert [c["path"] for c in early["result"]["items"]] == ["/v1/now"]


async def test_late_and_out_of_order_calls_are_listed_by_their_own_time(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now = new_account(), clock.now
    minutes = [1, 3, 2, 5, 4]
    early = (a_call(account, now - timedelta(minutes=m), path=f"/{m}") for m in minutes)
    await ingested(nc, await publish(nc, *early))
    first = await listed(nc, account)
    late = a_call(account, now - timedelta(minutes=90), path="/late")
    recent = a_call(account, now - timedelta(seconds=5), path="/recent")
    await ingested(nc, await publish(nc, late, recent))

    assert [c["path"] for c in first] == ["/1", "/2", "/3", "/4", "/5"]
    assert [c["path"] for c in await listed(nc, account)] == [
        "/recent",
        "/1",
        "/2",
        "/3",
        "/4",
        "/5",
        "/late",
    ]


async def test_a_call_id_seen_twice_is_stored_once(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account = new_account()
    call = a_call(account, clock.now)
    await publish(nc, call, call)  # same Nats-Msg-Id: the stream drops the second
    # without the header the stream keeps both (e.g. a retry after the duplicate window)
    last = await publish(nc, call, call, msg_id=False)
    await ingested(nc, last)
    assert (await nc.jetstream().stream_info("CALLS")).state.messages == 3
    assert [c["call_id"] for c in await listed(nc, account)] == [call.call_id]


async def test_malformed_records_are_skipped_and_named_by_sequence(
    calllog_service: CallLogSettings,
    nc: Client,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account = new_account()
    good = a_call(account, clock.now).model_dump(mode="json")
    bad = [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"kind": "CallRecorded"}',
        a_call(account, clock.now).model_dump_json().replace('"GET"', '"get"').encode(),
        json.dumps(good | {"ts": "2026-01-01T00:00:00"}).encode(),  # no time zone
        json.dumps(good | {"kind": "SomethingElse"}).encode(),
        json.dumps(good | {"status": 99}).encode(),
    ]
    with caplog.at_level(logging.ERROR, logger="keyledger.calllog"):
        seqs = [await publish_raw(nc, account, data) for data in bad]
        await ingested(nc, await publish(nc, a_call(account, clock.now, path="/v1/fine")))
    assert [c["path"] for c in await listed(nc, account)] == ["/v1/fine"]
    for seq in seqs:
        assert f"malformed call record at stream sequence {seq}:" in caplog.text


async def refusal_counts(nc: Client) -> dict[str, int]:
    reply = json.loads((await nc.request("calls.query.health", b"{}", timeout=2)).data)
    return dict(reply["result"]["refused"])


async def test_a_record_whose_subject_and_body_name_different_accounts_is_refused_and_counted(
    calllog_settings: CallLogSettings,
    nc: Client,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    victim, other = new_account(), new_account()
    js = nc.jetstream()
    async with calllog_running(calllog_settings, clock):
        forged = a_call(victim, clock.now, path="/v1/forged-secret-path")
        body = forged.model_dump_json().encode()
        # published straight to a partition's subject, as if stored: in the wrong partition
        wrong = (partition_of(victim, PARTITIONS) + 1) % PARTITIONS
        seqs = [
            (await js.publish(f"calls.recorded.{other}", body)).seq,
            (await js.publish(f"calls.recorded.{wrong}.{victim}", body)).seq,
        ]
        twice = body.replace(b'"account_id":', b'"account_id":"%s","account_id":' % other.encode())
        seqs.append((await js.publish(f"calls.recorded.{other}", twice)).seq)
        with caplog.at_level(logging.WARNING, logger="keyledger.calllog"):
            await ingested(nc, await publish(nc, a_call(victim, clock.now, path="/v1/real")))
        assert [c["path"] for c in await listed(nc, victim)] == ["/v1/real"]
        assert await listed(nc, other) == []
        counts = await refusal_counts(nc)
    assert counts == {"malformed": 0, "duplicate_key": 1, "subject_mismatch": 2}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    reasons = ["subject_mismatch", "subject_mismatch", "duplicate_key"]
    for seq, reason in zip(seqs, reasons, strict=True):
        assert any(f"sequence {seq} " in line and f"({reason})" in line for line in lines)
    assert "forged-secret-path" not in caplog.text  # the body is never logged
    async with calllog_running(calllog_settings, clock):  # counted once, kept across restarts
        await ingested(nc, seqs[-1] + 1)
        assert await refusal_counts(nc) == counts
    stored = await nc.jetstream().stream_info("CALLS")
    assert stored.state.messages == 4  # refused, not deleted: the stream denies deletes


async def test_retention_deletes_expired_rows_in_small_batches(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account, now = new_account(), clock.now
    stale = [a_call(account, now - WEEK - timedelta(minutes=m)) for m in range(25)]
    fresh = [a_call(account, now - timedelta(minutes=m)) for m in range(5)]
    await ingested(nc, await publish(nc, *stale, *fresh))
    engine = make_engine(calllog_service.db_url)
    try:
        count = select(func.count()).select_from(calls).where(calls.c.account_id == account)
        async with engine.connect() as conn:
            assert await conn.scalar(count) == 30  # stored: late calls are not refused
        assert len(await listed(nc, account)) == 5  # ... but never shown
        assert await delete_expired(engine, now, 7 * 86400, batch=10, pause=0) == 25
        async with engine.connect() as conn:
            assert await conn.scalar(count) == 5
        assert await delete_expired(engine, now, 7 * 86400, batch=10, pause=0) == 0
    finally:
        await engine.dispose()
