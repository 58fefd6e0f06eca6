"""calls.query.stats and calls.query.last_used refuse a bad request with invalid_request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from contracts.calllog import query_subject

if TYPE_CHECKING:
    from tests.component.calllog.conftest import Ask

SUBJECTS = [query_subject("stats"), query_subject("last_used")]
GOOD = b'{"account_id": "acct-1", "key_id": "key_1"'  # closed by each test


def refused(reply: dict[str, object]) -> bool:
    error = reply.get("error")
    return reply["ok"] is False and isinstance(error, dict) and error["code"] == "invalid_request"


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_a_well_formed_request_is_answered(ask: Ask, subject: str) -> None:
    assert (await ask(subject, GOOD + b"}"))["ok"] is True


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_malformed_json_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, GOOD))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_an_empty_body_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, b""))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_a_json_array_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, b'["acct-1", "key_1"]'))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_a_number_for_the_account_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, b'{"account_id": 7, "key_id": "key_1"}'))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_an_unknown_field_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, GOOD + b', "admin": true}'))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_a_repeated_key_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, GOOD + b', "account_id": "acct-2"}'))


@pytest.mark.parametrize("subject", SUBJECTS)
async def test_a_missing_account_is_invalid_request(ask: Ask, subject: str) -> None:
    assert refused(await ask(subject, b'{"key_id": "key_1"}'))


async def test_a_top_given_as_a_string_is_invalid_request(ask: Ask) -> None:
    body = b'{"account_id": "acct-1", "top": "10"}'
    assert refused(await ask(query_subject("stats"), body))


async def test_a_bucket_size_other_than_hour_or_day_is_invalid_request(ask: Ask) -> None:
    body = b'{"account_id": "acct-1", "by": "week"}'
    assert refused(await ask(query_subject("stats"), body))


async def test_last_used_without_a_key_is_invalid_request(ask: Ask) -> None:
    assert refused(await ask(query_subject("last_used"), b'{"account_id": "acct-1"}'))


async def test_a_refusal_names_the_field_but_not_its_value(ask: Ask) -> None:
    reply = await ask(query_subject("stats"), b'{"account_id": "acct-1", "top": "x-secret-x"}')
    assert refused(reply)
    assert "top" in str(reply["error"])
    assert "x-secret-x" not in str(reply["error"])
