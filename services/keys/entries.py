"""What the registry keeps per key and per applied command (re-exported by registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.keys import AccountEvent, KeyDeactivated, KeyGenerated, KeyRotated, KeyViewed

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(slots=True)
class IndexEntry:
    """What verification knows of one key: never the key itself, only its sha-256."""

    digest: bytes
    account_id: str
    key_id: str
    status: str  # active | grace | deactivated
    grace_until: datetime | None = None
    valid_reply: bytes | None = None  # keys.verify's answer, encoded once: it never changes


@dataclass(frozen=True, slots=True)
class Applied:
    """A command that already took effect, so a retry can be answered without a second event."""

    event_type: str
    key_id: str | None
    occurred_at: datetime
    previous_key_id: str | None = None
    grace_until: datetime | None = None
    actor: str = ""
    digest: str | None = None  # the request the command id is bound to; None: an older event
    stream_seq: int = 0  # the event's: the snapshot keeps the commands newer than a window

    @staticmethod
    def of(
        event: AccountEvent,
        occurred_at: datetime,
        actor: str = "",
        digest: str | None = None,
        stream_seq: int = 0,
    ) -> Applied:
        match event:
            case KeyRotated():
                return Applied(
                    event.kind,
                    event.new_key_id,
                    occurred_at,
                    event.old_key_id,
                    event.grace_until,
                    actor,
                    digest,
                    stream_seq,
                )
            case KeyGenerated() | KeyViewed() | KeyDeactivated():
                kind, key_id = event.kind, event.key_id
                return Applied(kind, key_id, occurred_at, None, None, actor, digest, stream_seq)
        return Applied(event.kind, None, occurred_at, None, None, actor, digest, stream_seq)
