"""The console's defences over real HTTP against `keyledger up --dev`: who gets nothing, forged
forms, session fixation, sudo, setup links, sign-in lockout, keys kept out of caches and logs."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from starlette.routing import Route

from services.console.pages import all_routes
from tests.e2e.conftest import PASSWORD
from tests.e2e.visitor import Visitor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Up

pytestmark = pytest.mark.nats

ACCOUNT = "demo"
PANEL = f"/accounts/{ACCOUNT}/api-key"
PUBLIC = {"/signin", "/setup/{token}"}  # what a signed-out visitor may open
KEY = re.compile(r"klk_[0-9a-z]{20,}")
KEY_ID = re.compile(r"key_[0-9a-f]{32}")


@dataclass
class People:
    demo: Visitor  # signed in, in sudo; owns the account demo and its key
    key: str
    demo_link: str


def shown(page: str) -> set[str]:
    """The keys and key ids a page carries."""
    return set(KEY.findall(page)) | set(KEY_ID.findall(page))


def key_id_on(page: str) -> str | None:
    found = KEY_ID.search(page)
    return found.group(0) if found else None


@pytest.fixture(scope="module")
def people(up: Up) -> Iterator[People]:
    with Visitor(up.console) as demo:
        assert demo.set_password(up.demo_setup_link).status_code == 200
        assert demo.sign_in("demo").status_code == 303
        made = demo.post(f"{PANEL}/generate")
        assert made.status_code == 200, made.text
        found = KEY.search(made.text)
        assert found, made.text
        demo.sudo()
        yield People(demo, found.group(0), up.demo_setup_link)


def every_route() -> Iterator[tuple[str, str, str]]:
    """(method, path template, a path to request) for every page route of the console, so a
    route added later is covered without touching this test."""
    values = {"account_id": ACCOUNT, "token": "no-such-token", "action": "show"}
    for route in all_routes():
        if not isinstance(route, Route):
            continue
        filled = {name: values.get(name, "x") for name in route.param_convertors}
        path = route.path_format.format(**filled)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            yield method, route.path, path


def test_a_signed_out_visitor_and_someone_who_administers_nothing_get_nothing(
    up: Up, people: People
) -> None:
    key_id = key_id_on(people.demo.get(PANEL).text)
    assert key_id is not None
    routes = list(every_route())
    assert len(routes) > 15
    routes.sort(key=lambda r: r[1] == "/signout")  # signing out last
    # addresses of their own: their failed sign-in and sudo posts count against those only
    with Visitor(up.console, "127.0.0.3") as stranger, Visitor(up.console, "127.0.0.4") as mallory:
        assert mallory.set_password(up.setup_link("mallory")).status_code == 200
        assert mallory.sign_in("mallory").status_code == 303
        mallory.sudo()
        for method, template, path in routes:
            seen = stranger.get(path) if method == "GET" else stranger.post(path, {})
            where = f"signed out: {method} {path}"
            if template not in PUBLIC:
                assert seen.status_code == 303, where
                if not seen.headers["location"].startswith("/signin"):  # a page that asks
                    seen = stranger.get(seen.headers["location"])
                    assert seen.status_code == 303, where
                assert seen.headers["location"].startswith("/signin"), where
            assert not {key_id, people.key} & shown(seen.text), where
            form = {"confirm": ACCOUNT, "grace": "none", "user": "mallory", "id": "x"}
            seen = mallory.get(path) if method == "GET" else mallory.post(path, form)
            where = f"mallory: {method} {path}"
            if "{account_id}" in template:
                assert seen.status_code == 403, where
                assert ACCOUNT not in seen.text.replace("mallory", ""), where
            assert not {key_id, people.key} & shown(seen.text), where
    assert key_id_on(people.demo.get(PANEL).text) == key_id  # nothing changed


def test_a_post_without_or_with_a_wrong_csrf_token_changes_nothing(people: People) -> None:
    demo = people.demo
    before = demo.get(PANEL).text
    log_before = before.split('id="log"', 1)[1]
    form = {"confirm": ACCOUNT, "grace": "none", "user": "eve", "email": "eve@example.com"}
    for action in ("api-key/rotate", "api-key/deactivate", "admins/grant"):
        for token in ("", "forged-" + demo.csrf[7:]):
            refused = demo.post(f"/accounts/{ACCOUNT}/{action}", form, csrf=token)
            assert refused.status_code == 403, action
            assert "nothing was changed" in refused.text
    assert demo.post("/signout", csrf="").status_code == 403
    after = demo.get(PANEL)
    assert after.status_code == 200  # still signed in
    assert key_id_on(after.text) == key_id_on(before)
    assert after.text.split('id="log"', 1)[1] == log_before
    assert "eve" not in after.text


def test_a_session_id_from_before_sign_in_is_not_valid_after_it(up: Up, people: People) -> None:
    with Visitor(up.console) as fixed:
        fixed.get("/signin")
        planted = fixed.session()
        assert planted
        assert fixed.sign_in("demo").status_code == 303
        assert fixed.session() not in (None, planted)
        assert fixed.get(PANEL).status_code == 200
    with Visitor(up.console) as attacker:
        attacker.http.cookies.set("keyledger_console", planted)
        assert attacker.get(PANEL).status_code == 303


def test_show_rotate_and_deactivate_outside_sudo_ask_for_the_password_and_change_nothing(
    up: Up, people: People
) -> None:
    with Visitor(up.console) as fresh:
        assert fresh.sign_in("demo").status_code == 303
        key_id = key_id_on(fresh.get(PANEL).text)
        form = {"confirm": ACCOUNT, "grace": "none", "key_id": key_id or ""}
        for action in ("show", "rotate", "deactivate"):
            asked = fresh.post(f"{PANEL}/{action}", form)
            assert asked.status_code == 303, action
            assert asked.headers["location"] == f"/sudo?next={PANEL}/{action}"
            assert people.key not in asked.text
        assert fresh.post("/sudo", {"password": "not the password", "next": "/"}).status_code == 400
        assert fresh.post(f"{PANEL}/show", form).status_code == 303
        assert key_id_on(fresh.get(PANEL).text) == key_id


def test_a_used_or_expired_setup_link_is_refused(up: Up, people: People) -> None:
    with Visitor(up.console) as visitor:
        for method in ("GET", "POST"):  # demo's link was used by the fixture
            path = setup_path(people.demo_link)
            if method == "GET":
                spent = visitor.get(path)
            else:
                visitor.get("/signin")  # a session and its token, so CSRF is not what refuses
                spent = visitor.post(path, {"password": "x" * 16, "repeat": "x" * 16})
            assert spent.status_code == 404, method
            assert "not valid" in spent.text
        link = up.setup_link("late")
        with sqlite3.connect(up.data_dir / "console.db") as db:  # as if issued 24 hours ago
            expired = db.execute(
                "UPDATE console_setup_tokens SET expires_at = created_at WHERE user = 'late'"
            )
            assert expired.rowcount == 1
        assert visitor.get(setup_path(link)).status_code == 404
    with Visitor(up.console) as demo:
        assert demo.sign_in("demo").status_code == 303  # the password the link set still works


def setup_path(link: str) -> str:
    return "/setup/" + link.rsplit("/", 1)[1]


def test_the_eleventh_wrong_password_in_a_row_is_refused_even_when_right(up: Up) -> None:
    with Visitor(up.console) as owner:
        assert owner.set_password(up.setup_link("target")).status_code == 200
    # from an address of its own, so the other tests' sign-ins are not locked out with it
    with Visitor(up.console, address="127.0.0.2") as guesser:
        for _ in range(10):
            assert guesser.sign_in("target", "wrong password!").status_code == 400
        locked = guesser.sign_in("target", PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed attempts" in locked.text
        assert "Try again after" in locked.text
        assert guesser.get(PANEL).status_code == 303
    with Visitor(up.console) as elsewhere:  # the user is locked from every address
        assert elsewhere.sign_in("target", PASSWORD).status_code == 429


def test_no_key_is_cached_put_in_a_url_or_logged(up: Up, people: People) -> None:
    demo = people.demo
    shown = demo.post(f"{PANEL}/show")
    assert shown.status_code == 200
    assert people.key in shown.text
    rotated = demo.post(f"{PANEL}/rotate", {"confirm": ACCOUNT, "grace": "1h"})
    assert rotated.status_code == 200, rotated.text
    keys = {people.key, *KEY.findall(rotated.text)}
    assert len(keys) == 2
    for response in (shown, rotated, demo.get(PANEL)):
        assert response.headers["cache-control"] == "no-store"
    log = up.console_log()
    secrets = [*keys, PASSWORD, demo.session() or "-", people.demo_link.rsplit("/", 1)[1]]
    for response in demo.seen:
        for secret in keys:
            assert secret not in str(response.url)
            assert secret not in response.headers.get("location", "")
        if KEY.search(response.text):
            assert response.headers["cache-control"] == "no-store", response.url
    for secret in secrets:
        assert secret not in log
