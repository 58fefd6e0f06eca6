"""On `keyledger up --dev`: the console's commands carry the person as actor, via the console."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from contracts.connection import credentials_file, read_credentials
from services.console.settings import ConsoleSettings
from tests.drivers import console
from tests.random_refs import new_account

if TYPE_CHECKING:
    from pathlib import Path

    from tests.drivers.permissions import System

pytestmark = pytest.mark.nats


async def test_a_key_shown_in_the_console_is_audited_as_the_person_via_the_console(
    system: System, tmp_path: Path
) -> None:
    # `keyledger up` makes the console its own FRONTENDS user, beside the CLI's
    found = read_credentials(credentials_file(system.data_dir, "console"))
    settings = ConsoleSettings(
        nats_url=system.url,
        db_url=f"sqlite+aiosqlite:///{tmp_path}/console.db",
        nats_user=found.user,
        nats_password=found.password,  # type: ignore[arg-type]
        public_url=console.BASE,
    )
    async with console.running(settings, console.Clock()) as app:
        account = new_account()
        await app.client.open_account(account, "alice", "alice@example.com")
        await app.client.generate(account, "alice")
        await app.add_user("alice")
        browser = app.browser()
        await browser.sign_in("alice")
        await browser.sudo()
        assert (await browser.post(f"/accounts/{account}/api-key/show")).status_code == 200
        for _ in range(50):
            items = (await app.client.audit(account))["items"]
            viewed = [i for i in items if i["action"] == "viewed"]
            if viewed:
                break
            await asyncio.sleep(0.1)
    assert viewed[0]["actor"] == "alice"
    assert viewed[0]["via"]["user"] == found.user
