"""Registry.apply's fast path: stored events of the usual shape folded without pydantic."""

# A payload whose fields all have the exact JSON types the contract reads is folded here with
# the same results, in the same order, as Registry.apply_validated (evolve, the retry memory,
# the indexes): validation could only have produced these values. Anything else (a missing or
# mistyped field, a KeyRotated with a grace period, an unknown kind) is declined and takes that
# validating path, so an invalid event is skipped with the same reason as before.

from __future__ import annotations

from dataclasses import fields, make_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from services.keys.domain import AccountState, ActiveKey, KeyChange
from services.keys.entries import Applied

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.keys.registry import Registry

    Step = Callable[[Registry, int, str, dict[str, Any], dict[str, Any]], bool]

_fromiso = datetime.fromisoformat


def _builder(cls: type) -> Callable[..., Any]:
    """A plain slotted twin of a frozen dataclass: its __init__ stores each field directly,
    where the frozen one calls object.__setattr__ per field (twice as slow, and replay
    builds an AccountState, and an Applied, per event). An instance becomes a `cls` by
    assigning __class__, which Python allows between classes with the same slots."""
    twin: Callable[..., Any] = make_dataclass(
        f"_{cls.__name__}Builder", [f.name for f in fields(cls)], slots=True, eq=False
    )
    twin(*(None for _ in fields(cls))).__class__ = cls  # TypeError now if the slots differ
    return twin


_new_state, _new_applied = _builder(AccountState), _builder(Applied)
_new_key, _new_change = _builder(ActiveKey), _builder(KeyChange)


def build_active(key_id: str, hint: str, fp: str, at: datetime, actor: str) -> ActiveKey:
    """ActiveKey(key_id, hint, fp, at, actor), built by its twin."""
    key = _new_key(key_id, hint, fp, at, actor)
    key.__class__ = ActiveKey
    return key  # type: ignore[no-any-return]


def build_change(how: str, actor: str, at: datetime) -> KeyChange:
    """KeyChange(how, actor, at), built by its twin."""
    change = _new_change(how, actor, at)
    change.__class__ = KeyChange
    return change  # type: ignore[no-any-return]


def build_state(
    account_id: str,
    version: int,
    last_hash: str,
    opened: bool,
    admins: frozenset[str],
    active: ActiveKey | None,
    change: KeyChange | None,
) -> AccountState:
    """AccountState(...), built by its twin (a snapshot's restore builds one per account)."""
    state = _new_state(account_id, version, last_hash, opened, admins, active, change)
    state.__class__ = AccountState
    return state  # type: ignore[no-any-return]


def fold(registry: Registry, stream_seq: int, account_id: str, raw: dict[str, Any]) -> bool:
    """Fold `raw` if its payload has the usual shape (True); False: nothing was touched."""
    p = raw["payload"]
    if type(p) is not dict:
        return False
    kind = p.get("kind")
    if kind == "KeyViewed":  # most of KEYS (one per reveal): _viewed inline, a call less
        key_id = p.get("key_id")
        if type(key_id) is not str or type(p.get("hint", "")) is not str:
            return False
        at = _fromiso(raw["occurred_at"])
        b = registry.accounts.get(account_id) or registry.state(account_id)
        sequence, actor, event_hash = raw["sequence"], raw["actor"], raw["hash"]
        after = _new_state(
            account_id, sequence, event_hash, b.opened, b.admins, b.active, b.key_change
        )
        after.__class__ = AccountState
        # _commit inline
        registry.accounts[account_id] = after
        registry.subject_seq[account_id] = stream_seq
        if stream_seq > registry.last_seq:  # max() would cost a call per event
            registry.last_seq = stream_seq
        if stream_seq > registry.remember_after:
            done = _new_applied(
                "KeyViewed", key_id, at, None, None, actor, raw.get("request_digest"), stream_seq
            )
            done.__class__ = Applied
            registry._remember(account_id, raw["causation_id"], done)
        return True
    step = _STEPS.get(kind) if type(kind) is str else None
    return step is not None and step(registry, stream_seq, account_id, raw, p)


