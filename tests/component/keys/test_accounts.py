"""keys.query.accounts: the accounts a user administers, their shape, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.keys import command_subject, query_subject
from tests.component.keys.conftest import ACCOUNT, OWNER, Keys

ACCOUNTS = query_subject("accounts")


async def test_a_super_admin_gets_each_account_with_its_super_admins(opened: Keys) -> None:
    body = {"account_id": "beta", "owner": "bob", "email": "bob@example.com"}
    assert (await opened.ask(command_subject("open_account"), body))["ok"]
    grant = {"account_id": "beta", "actor": "bob", "user": OWNER, "email": "a@example.com"}
    assert (await opened.ask(command_subject("grant_admin"), grant))["ok"]
    reply = await opened.ask(ACCOUNTS, {"user": OWNER})
    assert reply == {
        "ok": True,
        "result": {
            "user": OWNER,
            "accounts": [
                {"account_id": ACCOUNT, "super_admins": [OWNER]},
                {"account_id": "beta", "super_admins": [OWNER, "bob"]},
            ],
        },
    }


async def test_a_user_who_administers_nothing_gets_an_empty_list(opened: Keys) -> None:
    reply = await opened.ask(ACCOUNTS, {"user": "nobody"})
    assert reply == {"ok": True, "result": {"user": "nobody", "accounts": []}}


async def test_grant_and_revoke_show_at_once(opened: Keys) -> None:
    await opened.command("grant_admin", actor=OWNER, user="bob", email="bob@example.com")
    found = await opened.ask(ACCOUNTS, {"user": "bob"})
    assert found["result"]["accounts"] == [{"account_id": ACCOUNT, "super_admins": [OWNER, "bob"]}]
    await opened.command("revoke_admin", actor="bob", user=OWNER)
    assert (await opened.ask(ACCOUNTS, {"user": OWNER}))["result"]["accounts"] == []
    found = await opened.ask(ACCOUNTS, {"user": "bob"})
    assert found["result"]["accounts"] == [{"account_id": ACCOUNT, "super_admins": ["bob"]}]


async def test_the_query_records_nothing(opened: Keys) -> None:
    await opened.ask(ACCOUNTS, {"user": OWNER})
    assert [e["type"] for e in opened.appended()] == ["AccountOpened"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user": ""},
        {"user": "has space"},
        {"user": 7},
        {"user": OWNER, "account_id": ACCOUNT},
        b"not json",
    ],
    ids=["missing", "empty", "bad-characters", "not-a-string", "unknown-field", "not-json"],
)
async def test_a_malformed_request_is_an_invalid_request(
    keys: Keys, body: dict[str, Any] | bytes
) -> None:
    assert await keys.refusal(ACCOUNTS, body) == "invalid_request"
