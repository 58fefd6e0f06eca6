"""The notifier and call-log sub-clients send the subjects and bodies the contracts expect."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import pytest
from pydantic import BaseModel, ConfigDict

from contracts import calllog, keys, notifier
from keyledger.client import KeyledgerClient

if TYPE_CHECKING:
    from nats.aio.client import Client

_TWO = timedelta(hours=2)
_IDS = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]


@dataclass
class _Msg:
    data: bytes


@dataclass
class _FakeNats:
    """Captures each request and answers `{"ok": true, "result": {}}`; no server needed."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def request(self, subject: str, payload: bytes, **_: float) -> _Msg:
        self.sent.append((subject, json.loads(payload)))
        return _Msg(b'{"ok": true, "result": {"echo": true}}')


def _send(work: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    fake = _FakeNats()
    client = KeyledgerClient(cast("Client", fake))
    result = asyncio.run(work(client))
    [(subject, body)] = fake.sent
    return subject, body, result


def _valid(model: type[BaseModel], body: dict[str, Any]) -> None:
    # as the service parses it: strict JSON, unknown fields refused
    model.model_validate_json(json.dumps(body))


class _NoFields(BaseModel):
    """Health requests carry nothing."""

    model_config = ConfigDict(extra="forbid")


CASES: list[tuple[Any, str, dict[str, Any], type[BaseModel]]] = [
    (lambda c: c.health(), keys.query_subject("health"), {}, _NoFields),
    (lambda c: c.notifier.health(), notifier.query_subject("health"), {}, _NoFields),
    (lambda c: c.calls.health(), calllog.query_subject("health"), {}, _NoFields),
    (
        lambda c: c.notifier.sidebar("alice"),
        notifier.query_subject("sidebar"),
        {"user": "alice", "unread_only": False},
        notifier.SidebarQuery,
    ),
    (
        lambda c: c.notifier.sidebar("alice", account_id="acme", unread_only=True),
        notifier.query_subject("sidebar"),
        {"user": "alice", "unread_only": True, "account_id": "acme"},
        notifier.SidebarQuery,
    ),
    (
        lambda c: c.notifier.mark_read("alice", _IDS),
        notifier.command_subject("mark_read"),
        {"user": "alice", "ids": _IDS},
        notifier.MarkRead,
    ),
    (
        lambda c: c.notifier.reminders("acme"),
        notifier.query_subject("reminders"),
        {"account_id": "acme"},
        notifier.RemindersQuery,
    ),
    (
        lambda c: c.notifier.reminders("acme", as_of="2026-05-01T00:00:00+00:00"),
        notifier.query_subject("reminders"),
        {"account_id": "acme", "as_of": "2026-05-01T00:00:00+00:00"},
        notifier.RemindersQuery,
    ),
    (lambda c: c.notifier.sweep(), notifier.command_subject("sweep"), {}, notifier.Sweep),
    (
        lambda c: c.notifier.sweep(as_of="2026-05-01"),
        notifier.command_subject("sweep"),
        {"as_of": "2026-05-01"},
        notifier.Sweep,
    ),
    (
        lambda c: c.calls.list("acme"),
        calllog.query_subject("list"),
        {"account_id": "acme", "limit": 50},
        calllog.ListCalls,
    ),
    (
        lambda c: c.calls.list(
            "acme",
            limit=10,
            key_id="k1",
            since="2026-05-01T00:00:00+00:00",
            status="4xx",
            path_prefix="/v1",
            method="GET",
            cursor="abc",
        ),
        calllog.query_subject("list"),
        {
            "account_id": "acme",
            "limit": 10,
            "key_id": "k1",
            "since": "2026-05-01T00:00:00+00:00",
            "status": "4xx",
            "path_prefix": "/v1",
            "method": "GET",
            "cursor": "abc",
        },
        calllog.ListCalls,
    ),
    (
        lambda c: c.calls.stats("acme"),
        calllog.query_subject("stats"),
        {"account_id": "acme", "by": "hour"},
        calllog.CallStatsQuery,
    ),
    (
        lambda c: c.calls.stats("acme", by="day", key_id="k1"),
        calllog.query_subject("stats"),
        {"account_id": "acme", "by": "day", "key_id": "k1"},
        calllog.CallStatsQuery,
    ),
    (
        lambda c: c.calls.last_used("acme", "k1"),
        calllog.query_subject("last_used"),
        {"account_id": "acme", "key_id": "k1"},
        calllog.LastUsedQuery,
    ),
    (
        lambda c: c.calls.clients("acme", "k1", datetime(2026, 5, 1, 2, tzinfo=timezone(_TWO))),
        calllog.query_subject("clients"),
        {"account_id": "acme", "key_id": "k1", "since": "2026-05-01T00:00:00Z"},
        calllog.ClientsQuery,
    ),
    (
        lambda c: c.calls.clients("acme", "k1", datetime(2026, 5, 1, tzinfo=UTC)),
        calllog.query_subject("clients"),
        {"account_id": "acme", "key_id": "k1", "since": "2026-05-01T00:00:00Z"},
        calllog.ClientsQuery,
    ),
    (
        lambda c: c.accounts_of("alice"),
        keys.query_subject("accounts"),
        {"user": "alice"},
        keys.AccountsQuery,
    ),
]


@pytest.mark.parametrize(("work", "subject", "body", "model"), CASES)
def test_sub_client_sends_contract_body(
    work: Any, subject: str, body: dict[str, Any], model: type[BaseModel]
) -> None:
    sent_subject, sent_body, result = _send(work)
    assert (sent_subject, sent_body) == (subject, body)
    _valid(model, sent_body)
    assert result == {"echo": True}