def _keyed(
    reg: Registry,
    seq: int,
    account_id: str,
    raw: dict[str, Any],
    key: tuple[str, str, str],
    how: str,
    previous: str | None,
) -> None:
    """A new active key (key_id, hint, fingerprint) made `how`: the state and commit that
    KeyGenerated and KeyRotated share."""
    key_id, hint, fp = key
    at = _fromiso(raw["occurred_at"])
    b = reg.accounts.get(account_id) or reg.state(account_id)
    sequence, actor, event_hash = raw["sequence"], raw["actor"], raw["hash"]
    active, change = build_active(key_id, hint, fp, at, actor), build_change(how, actor, at)
    after = build_state(b.account_id, sequence, event_hash, b.opened, b.admins, active, change)
    kind = "KeyGenerated" if previous is None else "KeyRotated"
    _commit(reg, seq, account_id, raw, after, kind, key_id, at, previous, actor)


def _generated(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    key_id, hint, fp = p.get("key_id"), p.get("hint"), p.get("fingerprint")
    if type(key_id) is not str or type(hint) is not str or type(fp) is not str:
        return False
    _keyed(reg, seq, account_id, raw, (key_id, hint, fp), "generated", None)
    reg._add(account_id, key_id, fp)
    return True


def _rotated(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    old, new = p.get("old_key_id"), p.get("new_key_id")
    hint, fp = p.get("hint"), p.get("fingerprint")
    if type(old) is not str or type(new) is not str or type(hint) is not str:
        return False
    if type(fp) is not str or p.get("grace_until") is not None:  # a time: pydantic parses it
        return False
    _keyed(reg, seq, account_id, raw, (new, hint, fp), "rotated", old)
    reg._retire(account_id, old, grace_until=None)
    reg._add(account_id, new, fp)
    return True


def _deactivated(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    key_id = p.get("key_id")
    if type(key_id) is not str or type(p.get("hint", "")) is not str:
        return False
    at = _fromiso(raw["occurred_at"])
    b = reg.accounts.get(account_id) or reg.state(account_id)
    sequence, actor, event_hash = raw["sequence"], raw["actor"], raw["hash"]
    change = build_change("deactivated", actor, at)
    after = build_state(b.account_id, sequence, event_hash, b.opened, b.admins, None, change)
    _commit(reg, seq, account_id, raw, after, "KeyDeactivated", key_id, at, None, actor)
    reg._deactivate(account_id, key_id)
    return True


def _opened(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    owner = p.get("owner")
    if type(owner) is not str or type(p.get("owner_email")) is not str:
        return False
    return _admins(reg, seq, account_id, raw, "AccountOpened", "open", owner)


def _granted(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    user = p.get("user")
    if type(user) is not str or type(p.get("email")) is not str:
        return False
    return _admins(reg, seq, account_id, raw, "SuperAdminGranted", "add", user)


def _revoked(reg: Registry, seq: int, account_id: str, raw: dict[str, Any], p: Any) -> bool:
    user = p.get("user")
    if type(user) is not str:
        return False
    return _admins(reg, seq, account_id, raw, "SuperAdminRevoked", "remove", user)


def _admins(
    reg: Registry, seq: int, account_id: str, raw: dict[str, Any], kind: str, how: str, user: str
) -> bool:
    at = _fromiso(raw["occurred_at"])
    b = reg.accounts.get(account_id) or reg.state(account_id)
    sequence, actor, event_hash = raw["sequence"], raw["actor"], raw["hash"]
    opened, admins = b.opened, b.admins
    if how == "open":
        opened, admins = True, frozenset({user})
    elif how == "add":
        admins = admins | {user}
    else:
        admins = admins - {user}
    after = build_state(b.account_id, sequence, event_hash, opened, admins, b.active, b.key_change)
    _commit(reg, seq, account_id, raw, after, kind, None, at, None, actor)
    reg._index_admins(account_id, b.admins, admins)  # a new set each time, as evolve makes
    return True


def _commit(
    reg: Registry,
    seq: int,
    account_id: str,
    raw: dict[str, Any],
    after: AccountState,
    kind: str,
    key_id: str | None,
    at: datetime,
    previous: str | None,
    actor: str,
) -> None:
    """What apply_validated does between evolve and the indexes, in the same order."""
    reg.accounts[account_id] = after
    reg.subject_seq[account_id] = seq
    if seq > reg.last_seq:
        reg.last_seq = seq
    if seq > reg.remember_after:
        digest = raw.get("request_digest")
        done = _new_applied(kind, key_id, at, previous, None, actor, digest, seq)
        done.__class__ = Applied
        reg._remember(account_id, raw["causation_id"], done)


_STEPS: Final[dict[str, Step]] = {
    "KeyGenerated": _generated,
    "KeyRotated": _rotated,
    "KeyDeactivated": _deactivated,
    "AccountOpened": _opened,
    "SuperAdminGranted": _granted,
    "SuperAdminRevoked": _revoked,
}
