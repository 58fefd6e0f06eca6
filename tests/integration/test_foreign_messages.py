"""A message on KEYS or NOTIFY that is not an event of its subject's account breaks nothing.

Published here by an identity that may write anything (no auth): what an old stream, an
admin's mistake or a reply aimed at a stream subject leaves behind. Every command on the
account keeps working, before and after a restart; the projections keep going; the
notifier's ReminderSent chain goes on around it; `replay --verify` names it (exit 4).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from contracts.calendar import add_months
from contracts.envelope import GENESIS_HASH, chain_hash
from contracts.keys import KEYS_STREAM, event_subject
from contracts.notifier import NOTIFY_STREAM
from contracts.notifier import event_subject as notify_subject
from keyledger.audit.replay import read_messages
from tests.drivers.keys import Request, running
from tests.drivers.notifier import Notify, running_notifier
from tests.plugins.db import sqlite_only
from tests.random_refs import new_account

if TYPE_CHECKING:
    from nats.aio.client import Client

    from services.keys.settings import KeysSettings
    from services.notifier.settings import NotifierSettings

pytestmark = pytest.mark.nats
KEYLEDGER = Path(sys.executable).parent / "keyledger"
MARKER = "klk_0nly1nTh3F0r3ignM3ss4g3"  # stands for anything a foreign message may hold
FOREIGN = {
    "a stream's publish ack": b'{"stream":"CALLS","seq":1}',
    "not JSON": b"\x00\xff not json " + MARKER.encode(),
    "a JSON object holding a secret": json.dumps({"key": MARKER}).encode(),
    "another account's event": b"",  # filled in by the test: a real event of `other`
}


async def ok(request_json: Request, verb: str, **body: Any) -> dict[str, Any]:
    reply = await request_json(f"keys.cmd.{verb}", body)
    assert reply["ok"], reply
    return dict(reply["result"])


async def opened_with_key(request_json: Request, account: str, owner: str) -> dict[str, Any]:
    """Open the account and generate its key as its owner; the generate result."""
    email = f"{owner}@x.io"
    await ok(request_json, "open_account", account_id=account, owner=owner, email=email)
    return await ok(request_json, "generate", account_id=account, actor=owner)


async def verdict(request_json: Request, key: str) -> str | None:
    reply = await request_json("keys.verify", {"key": key})
    return None if reply["result"]["valid"] else str(reply["result"]["reason"])


async def audit_actions(request_json: Request, account: str, expected: int) -> list[str]:
    for _ in range(200):
        reply = await request_json("keys.query.audit", {"account_id": account})
        if len(items := reply["result"]["items"]) >= expected:
            return [item["action"] for item in items]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the audit log of {account} stayed at {items}")


@dataclass
class Replay:
    code: int
    out: str
    err: str


async def replay(url: str, cwd: Path, *args: str) -> Replay:
    """`keyledger replay --verify` as a user runs it: its own process, nothing ambient."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    proc = await asyncio.create_subprocess_exec(
        str(KEYLEDGER), "replay", "--verify", "--nats-url", url, *args,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return Replay(proc.returncode, out.decode(), err.decode())


def reported(caplog: pytest.LogCaptureFixture, stream: str, seq: int) -> list[str]:
    prefix = f"{stream} stream sequence {seq} on "
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


