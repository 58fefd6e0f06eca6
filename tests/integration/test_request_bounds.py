"""Extreme but well-typed values and repeated JSON keys get `invalid_request` naming the
field, from the real services on SQLite and PostgreSQL; never `unavailable`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from contracts import keyformat
from tests.drivers.calllog import ingested, listed, publish, publish_raw, query
from tests.fakes.calllog import Clock, a_call
from tests.random_refs import new_account

if TYPE_CHECKING:
    from nats.aio.client import Client

    from services.calllog.settings import CallLogSettings
    from services.notifier.settings import NotifierSettings
    from tests.drivers.keys import Request
    from tests.drivers.notifier import Notify

pytestmark = pytest.mark.nats


def refused(reply: dict[str, Any], field: str) -> None:
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == "invalid_request", reply
    assert field in reply["error"]["message"], reply


async def opened_with_key(request_json: Request) -> str:
    account = new_account()
    body = {"account_id": account, "owner": "alice", "email": "alice@example.com"}
    assert (await request_json("keys.cmd.open_account", body))["ok"]
    assert (await request_json("keys.cmd.generate", {"account_id": account, "actor": "alice"}))[
        "ok"
    ]
    return account


async def test_audit_cursors_beyond_the_database_integers_are_refused(
    notifier_service: NotifierSettings, request_json: Request
) -> None:
    account = await opened_with_key(request_json)
    for before in (2**70, 2**63, 2**31):
        reply = await request_json("keys.query.audit", {"account_id": account, "before": before})
        refused(reply, "before")
    largest = {"account_id": account, "before": 2**31 - 1}
    for _ in range(500):  # the audit log is a projection: it catches up in a moment
        items = (await request_json("keys.query.audit", largest))["result"]["items"]
        if len(items) == 2:
            break
        await asyncio.sleep(0.02)
    assert [e["action"] for e in items] == ["created", "account_opened"]


ODD_MOMENTS = [
    "9999-12-31",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "1969-12-31T23:59:59Z",
]


async def test_reminders_and_sweeps_at_the_ends_of_the_calendar_are_refused(
    notifier_service: NotifierSettings, notify: Notify, request_json: Request
) -> None:
    account = await opened_with_key(request_json)
    await notify.caught_up()
    for moment in ODD_MOMENTS:
        error = await notify.ask("notify.query.reminders", {"account_id": account, "as_of": moment})
        assert (error["code"], "as_of" in error["message"]) == ("invalid_request", True), moment
        error = await notify.ask("notify.cmd.sweep", {"as_of": moment})
        assert (error["code"], "as_of" in error["message"]) == ("invalid_request", True), moment
    latest = await notify.reminders(account, None)
    assert latest["key"] is not None
    far = await notify.ask(
        "notify.query.reminders", {"account_id": account, "as_of": "8999-12-31T23:59:59Z"}
    )
    assert far["key"]["age_months"] > 80000


async def test_call_log_queries_at_the_ends_of_time_are_refused(
    calllog_service: CallLogSettings, nc: Client
) -> None:
    for moment in ODD_MOMENTS[1:]:
        for field in ("since", "until"):
            refused(await query(nc, "list", {"account_id": "acme", field: moment}), field)
    for cursor in (f"{2**63}:abc", f"{10**20 - 1}:abc", "9" * 23 + ":abc", "\u00b2:abc"):
        refused(await query(nc, "list", {"account_id": "acme", "cursor": cursor}), "cursor")
    page = await query(nc, "list", {"account_id": "acme", "cursor": f"{2**63 - 1}:abc"})
    assert page["ok"], page


async def test_a_call_dated_beyond_the_calendar_is_skipped_not_a_stalled_log(
    calllog_service: CallLogSettings, nc: Client, clock: Clock
) -> None:
    account = new_account()
    good = a_call(account, clock.now)
    for moment in ODD_MOMENTS[1:]:
        raw = good.model_dump(mode="json") | {"ts": moment, "call_id": uuid.uuid4().hex}
        await publish_raw(nc, account, json.dumps(raw).encode())
    await ingested(nc, await publish(nc, good))
    assert [c["call_id"] for c in await listed(nc, account)] == [good.call_id]


DUPLICATED = [
    ("keys.query.audit", b'{"account_id": "a", "account_id": "b"}', "account_id"),
    ("keys.query.audit", b'{"account_id": "a", "limit": 5, "limit": 500}', "limit"),
    ("keys.cmd.generate", b'{"account_id": "a", "actor": "bob", "actor": "eve"}', "actor"),
    ("keys.cmd.rotate", b'{"account_id": "a", "confirm": 0, "confirm": 1}', "confirm"),
    ("notify.query.sidebar", b'{"user": "bob", "user": "eve"}', "user"),
    ("notify.cmd.sweep", b'{"as_of": "2020-01-01", "as_of": "2021-01-01"}', "as_of"),
    ("calls.query.list", b'{"account_id": "acme", "account_id": "evil"}', "account_id"),
    ("calls.query.stats", b'{"account_id": "acme", "by": "day", "by": "hour"}', "by"),
    ("calls.query.last_used", b'{"account_id": "a", "key_id": "k", "key_id": "k"}', "key_id"),
]


async def test_a_key_repeated_in_a_request_is_refused_by_every_service(
    notifier_service: NotifierSettings, calllog_service: CallLogSettings, nc: Client
) -> None:
    for subject, body, field in DUPLICATED:
        reply = json.loads((await nc.request(subject, body, timeout=5)).data)
        assert reply["ok"] is False, subject
        assert reply["error"]["code"] == "invalid_request", (subject, reply)
        assert f'duplicate key "{field}"' in reply["error"]["message"], (subject, reply)
    nested = b'{"user": "bob", "ids": [], "x": {"a": 1, "a": 2}}'
    reply = json.loads((await nc.request("notify.cmd.mark_read", nested, timeout=5)).data)
    assert "duplicate key" in reply["error"]["message"]
    assert (await nc.jetstream().stream_info("KEYS")).state.messages == 0  # nothing stored


async def test_verify_refuses_a_repeated_fingerprint(
    notifier_service: NotifierSettings, request_json: Request
) -> None:
    account = await opened_with_key(request_json)
    made = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    good = keyformat.fingerprint(made["result"]["key"])
    body = f'{{"fingerprint": "{"0" * 64}", "fingerprint": "{good}"}}'.encode()
    reply = await request_json("keys.verify", body)
    assert reply["error"]["code"] == "invalid_request"
    assert (await request_json("keys.verify", {"fingerprint": good}))["result"]["valid"]
    deep = await request_json("keys.verify", b"[" * 60000)  # past the parser's depth limit
    assert deep["error"]["code"] == "invalid_request"
    deep = await request_json("keys.query.audit", b'{"account_id": ' + b"[" * 60000)
    assert deep["error"]["code"] == "invalid_request"
