"""Pure rules of the call log: the 7-day window, filters, cursors, buckets, record checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from contracts.calllog import (
    STATUS_CLASSES,
    CallRecorded,
    ListCalls,
    recorded_subject,
    stored_subject,
)
from contracts.replies import ErrorCode
from services.common.errors import Refused, describe
from services.common.micros import from_micros, to_micros

if TYPE_CHECKING:
    from datetime import datetime

US = 1_000_000
MAX_INT64 = 2**63 - 1  # the ts_us column (BIGINT): a larger cursor would overflow the driver
BUCKET_US = {"hour": 3600 * US, "day": 86400 * US}
Reason = Literal["malformed", "duplicate_key", "subject_mismatch"]
REASONS: tuple[Reason, ...] = ("malformed", "duplicate_key", "subject_mismatch")


class DomainError(Refused):
    """A refusal with a stable reply code."""


def invalid(message: str) -> DomainError:
    return DomainError(ErrorCode.INVALID_REQUEST, message)


# ts_us is the representation every store keeps its times in (services/common/micros.py);
# the hot path writes the ints itself rather than going through the UtcMicros column type
to_us = to_micros
from_us = from_micros


def oldest_kept_us(now: datetime, retention_seconds: float) -> int:
    """Calls strictly newer than this are inside the window; one exactly 7 days old is out."""
    return to_us(now) - int(retention_seconds * US)


@dataclass(frozen=True)
class Bounds:
    """ts_us in [low, high): the window and the asked-for range, intersected."""

    low: int
    high: int
    since: datetime  # for display: the window's start or the later `since` asked for


def since_bounds(since: datetime | None, now: datetime, retention_seconds: float) -> Bounds:
    """The previous 7 days are (now - 7 d, now]; `since` can only narrow them."""
    oldest = oldest_kept_us(now, retention_seconds)
    low = oldest + 1 if since is None else max(oldest + 1, to_us(since))
    return Bounds(low, to_us(now) + 1, from_us(oldest if low == oldest + 1 else low))


def list_bounds(q: ListCalls, now: datetime, retention_seconds: float) -> Bounds:
    """The window narrowed by since and until."""
    if q.since is not None and q.until is not None and q.until <= q.since:
        raise invalid("until must be later than since")
    bounds = since_bounds(q.since, now, retention_seconds)
    if q.until is None:
        return bounds
    return Bounds(bounds.low, min(bounds.high, to_us(q.until)), bounds.since)


def status_range(text: str) -> tuple[int, int]:
    """`404` -> (404, 404); `4xx` -> (400, 499). The contract's pattern was checked before."""
    if text.endswith("xx"):
        base = int(text[0]) * 100
        return base, base + 99
    return int(text), int(text)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def encode_cursor(ts_us: int, call_id: str) -> str:
    """Keyset position (ts, call id) of the last row shown: later pages never shift."""
    return f"{ts_us}:{call_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    head, sep, call_id = cursor.partition(":")
    # isdigit() alone passes "²", which int() refuses
    digits = head.isascii() and head.isdigit() and len(head) <= 19
    if not sep or not call_id or not digits or int(head) > MAX_INT64:
        raise invalid("cursor: not a cursor from a previous page")
    return int(head), call_id


def bucket_starts(low_us: int, now_us: int, by: Literal["hour", "day"]) -> list[int]:
    """Start of every UTC hour/day from the one holding low_us to the one holding now_us."""
    size = BUCKET_US[by]
    first = low_us // size * size
    return list(range(first, now_us // size * size + 1, size))


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(STATUS_CLASSES, 0)


def error_rate(by_class: dict[str, int]) -> float:
    total = sum(by_class.values())
    errors = by_class.get("4xx", 0) + by_class.get("5xx", 0)
    return round(errors / total, 4) if total else 0.0


class Refusal(ValueError):
    """A record on CALLS that is not stored; `reason` is what the refusal is counted under."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def call_row(
    stream_seq: int, subject: str, raw: dict[str, Any] | None, partitions: int | None = None
) -> dict[str, Any]:
    """A stored row from a record on the stream; Refusal when it is not a CallRecorded, or
    names another account than the subject it is stored under (the subject is what the
    stream's permissions and purges act on: a call must be where its account is).

    partitions: the stream's partition count, so the subject must be the account's
    calls.recorded.<partition>.<account>; None: calls.recorded.<account> (before partitions).
    """
    if raw is None:
        raise Refusal("malformed", "not a JSON object")
    try:
        call = CallRecorded.model_validate(raw)
    except ValidationError as exc:
        raise Refusal("malformed", describe(exc)) from None
    expected = (
        recorded_subject(call.account_id)
        if partitions is None
        else stored_subject(call.account_id, partitions)
    )
    if subject != expected:
        raise Refusal("subject_mismatch", "the record names another account than its subject")
    return {
        "call_id": call.call_id,
        "account_id": call.account_id,
        "key_id": call.key_id,
        "ts_us": to_us(call.ts),
        "method": call.method,
        "path": call.path,
        "status": call.status,
        "duration_ms": call.duration_ms,
        "caller_ip": call.caller_ip,
        "user_agent": call.user_agent,
        "stream_seq": stream_seq,
    }
