"""Every console page passes axe-core (run in the page, from the axe-playwright-python wheel: no
CDN) without serious or critical findings, and the key's actions work from the keyboard alone."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.visitor import Visitor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

    from tests.e2e.conftest import Up

pytestmark = pytest.mark.nats

PANEL = "/accounts/demo/api-key"
BLOCKING = {"serious", "critical"}


def findings(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    found: dict[str, Any] = Axe().run(page).response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in found["violations"]
        if v["impact"] in BLOCKING
    ]


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.textContent.trim()"))


def tab_to(page: Page, text: str, limit: int = 60) -> None:
    """Press Tab until the focused element reads `text` (as a keyboard user finds it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == text:
            return
    pytest.fail(f"Tab never reached {text!r}")


@pytest.fixture(scope="module")
def page(browser: Browser, up: Up) -> Iterator[Page]:
    """demo signed in, with a key that has been called and a rotation reminder in the bell."""
    with Visitor(up.console) as visitor:
        assert visitor.set_password(up.demo_setup_link).status_code == 200
    context = browser.new_context(base_url=up.console)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    opened.goto("/signin")
    assert not findings(opened), findings(opened)  # signed out, as a newcomer sees it first
    opened.get_by_label("User name").fill("demo")
    opened.get_by_label("Password", exact=True).fill(PASSWORD)
    opened.get_by_label("Password", exact=True).press("Enter")
    expect(opened).to_have_url(f"{up.console}{PANEL}")
    opened.get_by_role("button", name="Generate key").click()
    key = opened.locator("#api-key").inner_text().strip()
    with httpx.Client(base_url=up.gateway, timeout=10) as api:
        assert api.get("/v1/ping", headers={"X-API-Key": key}).status_code == 200
        assert api.get("/v1/nowhere", headers={"X-API-Key": key}).status_code == 404
    up.cli("reminders", "sweep", "--as-of", "+6mo")
    yield opened
    context.close()


@pytest.mark.parametrize(
    "path", [PANEL, "/accounts/demo/api-calls", "/notifications", "/profile", "/sudo"]
)
def test_a_page_has_no_serious_or_critical_accessibility_finding(page: Page, path: str) -> None:
    page.goto(path)
    if path == "/notifications":  # the reminder arrives a moment after the sweep
        deadline = time.monotonic() + 15
        while not page.locator("ul.notifications li").count():
            assert time.monotonic() < deadline, "no reminder"
            time.sleep(0.5)
            page.reload()
    assert not findings(page), findings(page)


def test_the_open_actions_menu_has_no_serious_or_critical_finding(page: Page) -> None:
    page.goto(PANEL)
    page.get_by_text("Actions", exact=True).click()
    expect(page.get_by_role("button", name="Rotate key")).to_be_visible()
    assert not findings(page), findings(page)


def test_the_actions_menu_opens_reaches_rotate_and_closes_from_the_keyboard(page: Page) -> None:
    page.goto(PANEL)
    tab_to(page, "Actions")
    page.keyboard.press("Enter")
    rotate = page.get_by_role("button", name="Rotate key")
    expect(rotate).to_be_visible()
    tab_to(page, "Rotate key")
    expect(rotate).to_be_focused()
    page.keyboard.press("Escape")
    expect(rotate).to_be_hidden()
    assert focused(page) == "Actions"  # focus goes back to where the menu opened


def test_show_and_its_password_prompt_work_from_the_keyboard(page: Page) -> None:
    page.goto(PANEL)
    tab_to(page, "Show")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    tab_to(page, "")  # the password field (an input has no text)
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(page.url.split("/sudo")[0] + PANEL)
    tab_to(page, "Show")
    page.keyboard.press("Enter")
    expect(page.locator("#api-key")).to_be_visible()
    tab_to(page, "Copy")


def test_captions_for_screen_readers_only_take_no_room_on_screen(page: Page) -> None:
    page.goto(PANEL)
    caption = page.locator("#log caption.visually-hidden")
    expect(caption).to_have_count(1)
    box = caption.bounding_box()
    assert box is not None
    assert box["width"] <= 1
    assert box["height"] <= 1
