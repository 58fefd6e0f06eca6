"""The console's pure rules: session expiry, sudo window, sign-in limits, tokens, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.console import domain
from services.console.domain import Limits

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LIM = Limits()


def test_a_session_lives_while_it_is_used_within_the_idle_limit() -> None:
    assert domain.session_alive(T0, T0 + timedelta(minutes=29), T0 + timedelta(minutes=58), LIM)


def test_a_session_idle_for_thirty_minutes_is_over() -> None:
    assert not domain.session_alive(T0, T0, T0 + timedelta(minutes=30), LIM)


def test_a_session_ends_after_twelve_hours_however_busy() -> None:
    almost = T0 + timedelta(hours=12) - timedelta(seconds=1)
    assert domain.session_alive(T0, almost, almost, LIM)
    assert not domain.session_alive(T0, almost, T0 + timedelta(hours=12), LIM)


def test_sudo_lasts_ten_minutes_from_the_confirmation() -> None:
    until = domain.sudo_until(T0, LIM)
    assert domain.in_sudo(until, T0 + timedelta(minutes=9, seconds=59))
    assert not domain.in_sudo(until, T0 + timedelta(minutes=10))
    assert not domain.in_sudo(None, T0)


def test_nine_failures_in_a_row_still_allow_a_try() -> None:
    assert domain.locked_until(9, T0, T0, LIM) is None


def test_ten_failures_in_a_row_lock_until_the_lockout_has_passed() -> None:
    assert domain.locked_until(10, T0, T0 + timedelta(minutes=1), LIM) == T0 + LIM.lockout
    assert domain.locked_until(10, T0, T0 + LIM.lockout, LIM) is None


def test_a_failure_after_a_lockout_has_passed_starts_the_count_again() -> None:
    assert domain.failures_after_failure(10, T0, T0 + LIM.lockout, LIM) == 1
    assert domain.failures_after_failure(10, T0, T0 + timedelta(minutes=1), LIM) == 11
    assert domain.failures_after_failure(3, T0, T0 + timedelta(days=1), LIM) == 4
    assert domain.failures_after_failure(0, None, T0, LIM) == 1


def test_a_setup_token_is_usable_once_and_only_before_it_expires() -> None:
    expires = T0 + LIM.setup_link
    assert domain.setup_token_usable(expires, False, T0 + timedelta(hours=23))
    assert not domain.setup_token_usable(expires, True, T0)
    assert not domain.setup_token_usable(expires, False, expires)


def test_passwords_need_twelve_characters_matching_twice_and_not_the_user_name() -> None:
    assert domain.password_problem("alice", "x" * 12, "x" * 12) is None
    assert domain.password_problem("alice", "x" * 11, "x" * 11) is not None
    assert domain.password_problem("alice", "x" * 12, "y" * 12) == "the two passwords differ"
    assert domain.password_problem("alicealice12", "ALICEALICE12", "ALICEALICE12") is not None
    assert domain.password_problem("alice", "x" * 1025, "x" * 1025) is not None


def test_rotation_is_due_six_months_after_the_key_came_into_use() -> None:
    assert not domain.rotation_due(T0, T0 + timedelta(days=180))
    assert domain.rotation_due(T0, datetime(2025, 9, 1, 12, 0, tzinfo=UTC))


def test_a_key_age_reads_in_the_largest_whole_unit() -> None:
    assert domain.age_text(T0, T0 + timedelta(seconds=30)) == "under a minute"
    assert domain.age_text(T0, T0 + timedelta(minutes=1)) == "1 minute"
    assert domain.age_text(T0, T0 + timedelta(hours=5, minutes=3)) == "5 hours"
    assert domain.age_text(T0, T0 + timedelta(days=3)) == "3 days"


def test_only_the_four_grace_choices_are_known() -> None:
    assert [domain.grace_seconds(c) for c in ("none", "1h", "24h", "7d")] == [
        0,
        3600,
        86400,
        604800,
    ]
    assert domain.grace_seconds("30d") is None
