"""The notifier's contract: ReminderSent on the NOTIFY stream, its queries, commands and results."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.calendar import in_span
from contracts.envelope import Contract
from contracts.keys import AccountId, UserId
from contracts.streams import StreamSpec

Channel = Literal["email", "sidebar"]
ReminderState = Literal["claimed", "delivered", "failed", "cancelled"]
ReminderId = Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]

TIME_TRAVEL_DISABLED = "time_travel_disabled"  # stable code: a sweep as of the future was refused
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- the event (payload of Envelope on notify.events.<account_id>) -----------------------


class ReminderSent(Contract):
    """A reminder reached its recipient: by mail (handed to SMTP) or in the sidebar inbox."""

    kind: Literal["ReminderSent"] = "ReminderSent"
    reminder_id: str = Field(description="deterministic: uuid5 of key, milestone, channel, user")
    key_id: str
    key_hint: str = Field(description="display hint only; never the key")
    in_use_since: datetime
    milestone_months: int
    channel: Channel
    recipient: str = Field(description="user id")
    email: str | None = Field(default=None, description="the address, for the email channel")
    due_at: datetime
    recommended_rotation_at: datetime
    delivered_at: datetime


EVENT_VERSION = 1


# --- queries and commands (requests on notify.query.<name> / notify.cmd.<verb>) ----------


class Request(BaseModel):
    """Validated strictly: unknown fields and wrong types are refused with invalid_request."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _utc(value: Any) -> Any:
    """ISO 8601 date or date-time; a date means midnight UTC, a naive time means UTC; only
    inside the contracts' span of time (reminders are computed months beyond it)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date or date-time string")
    try:
        if _DATE_ONLY.match(value):
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        # the value is not echoed: whatever was pasted here might be a key
        raise ValueError("not an ISO 8601 date or date-time, e.g. 2026-05-01T12:00:00Z") from None
    return in_span(moment)


class SidebarQuery(Request):
    user: UserId
    account_id: AccountId | None = None
    unread_only: bool = False
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class MarkRead(Request):
    user: UserId
    ids: Annotated[list[ReminderId], Field(min_length=1, max_length=500)]


class Sweep(Request):
    as_of: datetime | None = Field(
        default=None, description="sweep as if it were then; the future needs time travel on"
    )

    parse_as_of = field_validator("as_of", mode="before")(_utc)


class RemindersQuery(Request):
    account_id: AccountId
    as_of: datetime | None = None

    parse_as_of = field_validator("as_of", mode="before")(_utc)


# --- results -----------------------------------------------------------------------------


class SidebarItem(Contract):
    id: str
    account_id: str
    key_id: str
    key_hint: str
    milestone_months: int
    title: str
    message: str
    created_at: datetime
    read_at: datetime | None = None


class SidebarPage(Contract):
    user: str
    items: list[SidebarItem]


class MarkReadResult(Contract):
    user: str
    marked: list[str] = Field(description="ids now read (read before or just now)")
    unknown: list[str] = Field(description="ids that are not this user's notifications")


class SweepResult(Contract):
    as_of: datetime
    due_keys: int
    claimed: int = Field(description="new reminders claimed by this sweep")
    delivered: int
    retrying: int = Field(description="deliveries that failed for now and will be retried")
    failed: int = Field(description="deliveries that failed for good in this sweep")
    cancelled: int = Field(description="reminders dropped because their key is no longer active")
    published: int = Field(description="ReminderSent events appended to NOTIFY")
    waiting: int = Field(description="claims left for later: backing off or leased elsewhere")


class ReminderStatus(Contract):
    id: str
    key_id: str
    milestone_months: int
    channel: Channel
    recipient: str
    email: str | None = None
    due_at: datetime
    state: ReminderState
    attempts: int
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None


class UpcomingReminder(Contract):
    milestone_months: int
    due_at: datetime
    channels: list[Channel]
    recipients: list[str]


class ActiveKeyInfo(Contract):
    key_id: str
    hint: str
    in_use_since: datetime
    last_creator: str
    age_days: int
    age_months: int
    recommended_rotation_at: datetime


class RemindersResult(Contract):
    account_id: str
    as_of: datetime
    key: ActiveKeyInfo | None = None
    reminders: list[ReminderStatus]
    upcoming: list[UpcomingReminder]


# --- subjects and stream -----------------------------------------------------------------

SERVICE_QUEUE = "notifier"
KEYS_DURABLE = "notifier-keys"
# the tracking row of the projection KEYS_DURABLE feeds (services/notifier/projection.py)
KEYS_TRACKING = "notifier-keys-chained"
ALL_EVENTS = "notify.events.>"


def event_subject(account_id: str) -> str:
    return f"notify.events.{account_id}"


def command_subject(verb: str) -> str:
    return f"notify.cmd.{verb}"


def query_subject(name: str) -> str:
    return f"notify.query.{name}"


# a republish after a crash between append and bookkeeping is dropped within a day
NOTIFY_STREAM = StreamSpec(name="NOTIFY", subjects=(ALL_EVENTS,), duplicate_window_seconds=86400)
