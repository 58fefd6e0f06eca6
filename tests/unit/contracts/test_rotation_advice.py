"""The key reply and the reminder email take the rotation advice from one rule."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import calendar
from services.keys import domain as keys_domain
from services.keys import handlers as keys_handlers
from services.notifier import queries
from services.notifier.reminders import messages, publisher


def test_every_user_of_the_advice_shares_the_one_rule() -> None:
    users = (keys_domain, keys_handlers, messages, publisher, queries)
    assert all(user.recommended_rotation is calendar.recommended_rotation for user in users)


def test_the_advice_is_six_calendar_months_clamped_to_the_month_end() -> None:
    since = datetime(2025, 8, 31, 9, 0, tzinfo=UTC)
    assert calendar.recommended_rotation(since) == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