@pytest.mark.parametrize("kind", FOREIGN)
async def test_a_foreign_message_on_an_accounts_subject_breaks_nothing(
    kind: str,
    db_url: str,
    keys_settings: KeysSettings,
    notifier_settings: NotifierSettings,
    notify: Notify,
    request_json: Request,
    nc: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if kind != "a stream's publish ack" and db_url.startswith("postgresql"):
        pytest.skip("the database makes no difference here; one kind runs on PostgreSQL")
    caplog.set_level(logging.DEBUG)
    victim, other = new_account("victim"), new_account("other")
    js = nc.jetstream()
    async with running(keys_settings), running_notifier(notifier_settings):
        first = await opened_with_key(request_json, victim, "alice")
        theirs = await opened_with_key(request_json, other, "olga")
        body = FOREIGN[kind] or (await js.get_last_msg(KEYS_STREAM.name, event_subject(other))).data
        foreign = (await js.publish(event_subject(victim), body, stream=KEYS_STREAM.name)).seq

        shown = await ok(request_json, "reveal", account_id=victim, actor="alice")
        assert shown["key"] == first["key"]
        await ok(request_json, "grant_admin", account_id=victim, actor="alice", user="bob",
                 email="b@x.io")  # fmt: skip
        second = await ok(request_json, "rotate", account_id=victim, actor="bob", confirm=True)
        assert await verdict(request_json, first["key"]) == "deactivated"
        await notify.caught_up()  # the notifier's KEYS projection went past it too
        assert (await notify.reminders(victim))["key"]["key_id"] == second["key_id"]
        done = await ok(request_json, "deactivate", account_id=victim, actor="alice", confirm=True)
        assert done["key_id"] == second["key_id"]
        assert await verdict(request_json, second["key"]) == "deactivated"

        assert (await ok(request_json, "reveal", account_id=other, actor="olga"))["key"] == (
            theirs["key"]
        )
        assert await verdict(request_json, theirs["key"]) is None
        assert await audit_actions(request_json, victim, 6) == [
            "deactivated", "rotated", "admin_granted", "viewed", "created", "account_opened",
        ]  # fmt: skip
        await notify.caught_up()
        assert (await notify.reminders(victim))["key"] is None
        assert (await notify.reminders(other))["key"]["key_id"] == theirs["key_id"]

    # a keys service started afterwards replays the stream, foreign message and all
    async with running(keys_settings), running_notifier(notifier_settings):
        assert await verdict(request_json, second["key"]) == "deactivated"
        third = await ok(request_json, "generate", account_id=victim, actor="bob")
        assert await verdict(request_json, third["key"]) is None
        assert await verdict(request_json, theirs["key"]) is None
        assert (await audit_actions(request_json, victim, 7))[0] == "created"
        await notify.caught_up()
        assert (await notify.reminders(victim))["key"]["key_id"] == third["key_id"]

    found = await replay(keys_settings.nats_url, tmp_path)
    assert found.code == 4, found
    assert "Traceback" not in found.err
    assert f"foreign message: stream sequence {foreign} on {event_subject(victim)}" in found.err
    assert found.out.endswith("verified 10 events in 2 accounts: OK, 1 foreign message\n")
    document = json.loads((await replay(keys_settings.nats_url, tmp_path, "--json")).out)
    assert [(f["stream_seq"], f["subject"]) for f in document["findings"]] == [
        (foreign, event_subject(victim))
    ]
    assert document["verified"]["events"] == 10

    # logged once, at ERROR, by stream sequence, without the message itself
    [line] = reported(caplog, KEYS_STREAM.name, foreign)
    assert event_subject(victim) in line
    assert all(r.levelno == logging.ERROR for r in caplog.records if "is not an event" in r.msg)
    assert MARKER not in caplog.text
    assert '"stream":"CALLS"' not in caplog.text


async def test_a_copy_of_an_old_event_published_again_revives_no_key(
    keys_settings: KeysSettings,
    notifier_settings: NotifierSettings,
    notify: Notify,
    request_json: Request,
    nc: Client,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    victim = new_account("victim")
    js = nc.jetstream()
    async with running(keys_settings), running_notifier(notifier_settings):
        key = await opened_with_key(request_json, victim, "alice")
        t0 = datetime.fromisoformat(key["created_at"])
        generated = await js.get_last_msg(KEYS_STREAM.name, event_subject(victim))
        await ok(request_json, "deactivate", account_id=victim, actor="alice", confirm=True)
        again = await js.publish(event_subject(victim), generated.data, stream=KEYS_STREAM.name)
        await ok(request_json, "grant_admin", account_id=victim, actor="alice", user="bob",
                 email="b@x.io")  # fmt: skip
        assert await verdict(request_json, key["key"]) == "deactivated"
        # the notifier took the copy for what it is too: no live key, nothing ever due
        assert await dead_key_forgotten(notify, victim, t0)
    async with running(keys_settings), running_notifier(notifier_settings):
        assert await verdict(request_json, key["key"]) == "deactivated"
        assert await dead_key_forgotten(notify, victim, t0)
        fresh = await ok(request_json, "generate", account_id=victim, actor="bob")
        await notify.caught_up()  # the chain goes on after the copy: bob's grant, this key
        found = await notify.reminders(victim)
        assert found["key"]["key_id"] == fresh["key_id"]
        assert found["upcoming"][0]["recipients"] == ["alice", "bob"]

    # not foreign: an event of this account out of its place is a broken chain (exit 1)
    broken = await replay(keys_settings.nats_url, tmp_path)
    assert broken.code == 1, broken
    assert "Traceback" not in broken.err
    assert broken.err.startswith(f"error: chain_broken: stream sequence {again.seq} ")
    # one line per process, whichever reader met it first, never the event itself
    [line] = reported(caplog, KEYS_STREAM.name, again.seq)
    assert "sequence 2 does not continue the chain at 3" in line
    assert key["key_id"] not in caplog.text


async def dead_key_forgotten(notify: Notify, account: str, since: datetime) -> bool:
    """No key in the notifier's projection, and a sweep a year on finds nothing due."""
    await notify.caught_up()
    swept = await notify.sweep(add_months(since, 13))
    found = await notify.reminders(account, add_months(since, 13))
    seen = (found["key"], found["reminders"], found["upcoming"])
    return seen == (None, [], []) and (swept["due_keys"], swept["claimed"]) == (0, 0)


async def reminder_events(nc: Client, account: str) -> list[tuple[int, dict[str, Any] | None]]:
    """Every message on the account's NOTIFY subject; None for one that is not JSON."""
    found = []
    async for seq, subject, data in read_messages(nc, NOTIFY_STREAM.name, "notify.events.>"):
        if subject == notify_subject(account):
            try:
                found.append((seq, json.loads(data)))
            except ValueError:
                found.append((seq, None))
    return found


@sqlite_only
@pytest.mark.parametrize("body", [b'{"stream":"KEYS","seq":1}', b"\x00 not json"])
async def test_reminders_chain_on_around_a_foreign_message_on_notify(
    body: bytes,
    keys_settings: KeysSettings,
    notifier_settings: NotifierSettings,
    notify: Notify,
    request_json: Request,
    nc: Client,
    tmp_path: Path,
) -> None:
    victim, js = new_account("victim"), nc.jetstream()
    async with running(keys_settings):
        async with running_notifier(notifier_settings):
            key = await opened_with_key(request_json, victim, "alice")
            t0 = datetime.fromisoformat(key["created_at"])
            assert (await notify.sweep(add_months(t0, 5)))["published"] == 1
            foreign = [(await js.publish(notify_subject(victim), body)).seq]
            # the publisher's remembered head is stale now: it must find the chain again
            assert (await notify.sweep(add_months(t0, 6)))["published"] == 1
            foreign.append((await js.publish(notify_subject(victim), body)).seq)
        async with running_notifier(notifier_settings):  # a fresh publisher: nothing cached
            assert (await notify.sweep(add_months(t0, 12)))["published"] == 2

    messages = await reminder_events(nc, victim)
    assert [seq for seq, raw in messages if raw is None or "hash" not in raw] == foreign
    events = [raw for _, raw in messages if raw is not None and "hash" in raw]
    prev = GENESIS_HASH
    for number, event in enumerate(events, start=1):
        assert (event["sequence"], event["prev_hash"]) == (number, prev)
        assert event["hash"] == chain_hash(event)
        prev = event["hash"]
    assert len(events) == 4

    found = await replay(keys_settings.nats_url, tmp_path, "--stream", "NOTIFY", "--subject",
                         "notify.events.>")  # fmt: skip
    assert found.code == 4, found
    assert "Traceback" not in found.err
    assert found.out.endswith("verified 4 events in 1 account: OK, 2 foreign messages\n")
    for seq in foreign:
        assert f"foreign message: stream sequence {seq} on {notify_subject(victim)}" in found.err
