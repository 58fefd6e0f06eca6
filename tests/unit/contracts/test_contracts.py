"""Contracts: calendar months, the hash chain, strict commands and tolerant events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts.calendar import add_months, in_span
from contracts.envelope import chain_hash
from contracts.keys import KeyGenerated, RotateKey


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 5, datetime(2026, 6, 30, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 5, datetime(2026, 8, 31, tzinfo=UTC)),
        (datetime(2026, 9, 30, tzinfo=UTC), 5, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2027, 9, 30, tzinfo=UTC), 5, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2026, 11, 15, 8, 30, tzinfo=UTC), 2, datetime(2027, 1, 15, 8, 30, tzinfo=UTC)),
        (datetime(2026, 5, 1, tzinfo=UTC), 0, datetime(2026, 5, 1, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_the_last_day(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9000, 1, 1, tzinfo=UTC),
        datetime.fromisoformat("0001-01-01T00:00:00+05:00"),  # no UTC datetime at all
        datetime.fromisoformat("9999-12-31T23:59:59-05:00"),
    ],
)
def test_moments_outside_the_span_are_value_errors_not_overflows(moment: datetime) -> None:
    with pytest.raises(ValueError, match="must lie between"):
        in_span(moment)


def test_moments_inside_the_span_come_back_in_utc() -> None:
    late = datetime.fromisoformat("8999-12-31T23:59:59+01:00")
    assert in_span(late) == datetime(8999, 12, 31, 22, 59, 59, tzinfo=UTC)
    assert in_span(datetime(1970, 1, 1)) == datetime(1970, 1, 1, tzinfo=UTC)


def test_chain_hash_ignores_its_own_field_and_sees_every_other() -> None:
    event = {"a": 1, "payload": {"b": "x"}, "prev_hash": "0" * 64}
    digest = chain_hash(event)
    assert chain_hash(event | {"hash": "whatever"}) == digest
    assert chain_hash(event | {"payload": {"b": "y"}}) != digest
    assert chain_hash(event | {"prev_hash": "1" * 64}) != digest


def test_commands_refuse_unknown_fields_and_wrong_types() -> None:
    with pytest.raises(ValidationError):
        RotateKey.model_validate_json('{"account_id": "a", "actor": "b", "confirm": "yes"}')
    with pytest.raises(ValidationError):
        RotateKey.model_validate_json('{"account_id": "a", "actor": "b", "extra": 1}')
    with pytest.raises(ValidationError):
        RotateKey.model_validate_json('{"account_id": "a.b", "actor": "b"}')


def test_event_readers_ignore_fields_they_do_not_know() -> None:
    event = KeyGenerated.model_validate(
        {"key_id": "k", "hint": "h", "fingerprint": "f", "added_later": True}
    )
    assert event.key_id == "k"
