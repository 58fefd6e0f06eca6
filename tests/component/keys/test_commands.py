"""Each command's reply when it succeeds, and the one event it appends."""

from __future__ import annotations

from tests.component.keys.conftest import ACCOUNT, OWNER, Keys

KEY_FIELDS = {
    "account_id",
    "key",
    "key_id",
    "hint",
    "created_at",
    "age_seconds",
    "recommended_rotation_at",
    "previous_key_id",
    "previous_key_grace_until",
}


async def test_opening_an_account_replies_with_its_owner_as_the_only_super_admin(
    keys: Keys,
) -> None:
    reply = await keys.command("open_account", owner=OWNER, email="alice@example.com")
    assert reply == {"ok": True, "result": {"account_id": ACCOUNT, "super_admins": [OWNER]}}
    assert [e["type"] for e in keys.appended()] == ["AccountOpened"]


async def test_granting_an_admin_replies_with_every_super_admin(opened: Keys) -> None:
    reply = await opened.command("grant_admin", actor=OWNER, user="bob", email="bob@example.com")
    assert reply["result"] == {"account_id": ACCOUNT, "super_admins": ["alice", "bob"]}
    assert opened.appended()[-1]["type"] == "SuperAdminGranted"


async def test_revoking_an_admin_replies_with_the_admins_left(opened: Keys) -> None:
    await opened.command("grant_admin", actor=OWNER, user="bob", email="bob@example.com")
    reply = await opened.command("revoke_admin", actor=OWNER, user="bob")
    assert reply["result"] == {"account_id": ACCOUNT, "super_admins": ["alice"]}
    assert opened.appended()[-1]["type"] == "SuperAdminRevoked"


async def test_generating_a_key_replies_with_the_key_and_its_metadata(opened: Keys) -> None:
    reply = await opened.command("generate", actor=OWNER)
    result = reply["result"]
    assert reply["ok"] is True
    assert set(result) == KEY_FIELDS
    assert result["key_id"] == "key_id1"  # the second id: the first named the opening event
    assert result["created_at"] == "2026-06-01T00:00:00Z"
    assert result["age_seconds"] == 0
    assert opened.vault.rows[result["key_id"]] == (ACCOUNT, result["key"])


async def test_generating_a_key_appends_no_secret(opened: Keys) -> None:
    key = (await opened.command("generate", actor=OWNER))["result"]["key"]
    assert key.encode() not in b"".join(data for _, data in opened.events.messages)


async def test_revealing_the_key_replies_with_the_same_key(with_key: Keys) -> None:
    generated = next(iter(with_key.vault.rows.values()))[1]
    reply = await with_key.command("reveal", actor=OWNER)
    assert set(reply["result"]) == KEY_FIELDS
    assert reply["result"]["key"] == generated
    assert with_key.appended()[-1]["type"] == "KeyViewed"


async def test_rotating_replies_with_the_new_key_and_the_old_ones_grace(with_key: Keys) -> None:
    old = next(iter(with_key.vault.rows))
    reply = await with_key.command("rotate", actor=OWNER, confirm=True, grace_seconds=3600)
    result = reply["result"]
    assert result["key_id"] != old
    assert result["previous_key_id"] == old
    assert result["previous_key_grace_until"] == "2026-06-01T01:00:00Z"
    assert with_key.appended()[-1]["type"] == "KeyRotated"


async def test_deactivating_replies_with_the_key_and_when(with_key: Keys) -> None:
    live = next(iter(with_key.vault.rows))
    reply = await with_key.command("deactivate", actor=OWNER, confirm=True)
    assert reply == {
        "ok": True,
        "result": {
            "account_id": ACCOUNT,
            "key_id": live,
            "deactivated_at": "2026-06-01T00:00:00Z",
        },
    }
    assert with_key.vault.rows == {}
