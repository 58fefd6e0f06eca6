"""The keys service over a real nats-server: lifecycle, refusals, retries and restarts."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from tests.drivers.keys import Request, running
from tests.random_refs import new_account

if TYPE_CHECKING:
    from services.keys.settings import KeysSettings

pytestmark = pytest.mark.nats


async def opened(request_json: Request, account: str, owner: str = "alice") -> None:
    reply = await request_json(
        "keys.cmd.open_account", {"account_id": account, "owner": owner, "email": f"{owner}@x.io"}
    )
    assert reply["ok"], reply


async def generated(request_json: Request, account: str, actor: str = "alice") -> dict[str, Any]:
    reply = await request_json("keys.cmd.generate", {"account_id": account, "actor": actor})
    assert reply["ok"], reply
    return reply["result"]


async def keyed(request_json: Request) -> tuple[str, dict[str, Any]]:
    """A fresh account opened by alice, with a key she generated; the generate result."""
    account = new_account()
    await opened(request_json, account)
    return account, await generated(request_json, account)


async def verdict(request_json: Request, key: str) -> dict[str, Any]:
    reply = await request_json("keys.verify", {"key": key})
    assert reply["ok"], reply
    return reply["result"]


async def audit_actions(request_json: Request, account: str, expected: int) -> list[str]:
    for _ in range(100):
        reply = await request_json("keys.query.audit", {"account_id": account})
        items = reply["result"]["items"]
        if len(items) >= expected:
            return [item["action"] for item in items]
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit never reached {expected} entries: {items}")


async def confirmed(request_json: Request, verb: str, account: str) -> dict[str, Any]:
    """A confirmed rotate or deactivate by alice; its result."""
    body = {"account_id": account, "actor": "alice", "confirm": True}
    reply = await request_json(f"keys.cmd.{verb}", body)
    assert reply["ok"], reply
    return reply["result"]


async def test_a_generated_key_verifies_and_is_revealed_with_its_rotation_date(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account, first = await keyed(request_json)
    assert first["key"].startswith("klk_")
    assert (await verdict(request_json, first["key"]))["valid"]

    shown = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    assert shown["result"]["key"] == first["key"]
    assert shown["result"]["recommended_rotation_at"] > shown["result"]["created_at"]


async def test_rotating_without_grace_retires_the_previous_key_at_once(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account, first = await keyed(request_json)
    second = await confirmed(request_json, "rotate", account)
    assert second["key"] != first["key"]
    assert second["previous_key_id"] == first["key_id"]
    assert await verdict(request_json, first["key"]) == {
        "valid": False,
        "reason": "deactivated",
        "account_id": None,
        "key_id": None,
    }
    assert (await verdict(request_json, second["key"]))["key_id"] == second["key_id"]


async def test_a_deactivated_key_no_longer_verifies_and_there_is_nothing_to_reveal(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account, _ = await keyed(request_json)
    second = await confirmed(request_json, "rotate", account)
    done = await confirmed(request_json, "deactivate", account)
    assert done["key_id"] == second["key_id"]
    assert (await verdict(request_json, second["key"]))["reason"] == "deactivated"
    gone = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    assert gone["error"]["code"] == "no_active_key"


async def test_the_audit_log_lists_every_step_of_a_keys_life_newest_first(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account, _ = await keyed(request_json)
    shown = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    assert shown["ok"], shown
    await confirmed(request_json, "rotate", account)
    await confirmed(request_json, "deactivate", account)
    assert await audit_actions(request_json, account, 5) == [
        "deactivated",
        "rotated",
        "viewed",
        "created",
        "account_opened",
    ]


async def test_grace_keeps_the_old_key_working_until_it_ends(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    await opened(request_json, account)
    old = await generated(request_json, account)
    rotated = await request_json(
        "keys.cmd.rotate",
        {"account_id": account, "actor": "alice", "confirm": True, "grace_seconds": 1},
    )
    assert rotated["result"]["previous_key_grace_until"] is not None
    assert (await verdict(request_json, old["key"]))["valid"]
    await asyncio.sleep(1.1)
    assert (await verdict(request_json, old["key"]))["reason"] == "expired"
    assert (await verdict(request_json, rotated["result"]["key"]))["valid"]


async def test_a_retried_command_takes_effect_once(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    await opened(request_json, account)
    body = {"account_id": account, "actor": "alice", "command_id": "retry-me"}
    first = await request_json("keys.cmd.generate", body)
    again = await request_json("keys.cmd.generate", body)
    assert again == first
    view = {"account_id": account, "actor": "alice", "command_id": "view-once"}
    await request_json("keys.cmd.reveal", view)
    await request_json("keys.cmd.reveal", view)
    assert await audit_actions(request_json, account, 3) == ["viewed", "created", "account_opened"]


async def test_refusals_change_nothing(keys_service: KeysSettings, request_json: Request) -> None:
    account = new_account()
    await opened(request_json, account)
    key = (await generated(request_json, account))["key"]
    cases = [
        ("keys.cmd.rotate", {"account_id": account, "actor": "alice"}, "confirmation_required"),
        ("keys.cmd.deactivate", {"account_id": account, "actor": "alice"}, "confirmation_required"),
        ("keys.cmd.reveal", {"account_id": account, "actor": "mallory"}, "not_authorized"),
        (
            "keys.cmd.rotate",
            {"account_id": account, "actor": "mallory", "confirm": True},
            "not_authorized",
        ),
        ("keys.cmd.generate", {"account_id": account, "actor": "alice"}, "key_already_active"),
        ("keys.cmd.reveal", {"account_id": "nobody", "actor": "alice"}, "unknown_account"),
        ("keys.cmd.rotate", b"not json", "invalid_request"),
        ("keys.cmd.rotate", {"account_id": account}, "invalid_request"),
        (
            "keys.cmd.rotate",
            {"account_id": account, "actor": 7, "confirm": True},
            "invalid_request",
        ),
        (
            "keys.cmd.rotate",
            {"account_id": account, "actor": "alice", "confirm": "yes"},
            "invalid_request",
        ),
        ("keys.cmd.generate", {"account_id": "a.b>", "actor": "alice"}, "invalid_request"),
        ("keys.cmd.deactivate", b"{" + b" " * 900_000 + b"}", "invalid_request"),
        ("keys.query.audit", {"account_id": account, "limit": 0}, "invalid_request"),
    ]
    for subject, body, code in cases:
        reply = await request_json(subject, body)
        assert not reply["ok"]
        assert reply["error"]["code"] == code, (subject, body if len(body) < 200 else "...")
    bad = await request_json("keys.verify", b"[1, 2]")
    assert bad["error"]["code"] == "invalid_request"
    assert (await verdict(request_json, key))["valid"]
    assert await audit_actions(request_json, account, 2) == ["created", "account_opened"]


async def test_admins_are_granted_and_revoked_but_never_the_last(
    keys_service: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    await opened(request_json, account)
    grant = {"account_id": account, "actor": "alice", "user": "bob", "email": "bob@x.io"}
    assert (await request_json("keys.cmd.grant_admin", grant))["result"]["super_admins"] == [
        "alice",
        "bob",
    ]
    await generated(request_json, account, actor="bob")
    revoke = {"account_id": account, "actor": "bob", "user": "alice"}
    assert (await request_json("keys.cmd.revoke_admin", revoke))["ok"]
    last = {"account_id": account, "actor": "bob", "user": "bob"}
    assert (await request_json("keys.cmd.revoke_admin", last))["error"][
        "code"
    ] == "last_super_admin"
    alice = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
    assert alice["error"]["code"] == "not_authorized"


async def test_a_restart_keeps_state_and_verification(
    keys_settings: KeysSettings, request_json: Request
) -> None:
    account = new_account()
    async with running(keys_settings):
        await opened(request_json, account)
        key = (await generated(request_json, account))["key"]
    async with running(keys_settings):
        assert (await verdict(request_json, key))["valid"]
        shown = await request_json("keys.cmd.reveal", {"account_id": account, "actor": "alice"})
        assert shown["result"]["key"] == key
        again = await request_json("keys.cmd.generate", {"account_id": account, "actor": "alice"})
        assert again["error"]["code"] == "key_already_active"
