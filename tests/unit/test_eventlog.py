"""The shared event log: both codes for a lost race are one Conflict, for keys and notifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from services.common.eventlog import Conflict, EventLog
from services.notifier.domain import Reminder
from services.notifier.reminders.publisher import Publisher

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class RacingJs:
    """Refuses the first appends with the given error codes, then stores."""

    codes: list[int]
    published: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, subject: str, data: bytes, **options: Any) -> api.PubAck:
        if self.codes:
            raise BadRequestError(code=400, err_code=self.codes.pop(0), description="wrong last")
        self.published.append({"subject": subject, **options})
        return api.PubAck(stream=options["stream"], seq=len(self.published))

    async def get_last_msg(self, *args: Any, **kwargs: Any) -> api.RawStreamMsg:
        raise NotFoundError


def bound(log: EventLog, js: RacingJs) -> EventLog:
    log.bind(cast("JetStreamContext", js))
    return log


@pytest.mark.parametrize("code", [10071, 10164])
async def test_a_lost_race_is_a_conflict_on_one_server_and_in_a_cluster(code: int) -> None:
    log = bound(EventLog(KEYS_STREAM), RacingJs([code]))
    with pytest.raises(Conflict):
        await log.append("keys.events.acme", b"{}", expected_subject_seq=3, msg_id="acme:c-1")


async def test_other_refusals_are_not_a_conflict() -> None:
    log = bound(EventLog(KEYS_STREAM), RacingJs([10060]))
    with pytest.raises(BadRequestError):
        await log.append("keys.events.acme", b"{}", expected_subject_seq=3, msg_id="acme:c-1")


async def test_append_sends_the_expected_subject_sequence_and_the_message_id() -> None:
    js = RacingJs([])
    await bound(EventLog(KEYS_STREAM), js).append(
        "keys.events.acme", b"{}", expected_subject_seq=3, msg_id="acme:c-1"
    )
    assert js.published[0]["headers"] == {
        "Nats-Msg-Id": "acme:c-1",
        "Nats-Expected-Last-Subject-Sequence": "3",
    }


@pytest.mark.parametrize("code", [10071, 10164])
async def test_the_notifier_chains_on_after_a_lost_race_in_a_cluster_too(code: int) -> None:
    js = RacingJs([code])
    publisher = Publisher(cast("Any", None), lambda: T0)
    publisher.bind(cast("JetStreamContext", js))
    reminder = Reminder(
        reminder_id="r-1", account_id="acme", key_id="key_1", key_hint="klk_…ab12",
        in_use_since=T0, source_event_id="e-1", milestone=5, channel="email",
        recipient="alice", email="alice@x.io", due_at=T0,
    )  # fmt: skip
    await publisher._append(reminder, T0)
    assert [p["stream"] for p in js.published] == [NOTIFY_STREAM.name]
