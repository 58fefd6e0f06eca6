"""What travels where: every subject with its request and reply, every stream with its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts import calllog, checkpoints, keys, notifier, replies

if TYPE_CHECKING:
    from pydantic import BaseModel

HEALTH = "Health"  # a request or result name with no model: any object in, a dict out


@dataclass(frozen=True)
class Served:
    """A request/reply subject: the request's model and the `result` of a success reply."""

    subject: str
    request: str
    result: str
    description: str


@dataclass(frozen=True)
class Stream:
    """A stream's subject pattern, the envelope (or record) on it and its Nats-Msg-Id scheme."""

    name: str
    subject: str
    schema: str
    events: tuple[type[BaseModel], ...]
    msg_id: str
    writer: str
    stored: str = ""  # the subject the stream stores a message under, if not the published one


_MODELS: tuple[type[BaseModel], ...] = (
    *keys.COMMANDS.values(),
    keys.AuditQuery,
    keys.KeyQuery,
    keys.AccountsQuery,
    keys.VerifyRequest,
    keys.AccountResult,
    keys.KeyResult,
    keys.DeactivateResult,
    keys.LiveKey,
    keys.UserAccounts,
    keys.VerifyResult,
    keys.AuditPage,
    notifier.SidebarQuery,
    notifier.MarkRead,
    notifier.RemindersQuery,
    notifier.Sweep,
    notifier.SidebarPage,
    notifier.MarkReadResult,
    notifier.RemindersResult,
    notifier.SweepResult,
    calllog.ListCalls,
    calllog.CallStatsQuery,
    calllog.LastUsedQuery,
    calllog.ClientsQuery,
    calllog.CallPage,
    calllog.CallStats,
    calllog.LastUsed,
    calllog.KeyClients,
)
MODELS: dict[str, type[BaseModel]] = {m.__name__: m for m in _MODELS}

_KEY_RESULT = {"generate": "KeyResult", "reveal": "KeyResult", "rotate": "KeyResult"}
SERVED: list[Served] = [
    *[
        Served(
            keys.command_subject(verb),
            model.__name__,
            "DeactivateResult" if verb == "deactivate" else _KEY_RESULT.get(verb, "AccountResult"),
            f"keys command {verb}",
        )
        for verb, model in keys.COMMANDS.items()
    ],
    Served(keys.query_subject("audit"), "AuditQuery", "AuditPage", "an account's audit log"),
    Served(keys.query_subject("key"), "KeyQuery", "LiveKey", "the live key's metadata"),
    Served(keys.query_subject("accounts"), "AccountsQuery", "UserAccounts", "a user's accounts"),
    Served(keys.query_subject("health"), HEALTH, HEALTH, "the keys service's health"),
    Served(keys.VERIFY_SUBJECT, "VerifyRequest", "VerifyResult", "is this key valid now"),
    Served(notifier.query_subject("sidebar"), "SidebarQuery", "SidebarPage", "sidebar inbox"),
    Served(notifier.query_subject("reminders"), "RemindersQuery", "RemindersResult", "reminders"),
    Served(notifier.query_subject("health"), HEALTH, HEALTH, "the notifier's health"),
    Served(notifier.command_subject("mark_read"), "MarkRead", "MarkReadResult", "mark read"),
    Served(notifier.command_subject("sweep"), "Sweep", "SweepResult", "send what is due now"),
    Served(calllog.query_subject("list"), "ListCalls", "CallPage", "a page of recorded calls"),
    Served(calllog.query_subject("stats"), "CallStatsQuery", "CallStats", "call statistics"),
    Served(calllog.query_subject("last_used"), "LastUsedQuery", "LastUsed", "a key's last use"),
    Served(calllog.query_subject("clients"), "ClientsQuery", "KeyClients", "a key's callers"),
    Served(calllog.query_subject("health"), HEALTH, HEALTH, "the call log's health"),
]

STREAMS: list[Stream] = [
    Stream(
        "KEYS",
        keys.event_subject("{account_id}"),
        "Envelope",
        (
            keys.AccountOpened,
            keys.SuperAdminGranted,
            keys.SuperAdminRevoked,
            keys.KeyGenerated,
            keys.KeyViewed,
            keys.KeyRotated,
            keys.KeyDeactivated,
        ),
        "<account_id>:<command_id>: a retried command is appended once",
        "the keys service",
    ),
    Stream(
        "NOTIFY",
        notifier.event_subject("{account_id}"),
        "NotifyEnvelope",
        (notifier.ReminderSent,),
        "the reminder id (a hyphenated uuid5 of key, milestone, channel and user): a reminder "
        "is appended once",
        "the notifier",
    ),
    Stream(
        "CALLS",
        calllog.recorded_subject("{account_id}"),
        "CallRecorded",
        (calllog.CallRecorded,),
        "the record's call_id: a gateway's retry after a lost ack is stored once",
        "every gateway",
        # CALLS's subject transform puts the account's partition in: FNV-1a 32 of the
        # account id, mod the stream's partition count (records from before: as published)
        calllog.STORED_PATTERN,
    ),
    Stream(
        "CHECKPOINTS",
        "checkpoints.{stream}",
        "Checkpoint",
        (checkpoints.Checkpoint,),
        "<STREAM>:<last_seq>: one checkpoint per covered sequence, whichever replica wins; "
        "each append also expects the subject's last sequence, so the chain never forks",
        "the keys service (checkpoints.keys) and the notifier (checkpoints.notify)",
    ),
]

ERROR_CODES: dict[str, str] = {
    replies.ErrorCode.INVALID_REQUEST: "the request is not valid JSON or does not match its schema",
    replies.ErrorCode.NOT_AUTHORIZED: "the actor is not a super-admin of the account",
    replies.ErrorCode.UNKNOWN_ACCOUNT: "no such account",
    replies.ErrorCode.ACCOUNT_EXISTS: "an account with that id is open already",
    replies.ErrorCode.NO_ACTIVE_KEY: "the account has no live key",
    replies.ErrorCode.KEY_ALREADY_ACTIVE: "the account has a live key already: rotate it",
    replies.ErrorCode.CONFIRMATION_REQUIRED: "the command needs confirm: true",
    replies.ErrorCode.LAST_SUPER_ADMIN: "the account's last super-admin cannot be revoked",
    replies.ErrorCode.ALREADY_SUPER_ADMIN: "the user is a super-admin already",
    replies.ErrorCode.NOT_SUPER_ADMIN: "the user is no super-admin of the account",
    replies.ErrorCode.CONFLICT: "another command changed the account first: retry",
    replies.ErrorCode.IDEMPOTENCY_CONFLICT: "the command id was used for another request",
    replies.ErrorCode.DEADLINE_EXCEEDED: "the command reached the service after its deadline",
    replies.ErrorCode.SUPERSEDED: "the key the command named is no longer the live one",
    replies.ErrorCode.KEY_UNAVAILABLE: "the key is gone (rotated, deactivated or not stored)",
    replies.ErrorCode.UNAVAILABLE: "a dependency (database, stream) cannot be reached now",
    replies.ErrorCode.INTERNAL: "an unexpected error; the service logged it",
    notifier.TIME_TRAVEL_DISABLED: "a sweep as of the future needs time travel switched on",
}
