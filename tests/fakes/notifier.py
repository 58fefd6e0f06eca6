"""In-memory stand-ins for the notifier: a recording mail transport, NOTIFY, and KEYS events."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext, api

from contracts.envelope import GENESIS_HASH, seal
from contracts.notifier import NOTIFY_STREAM
from services.common.eventlog import Conflict, Stored
from services.notifier.reminders.mailer import DeliveryError, Send

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from services.notifier.reminders.mime import Mail


@dataclass
class RecordingTransport:
    """The mailer's Transport: keeps every message sent; `fail(n)` refuses the next n."""

    sent: list[Mail] = field(default_factory=list)
    sessions: int = 0
    failures_left: int = 0
    failure: DeliveryError = field(default_factory=lambda: DeliveryError("451 try again later"))
    keep_open: bool = True

    def fail(self, times: int, error: DeliveryError | None = None) -> None:
        self.failures_left = times
        if error is not None:
            self.failure = error

    def describe(self) -> str:
        return "recording transport"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Send]:
        self.sessions += 1

        async def send(mail: Mail) -> None:
            if self.failures_left > 0:
                self.failures_left -= 1
                raise self.failure
            self.sent.append(mail)

        yield send

    @property
    def recipients(self) -> list[str]:
        return [mail.recipient for mail in self.sent]


@dataclass
class FakeNotify:
    """The publisher's Log on NOTIFY: per-subject expected sequence and Nats-Msg-Id dedup."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    msg_ids: dict[str, int] = field(default_factory=dict)

    def bind(self, js: JetStreamContext) -> None:
        """Nothing to connect: the messages live here."""

    def _last_seq(self, subject: str) -> int:
        return max((i + 1 for i, (s, _) in enumerate(self.messages) if s == subject), default=0)

    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck:
        if msg_id in self.msg_ids:
            return api.PubAck(stream=NOTIFY_STREAM.name, seq=self.msg_ids[msg_id], duplicate=True)
        if self._last_seq(subject) != expected_subject_seq:
            raise Conflict(subject)
        self.messages.append((subject, data))
        self.msg_ids[msg_id] = len(self.messages)
        return api.PubAck(stream=NOTIFY_STREAM.name, seq=len(self.messages))

    async def last(self, subject: str) -> Stored | None:
        seq = self._last_seq(subject)
        return Stored(seq, subject, self.messages[seq - 1][1]) if seq else None

    async def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[Stored]:
        for seq, (s, data) in enumerate(self.messages, start=1):
            if s == subject and seq > after_seq:
                yield Stored(seq, s, data)


class KeysStream:
    """KEYS as the keys service fills it: each account's events sealed and hash-chained,
    numbered on the stream, as batches for services.notifier.projection.project."""

    def __init__(self, at: datetime) -> None:
        self.at = at  # when the events happen unless one says otherwise
        self.stream_seq = 0
        self._heads: dict[str, tuple[int, str]] = {}

    def event(
        self,
        account_id: str,
        kind: str,
        *,
        actor: str = "alice",
        at: datetime | None = None,
        **payload: Any,
    ) -> tuple[int, dict[str, Any]]:
        sequence, prev_hash = self._heads.get(account_id, (0, GENESIS_HASH))
        raw = seal(
            event_id=str(uuid.uuid4()), type=kind, version=1, stream_id=account_id,
            sequence=sequence + 1, occurred_at=at or self.at, actor=actor,
            correlation_id="c", causation_id="c", prev_hash=prev_hash,
            payload={"kind": kind, **payload},
        )  # fmt: skip
        self._heads[account_id] = (sequence + 1, raw["hash"])
        self.stream_seq += 1
        return self.stream_seq, raw
