"""The console's page areas against the real keys, calllog and notifier services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calendar import add_months
from contracts.calllog import CallRecorded
from tests.drivers.calllog import publish
from tests.drivers.console_pages import Console, console_running
from tests.drivers.console_world import World, world
from tests.fakes.calllog import Clock
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.drivers.smtp import SmtpSink

pytestmark = pytest.mark.nats


@pytest.fixture
async def services(tmp_path: Path, smtp_sink: SmtpSink) -> AsyncIterator[World]:
    async with world(tmp_path / "kl", Clock(None), smtp_sink) as running:
        yield running


@pytest.fixture
async def console(services: World, tmp_path: Path) -> AsyncIterator[Console]:
    async with console_running(services, tmp_path) as running:
        yield running


async def account_of(services: World, owner: str = "alice") -> tuple[str, dict[str, Any]]:
    account = new_account()
    await services.cli.open_account(account, owner, f"{owner}@x.io")
    return account, await services.cli.generate(account, owner)


def call(account: str, key_id: str, status: int, minutes_ago: float, **more: Any) -> CallRecorded:
    return CallRecorded(
        account_id=account,
        key_id=key_id,
        ts=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        method="GET",
        path=more.pop("path", "/v1/contacts"),
        status=status,
        duration_ms=3.0,
        **more,
    )


async def published(services: World, *calls: CallRecorded) -> None:
    """As a gateway reports them, then until the call log lists them all."""
    gateway = await services.client("gateway")
    try:
        await publish(gateway.nc, *calls)
    finally:
        await gateway.close()
    for _ in range(200):
        page = await services.cli.calls.list(calls[0].account_id, limit=1000)
        if len(page["items"]) >= len(calls):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the call log never listed the calls")


async def test_every_page_area_renders_for_a_super_admin(services: World, console: Console) -> None:
    account, key = await account_of(services)
    alice = await console.browser("alice")
    panels = await alice.get(f"/accounts/{account}/api-key")
    assert panels.status_code == 200
    assert 'id="log-heading"' in panels.text
    assert 'id="admins-heading"' in panels.text
    assert "created key" in panels.text
    assert key["hint"] in panels.text
    calls = await alice.get(f"/accounts/{account}/api-calls")
    assert calls.status_code == 200
    assert "No API calls in the last 7 days" in calls.text
    assert "keyledger.gateway" in calls.text
    notes = await alice.get("/notifications")
    assert notes.status_code == 200
    assert "No notifications" in notes.text


async def test_someone_who_is_not_a_super_admin_gets_403_and_nothing_of_the_account(
    services: World, console: Console
) -> None:
    account, _ = await account_of(services)
    await published(services, call(account, "key_secretive", 200, 1, path="/v1/private"))
    mallory = await console.browser("mallory")
    for response in (
        await mallory.get(f"/accounts/{account}/api-calls"),
        await mallory.get(f"/accounts/{account}/api-key"),
        await mallory.post(f"/accounts/{account}/admins/grant", {"user": "m", "email": "m@x.io"}),
        await mallory.post(f"/accounts/{account}/admins/revoke", {"user": "alice"}),
    ):
        assert response.status_code == 403
        assert account not in response.text
        assert "/v1/private" not in response.text
    admins = await services.cli.accounts_of("alice")
    assert admins["accounts"] == [{"account_id": account, "super_admins": ["alice"]}]


async def test_a_post_without_the_csrf_token_changes_nothing(
    services: World, console: Console
) -> None:
    account, _ = await account_of(services)
    alice = await console.browser("alice")
    grant = {"user": "bob", "email": "bob@x.io"}
    refused = await alice.post(f"/accounts/{account}/admins/grant", grant, csrf=False)
    assert refused.status_code == 403
    forged = await alice.http.post(
        f"/accounts/{account}/admins/grant", data=grant | {"csrf": "forged"}
    )
    assert forged.status_code == 403
    read_all = await alice.post("/notifications/read", {"all": "1"}, csrf=False)
    assert read_all.status_code == 403
    entries = (await services.cli.audit(account))["items"]
    assert [e["action"] for e in entries] == ["created", "account_opened"]


async def test_grant_and_revoke_through_the_page_show_in_the_log_via_console(
    services: World, console: Console
) -> None:
    account, _ = await account_of(services)
    alice = await console.browser("alice")
    granted = await alice.post(
        f"/accounts/{account}/admins/grant", {"user": "bob", "email": "bob@x.io"}
    )
    assert granted.status_code == 303
    assert granted.headers["location"] == f"/accounts/{account}/api-key#admins"
    revoked = await alice.post(f"/accounts/{account}/admins/revoke", {"user": "bob"})
    assert revoked.status_code == 303

    log = (await alice.get(f"/accounts/{account}/api-key")).text
    assert 'revoked super-admin from bob <span class="via">via console</span>' in log
    assert 'granted super-admin to bob <span class="via">via console</span>' in log
    assert log.index("revoked super-admin from bob") < log.index("granted super-admin to bob")
    entries = (await services.cli.audit(account))["items"]
    assert [(e["action"], e["actor"], e["via"]["user"]) for e in entries[:2]] == [
        ("admin_revoked", "alice", "console"),
        ("admin_granted", "alice", "console"),
    ]


async def test_revoking_the_last_super_admin_shows_the_services_refusal(
    services: World, console: Console
) -> None:
    account, _ = await account_of(services)
    alice = await console.browser("alice")
    refused = await alice.post(f"/accounts/{account}/admins/revoke", {"user": "alice"})
    assert refused.status_code == 409
    assert "the last super-admin of an account cannot go" in refused.text
    assert (await services.cli.accounts_of("alice"))["accounts"][0]["super_admins"] == ["alice"]


async def test_the_log_pages_back_with_the_before_cursor(services: World, console: Console) -> None:
    account, _ = await account_of(services)
    for _n in range(25):
        await services.cli.reveal(account, "alice")
    alice = await console.browser("alice")
    first = (await alice.get(f"/accounts/{account}/api-key")).text
    assert first.count("viewed key") == 20
    assert 'rel="next"' in first
    cursor = first.split('href="?before=')[1].split("#")[0]
    older = (await alice.get(f"/accounts/{account}/api-key?before={cursor}")).text
    assert older.count("viewed key") == 5
    assert "opened the account" in older
    assert 'rel="next"' not in older


async def test_the_calls_tab_lists_published_calls_and_charts_them(
    services: World, console: Console
) -> None:
    account, key = await account_of(services)
    key_id = key["key_id"]
    await published(
        services,
        call(account, key_id, 200, 1, path="/v1/contacts/1"),
        call(account, key_id, 404, 2, path="/v1/deals/2"),
        call(account, key_id, 503, 3, path="/v1/contacts/3"),
    )
    alice = await console.browser("alice")
    page = (await alice.get(f"/accounts/{account}/api-calls")).text
    rows = [p for p in ("/v1/contacts/1", "/v1/deals/2", "/v1/contacts/3") if p in page]
    assert rows == ["/v1/contacts/1", "/v1/deals/2", "/v1/contacts/3"]
    assert page.index("/v1/contacts/1") < page.index("/v1/deals/2")  # newest first
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert all(f'class="bar bar-{c}"' in page for c in ("2xx", "4xx", "5xx"))
    assert "Calls per hour in the last 7 days, by status class" in page  # the svg's <title>
    assert '<table class="chart-table">' in page

    errors = (await alice.get(f"/accounts/{account}/api-calls?status=5xx&path=/v1/contacts")).text
    assert "/v1/contacts/3" in errors
    assert "/v1/contacts/1" not in errors
    assert "/v1/deals/2" not in errors
    daily = (await alice.get(f"/accounts/{account}/api-calls?by=day")).text
    assert "Calls per day in the last 7 days" in daily
    assert 'class="bar bar-2xx"' in daily
    none = (await alice.get(f"/accounts/{account}/api-calls?path=/v2/")).text
    assert "No calls match these filters" in none


async def test_the_calls_tab_pages_with_the_list_cursor(
    services: World, console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.console.pages.calls.PAGE", 2)
    account, key = await account_of(services)
    await published(
        services, *(call(account, key["key_id"], 200, n, path=f"/p/{n}") for n in range(3))
    )
    alice = await console.browser("alice")
    first = (await alice.get(f"/accounts/{account}/api-calls?status=2xx")).text
    assert "/p/0" in first
    assert "/p/1" in first
    assert "/p/2" not in first
    link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "status=2xx" in link
    assert "cursor=" in link
    second = (await alice.get(f"/accounts/{account}/api-calls{link.replace('&amp;', '&')}")).text
    assert "/p/2" in second
    assert "/p/0" not in second


async def test_the_grace_panel_names_who_still_calls_with_the_previous_key(
    services: World, console: Console
) -> None:
    account, old = await account_of(services)
    alice = await console.browser("alice")
    rotated = await services.cli.rotate(account, "alice", confirm=True, grace_seconds=86400)
    quiet = (await alice.get(f"/accounts/{account}/api-key")).text
    assert "No calls in the last hour with the previous key." in quiet
    await published(
        services,
        call(account, old["key_id"], 200, 5, caller_ip="10.0.0.7", user_agent="crm-sync/2.1"),
        call(account, old["key_id"], 200, 2, caller_ip="10.0.0.7", user_agent="crm-sync/2.1"),
        call(account, old["key_id"], 200, 90, caller_ip="10.0.0.9", user_agent="old-cron/1"),
        call(account, rotated["key_id"], 200, 1, caller_ip="10.0.0.8", user_agent="new/1"),
    )
    busy = (await alice.get(f"/accounts/{account}/api-key")).text
    assert "2 calls in the last hour with the previous key" in busy
    assert "10.0.0.7" in busy
    assert "crm-sync/2.1" in busy
    assert "old-cron/1" not in busy
    assert "new/1" not in busy


async def test_without_a_key_in_grace_the_key_page_shows_no_grace_panel(
    services: World, console: Console
) -> None:
    account, _ = await account_of(services)
    await services.cli.rotate(account, "alice", confirm=True, grace_seconds=0)
    page = (await (await console.browser("alice")).get(f"/accounts/{account}/api-key")).text
    assert 'id="grace-heading"' not in page


async def test_marking_read_lowers_the_bell_count(services: World, console: Console) -> None:
    account, key = await account_of(services)
    other, other_key = await account_of(services)
    for created in (key, other_key):
        since = datetime.fromisoformat(created["created_at"])
        await services.cli.notifier.sweep(as_of=add_months(since, 6).isoformat())
    alice = await console.browser("alice")
    assert await alice.bell() == 2
    page = (await alice.get("/notifications")).text
    assert account in page
    assert other in page
    first = (await services.cli.notifier.sidebar("alice", unread_only=True))["items"][0]["id"]
    marked = await alice.post("/notifications/read", {"id": first})
    assert (marked.status_code, marked.headers["location"]) == (303, "/notifications")
    assert await alice.bell() == 1
    await alice.post("/notifications/read", {"all": "1"})
    assert await alice.bell() == 0
    assert "Mark all as read" not in (await alice.get("/notifications")).text
