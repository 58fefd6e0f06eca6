"""The key panel against the real keys service: sudo, confirmations, refusals, 403, no-store."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.random_refs import new_account

if TYPE_CHECKING:
    import httpx

    from tests.drivers.console import Browser, Running

pytestmark = pytest.mark.nats
KEY = re.compile(r'id="api-key">([^<]+)<')


async def admin_with_key(console: Running, user: str = "alice") -> tuple[Browser, str, dict]:
    """A signed-in super-admin of a fresh account that has a key."""
    await console.add_user(user)
    account = new_account()
    await console.client.open_account(account, user, f"{user}@example.com")
    key = await console.client.generate(account, user)
    browser = console.browser()
    await browser.sign_in(user)
    return browser, account, key


def shown_key(response: httpx.Response) -> str | None:
    found = KEY.search(response.text)
    return found.group(1) if found else None


async def test_the_panel_shows_the_key_facts_but_never_the_key(console_app: Running) -> None:
    browser, account, key = await admin_with_key(console_app)
    page = await browser.get(f"/accounts/{account}/api-key")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    for fact in (key["hint"], key["key_id"], "by alice", "Recommended rotation", "Last used"):
        assert fact in page.text
    assert key["key"] not in page.text
    assert 'href="/accounts/' + account + '/api-key"' in page.text  # the sidebar entry


async def test_show_asks_for_sudo_then_reveals_the_key_once_as_the_person(
    console_app: Running,
) -> None:
    browser, account, key = await admin_with_key(console_app)
    path = f"/accounts/{account}/api-key/show"
    before = await console_app.client.audit(account)
    asked = await browser.post(path)
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/sudo?next={path}"
    assert (await console_app.client.audit(account))["items"] == before["items"]
    assert (await browser.sudo()).status_code == 303
    shown = await browser.post(path)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert shown_key(shown) == key["key"]
    assert key["key"] not in shown.headers.get("location", "")
    again = await browser.get(f"/accounts/{account}/api-key")
    assert key["key"] not in again.text  # gone once the person navigates
    assert await viewed_by(console_app, account, "alice")


async def viewed_by(console: Running, account: str, user: str) -> bool:
    import asyncio

    for _ in range(50):
        items = (await console.client.audit(account))["items"]
        if any(i["action"] == "viewed" and i["actor"] == user for i in items):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_sudo_lapses_after_ten_minutes(console_app: Running) -> None:
    browser, account, _ = await admin_with_key(console_app)
    await browser.sudo()
    console_app.clock.advance(minutes=10)
    await browser.get(f"/accounts/{account}/api-key")
    assert (await browser.post(f"/accounts/{account}/api-key/show")).status_code == 303


async def test_rotate_needs_sudo_and_the_account_name_then_shows_the_new_key(
    console_app: Running,
) -> None:
    browser, account, key = await admin_with_key(console_app)
    path = f"/accounts/{account}/api-key/rotate"
    form = {"grace": "1h", "confirm": account, "key_id": key["key_id"]}
    assert (await browser.post(path, form)).status_code == 303  # to /sudo
    assert (await console_app.client.live_key(account))["key_id"] == key["key_id"]
    await browser.sudo()
    wrong = await browser.post(path, {**form, "confirm": "something else"})
    assert wrong.status_code == 400
    assert "Type the account name" in wrong.text
    assert (await console_app.client.live_key(account))["key_id"] == key["key_id"]
    rotated = await browser.post(path, form)
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = shown_key(rotated)
    assert new
    assert new != key["key"]
    assert "The old key keeps working until" in rotated.text
    live = await console_app.client.live_key(account)
    assert live["key_id"] != key["key_id"]
    assert live["created_by"] == "alice"
    # the same form again names a key that is no longer live: the service's refusal is shown
    stale = await browser.post(path, form)
    assert stale.status_code == 409
    assert f"key {key['key_id']} is no longer the live key" in stale.text
    assert (await console_app.client.live_key(account))["key_id"] == live["key_id"]


async def test_deactivate_needs_sudo_and_the_account_name(console_app: Running) -> None:
    browser, account, key = await admin_with_key(console_app)
    path = f"/accounts/{account}/api-key/deactivate"
    form = {"confirm": account, "key_id": key["key_id"]}
    assert (await browser.post(path, form)).status_code == 303
    assert (await console_app.client.live_key(account))["key_id"] == key["key_id"]
    await browser.sudo()
    assert (await browser.post(path, {**form, "confirm": ""})).status_code == 400
    done = await browser.post(path, form)
    assert done.status_code == 200
    assert "The key was deactivated" in done.text
    assert "Generate key" in done.text
    assert (await console_app.client.verify(key["key"]))["valid"] is False


async def test_generate_makes_a_key_when_there_is_none(console_app: Running) -> None:
    await console_app.add_user("alice")
    account = new_account()
    await console_app.client.open_account(account, "alice", "alice@example.com")
    browser = console_app.browser()
    await browser.sign_in("alice")
    page = await browser.get(f"/accounts/{account}/api-key")
    assert "Generate key" in page.text
    made = await browser.post(f"/accounts/{account}/api-key/generate")
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    key = shown_key(made)
    assert key is not None
    assert (await console_app.client.verify(key))["valid"] is True
    twice = await browser.post(f"/accounts/{account}/api-key/generate")
    assert twice.status_code == 409  # the service refuses a second live key; its message shown
    assert 'class="error"' in twice.text


async def test_someone_not_a_super_admin_gets_403_on_every_account_route(
    console_app: Running,
) -> None:
    _, account, key = await admin_with_key(console_app)
    await console_app.add_user("mallory")
    mallory = console_app.browser()
    await mallory.sign_in("mallory")
    await mallory.sudo()
    base = f"/accounts/{account}/api-key"
    page = await mallory.get(base)
    assert page.status_code == 403
    assert account not in page.text
    assert key["hint"] not in page.text
    for action in ("generate", "show", "rotate", "deactivate"):
        form = {"confirm": account, "grace": "none", "key_id": key["key_id"]}
        refused = await mallory.post(f"{base}/{action}", form)
        assert refused.status_code == 403, action
        assert key["key"] not in refused.text
    assert (await console_app.client.live_key(account))["key_id"] == key["key_id"]
    assert (await mallory.get("/")).status_code == 200  # the empty state, naming no account


async def test_pages_redirect_to_sign_in_when_signed_out(console_app: Running) -> None:
    _, account, _ = await admin_with_key(console_app)
    anonymous = console_app.browser()
    for path in ("/", f"/accounts/{account}/api-key", "/profile", "/sudo"):
        response = await anonymous.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=")
    assert (await anonymous.post(f"/accounts/{account}/api-key/show")).status_code == 303


async def test_home_opens_the_first_account_the_person_administers(console_app: Running) -> None:
    browser, account, _ = await admin_with_key(console_app)
    home = await browser.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == f"/accounts/{account}/api-key"
