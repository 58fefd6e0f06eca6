"""`keyledger calls` and `key show`'s last use, against the real keys and calllog services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import nats
import pytest
from faststream import TestApp
from typer.testing import CliRunner

from keyledger.cli import app
from services.calllog.app import create_app
from services.calllog.settings import CallLogSettings
from tests.drivers.calllog import ingested, publish
from tests.drivers.cli import Cli, field
from tests.fakes.calllog import a_call

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from contracts.calllog import CallRecorded

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("no_ambient_config")]


@pytest.fixture
def calllog(cli_service: str, tmp_path: Path) -> Iterator[str]:
    """The calllog service in this process, beside the keys service."""
    settings = CallLogSettings(
        nats_url=cli_service, db_url=f"sqlite+aiosqlite:///{tmp_path}/calllog.db"
    )
    with TestApp(create_app(settings)):
        yield cli_service


def record(url: str, *calls: CallRecorded) -> None:
    async def send() -> None:
        nc = await nats.connect(url)
        try:
            await ingested(nc, await publish(nc, *calls))
        finally:
            await nc.close()

    asyncio.run(send())


def traffic(key_id: str) -> list[CallRecorded]:
    now = datetime.now(UTC)
    return [
        a_call("acme", now - timedelta(hours=30), key_id=key_id, path="/v1/old", status=200),
        a_call("acme", now - timedelta(minutes=9), key_id=key_id, path="/v1/contacts", status=201),
        a_call("acme", now - timedelta(minutes=5), key_id=key_id, path="/v1/ping", status=404),
        a_call("acme", now - timedelta(minutes=1), key_id=key_id, path="/v1/contacts", status=500),
    ]


def test_calls_lists_newest_first_and_filters(acme: Cli, calllog: str) -> None:
    key = acme.json("key", "generate", "acme", "--as", "alice")
    made = traffic(key["key_id"])
    record(calllog, *made)

    lines = acme.ok("calls", "acme").stdout.splitlines()
    assert [line.split()[5] for line in lines] == [
        "/v1/contacts",
        "/v1/ping",
        "/v1/contacts",
        "/v1/old",
    ]
    assert lines[0].split()[1:3] == ["GET", "500"]
    assert acme.json("calls", "list", "acme")["items"] == acme.json("calls", "acme")["items"]
    errors = acme.json("calls", "acme", "--status", "4XX", "--key", key["key_id"])["items"]
    assert [c["call_id"] for c in errors] == [made[2].call_id]
    recent = acme.json("calls", "acme", "--since", "24h", "--path", "/v1/contacts")["items"]
    assert [c["status"] for c in recent] == [500, 201]

    refused = acme.json("calls", "not.an.account", exit_code=1)
    assert refused["error"]["code"] == "invalid_request"

    first = acme("calls", "acme", "--limit", "1")
    assert first.exit_code == 0
    cursor = first.stderr.split("--cursor ")[1].strip()
    second = acme.json("calls", "acme", "--limit", "1", "--cursor", cursor)["items"]
    assert [c["call_id"] for c in second] == [made[2].call_id]


def test_calls_stats_sums_up_the_week(acme: Cli, calllog: str) -> None:
    key = acme.json("key", "generate", "acme", "--as", "alice")
    record(calllog, *traffic(key["key_id"]))
    stats = acme.json("calls", "stats", "acme", "--by", "day")
    assert stats["total"] == 4
    assert stats["error_rate"] == 0.5
    assert stats["top_paths"][0] == {"path": "/v1/contacts", "calls": 2}
    assert [k["key_id"] for k in stats["keys"]] == [key["key_id"]]
    text = acme.ok("calls", "stats", "acme").stdout
    assert field(text, "calls") == "4"
    assert field(text, "error rate") == "50.0% (4xx and 5xx)"
    assert field(text, "by status") == "2xx 2, 4xx 1, 5xx 1"


def test_key_show_tells_when_the_key_was_last_used(acme: Cli, calllog: str) -> None:
    key = acme.json("key", "generate", "acme", "--as", "alice")
    assert field(acme.ok("key", "show", "acme", "--as", "alice").stdout, "last used") == "never"
    made = traffic(key["key_id"])
    record(calllog, *made)
    shown = acme.json("key", "show", "acme", "--as", "alice")
    assert datetime.fromisoformat(shown["last_used_at"]) == made[-1].ts
    text = acme.ok("key", "show", "acme", "--as", "alice").stdout
    assert field(text, "last used") == made[-1].ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_key_show_says_unknown_without_the_call_log(acme: Cli) -> None:
    acme.ok("key", "generate", "acme", "--as", "alice")
    shown = acme.ok("key", "show", "acme", "--as", "alice").stdout
    assert field(shown, "last used").startswith("unknown")
    assert field(shown, "key").startswith("klk_")


@pytest.mark.parametrize(
    "args",
    [
        ["calls", "acme", "--status", "6xx"],
        ["calls", "acme", "--since", "yesterday"],
        ["calls", "acme", "--since", "0001-01-01T00:00:00+05:00"],
        ["calls", "acme", "--since", "9999-12-31"],
        ["calls", "acme", "--path", "v1/contacts"],
        ["calls", "acme", "--limit", "5000"],
        ["calls", "stats", "acme", "--by", "week"],
    ],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    assert CliRunner().invoke(app, [*args, "--nats-url", "nats://127.0.0.1:1"]).exit_code == 2


def test_calls_without_the_call_log_exit_3(acme: Cli) -> None:
    assert acme("calls", "acme").exit_code == 3
    refused = acme.json("calls", "bad.account", exit_code=3)
    assert refused["error"]["code"] == "unreachable"
