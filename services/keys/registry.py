"""In-memory model of every account, the verification index and who administers what, folded
from the KEYS stream."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter

from contracts.keyformat import KEY_LEN, is_well_formed_ascii
from contracts.keys import AccountEvent, KeyDeactivated, KeyGenerated, KeyRotated
from services.keys import fastfold
from services.keys.domain import AccountState, evolve
from services.keys.entries import Applied as Applied
from services.keys.entries import IndexEntry as IndexEntry

_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)
_sha256 = hashlib.sha256
RECENT_COMMANDS = 100_000


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
        # digests of indexed keys that passed the format check once: a key whose sha-256
        # matches one of them is that key, so its shape and checksum need no second look
        # (verification itself rests on sha-256 having no collisions)
        self._well_formed: set[bytes] = set()

    def state(self, account_id: str) -> AccountState:
        return self.accounts.get(account_id) or AccountState(account_id=account_id)

    def applied(self, account_id: str, command_id: str) -> Applied | None:
        return self._recent.get((account_id, command_id))

    def apply(self, stream_seq: int, raw: dict[str, Any]) -> bool:
        """Fold one stored event (its parsed JSON); False when it was seen already.

        Events of the usual shape take fastfold's path; anything else is validated by
        pydantic here, and either way the registry ends up the same (tests compare them).
        """
        account_id = raw["stream_id"]
        if stream_seq <= self.subject_seq.get(account_id, 0):
            return False
        return self.fold(stream_seq, account_id, raw)

    def fold(self, stream_seq: int, account_id: str, raw: dict[str, Any]) -> bool:
        """apply() once the caller has read `account_id` and checked the position."""
        return fastfold.fold(self, stream_seq, account_id, raw) or self.apply_validated(
            stream_seq, account_id, raw
        )

    def apply_validated(self, stream_seq: int, account_id: str, raw: dict[str, Any]) -> bool:
        """apply() through the contract's validation: the reference the fast path matches."""
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
        """(reason, entry): reason None means valid. A malformed key matches no entry."""
        # isascii before encode: a lone surrogate (a JSON escape can make one) cannot be encoded
        if len(key) != KEY_LEN or not key.isascii():
            return _MALFORMED
        raw = key.encode()
        # verify_ascii's body again: the gateways' hot path, one call less
        digest = _sha256(raw).digest()
        entry = self._index.get(digest)
        if entry is None or digest not in self._well_formed:
            return self._checked(raw, entry, now)
        if entry.status == "active":
            return None, entry
        return _inactive(entry, now)

    def verify_ascii(self, raw: bytes, now: datetime) -> tuple[str | None, IndexEntry | None]:
        """verify() for a key's bytes, as a request body holds them."""
        digest = _sha256(raw).digest()
        entry = self._index.get(digest)
        if entry is None or digest not in self._well_formed:
            return self._checked(raw, entry, now)
        if entry.status == "active":
            return None, entry
        return _inactive(entry, now)

    def _checked(
        self, raw: bytes, entry: IndexEntry | None, now: datetime
    ) -> tuple[str | None, IndexEntry | None]:
        """The format check, for a key not known to have passed it: its first time, or junk."""
        if not is_well_formed_ascii(raw):
            return _MALFORMED
        if entry is None:
            return _UNKNOWN
        # a key whose sha-256 matches this entry's is this very key: check it once
        self._well_formed.add(entry.digest)
        if entry.status == "active":
            return None, entry
        return _inactive(entry, now)

    def lookup(self, digest: bytes, now: datetime) -> tuple[str | None, IndexEntry | None]:
        """Verify by sha-256 alone: what a client sends so the key itself stays off the wire."""
        # no constant-time compare: the dict lookup has compared the digests already
        entry = self._index.get(digest)
        if entry is None:
            return _UNKNOWN
        if entry.status == "active":
            return None, entry
        return _inactive(entry, now)

    def _index_event(self, account_id: str, event: AccountEvent) -> None:
        match event:
            case KeyGenerated(key_id=key_id, fingerprint=fp):
                self._add(account_id, key_id, fp)
            case KeyRotated(old_key_id=old, new_key_id=new, fingerprint=fp, grace_until=until):
                self._retire(account_id, old, grace_until=until)
                self._add(account_id, new, fp)
            case KeyDeactivated(key_id=key_id):
                self._deactivate(account_id, key_id)

    def _deactivate(self, account_id: str, key_id: str) -> None:
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


_MALFORMED: Final = ("malformed", None)
_UNKNOWN: Final = ("unknown", None)


def _inactive(entry: IndexEntry, now: datetime) -> tuple[str | None, IndexEntry | None]:
    if entry.status == "grace" and entry.grace_until is not None:
        return (None if now < entry.grace_until else "expired"), entry
    return "deactivated", entry
