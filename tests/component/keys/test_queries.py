"""The audit, key and health queries: reply shapes, refusals, and that they append nothing."""

from __future__ import annotations

from contracts.keys import query_subject
from tests.component.keys.conftest import ACCOUNT, OWNER, Keys

AUDIT, KEY, HEALTH = (query_subject(q) for q in ("audit", "key", "health"))


async def test_the_audit_log_lists_what_happened_newest_first(with_key: Keys) -> None:
    await with_key.project()
    reply = await with_key.ask(AUDIT, {"account_id": ACCOUNT})
    created, opened = reply["result"]["items"]
    assert reply["result"]["account_id"] == ACCOUNT
    assert reply["result"]["next_cursor"] is None
    assert created == {
        "sequence": 2,
        "occurred_at": "2026-06-01T00:00:00Z",
        "actor": OWNER,
        "action": "created",
        "key_id": "key_id1",
        "key_hint": created["key_hint"],
        "user": None,
        "via": None,
    }
    assert (opened["action"], opened["user"]) == ("account_opened", OWNER)


async def test_a_full_audit_page_gives_the_cursor_to_the_next(with_key: Keys) -> None:
    await with_key.project()
    first = await with_key.ask(AUDIT, {"account_id": ACCOUNT, "limit": 1})
    assert [i["sequence"] for i in first["result"]["items"]] == [2]
    assert first["result"]["next_cursor"] == 2
    rest = await with_key.ask(AUDIT, {"account_id": ACCOUNT, "before": 2})
    assert [i["sequence"] for i in rest["result"]["items"]] == [1]


async def test_an_account_with_no_audit_rows_gets_an_empty_page(keys: Keys) -> None:
    reply = await keys.ask(AUDIT, {"account_id": ACCOUNT})
    assert reply == {
        "ok": True,
        "result": {"account_id": ACCOUNT, "items": [], "next_cursor": None},
    }


async def test_an_audit_limit_out_of_range_is_an_invalid_request(keys: Keys) -> None:
    assert await keys.refusal(AUDIT, {"account_id": ACCOUNT, "limit": 0}) == "invalid_request"


async def test_the_key_query_replies_with_the_live_keys_metadata(with_key: Keys) -> None:
    reply = await with_key.ask(KEY, {"account_id": ACCOUNT})
    result = reply["result"]
    assert set(result) == {
        "account_id",
        "key_id",
        "hint",
        "created_at",
        "created_by",
        "recommended_rotation_at",
        "previous_key_id",
        "previous_key_grace_until",
    }
    assert (result["key_id"], result["created_by"]) == ("key_id1", OWNER)
    assert (result["previous_key_id"], result["previous_key_grace_until"]) == (None, None)


async def test_the_key_query_names_the_previous_key_while_its_grace_lasts(with_key: Keys) -> None:
    rotated = await with_key.command("rotate", actor=OWNER, confirm=True, grace_seconds=3600)
    result = (await with_key.ask(KEY, {"account_id": ACCOUNT}))["result"]
    assert result["key_id"] == rotated["result"]["key_id"]
    assert result["previous_key_id"] == "key_id1"
    assert result["previous_key_grace_until"] == "2026-06-01T01:00:00Z"


async def test_the_key_query_names_no_previous_key_after_a_rotation_without_grace(
    with_key: Keys,
) -> None:
    await with_key.command("rotate", actor=OWNER, confirm=True)
    result = (await with_key.ask(KEY, {"account_id": ACCOUNT}))["result"]
    assert result["previous_key_id"] is None


async def test_the_key_query_records_no_view(with_key: Keys) -> None:
    await with_key.ask(KEY, {"account_id": ACCOUNT})
    assert [e["type"] for e in with_key.appended()] == ["AccountOpened", "KeyGenerated"]


async def test_the_key_query_on_an_account_never_opened_is_refused(keys: Keys) -> None:
    assert await keys.refusal(KEY, {"account_id": ACCOUNT}) == "unknown_account"


async def test_the_key_query_on_an_account_without_a_key_is_refused(opened: Keys) -> None:
    assert await opened.refusal(KEY, {"account_id": ACCOUNT}) == "no_active_key"


async def test_the_key_query_refuses_an_unknown_field(with_key: Keys) -> None:
    body = {"account_id": ACCOUNT, "key": "anything"}
    assert await with_key.refusal(KEY, body) == "invalid_request"


async def test_health_names_the_service_its_process_and_the_last_event_it_holds(
    with_key: Keys,
) -> None:
    reply = await with_key.ask(HEALTH, {})
    assert reply["ok"] is True
    assert set(reply["result"]) == {"service", "pid", "stream_seq"}
    assert (reply["result"]["service"], reply["result"]["stream_seq"]) == ("keys", 2)


async def test_health_ignores_fields_it_does_not_know(keys: Keys) -> None:
    reply = await keys.ask(HEALTH, {"probe": "compose"})
    assert reply["result"]["stream_seq"] == 0


async def test_health_answers_a_probe_with_an_empty_body(with_key: Keys) -> None:
    reply = await with_key.ask(HEALTH, b"")
    assert reply["ok"] is True
    assert reply["result"]["service"] == "keys"
