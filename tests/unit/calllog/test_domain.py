"""The call log's pure rules: the window edges, filters, cursors, buckets and record checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import keyformat
from contracts.calllog import (
    PARTITIONS,
    RETENTION_SECONDS,
    CallRecorded,
    ListCalls,
    partition_of,
    partition_transform,
    transform_partitions,
)
from services.calllog.domain import (
    DomainError,
    Refusal,
    bucket_starts,
    call_row,
    decode_cursor,
    encode_cursor,
    error_rate,
    from_us,
    list_bounds,
    oldest_kept_us,
    since_bounds,
    status_range,
    to_us,
)

NOW = datetime(2026, 3, 10, 12, 30, 15, tzinfo=UTC)
WEEK = timedelta(days=7)
SECOND = timedelta(seconds=1)


def inside(ts: datetime, **query: Any) -> bool:
    bounds = list_bounds(ListCalls(account_id="acme", **query), NOW, RETENTION_SECONDS)
    return bounds.low <= to_us(ts) < bounds.high


@pytest.mark.parametrize(
    ("age", "shown"),
    [
        (WEEK - SECOND, True),
        (WEEK - timedelta(microseconds=1), True),
        (WEEK, False),
        (WEEK + SECOND, False),
        (timedelta(0), True),
        (-SECOND, False),  # from a gateway whose clock runs ahead: shown once it is due
    ],
)
def test_the_window_is_the_previous_7_days(age: timedelta, shown: bool) -> None:
    assert inside(NOW - age) is shown


def test_since_and_until_only_narrow_the_window() -> None:
    assert not inside(NOW - WEEK - SECOND, since=NOW - 30 * WEEK)
    assert inside(NOW - timedelta(hours=2), since=NOW - timedelta(hours=3))
    assert not inside(NOW - timedelta(hours=4), since=NOW - timedelta(hours=3))
    assert not inside(NOW - timedelta(hours=1), until=NOW - timedelta(hours=1))
    assert inside(NOW - timedelta(hours=1, seconds=1), until=NOW - timedelta(hours=1))


def test_until_before_since_is_refused() -> None:
    query = ListCalls(account_id="acme", since=NOW, until=NOW - SECOND)
    with pytest.raises(DomainError, match="until must be later"):
        list_bounds(query, NOW, RETENTION_SECONDS)


def test_the_shown_start_is_the_window_or_the_later_since() -> None:
    window = list_bounds(ListCalls(account_id="acme"), NOW, RETENTION_SECONDS)
    assert window.since == NOW - WEEK
    later = list_bounds(ListCalls(account_id="acme", since=NOW - SECOND), NOW, RETENTION_SECONDS)
    assert later.since == NOW - SECOND


def test_since_alone_narrows_the_window_the_same_way() -> None:
    clamped = since_bounds(NOW - 30 * WEEK, NOW, RETENTION_SECONDS)
    assert (clamped.low, clamped.high, clamped.since) == (
        to_us(NOW - WEEK) + 1,
        to_us(NOW) + 1,
        NOW - WEEK,
    )
    assert since_bounds(NOW - SECOND, NOW, RETENTION_SECONDS).since == NOW - SECOND
    assert since_bounds(None, NOW, RETENTION_SECONDS) == clamped


@pytest.mark.parametrize(
    ("text", "expected"), [("404", (404, 404)), ("4xx", (400, 499)), ("1xx", (100, 199))]
)
def test_status_filters(text: str, expected: tuple[int, int]) -> None:
    assert status_range(text) == expected


def test_a_cursor_round_trips_and_junk_is_refused() -> None:
    assert decode_cursor(encode_cursor(123, "abc:def")) == (123, "abc:def")
    for junk in ("", "x:1", "12", "12:", "-1:a", "1" * 25 + ":a"):
        with pytest.raises(DomainError):
            decode_cursor(junk)


def test_microseconds_are_exact() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert from_us(to_us(moment)) == moment
    assert oldest_kept_us(NOW, RETENTION_SECONDS) == to_us(NOW - WEEK)


def test_buckets_cover_the_window_on_utc_boundaries() -> None:
    low = oldest_kept_us(NOW, RETENTION_SECONDS) + 1
    hours = bucket_starts(low, to_us(NOW), "hour")
    days = bucket_starts(low, to_us(NOW), "day")
    assert (len(hours), len(days)) == (169, 8)
    assert from_us(hours[0]) == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert from_us(days[-1]) == datetime(2026, 3, 10, tzinfo=UTC)


def test_error_rate_counts_4xx_and_5xx() -> None:
    assert error_rate({"2xx": 6, "4xx": 3, "5xx": 1}) == 0.4
    assert error_rate({"2xx": 0}) == 0.0


def record(**fields: Any) -> dict[str, Any]:
    base = {
        "call_id": "c1",
        "account_id": "acme",
        "key_id": "key_1",
        "ts": "2026-03-10T12:00:00+01:00",
        "method": "GET",
        "path": "/v1/ping",
        "status": 200,
        "duration_ms": 3.5,
    }
    return base | fields


def test_a_record_becomes_a_row_in_utc_without_a_query_string() -> None:
    key = keyformat.generate()
    raw = record(path=f"/v1/contacts/{key}?hapikey={key}#top", extra="ignored")
    row = call_row(9, "calls.recorded.acme", raw)
    assert row["path"] == "/v1/contacts/klk_[redacted]"
    assert row["ts_us"] == to_us(datetime(2026, 3, 10, 11, tzinfo=UTC))
    assert row["stream_seq"] == 9


@pytest.mark.parametrize(
    "raw",
    [
        None,
        record(ts="2026-03-10T12:00:00"),
        record(method="get"),
        record(status=700),
        record(account_id="a.b"),
        record(kind="KeyGenerated"),
        {"kind": "CallRecorded"},
    ],
)
def test_a_malformed_record_is_refused(raw: dict[str, Any] | None) -> None:
    with pytest.raises(Refusal) as refused:
        call_row(1, "calls.recorded.acme", raw)
    assert refused.value.reason == "malformed"


@pytest.mark.parametrize(
    "subject", ["calls.recorded.other", "calls.recorded.acme.x", "calls.recorded.acm"]
)
def test_a_record_naming_another_account_than_its_subject_is_refused(subject: str) -> None:
    with pytest.raises(Refusal) as refused:
        call_row(1, subject, record())
    assert refused.value.reason == "subject_mismatch"


def test_a_refusal_never_echoes_a_value() -> None:
    key = keyformat.generate()
    with pytest.raises(Refusal) as refused:
        call_row(1, "calls.recorded.acme", record(status=key, method=key))
    assert key not in str(refused.value)


def test_the_user_agent_is_cut_and_redacted() -> None:
    key = keyformat.generate()
    call = CallRecorded.model_validate(record(user_agent=f"bot {key} " + "x" * 1000))
    assert call.user_agent is not None
    assert key not in call.user_agent
    assert len(call.user_agent) == 512


def test_a_partitioned_record_must_be_stored_in_its_accounts_partition() -> None:
    home = partition_of("acme", PARTITIONS)
    assert call_row(1, f"calls.recorded.{home}.acme", record(), PARTITIONS)["account_id"] == "acme"
    for subject in (
        f"calls.recorded.{(home + 1) % PARTITIONS}.acme",  # another partition
        "calls.recorded.acme",  # the form from before partitions, on the partitioned path
        f"calls.recorded.{home}.other",
    ):
        with pytest.raises(Refusal) as refused:
            call_row(1, subject, record(), PARTITIONS)
        assert refused.value.reason == "subject_mismatch"


@pytest.mark.parametrize(
    ("account", "partitions", "expected"),
    # nats-server's {{partition(n,1)}}: FNV-1a 32 of the token, mod n (checked against a
    # real server in tests/integration/test_calllog_partitions.py)
    [("acme", 8, 0x45FD71AF % 8), ("a", 8, 0xE40C292C % 8), ("acct-1", 1, 0)],
)
def test_the_partition_of_an_account_is_nats_servers(
    account: str, partitions: int, expected: int
) -> None:
    assert partition_of(account, partitions) == expected


def test_the_partition_count_is_read_back_from_the_transform() -> None:
    assert transform_partitions(partition_transform(16)[1]) == 16
    assert transform_partitions(None) is None
    assert transform_partitions("calls.recorded.{{wildcard(1)}}") is None
