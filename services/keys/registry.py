"""In-memory model of every account, the verification index and who administers what, folded
from the KEYS stream."""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from contracts import keyformat
from contracts.keys import AccountEvent, KeyDeactivated, KeyGenerated, KeyRotated, KeyViewed
from services.keys.domain import AccountState, evolve

_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
RECENT_COMMANDS = 100_000


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


class Registry:
    """Applies events in stream order; skips any at or below what it has seen for that account."""

    def __init__(self) -> None:
        self.accounts: dict[str, AccountState] = {}
        self.subject_seq: dict[str, int] = {}
        self.last_seq = 0
        self.remember_after = 0  # replay skips command ids too old to be retried
        self._index: dict[bytes, IndexEntry] = {}
        self._by_key_id: dict[str, IndexEntry] = {}
        self._grace: dict[str, list[IndexEntry]] = {}
        # user -> the accounts where that user is a super-admin now (keys.query.accounts)
        self._admin_of: dict[str, set[str]] = {}
        # OrderedDict: evicting the oldest from a plain dict walks its deleted slots (O(n))
        self._recent: OrderedDict[tuple[str, str], Applied] = OrderedDict()

    def state(self, account_id: str) -> AccountState:
        return self.accounts.get(account_id) or AccountState(account_id=account_id)

    def applied(self, account_id: str, command_id: str) -> Applied | None:
        return self._recent.get((account_id, command_id))

    def apply(self, stream_seq: int, raw: dict[str, Any]) -> bool:
        """Fold one stored event (its parsed JSON); False when it was seen already."""
        account_id = raw["stream_id"]
        if stream_seq <= self.subject_seq.get(account_id, 0):
            return False
        event = _events.validate_python(raw["payload"])
        occurred_at = datetime.fromisoformat(raw["occurred_at"])
        before = self.state(account_id)
        after = self.accounts[account_id] = evolve(
            before,
            event,
            sequence=raw["sequence"],
            occurred_at=occurred_at,
            actor=raw["actor"],
            event_hash=raw["hash"],
        )
        self.subject_seq[account_id] = stream_seq
        self.last_seq = max(self.last_seq, stream_seq)
        if stream_seq > self.remember_after:
            digest = raw.get("request_digest")
            done = Applied.of(event, occurred_at, raw["actor"], digest, stream_seq)
            self._remember(account_id, raw["causation_id"], done)
        self._index_event(account_id, event)
        if after.admins is not before.admins:  # evolve keeps the same set when none changed
            self._index_admins(account_id, before.admins, after.admins)
        return True

    def in_grace(self, account_id: str, now: datetime) -> IndexEntry | None:
        """The key a rotation replaced that still verifies at `now` (the latest, if several)."""
        live = [e for e in self._grace.get(account_id, ()) if e.grace_until and now < e.grace_until]
        return max(live, key=lambda e: e.grace_until or now, default=None)

    def accounts_of(self, user: str) -> list[AccountState]:
        """The accounts where `user` is a super-admin now, sorted by account id."""
        return [self.accounts[a] for a in sorted(self._admin_of.get(user, ()))]

    def skip(self, account_id: str, stream_seq: int) -> bool:
        """Pass over a message on the account's subject that is not one of its events.

        The account's position (the expected last subject sequence of its next append)
        is the subject's last message whatever it holds; its state stays as it was.
        """
        if stream_seq <= self.subject_seq.get(account_id, 0):
            return False
        self.subject_seq[account_id] = stream_seq
        self.last_seq = max(self.last_seq, stream_seq)
        return True

    def verify(self, key: str, now: datetime) -> tuple[str | None, IndexEntry | None]:
        """(reason, entry): reason None means valid. Malformed keys never reach the index."""
        if not keyformat.is_well_formed(key):
            return "malformed", None
        return self.lookup(hashlib.sha256(key.encode()).digest(), now)

    def lookup(self, digest: bytes, now: datetime) -> tuple[str | None, IndexEntry | None]:
        """Verify by sha-256 alone: what a client sends so the key itself stays off the wire."""
        entry = self._index.get(digest)
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return "unknown", None
        if entry.status == "active":
            return None, entry
        if entry.status == "grace" and entry.grace_until is not None:
            return (None if now < entry.grace_until else "expired"), entry
        return "deactivated", entry

    def _index_event(self, account_id: str, event: AccountEvent) -> None:
        match event:
            case KeyGenerated(key_id=key_id, fingerprint=fp):
                self._add(account_id, key_id, fp)
            case KeyRotated(old_key_id=old, new_key_id=new, fingerprint=fp, grace_until=until):
                self._retire(account_id, old, grace_until=until)
                self._add(account_id, new, fp)
            case KeyDeactivated(key_id=key_id):
                self._retire(account_id, key_id, grace_until=None)
                # deactivation is an emergency brake: it also ends every grace period
                for entry in self._grace.pop(account_id, []):
                    entry.status = "deactivated"

    def _index_admins(self, account_id: str, before: frozenset[str], after: frozenset[str]) -> None:
        # from the states' difference, not the events: whatever evolve decides, this follows
        for user in after - before:
            self._admin_of.setdefault(user, set()).add(account_id)
        for user in before - after:
            accounts = self._admin_of.get(user)
            if accounts is not None:
                accounts.discard(account_id)
                if not accounts:
                    del self._admin_of[user]

    def _add(self, account_id: str, key_id: str, fingerprint: str) -> None:
        entry = IndexEntry(bytes.fromhex(fingerprint), account_id, key_id, "active")
        self._index[entry.digest] = entry
        self._by_key_id[key_id] = entry

    def _retire(self, account_id: str, key_id: str, *, grace_until: datetime | None) -> None:
        entry = self._by_key_id.get(key_id)
        if entry is None:
            return
        if grace_until is None:
            entry.status = "deactivated"
        else:
            entry.status, entry.grace_until = "grace", grace_until
            self._grace.setdefault(account_id, []).append(entry)

    def _remember(self, account_id: str, command_id: str, done: Applied) -> None:
        self._recent[(account_id, command_id)] = done
        if len(self._recent) > RECENT_COMMANDS:
            self._recent.popitem(last=False)
