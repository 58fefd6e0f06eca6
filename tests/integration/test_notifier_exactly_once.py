"""Exactly once: repeated sweeps, SMTP outages and refusals, a killed notifier, two notifiers."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from contracts.calendar import add_months
from keyledger.audit.replay import read_stream
from tests.drivers.notifier import (
    Notify,
    notifier_process,
    running_notifier,
    settings_for,
    wait_serving,
)
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from nats.aio.client import Client

    from services.notifier.settings import NotifierSettings
    from tests.drivers.keys import Request
    from tests.drivers.smtp import SmtpSink

pytestmark = pytest.mark.nats


async def keyed_account(
    request_json: Request, admins: tuple[str, ...] = ("bob",)
) -> tuple[str, datetime]:
    """An account whose key alice generated: (account, when the key came into use)."""
    account = new_account()
    body = {"account_id": account, "owner": "alice", "email": "alice@x.io"}
    assert (await request_json("keys.cmd.open_account", body))["ok"]
    for user in admins:
        grant = {"account_id": account, "actor": "alice", "user": user, "email": f"{user}@x.io"}
        assert (await request_json("keys.cmd.grant_admin", grant))["ok"]
    key = await request_json("keys.cmd.generate", {"account_id": account, "actor": "alice"})
    return account, datetime.fromisoformat(key["result"]["created_at"])


async def sent_events(nc: Client) -> list[str]:
    return [json.loads(d)["event_id"] async for _, d in read_stream(nc, "NOTIFY", "notify.>")]


def states(status: dict[str, object]) -> set[tuple[str, int]]:
    return {(r["state"], r["attempts"]) for r in status["reminders"]}  # type: ignore[attr-defined]


@pytest.mark.usefixtures("notifier_service")
async def test_repeated_sweeps_deliver_each_reminder_once(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink, nc: Client
) -> None:
    _, t0 = await keyed_account(request_json)
    for months in (5, 5, 6, 6, 12, 12, 12):
        await notify.sweep_months(t0, months)
    assert len(smtp_sink.messages) == 4  # 5 and 12 months, to alice and bob
    assert len(await notify.sidebar("alice")) == 2  # 6 and 12
    events = await sent_events(nc)
    assert len(events) == len(set(events)) == 8


@pytest.mark.usefixtures("notifier_service")
async def test_mail_waits_while_smtp_is_down_and_goes_once_when_back(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    account, t0 = await keyed_account(request_json)
    smtp_sink.stop()
    down = await notify.sweep_months(t0, 5)
    assert (down["claimed"], down["delivered"], down["retrying"], down["waiting"]) == (2, 0, 2, 2)
    again = await notify.sweep_months(t0, 5)  # within the backoff: not tried yet
    assert (again["retrying"], again["waiting"]) == (0, 2)
    status = await notify.reminders(account)
    assert states(status) == {("claimed", 1)}
    assert all("SMTP unavailable" in r["last_error"] for r in status["reminders"])

    smtp_sink.start()
    await asyncio.sleep(0.3)  # past the first backoff step (0.2 s)
    back = await notify.sweep_months(t0, 5)
    assert (back["delivered"], back["waiting"]) == (2, 0)
    await notify.sweep_months(t0, 5)
    assert sorted(m["To"] for m in smtp_sink.messages) == ["alice@x.io", "bob@x.io"]
    assert states(await notify.reminders(account)) == {("delivered", 2)}


@pytest.mark.usefixtures("notifier_service")
async def test_a_refused_recipient_fails_for_good_and_stays_visible(
    request_json: Request, notify: Notify, smtp_sink: SmtpSink
) -> None:
    smtp_sink.refuse["bob@x.io"] = "550 5.1.1 no such user"
    account, t0 = await keyed_account(request_json)
    result = await notify.sweep_months(t0, 5)
    assert (result["delivered"], result["failed"], result["waiting"]) == (1, 1, 0)
    await notify.sweep_months(t0, 5)
    assert [m["To"] for m in smtp_sink.messages] == ["alice@x.io"]
    reminders = (await notify.reminders(account))["reminders"]
    failed = [r for r in reminders if r["state"] == "failed"]
    assert [(r["recipient"], r["attempts"]) for r in failed] == [("bob", 1)]
    assert failed[0]["last_error"].startswith("recipient refused: 550")


@contextmanager
def killed_afterwards(settings: NotifierSettings, log_file: Path) -> Iterator[object]:
    proc = notifier_process(settings, log_file)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.usefixtures("keys_service")
async def test_a_notifier_killed_mid_delivery_is_finished_by_the_next_sweep(
    request_json: Request,
    notify: Notify,
    smtp_sink: SmtpSink,
    nats_url: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    account, t0 = await keyed_account(request_json)
    settings = settings_for(
        nats_url, db_url, tmp_path, smtp_sink, smtp_timeout=1, lease_seconds=1.5
    )
    log_file = tmp_path / "notifier.log"
    smtp_sink.stall.set()  # the first RCPT hangs: the claim is taken, the mail not sent
    with killed_afterwards(settings, log_file) as proc:
        await wait_serving(notify.nc, proc, log_file)  # type: ignore[arg-type]
        await notify.caught_up()
        body = json.dumps({"as_of": add_months(t0, 5).isoformat()}).encode()
        await notify.nc.publish("notify.cmd.sweep", body, reply=notify.nc.new_inbox())
        for _ in range(500):
            if smtp_sink.stalled.is_set():
                break
            await asyncio.sleep(0.01)
        assert smtp_sink.stalled.is_set(), log_file.read_text()
        proc.kill()  # type: ignore[attr-defined]  # SIGKILL: no cleanup of any kind
        proc.wait()  # type: ignore[attr-defined]
    smtp_sink.stall.clear()

    async with running_notifier(settings):
        assert states(await notify.reminders(account)) == {("claimed", 0)}
        await asyncio.sleep(1.6)  # the dead notifier's lease runs out
        result = await notify.sweep_months(t0, 5)
        assert (result["claimed"], result["delivered"], result["waiting"]) == (0, 2, 0)
        await notify.sweep_months(t0, 5)
    assert sorted(m["To"] for m in smtp_sink.messages) == ["alice@x.io", "bob@x.io"]


@pytest.mark.usefixtures("keys_service")
async def test_two_notifier_processes_never_deliver_a_reminder_twice(
    request_json: Request,
    notify: Notify,
    smtp_sink: SmtpSink,
    nats_url: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    starts = [(await keyed_account(request_json))[1] for _ in range(12)]
    as_of = add_months(max(starts), 12)
    settings = settings_for(nats_url, db_url, tmp_path, smtp_sink, delivery_chunk=3, sweep_batch=4)
    with (
        killed_afterwards(settings, tmp_path / "a.log") as first,
        killed_afterwards(settings, tmp_path / "b.log") as second,
    ):
        await wait_serving(notify.nc, first, tmp_path / "a.log")  # type: ignore[arg-type]
        await wait_serving(notify.nc, second, tmp_path / "b.log")  # type: ignore[arg-type]
        await notify.caught_up()
        results = await asyncio.gather(*(notify.sweep(as_of) for _ in range(12)))
        final = await notify.sweep(as_of)
        assert len(await notify.sidebar("bob")) == 12
    expected = 12 * 2 * 2  # accounts x (alice, bob) x (email, sidebar) at 12 months
    assert sum(r["claimed"] for r in results) == expected
    assert sum(r["delivered"] for r in [*results, final]) == expected
    assert final["waiting"] == 0
    ids = smtp_sink.ids()
    assert len(ids) == len(set(ids)) == 24
    events = await sent_events(notify.nc)
    assert len(events) == len(set(events)) == expected
