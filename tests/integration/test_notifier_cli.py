"""`keyledger notifications` and `keyledger reminders` against the real services, mbox outbox."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from faststream import TestApp

from contracts.calendar import add_months
from keyledger.cli.times import parse_as_of
from services.notifier.app import create_app
from tests.drivers.cli import Cli
from tests.drivers.notifier import settings_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# no developer's KEYLEDGER_* variables or working directory leak in
pytestmark = pytest.mark.usefixtures("no_ambient_config")


@pytest.fixture
def cli(cli_service: str, tmp_path: Path) -> Iterator[Cli]:
    """The keys service and a notifier without SMTP (mail goes to the mbox), in-process."""
    db_url = f"sqlite+aiosqlite:///{tmp_path}/test.db"
    settings = settings_for(cli_service, db_url, tmp_path / "data", None)
    with TestApp(create_app(settings)):
        yield Cli(cli_service)


def keyed(cli: Cli) -> datetime:
    cli.ok("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    created = cli.json("key", "generate", "acme", "--as", "alice")["created_at"]
    return datetime.fromisoformat(created)


@pytest.mark.nats
def test_reminder_walkthrough(cli: Cli, tmp_path: Path) -> None:
    t0 = keyed(cli)
    swept = cli.ok("reminders", "sweep", "--as-of", "+5mo").stdout
    assert "1 key due, 1 reminder claimed, 1 delivered" in swept
    [mail] = mailbox.mbox(tmp_path / "data" / "outbox.mbox")
    assert mail["To"] == "alice@example.com"
    assert "acme" in mail["Subject"]

    cli.ok("reminders", "sweep", "--as-of", add_months(t0, 6).isoformat())
    listed = cli.ok("notifications", "alice").stdout
    assert "unread  Rotate the API key of account acme: in use for 6 months" in listed
    [entry] = cli.json("notifications", "alice", "--unread", "--account", "acme")["items"]
    assert cli.ok("notifications", "read", "alice", entry["id"]).stdout == "marked 1 read\n"
    assert cli.json("notifications", "alice", "--unread")["items"] == []
    assert "(no notifications)" in cli.ok("notifications", "bob").stdout

    status = cli.ok("reminders", "acme", "--as-of", "+6mo").stdout
    words = [line.split() for line in status.splitlines()]
    assert ["5", "months", "email", "alice", "<alice@example.com>", "delivered"] in [
        w[:6] for w in words
    ]
    assert ["6", "months", "sidebar", "alice", "delivered"] in [w[:5] for w in words]
    assert ["12", "months", "email+sidebar", "alice"] in [w[1:5] for w in words]
    as_json = cli.json("reminders", "show", "acme")
    assert as_json["key"]["age_months"] == 0
    assert [u["milestone_months"] for u in as_json["upcoming"]] == [12, 18, 24]


@pytest.mark.nats
def test_refusals_and_usage_errors_exit_as_documented(cli: Cli) -> None:
    keyed(cli)
    unknown = "00000000-0000-0000-0000-000000000000"
    refused = cli("notifications", "read", "alice", unknown)
    assert refused.exit_code == 1
    assert "unknown_notification" in refused.stderr
    bad_id = cli("notifications", "read", "alice", "not-an-id")
    assert (bad_id.exit_code, "invalid_request" in bad_id.stderr) == (1, True)
    for args in (["reminders", "acme", "--as-of", "2026-02-30"], ["reminders", "sweep", "--as-of"]):
        assert cli(*args).exit_code == 2
    for moment in ("9999-12-31", "+99999999999d", "+9999999y", "0001-01-01T00:00:00+05:00"):
        beyond = cli("reminders", "acme", "--as-of", moment)
        assert (beyond.exit_code, "Traceback" in beyond.stderr) == (2, False), moment
        assert "1970-01-01 and 8999-12-31" in beyond.stderr
    assert cli("notifications").exit_code == 2
    missing = cli("reminders", "show", "nobody", "--json")
    assert (missing.exit_code, '"key": null' in missing.stdout) == (0, True)


def test_as_of_accepts_dates_times_and_offsets() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_as_of("+5mo", now) == datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    assert parse_as_of("+1y", now) == datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    assert parse_as_of("+10d", now) == datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
    assert parse_as_of("+2w", now) == datetime(2026, 2, 14, 12, 0, tzinfo=UTC)
    assert parse_as_of("now", now) == now
    assert parse_as_of("2026-07-01", now) == datetime(2026, 7, 1, tzinfo=UTC)
    assert parse_as_of("2026-07-01T10:00:00+02:00", now) == datetime(2026, 7, 1, 8, tzinfo=UTC)
    for bad in ("tomorrow", "+5m", "2026-13-01", "-5mo"):
        with pytest.raises(ValueError, match="not a date"):
            parse_as_of(bad, now)
    for beyond in ("9999-12-31", "1969-12-31", "+999999999999d", "+7000y", "+99999999999mo"):
        with pytest.raises(ValueError, match="must lie between"):
            parse_as_of(beyond, now)
