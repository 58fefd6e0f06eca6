"""The console's pure rules: sessions, sudo, sign-in limiting, passwords, setup tokens. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.calendar import recommended_rotation

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes any length; a bound keeps one request's cost bounded
GRACES = {"none": 0, "1h": 3600, "24h": 86400, "7d": 604800}


@dataclass(frozen=True)
class Limits:
    """The time limits a deployment sets (ConsoleSettings), as durations."""

    session_idle: timedelta = timedelta(minutes=30)
    session_absolute: timedelta = timedelta(hours=12)
    sudo: timedelta = timedelta(minutes=10)
    setup_link: timedelta = timedelta(hours=24)
    max_failed_signins: int = 10
    lockout: timedelta = timedelta(minutes=15)


def session_alive(created_at: datetime, last_seen_at: datetime, now: datetime, lim: Limits) -> bool:
    """A session lives until it has been idle too long or has lived too long, whichever first."""
    return now - last_seen_at < lim.session_idle and now - created_at < lim.session_absolute


def in_sudo(sudo_until: datetime | None, now: datetime) -> bool:
    return sudo_until is not None and now < sudo_until


def sudo_until(now: datetime, lim: Limits) -> datetime:
    return now + lim.sudo


def locked_until(
    failures: int, last_failure_at: datetime, now: datetime, lim: Limits
) -> datetime | None:
    """When sign-in is possible again for a user or an address, or None if it is now.

    After `max_failed_signins` failures in a row, no password is checked until the lockout
    since the last failure has passed; a success resets the count.
    """
    if failures < lim.max_failed_signins:
        return None
    until = last_failure_at + lim.lockout
    return until if now < until else None


def failures_after_failure(
    failures: int, last_failure_at: datetime | None, now: datetime, lim: Limits
) -> int:
    """The count after one more failure; a lockout that has passed starts the count afresh."""
    stale = last_failure_at is not None and now >= last_failure_at + lim.lockout
    if stale and failures >= lim.max_failed_signins:
        return 1
    return failures + 1


def password_problem(user: str, password: str, repeated: str) -> str | None:
    """Why a new password is refused, or None."""
    if password != repeated:
        return "the two passwords differ"
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if password.casefold() == user.casefold():
        return "the password must not be the user name"
    return None


def setup_token_usable(expires_at: datetime, used: bool, now: datetime) -> bool:
    return not used and now < expires_at


def rotation_due(in_use_since: datetime, now: datetime) -> bool:
    """The recommended rotation date has come: the key panel highlights it."""
    return now >= recommended_rotation(in_use_since)


def age_text(since: datetime, now: datetime) -> str:
    """A key's age in words: '3 days', '5 hours', 'under a minute'."""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "under a minute"


def grace_seconds(choice: str) -> int | None:
    """The grace period a rotate form names (none / 1h / 24h / 7d), or None if unknown."""
    return GRACES.get(choice)
