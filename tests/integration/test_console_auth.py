"""The console's sign-in against real keys, on SQLite and PostgreSQL: links, sessions, limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyotp
import pytest
from sqlalchemy import func, select

from services.console import users
from services.console.security import CSP
from services.console.store import sessions, setup_tokens
from tests.drivers.console import PASSWORD, Running
from tests.random_refs import new_account

if TYPE_CHECKING:
    from tests.drivers.console import Browser

pytestmark = pytest.mark.nats


async def session_rows(console: Running) -> int:
    async with console.engine.connect() as db:
        return int((await db.execute(select(func.count()).select_from(sessions))).scalar_one())


async def signed_in_as(browser: Browser, user: str) -> bool:
    page = await browser.get("/profile")
    return page.status_code == 200 and f"<dd>{user}</dd>" in page.text


async def test_a_setup_link_sets_the_password_once_and_only_its_hash_is_stored(
    console_app: Running,
) -> None:
    link = await users.setup_link_for_new_user(
        console_app.settings.db_url,
        "alice",
        "alice@example.com",
        "http://console.test",
        console_app.clock(),
    )
    token = link.rsplit("/", 1)[1]
    path = f"/setup/{token}"
    browser = console_app.browser()
    assert (await browser.get(path)).status_code == 200
    done = await browser.post(path, {"password": PASSWORD, "repeat": PASSWORD})
    assert done.status_code == 200
    assert "Your password is set" in done.text
    again = console_app.browser()
    assert (await again.get(path)).status_code == 404
    assert (await again.post(path, {"password": "x" * 20, "repeat": "x" * 20})).status_code in (
        403,
        404,
    )
    async with console_app.engine.connect() as db:
        stored = (await db.execute(select(setup_tokens.c.token_hash))).scalars().all()
    assert token not in stored
    assert users.token_hash(token) in stored
    assert (await browser.sign_in("alice")).status_code == 303


async def test_a_setup_link_expires_after_24_hours(console_app: Running) -> None:
    link = await users.setup_link_for_new_user(
        console_app.settings.db_url,
        "bob",
        "bob@example.com",
        "http://console.test",
        console_app.clock(),
    )
    console_app.clock.advance(hours=24)
    browser = console_app.browser()
    path = link.removeprefix("http://console.test")
    assert (await browser.get(path)).status_code == 404
    record = await users.find(console_app.engine, "bob")
    assert record is not None
    assert record.password_hash is None


async def test_a_short_password_is_refused_and_the_link_stays_usable(console_app: Running) -> None:
    link = await users.setup_link_for_new_user(
        console_app.settings.db_url,
        "carol",
        "c@example.com",
        "http://console.test",
        console_app.clock(),
    )
    path = link.removeprefix("http://console.test")
    browser = console_app.browser()
    await browser.get(path)
    refused = await browser.post(path, {"password": "short", "repeat": "short"})
    assert refused.status_code == 400
    assert "at least 12 characters" in refused.text
    assert (await browser.post(path, {"password": PASSWORD, "repeat": PASSWORD})).status_code == 200


async def test_sign_in_rotates_the_session_id_and_sign_out_deletes_it(console_app: Running) -> None:
    await console_app.add_user("alice")
    browser = console_app.browser()
    await browser.get("/signin")
    before = browser.session_cookie()
    assert before is not None
    signed = await browser.post("/signin", {"user": "alice", "password": PASSWORD, "next": "/x"})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/x"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    after = browser.session_cookie()
    assert after not in (None, before)
    assert await signed_in_as(browser, "alice")
    # the id from before sign-in opens nothing
    stale = console_app.browser()
    stale.http.cookies.set("keyledger_console", before)
    assert (await stale.get("/profile")).status_code == 303
    rows = await session_rows(console_app)
    out = await browser.post("/signout")
    assert out.status_code == 303
    assert await session_rows(console_app) == rows - 1
    reused = console_app.browser()
    reused.http.cookies.set("keyledger_console", after)
    assert (await reused.get("/profile")).status_code == 303


async def test_a_session_ends_after_30_idle_minutes_and_after_12_hours(
    console_app: Running,
) -> None:
    await console_app.add_user("alice")
    browser = console_app.browser()
    await browser.sign_in("alice")
    console_app.clock.advance(minutes=29)
    assert await signed_in_as(browser, "alice")
    console_app.clock.advance(minutes=30)
    assert (await browser.get("/profile")).headers["location"] == "/signin?next=/profile"
    await browser.sign_in("alice")
    for _ in range(25):  # busy all along, half an hour at a time
        console_app.clock.advance(minutes=29)
        if not await signed_in_as(browser, "alice"):
            break
    assert not await signed_in_as(browser, "alice")


async def test_ten_failures_refuse_sign_in_without_checking_the_password(
    console_app: Running,
) -> None:
    await console_app.add_user("alice")
    browser = console_app.browser()
    for _ in range(10):
        wrong = await browser.sign_in("alice", "not the password")
        assert wrong.status_code == 400
        assert "Wrong user name, password or code." in wrong.text
    right = await browser.sign_in("alice")
    assert right.status_code == 429
    assert "Too many failed attempts" in right.text
    assert "Try again after" in right.text
    # another address is refused too: the user is locked out
    other = console_app.browser(address="10.0.0.9")
    assert (await other.sign_in("alice")).status_code == 429
    console_app.clock.advance(minutes=15)
    assert (await browser.sign_in("alice")).status_code == 303


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    console_app: Running,
) -> None:
    await console_app.add_user("alice")
    browser = console_app.browser()
    await browser.sign_in("alice")
    rows = await session_rows(console_app)
    for token in ("", "forged"):
        refused = await browser.post("/signout", csrf=token)
        assert refused.status_code == 403
        assert "nothing was changed" in refused.text
    assert await session_rows(console_app) == rows
    assert await signed_in_as(browser, "alice")
    fresh = console_app.browser()
    assert (await fresh.post("/signin", {"user": "alice", "password": PASSWORD})).status_code == 403


async def test_every_response_carries_the_security_headers(console_app: Running) -> None:
    browser = console_app.browser()
    for path in ("/signin", "/", "/static/console.css", "/setup/nope", "/nowhere"):
        response = await browser.get(path)
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
    page = (await browser.get("/signin")).text
    assert "<script>" not in page
    assert "onclick" not in page
    assert "style=" not in page


async def test_totp_once_on_is_asked_at_sign_in_and_at_sudo(console_app: Running) -> None:
    await console_app.add_user("alice")
    browser = console_app.browser()
    await browser.sign_in("alice")
    await browser.sudo()
    profile = await browser.get("/profile")
    secret = profile.text.split('name="secret" value="')[1].split('"')[0]
    totp = pyotp.TOTP(secret)
    wrong = await browser.post("/profile/totp/enable", {"secret": secret, "code": "000000"})
    assert wrong.status_code == 400 or totp.now() == "000000"
    on = await browser.post(
        "/profile/totp/enable", {"secret": secret, "code": totp.at(console_app.clock())}
    )
    assert "Two-factor sign-in is on." in on.text
    await browser.post("/signout")
    assert (await browser.sign_in("alice")).status_code == 400
    code = totp.at(console_app.clock())
    assert (await browser.sign_in("alice", code=code)).status_code == 303
    assert (await browser.sudo()).status_code == 400
    assert (await browser.sudo(code=totp.at(console_app.clock()))).status_code == 303


async def test_no_log_line_holds_a_password_token_or_session_id(
    console_app: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    link = await users.setup_link_for_new_user(
        console_app.settings.db_url,
        "dave",
        "d@example.com",
        "http://console.test",
        console_app.clock(),
    )
    token = link.rsplit("/", 1)[1]
    browser = console_app.browser()
    await browser.get(f"/setup/{token}?next=x")
    await browser.post(f"/setup/{token}", {"password": PASSWORD, "repeat": PASSWORD})
    await browser.sign_in("dave", "wrong wrong wrong")
    await browser.sign_in("dave")
    account = new_account()
    await console_app.client.open_account(account, "dave", "d@example.com")
    await browser.post(f"/accounts/{account}/api-key/generate")
    await browser.sudo()
    shown = await browser.post(f"/accounts/{account}/api-key/show")
    key = shown.text.split('id="api-key">')[1].split("<")[0]
    session = browser.session_cookie()
    assert session
    assert key.startswith("klk_")
    # the console's records, not the test's own HTTP client's
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "POST" not in logged or "/setup/" not in logged
    for secret in (PASSWORD, "wrong wrong wrong", token, session, key):
        assert secret not in logged
