"""Pure reminder rules: the milestone schedule, recipients, reminder ids and the retry policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from contracts.calendar import add_months

if TYPE_CHECKING:
    from collections.abc import Iterable

Channel = Literal["email", "sidebar"]
FIRST_EMAIL = 5  # months in use: the first email
FIRST_SIDEBAR = 6  # the first sidebar notification
EVERY = 6  # then email and sidebar every six months: 12, 18, 24 ...
_IDS = uuid.UUID("6b1d3c1e-8f0a-4c55-9a57-6e6f74696679")  # namespace of reminder ids


def channels_at(months: int) -> tuple[Channel, ...]:
    """What a milestone sends; () for a month that is not a milestone."""
    if months == FIRST_EMAIL:
        return ("email",)
    if months == FIRST_SIDEBAR:
        return ("sidebar",)
    if months >= 2 * EVERY and months % EVERY == 0:
        return ("email", "sidebar")
    return ()


def next_milestone(after: int) -> int:
    """The first milestone strictly after `after` months in use (0 -> 5 -> 6 -> 12 -> 18)."""
    if after < FIRST_EMAIL:
        return FIRST_EMAIL
    if after < FIRST_SIDEBAR:
        return FIRST_SIDEBAR
    return (after // EVERY + 1) * EVERY


def due_at(in_use_since: datetime, months: int) -> datetime:
    """Calendar months in UTC, clamped to the month's end (31 Mar + 5 months = 31 Aug)."""
    return add_months(in_use_since, months)


def months_in_use(in_use_since: datetime, now: datetime) -> int:
    """Whole calendar months m with due_at(since, m) <= now; 0 before the first."""
    months = (now.year - in_use_since.year) * 12 + now.month - in_use_since.month
    # the candidate lands in now's own month; if it is still ahead, the month before is not
    if months > 0 and add_months(in_use_since, months) > now:
        months -= 1
    return max(months, 0)


def latest_due(in_use_since: datetime, now: datetime) -> int | None:
    """The latest milestone reached at `now`; None before the first one."""
    months = months_in_use(in_use_since, now)
    if months < FIRST_EMAIL:
        return None
    if months < FIRST_SIDEBAR:
        return FIRST_EMAIL
    return months // EVERY * EVERY


@dataclass(frozen=True, slots=True)
class Step:
    """What one sweep does for one due key: send `milestone`, then wait for `next_months`."""

    milestone: int
    channels: tuple[Channel, ...]
    next_months: int
    next_due_at: datetime


def step(in_use_since: datetime, next_months: int, now: datetime) -> Step | None:
    """The key's due milestone, if any: only the latest one reached, never a burst of them.

    A key first seen (or swept) long after its milestones passed gets the latest milestone's
    reminders once; the missed earlier ones are not sent late.
    """
    if due_at(in_use_since, next_months) > now:
        return None
    milestone = latest_due(in_use_since, now)
    if milestone is None or milestone < next_months:
        return None
    following = next_milestone(milestone)
    return Step(milestone, channels_at(milestone), following, due_at(in_use_since, following))


def upcoming(
    in_use_since: datetime, next_months: int, now: datetime, count: int = 3
) -> list[tuple[int, datetime]]:
    """The next milestones a sweep at or after `now` would send, with their due dates."""
    current = step(in_use_since, next_months, now)
    months = current.milestone if current else next_months
    found: list[tuple[int, datetime]] = []
    while len(found) < count:
        found.append((months, due_at(in_use_since, months)))
        months = next_milestone(months)
    return found


@dataclass(frozen=True, slots=True)
class Person:
    """Someone of an account the projection knows: an email, and whether a super-admin now."""

    user: str
    email: str | None
    admin: bool


def recipients(people: Iterable[Person], last_creator: str) -> list[Person]:
    """Current super-admins plus the key's last creator, one entry per person, by user id."""
    chosen = {p.user: p for p in people if p.admin or p.user == last_creator}
    chosen.setdefault(last_creator, Person(last_creator, None, admin=False))
    return [chosen[user] for user in sorted(chosen)]


def reminder_id(key_id: str, milestone: int, channel: Channel, user: str) -> str:
    """The same reminder always gets the same id: the claim key, Nats-Msg-Id and Message-ID."""
    return str(uuid.uuid5(_IDS, f"{key_id}/{milestone}/{channel}/{user}"))


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """An account's key in use, as the projection knows it (no secret: a hint only)."""

    account_id: str
    key_id: str
    hint: str
    in_use_since: datetime
    last_creator: str
    source_event_id: str


@dataclass(frozen=True, slots=True)
class Reminder:
    """One message to one person about one key's milestone on one channel."""

    reminder_id: str
    account_id: str
    key_id: str
    key_hint: str
    in_use_since: datetime
    source_event_id: str
    milestone: int
    channel: Channel
    recipient: str
    email: str | None
    due_at: datetime


def plan(key: ActiveKey, milestone: int, people: Iterable[Person]) -> list[Reminder]:
    """Every reminder a milestone of this key sends: each channel to each recipient."""
    chosen = recipients(people, key.last_creator)
    return [
        Reminder(
            reminder_id=reminder_id(key.key_id, milestone, channel, person.user),
            account_id=key.account_id,
            key_id=key.key_id,
            key_hint=key.hint,
            in_use_since=key.in_use_since,
            source_event_id=key.source_event_id,
            milestone=milestone,
            channel=channel,
            recipient=person.user,
            email=person.email,
            due_at=due_at(key.in_use_since, milestone),
        )
        for channel in channels_at(milestone)
        for person in chosen
    ]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff from `base` seconds, capped; max_attempts None: never give up."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int | None = None

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 * base is past any cap
        return timedelta(seconds=min(self.base * 2**exponent, self.cap))

    def gives_up(self, attempts: int, *, permanent: bool) -> bool:
        """True when a failure is final: refused for good, or out of attempts."""
        return permanent or (self.max_attempts is not None and attempts >= self.max_attempts)
