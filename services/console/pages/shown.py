"""How the page areas print times and failures: UTC text, and a message for each failure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keyledger.client import Refused, Unreachable

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

routes: list[BaseRoute] = []  # helpers of other page areas: no page of their own


def moment(value: Any) -> datetime | None:
    """An RFC 3339 text (as replies carry them) or a datetime, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def utc(value: Any) -> str:
    """`2026-05-01 12:03:04 UTC`, or an empty text for none."""
    found = moment(value)
    return found.strftime("%Y-%m-%d %H:%M:%S UTC") if found else ""


def failure(exc: Refused | Unreachable) -> str:
    """What a person is told: the service's own message, or that it did not answer."""
    if isinstance(exc, Refused):
        return exc.message
    return "The service did not answer; try again in a moment."


def status_of(exc: Refused | Unreachable) -> int:
    """400 for a request the service found invalid, 409 for another refusal, 503 unreachable."""
    if isinstance(exc, Unreachable):
        return 503
    return 400 if exc.code == "invalid_request" else 409
