"""Least privilege: every identity's forbidden publish, subscription and JetStream call is
refused by the server, and nothing is stored; each identity can still do its own job."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contracts.connection import credentials_file, read_credentials
from keyledger.client import KeyledgerClient
from keyledger.deploy.auditcopy import ensure_copies
from keyledger.deploy.permissions import CALLS, IDENTITIES, KEYS, NOTIFY, ORIGIN_API
from tests.drivers.permissions import (
    OPERATOR,
    STREAMS,
    System,
    a_call,
    add_operator,
    connect,
    snapshot,
    unchanged,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.nats

RESTRICTED = (*(i for i in IDENTITIES if i != "admin"), OPERATOR)
# who may append to which stream, by publishing to its subjects
EVENTS = {
    "keys": "keys.events.acme",
    "notifier": "notify.events.acme",
    "gateway": "calls.recorded.acme",
}
# who may append a checkpoint of which stream; nobody else publishes to checkpoints.>
CHECKPOINTS = {"keys": "checkpoints.keys", "notifier": "checkpoints.notify"}
# the streams on which an identity may create ephemeral consumers (durables: its own only)
READS = {"keys": {KEYS}, "notifier": {NOTIFY}, "calllog": set(), "auditor": set(STREAMS)}
SERVES = {"keys": ("keys.cmd.>", "keys.verify"), "notifier": ("notify.cmd.>",)}
SERVES |= {"calllog": ("calls.query.>",)}
OTHERS_REQUESTS = (
    "keys.cmd.reveal",
    "keys.query.audit",
    "keys.query.accounts",
    "calls.query.list",
    "calls.query.clients",
    "notify.cmd.sweep",
)
MAY_REQUEST = {
    "keys": ("keys.",),
    "notifier": ("notify.",),
    "calllog": ("calls.",),
    "cli": ("keys.", "calls.", "notify."),
    "console": ("keys.", "calls.", "notify."),
    OPERATOR: ("keys.", "calls.", "notify."),
    "gateway": (),
    "auditor": (),
}
JS = "$JS.API"


@dataclass(frozen=True)
class Attempt:
    identity: str
    action: str  # "publish" (a request too) or "subscribe"
    subject: str
    body: bytes = b""

    @property
    def id(self) -> str:
        return f"{self.identity} {self.action} {self.subject}"


def _config(stream: str, durable: str | None = None) -> bytes:
    config: dict[str, object] = {"ack_policy": "explicit", "deliver_policy": "all"}
    if durable:
        config["durable_name"] = durable
    return json.dumps({"stream_name": stream, "config": config}).encode()


def _forbidden() -> Iterator[Attempt]:
    for who in RESTRICTED:
        # appending to another's stream
        for owner, subject in EVENTS.items():
            if owner != who:
                yield Attempt(who, "publish", subject, b"{}")
        for owner, subject in CHECKPOINTS.items():
            if owner != who:
                yield Attempt(who, "publish", subject, b"{}")
        yield Attempt(who, "publish", "checkpoints.calls", b"{}")
        # asking another service, or a service nobody lets it ask
        for subject in OTHERS_REQUESTS:
            if not subject.startswith(MAY_REQUEST[who]):
                yield Attempt(who, "publish", subject, b"{}")
        # reading everybody's replies (a reveal's carries the key), or another's; `_R_` is
        # where a reply crossing accounts goes in the services' account
        yield Attempt(who, "subscribe", ">")
        yield Attempt(who, "subscribe", "_INBOX.>")
        yield Attempt(who, "subscribe", "_R_.>")
        for other in ("cli", "console", OPERATOR, "gateway"):
            if other != who:
                yield Attempt(who, "subscribe", f"_INBOX_{other}.>")
        # events only through a consumer; nobody reads them as they are published
        yield Attempt(who, "subscribe", "keys.events.>")
        # impersonating a service: a fake keys.verify could approve any key
        for owner, subjects in SERVES.items():
            if owner != who:
                yield from (Attempt(who, "subscribe", subject) for subject in subjects)
        for stream in STREAMS:
            # history is admin's alone
            yield Attempt(who, "publish", f"{JS}.STREAM.DELETE.{stream}")
            yield Attempt(who, "publish", f"{JS}.STREAM.PURGE.{stream}", b"{}")
            yield Attempt(who, "publish", f"{JS}.STREAM.MSG.DELETE.{stream}", b'{"seq": 1}')
            yield Attempt(who, "publish", f"{JS}.STREAM.UPDATE.{stream}", b"{}")
            # consumers only on what it reads, durables only its own
            if stream not in READS.get(who, set()):
                yield Attempt(who, "publish", f"{JS}.CONSUMER.CREATE.{stream}", _config(stream))
            durable = _config(stream, "intruder")
            # an auditor names its consumers (nats.js, nats.go) on its account's copies
            for create in ("DURABLE.CREATE",) if who == "auditor" else ("CREATE", "DURABLE.CREATE"):
                yield Attempt(who, "publish", f"{JS}.CONSUMER.{create}.{stream}.intruder", durable)
        yield Attempt(who, "publish", f"{JS}.CONSUMER.DELETE.{KEYS}.keys-audit")
        yield Attempt(who, "publish", f"{JS}.CONSUMER.DELETE.{CALLS}.calllog-projection")
        yield Attempt(who, "publish", f"{JS}.STREAM.CREATE.SHADOW", b'{"subjects": ["shadow.>"]}')
    for stream in STREAMS:
        # the services' JetStream API that the auditors' copies source through: a push
        # consumer made there could deliver KEYS into notify.events.* (stored in NOTIFY)
        push = {"stream_name": stream, "config": {"deliver_subject": "notify.events.victim"}}
        body = json.dumps(push).encode()
        yield Attempt("auditor", "publish", f"{ORIGIN_API}.CONSUMER.CREATE.{stream}", body)
        yield Attempt("auditor", "publish", f"{ORIGIN_API}.CONSUMER.CREATE.{stream}.x", body)
        yield Attempt("auditor", "publish", f"{ORIGIN_API}.STREAM.MSG.GET.{stream}", b'{"seq":1}')


FORBIDDEN = list(_forbidden())


@pytest.fixture(scope="module")
def key(system: System) -> str:
    """Something in every stream: an account with a key, its reminders, one call; and an
    operator added while the system runs."""
    add_operator(system, OPERATOR)  # an operator added to the running system
    system.cli("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
    found = str(system.cli("key", "generate", "acme", "--as", "alice")["key"])
    for _ in range(10):  # the sweep waits for the notifier to see the key only a little
        if system.cli("reminders", "sweep", "--as-of", "+6mo")["published"]:
            break
    else:
        raise AssertionError("no reminder was ever sent")
    asyncio.run(_record_a_call(system))
    return found


async def _record_a_call(system: System) -> None:
    found = read_credentials(credentials_file(system.data_dir, "gateway"))
    client = await KeyledgerClient.connect(system.url, credentials=found)
    async with client:
        call = a_call()
        assert await client.record_call(call)


@pytest.mark.parametrize("attempt", FORBIDDEN, ids=lambda a: a.id)
async def test_a_forbidden_attempt_is_refused_and_stores_nothing(
    system: System, key: str, attempt: Attempt
) -> None:
    admin, me = await connect(system, "admin"), await connect(system, attempt.identity)
    try:
        js = admin.nc.jetstream()
        before = await snapshot(js)
        assert all(state.messages for state in before.values())
        if attempt.action == "subscribe":
            await me.nc.subscribe(attempt.subject)
        else:
            await me.nc.publish(attempt.subject, attempt.body, reply=me.nc.new_inbox())
        await me.nc.flush()
        what = "subscription" if attempt.action == "subscribe" else "publish"
        assert await me.refused(what, attempt.subject), me.errors
        await asyncio.sleep(0.05)  # a message the server took would be stored by now
        assert unchanged(before, await snapshot(js)) == []
    finally:
        await me.nc.close()
        await admin.nc.close()


async def test_an_auditors_consumers_live_in_its_own_account(system: System, key: str) -> None:
    admin, auditor = await connect(system, "admin"), await connect(system, "auditor")
    try:
        js = admin.nc.jetstream()
        await ensure_copies(auditor.nc)
        before = await snapshot(js)
        body = _config(KEYS, "intruder")
        reply = await auditor.nc.request(f"{JS}.CONSUMER.CREATE.{KEYS}.intruder", body, timeout=2)
        assert json.loads(reply.data)["name"] == "intruder"  # on the auditors' copy
        assert unchanged(before, await snapshot(js)) == []
        assert await auditor.nc.jetstream().consumer_info(KEYS, "intruder")
    finally:
        await auditor.nc.close()
        await admin.nc.close()


@pytest.mark.parametrize(
    ("identity", "subject", "aimed_at"),
    [
        ("cli", "keys.query.health", "keys.events.injected"),
        ("cli", "notify.query.health", "notify.events.injected"),
        ("gateway", "keys.verify", "keys.events.injected"),
    ],
)
async def test_a_reply_aimed_at_a_stream_is_not_sent(
    system: System, key: str, identity: str, subject: str, aimed_at: str
) -> None:
    """Services may publish events, so they answer inboxes only: otherwise a request could
    have its reply (a revealed key, say) stored in KEYS for good."""
    admin, me = await connect(system, "admin"), await connect(system, identity)
    try:
        js = admin.nc.jetstream()
        before = await snapshot(js)
        body = json.dumps({"fingerprint": "0" * 64}).encode() if subject == "keys.verify" else b""
        await me.nc.publish(subject, body, reply=aimed_at)
        assert (await me.nc.request(subject, body, timeout=2)).data  # answered when asked well
        await asyncio.sleep(0.2)
        assert unchanged(before, await snapshot(js)) == []
    finally:
        await me.nc.close()
        await admin.nc.close()


def test_every_process_runs_as_its_own_identity(system: System) -> None:
    for name in ("keys", "notifier", "calllog", "gateway"):
        pid = re.findall(rf"^  {name} +pid (\d+)", system.banner, re.MULTILINE)[0]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        wanted = f"KEYLEDGER_NATS_CREDENTIALS_FILE={credentials_file(system.data_dir, name)}"
        assert wanted.encode() in environ


def test_the_cli_and_the_auditor_do_their_jobs(system: System, key: str) -> None:
    assert system.cli("key", "verify", key)["valid"] is True
    assert system.cli("key", "show", "acme", "--as", "alice")["key"] == key
    # replay connects as the auditor
    assert system.cli("replay", "--verify")["verified"]["ok"] is True
    notify = system.cli("replay", "--stream", NOTIFY, "--subject", "notify.events.>", "--verify")
    assert notify["verified"]["events"] >= 1
    calls = system.cli("replay", "--stream", CALLS, "--subject", "calls.recorded.>")
    assert len(calls["events"]) >= 1


async def test_an_operator_asks_what_the_console_shows(system: System, key: str) -> None:
    found = read_credentials(credentials_file(system.data_dir, OPERATOR))
    async with await KeyledgerClient.connect(system.url, credentials=found) as operator:
        mine = await operator.accounts_of("alice")
        live = await operator.live_key("acme")
        callers = await operator.calls.clients("acme", live["key_id"], datetime.now(UTC))
    assert {"account_id": "acme", "super_admins": ["alice"]} in mine["accounts"]
    assert callers["key_id"] == live["key_id"]


async def test_a_gateway_verifies_keys_and_records_calls(system: System, key: str) -> None:
    admin = await connect(system, "admin")
    try:
        before = (await admin.nc.jetstream().stream_info(CALLS)).state.messages
        found = read_credentials(credentials_file(system.data_dir, "gateway"))
        async with await KeyledgerClient.connect(system.url, credentials=found) as gateway:
            assert (await gateway.verify(key))["valid"] is True
        await _record_a_call(system)
        assert (await admin.nc.jetstream().stream_info(CALLS)).state.messages == before + 1
    finally:
        await admin.nc.close()
