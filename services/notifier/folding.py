"""The KEYS projection's fold: a batch's net effect on keys, people and chain heads, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contracts.envelope import GENESIS_HASH
from contracts.keys import (
    ACCOUNT_ID,
    KEYS_STREAM,
    AccountEvent,
    AccountOpened,
    KeyDeactivated,
    KeyGenerated,
    KeyRotated,
    SuperAdminGranted,
    SuperAdminRevoked,
    event_subject,
)
from contracts.notifier import KEYS_DURABLE
from contracts.stored import chain_problem
from services.common.eventlog import reason, skipped
from services.notifier.domain import FIRST_EMAIL, due_at

READER = f"projection {KEYS_DURABLE}"  # the durable, as the skipped-message log names it
_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
_account_id = re.compile(ACCOUNT_ID)
Batch = list[tuple[int, dict[str, Any] | None]]
Head = tuple[int, str]  # an account's last event applied: its sequence and hash
GENESIS: Head = (0, GENESIS_HASH)


@dataclass
class Fold:
    """A batch's net effect: per account, the key row to write or the key to drop, and the
    head its chain reached."""

    heads: dict[str, Head] = field(default_factory=dict)  # loaded before, moved by apply
    keys: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # account -> deactivated key id
    people: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    revoked: set[tuple[str, str]] = field(default_factory=set)
    moved: set[str] = field(default_factory=set)  # accounts whose head moved

    def apply(self, raw: dict[str, Any]) -> str | None:
        """Apply one event: None if it took effect, else why not (fold reports it).

        The head moves on exactly what the keys service takes (services/keys/follower.py,
        absorb): an event that continues the chain, whose payload validates and whose time
        parses; KeyViewed too, though nothing here depends on it, or the heads would part
        ways and every later event of the account would be refused. Anything else changes
        nothing; an event taken whose time no schedule can start from moves the head only
        (and drops the key it replaces).
        """
        account = str(raw["stream_id"])
        if _account_id.fullmatch(account) is None:  # no account the service can have opened
            return "its stream_id is not an account id"
        why = chain_problem(raw, *self.heads.get(account, GENESIS))
        if why is not None:
            return why
        event = _events.validate_python(raw["payload"])
        occurred = datetime.fromisoformat(raw["occurred_at"])
        self.heads[account] = (raw["sequence"], raw["hash"])
        self.moved.add(account)
        try:
            self._fold(account, event, occurred, raw)
        except (ValueError, OverflowError) as exc:  # a time no schedule can start from
            return reason(exc)
        return None

    def _fold(
        self, account: str, event: AccountEvent, occurred: datetime, raw: dict[str, Any]
    ) -> None:
        match event:
            case (
                AccountOpened(owner=user, owner_email=email)
                | SuperAdminGranted(user=user, email=email)
            ):
                self.people[(account, user)] = {"email": email, "admin": True}
                self.revoked.discard((account, user))
            case SuperAdminRevoked(user=user):
                if (account, user) in self.people:
                    self.people[(account, user)]["admin"] = False
                else:
                    self.revoked.add((account, user))
            case KeyGenerated(key_id=key_id, hint=hint) | KeyRotated(new_key_id=key_id, hint=hint):
                self.dropped.pop(account, None)
                # the key it replaces goes even if no row can be built for this one (a time
                # out of range, which _key_row raises on): no reminder about a replaced key
                self.keys[account] = None
                self.keys[account] = _key_row(account, key_id, hint, occurred, raw)
            case KeyDeactivated(key_id=key_id):
                pending = self.keys.get(account)
                if pending is not None and pending["key_id"] == key_id:
                    self.keys[account] = None  # generated and deactivated in this batch
                elif account not in self.keys:
                    self.dropped[account] = key_id


def _key_row(
    account: str, key_id: str, hint: str, occurred: datetime, raw: dict[str, Any]
) -> dict[str, Any]:
    since = occurred.astimezone(UTC)
    return {
        "account_id": account,
        "key_id": key_id,
        "hint": hint,
        "in_use_since": since,
        "last_creator": str(raw["actor"]),
        "source_event_id": str(raw["event_id"]),
        "next_months": FIRST_EMAIL,
        "next_due_at": due_at(since, FIRST_EMAIL),
    }


def fold(batch: Batch, last: int, known: dict[str, Head]) -> tuple[Fold, int]:
    """Fold events after `last` onto the accounts' heads; any that is not its account's next
    event, or cannot be applied, is reported once and skipped."""
    folded, applied = Fold(heads=known), 0
    for stream_seq, raw in batch:
        # None: not an event of its subject's account, reported once by the projector
        if stream_seq <= last or raw is None:
            continue
        try:
            why = folded.apply(raw)
        except (
            ValidationError,
            ValueError,
            OverflowError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            why = reason(exc)
        if why is None:
            applied += 1
        else:
            subject = event_subject(str(raw.get("stream_id")))
            skipped(KEYS_STREAM.name, stream_seq, subject, why, READER)
    return folded, applied
