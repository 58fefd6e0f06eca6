"""Refused commands: the stable code, and nothing appended."""

from __future__ import annotations

import pytest

from contracts.keys import COMMANDS, command_subject
from tests.component.keys.conftest import ACCOUNT, OWNER, Keys

OPEN = command_subject("open_account")


async def test_malformed_json_is_an_invalid_request(keys: Keys) -> None:
    assert await keys.refusal(OPEN, b'{"account_id": "acme", ') == "invalid_request"
    assert keys.events.messages == []


async def test_a_field_of_the_wrong_type_is_an_invalid_request(keys: Keys) -> None:
    body = {"account_id": ACCOUNT, "owner": 7, "email": "alice@example.com"}
    assert await keys.refusal(OPEN, body) == "invalid_request"
    assert keys.events.messages == []


async def test_an_unknown_field_is_an_invalid_request(keys: Keys) -> None:
    body = {"account_id": ACCOUNT, "owner": OWNER, "email": "alice@example.com", "plan": "gold"}
    assert await keys.refusal(OPEN, body) == "invalid_request"
    assert keys.events.messages == []


async def test_a_key_repeated_in_the_body_is_an_invalid_request(keys: Keys) -> None:
    body = b'{"account_id": "acme", "owner": "alice", "owner": "mallory", "email": "a@x.io"}'
    assert await keys.refusal(OPEN, body) == "invalid_request"
    assert keys.events.messages == []


@pytest.mark.parametrize("verb", list(COMMANDS))
async def test_an_empty_body_is_an_invalid_request_on_every_command(
    opened: Keys, verb: str
) -> None:
    assert await opened.refusal(command_subject(verb), b"") == "invalid_request"
    assert len(opened.events.messages) == 1  # the opening only


async def test_a_command_on_an_account_never_opened_is_refused_as_unknown(keys: Keys) -> None:
    body = {"account_id": ACCOUNT, "actor": OWNER}
    assert await keys.refusal(command_subject("generate"), body) == "unknown_account"
    assert keys.events.messages == []


async def test_a_command_by_someone_not_a_super_admin_is_refused(opened: Keys) -> None:
    body = {"account_id": ACCOUNT, "actor": "mallory"}
    assert await opened.refusal(command_subject("generate"), body) == "not_authorized"
    assert len(opened.events.messages) == 1


async def test_rotating_without_confirmation_is_refused(with_key: Keys) -> None:
    body = {"account_id": ACCOUNT, "actor": OWNER}
    assert await with_key.refusal(command_subject("rotate"), body) == "confirmation_required"
    assert len(with_key.events.messages) == 2


async def test_deactivating_without_confirmation_is_refused(with_key: Keys) -> None:
    body = {"account_id": ACCOUNT, "actor": OWNER}
    assert await with_key.refusal(command_subject("deactivate"), body) == "confirmation_required"
    assert len(with_key.events.messages) == 2


async def test_a_command_past_its_deadline_is_not_run(opened: Keys) -> None:
    body = {"account_id": ACCOUNT, "actor": OWNER, "deadline": "2026-05-31T23:59:00Z"}
    assert await opened.refusal(command_subject("generate"), body) == "deadline_exceeded"
    assert len(opened.events.messages) == 1
    assert opened.vault.rows == {}
