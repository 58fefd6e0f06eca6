"""In-memory stand-ins for the event store and the vault, for handler tests without I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nats.js import api

from services.keys.eventstore import Conflict, Stored

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass
class FakeEvents:
    """Models JetStream's per-subject expected sequence and Nats-Msg-Id dedup."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    msg_ids: dict[str, int] = field(default_factory=dict)
    fail_next: BaseException | None = None
    store_before_failing: bool = False

    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck:
        if msg_id in self.msg_ids:
            return api.PubAck(stream="KEYS", seq=self.msg_ids[msg_id], duplicate=True)
        last = max((i + 1 for i, (s, _) in enumerate(self.messages) if s == subject), default=0)
        if last != expected_subject_seq:
            raise Conflict(subject)
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            if self.store_before_failing:
                self.messages.append((subject, data))
            raise failure
        self.messages.append((subject, data))
        self.msg_ids[msg_id] = len(self.messages)
        return api.PubAck(stream="KEYS", seq=len(self.messages))

    async def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[Stored]:
        for seq, (s, data) in enumerate(self.messages, start=1):
            if s == subject and seq > after_seq:
                yield Stored(seq, s, data)


@dataclass
class FakeVault:
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def put(self, account_id: str, key_id: str, secret: str) -> None:
        self.rows[key_id] = (account_id, secret)

    async def get(self, account_id: str, key_id: str) -> str | None:
        row = self.rows.get(key_id)
        return row[1] if row and row[0] == account_id else None

    async def destroy(self, key_id: str) -> None:
        self.rows.pop(key_id, None)
