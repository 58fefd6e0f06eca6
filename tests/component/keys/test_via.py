"""The frontend nats-server vouches for (Nats-Request-Info) reaches the command's event."""

from __future__ import annotations

import json

from contracts.accounts import REQUEST_INFO_HEADER, SERVICES
from contracts.keys import command_subject, query_subject
from tests.component.keys.conftest import ACCOUNT, OWNER, Keys

OPEN = {"account_id": ACCOUNT, "owner": OWNER, "email": "alice@example.com"}


def request_info(account: str, user: str | None = None) -> dict[str, str]:
    """The header as nats-server stamps it on a request that crossed a service import."""
    info = {"acc": account, "rtt": "1.2ms"} | ({"user": user} if user else {})
    return {REQUEST_INFO_HEADER: json.dumps(info)}


async def test_the_importing_account_and_user_are_recorded_on_the_event(keys: Keys) -> None:
    reply = await keys.ask(command_subject("open_account"), OPEN, request_info("FRONTENDS", "bob"))
    assert reply["ok"] is True
    assert keys.appended()[0]["via"] == {"account": "FRONTENDS", "user": "bob"}


async def test_a_request_without_the_header_records_no_via(keys: Keys) -> None:
    await keys.ask(command_subject("open_account"), OPEN)
    assert keys.appended()[0]["via"] is None


async def test_a_header_naming_the_services_account_records_no_via(keys: Keys) -> None:
    await keys.ask(command_subject("open_account"), OPEN, request_info(SERVICES, "root"))
    assert keys.appended()[0]["via"] is None


async def test_the_via_reaches_the_audit_log(keys: Keys) -> None:
    await keys.ask(command_subject("open_account"), OPEN, request_info("FRONTENDS", "bob"))
    await keys.project()
    page = await keys.ask(query_subject("audit"), {"account_id": ACCOUNT})
    assert page["result"]["items"][0]["via"] == {"account": "FRONTENDS", "user": "bob"}
