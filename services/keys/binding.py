"""What a command id is bound to (its request), and when a command is too late to run."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from contracts.envelope import Via, canonical_json
from contracts.keys import COMMANDS, Command
from contracts.replies import ErrorCode
from services.keys.domain import DomainError

if TYPE_CHECKING:
    from datetime import datetime

    from services.keys.registry import Applied

VERBS: dict[type[Command], str] = {model: verb for verb, model in COMMANDS.items()}
# the verb behind each event type: events stored before request_digest existed are compared
# by verb and actor only
EVENT_VERBS = {
    "AccountOpened": "open_account",
    "SuperAdminGranted": "grant_admin",
    "SuperAdminRevoked": "revoke_admin",
    "KeyGenerated": "generate",
    "KeyViewed": "reveal",
    "KeyRotated": "rotate",
    "KeyDeactivated": "deactivate",
}
# how a request is delivered, not what it asks for: a retry may change these
DELIVERY = frozenset({"command_id", "correlation_id", "deadline"})


def request_digest(command: Command, via: Via | None) -> str:
    """sha-256 of the verb, the parameters and who vouched for them. Defaults are left out, so
    an explicit default (grace_seconds 0) is the same request as an omitted one, and a field
    added in a later version does not turn an old retry into a conflict. Commands carry no
    secret, so neither does this."""
    body = {
        "verb": VERBS[type(command)],
        "parameters": command.model_dump(mode="json", exclude=set(DELIVERY), exclude_defaults=True),
        "via": via.model_dump(mode="json") if via else None,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def check_reuse(command: Command, digest: str, done: Applied) -> None:
    """A command id already used: a genuine retry passes, another request is refused."""
    verb = VERBS[type(command)]
    if done.digest is not None:
        same = done.digest == digest
    else:
        actor = getattr(command, "actor", None) or getattr(command, "owner", None)
        same = EVENT_VERBS.get(done.event_type) == verb and done.actor == actor
    if same:
        return
    previous = EVENT_VERBS.get(done.event_type, done.event_type)
    raise DomainError(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        f"command id {command.command_id} already belongs to another request: {previous} by "
        f"{done.actor} at {_iso(done.occurred_at)}; nothing changed (use a new command id "
        "for a new request)",
    )


def check_deadline(command: Command, now: datetime) -> None:
    """Refuse a command whose client has stopped waiting: nobody would receive its answer."""
    deadline = command.deadline
    if deadline is None or now <= deadline:
        return
    try:
        late = f"{(now - deadline).total_seconds():.3f} s ago"
    except OverflowError:  # a deadline near year 1 in a positive offset
        late = "long ago"
    raise DomainError(
        ErrorCode.DEADLINE_EXCEEDED,
        f"the client's deadline {_iso(deadline)} passed {late}, before this command could run; "
        "nothing was done (if every command says so, compare the client's and server's clocks)",
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
