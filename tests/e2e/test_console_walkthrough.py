"""The console as the README describes it, in a real browser against `keyledger up --dev`:
the demo user's setup link, sign-in, the key's life, its callers, the log, calls, reminders."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.screens import Screens

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from playwright.sync_api import Browser, Page

    from tests.e2e.conftest import Up

pytestmark = pytest.mark.nats

KEY = re.compile(r"^klk_[0-9a-z]+$")
AGENT = "walkthrough-client/1.0"
WAIT_SECONDS = 20


def until_shown(page: Page, check: Callable[[], bool], what: str) -> None:
    """Reload until `check` holds: calls reach the call log a moment after they are made."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"never shown: {what}"
        time.sleep(0.5)
        page.reload()


def bell_count(page: Page) -> int:
    count = page.locator("a.bell .count")
    return int(count.inner_text()) if count.count() else 0


def shown_key(page: Page) -> str:
    key = page.locator("#api-key").inner_text().strip()
    assert KEY.match(key), key
    return key


def actions_menu(page: Page) -> None:
    page.get_by_text("Actions", exact=True).click()


def test_a_super_admin_walks_through_the_console_from_setup_link_to_reminder(
    browser: Browser, up: Up, artifacts: Path
) -> None:
    screens = Screens(artifacts)
    context = browser.new_context(
        base_url=up.console,
        permissions=["clipboard-read", "clipboard-write"],
        viewport={"width": 1180, "height": 860},
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    panel = "/accounts/demo/api-key"

    # the setup link `up --dev` printed: choose a password, then sign in with it
    page.goto(up.demo_setup_link)
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same again").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set")).to_be_visible()
    page.get_by_label("User name").fill("demo")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    screens.shot(page, "signin", docs=True)
    page.get_by_role("button", name="Sign in").click()

    # demo owns the account demo: home opens its key panel, which has no key yet
    expect(page).to_have_url(re.compile(re.escape(panel) + "$"))
    expect(page.get_by_text("This account has no active key")).to_be_visible()
    page.get_by_role("button", name="Generate key").click()
    first = shown_key(page)
    screens.shot(page, "generated")

    # Show needs sudo: the password again, then Show; Copy puts exactly that key on the clipboard
    page.goto(panel)
    expect(page.locator("#api-key")).to_have_count(0)
    screens.shot(page, "key-panel", docs=True)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(re.escape(panel) + "$"))
    page.get_by_role("button", name="Show").click()
    assert shown_key(page) == first
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#api-key-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == first
    assert first not in page.url
    screens.shot(page, "show-copy", docs=True)

    # Rotate with an hour of grace, confirmed by typing the account's name
    page.goto(panel)
    actions_menu(page)
    page.get_by_label("1 hour").check()
    page.locator("#rotate-confirm").fill("demo")
    screens.shot(page, "rotate", docs=True)
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_text("The old key keeps working until")).to_be_visible()
    second = shown_key(page)
    assert second != first

    # a client still calling with the old key is named in the grace panel
    with httpx.Client(base_url=up.gateway, timeout=10) as api:
        for _ in range(3):
            old_key = {"Authorization": f"Bearer {first}", "User-Agent": AGENT}
            old = api.get("/v1/ping", headers=old_key)
            assert old.status_code == 200, old.text
        new = {"Authorization": f"Bearer {second}"}
        assert api.get("/v1/contacts", headers=new).status_code == 200
        assert api.post("/v1/contacts", headers=new, content=b"{}").status_code == 400
    page.goto(panel)
    grace = page.locator("#grace")
    until_shown(page, lambda: AGENT in grace.inner_text(), "the old key's client")
    expect(grace).to_contain_text("127.0.0.1")
    expect(grace.locator("table.clients tbody tr")).to_have_count(1)
    grace.scroll_into_view_if_needed()
    screens.shot(page, "grace", docs=True)

    # Deactivate, confirmed by the account's name (sudo still holds)
    actions_menu(page)
    page.locator("#deactivate-confirm").fill("demo")
    page.get_by_role("button", name="Deactivate key").click()
    expect(page.get_by_text("The key was deactivated")).to_be_visible()
    expect(page.get_by_text("This account has no active key")).to_be_visible()

    # the Log names each action, newest first, as demo via the console (the audit log is a
    # projection of the stream: it may show the deactivation a moment after the notice)
    rows = page.locator("#log tbody tr")
    until_shown(page, lambda: "deactivated key" in rows.first.inner_text(), "the deactivation")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    actions = ["deactivated key", "rotated the key", "viewed key", "created key"]
    for action, text in zip(actions, texts, strict=False):
        assert action in text, texts
        assert re.search(r"\tdemo\t.* via console$", text), text
    page.locator("#log").scroll_into_view_if_needed()
    screens.shot(page, "log", docs=True)

    # the API calls tab lists the calls and charts them as bars
    page.get_by_role("link", name="API calls").first.click()
    calls = page.locator("table.calls tbody tr")
    until_shown(page, lambda: calls.count() >= 5, "the five calls")
    expect(page.locator("figure svg")).to_have_count(1)
    expect(page.locator("figure svg rect.bar-2xx")).not_to_have_count(0)
    expect(page.locator("figure svg rect.bar-4xx")).not_to_have_count(0)
    expect(page.locator("figcaption")).to_contain_text("4xx")
    screens.shot(page, "api-calls", docs=True)

    # a new key, six months on: the reminder reaches demo's bell and can be marked read
    page.goto(panel)
    page.get_by_role("button", name="Generate key").click()
    shown_key(page)
    before = bell_count(page)
    swept = up.cli("reminders", "sweep", "--as-of", "+6mo")
    assert "1 key due" in swept, swept
    page.goto(panel)
    until_shown(page, lambda: bell_count(page) > before, "the reminder in the bell")
    unread = bell_count(page)
    page.locator("a.bell").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.get_by_text("Rotate the API key of account demo").first).to_be_visible()
    screens.shot(page, "notifications", docs=True)
    page.get_by_role("button", name=re.compile(r"^Mark “Rotate.*” as read$")).first.click()
    assert bell_count(page) == unread - 1
    context.close()
    assert len(screens.taken) >= 9
