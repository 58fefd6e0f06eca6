"""Every subject refuses a request it cannot read with invalid_request, naming the field."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson
import pytest

if TYPE_CHECKING:
    from tests.component.notifier.conftest import Notifier

ID = str(uuid.uuid4())
# one valid request per subject, to spoil one way at a time
VALID = {
    "notify.query.sidebar": {"user": "alice"},
    "notify.cmd.mark_read": {"user": "alice", "ids": [ID]},
    "notify.query.reminders": {"account_id": "acme"},
    "notify.cmd.sweep": {"as_of": "2026-06-01"},
}
FIRST_FIELD = {subject: next(iter(body)) for subject, body in VALID.items()}
SUBJECTS = pytest.mark.parametrize("subject", sorted(VALID))


def encoded(body: dict[str, object]) -> bytes:
    return orjson.dumps(body)


@SUBJECTS
async def test_a_body_that_is_not_json_is_an_invalid_request(
    notifier: Notifier, subject: str
) -> None:
    error = await notifier.error(subject, b'{"user": "alice"')
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("body: Invalid JSON")


@SUBJECTS
async def test_an_empty_body_is_an_invalid_request(notifier: Notifier, subject: str) -> None:
    assert (await notifier.error(subject, b""))["code"] == "invalid_request"


async def test_health_answers_a_probe_with_an_empty_body(notifier: Notifier) -> None:
    assert (await notifier.ask("notify.query.health", b""))["result"]["service"] == "notifier"


async def test_a_body_that_is_not_json_to_health_is_an_invalid_request(notifier: Notifier) -> None:
    assert (await notifier.error("notify.query.health", b"{no"))["code"] == "invalid_request"


@SUBJECTS
async def test_a_field_of_the_wrong_type_is_an_invalid_request_naming_it(
    notifier: Notifier, subject: str
) -> None:
    field = FIRST_FIELD[subject]
    error = await notifier.error(subject, encoded(VALID[subject] | {field: 5}))
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}:")


@SUBJECTS
async def test_an_unknown_field_is_an_invalid_request_naming_it(
    notifier: Notifier, subject: str
) -> None:
    error = await notifier.error(subject, encoded(VALID[subject] | {"colour": "red"}))
    assert error == {"code": "invalid_request", "message": "colour: Extra inputs are not permitted"}


@SUBJECTS
async def test_a_key_given_twice_is_an_invalid_request(notifier: Notifier, subject: str) -> None:
    field = FIRST_FIELD[subject]
    body = encoded(VALID[subject])
    repeated = body[:-1] + b"," + orjson.dumps({field: VALID[subject][field]})[1:]
    error = await notifier.error(subject, repeated)
    assert error == {
        "code": "invalid_request",
        "message": f'body: duplicate key "{field}" in a JSON object',
    }


async def test_a_key_given_twice_to_health_is_an_invalid_request(notifier: Notifier) -> None:
    error = await notifier.error("notify.query.health", b'{"a": 1, "a": 2}')
    assert error["code"] == "invalid_request"


@pytest.mark.parametrize("subject", ["notify.cmd.sweep", "notify.query.reminders"])
async def test_an_as_of_that_is_no_date_is_an_invalid_request_that_does_not_echo_it(
    notifier: Notifier, subject: str
) -> None:
    body = VALID[subject] | {"as_of": "klk_secret-looking"}
    error = await notifier.error(subject, encoded(body))
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("as_of:")
    assert "klk_secret" not in error["message"]


@SUBJECTS
async def test_the_valid_request_each_refusal_spoils_is_answered(
    notifier: Notifier, subject: str
) -> None:
    assert (await notifier.ask(subject, encoded(VALID[subject])))["ok"]
