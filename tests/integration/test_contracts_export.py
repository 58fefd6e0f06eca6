"""Every message of a whole lifecycle, caught on `>`, matches the exported schemas under strict
validators (Python's jsonschema and ajv), and the AsyncAPI document parses without errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from contracts.calllog import CallRecorded
from keyledger.audit.catalogue import HEALTH, SERVED
from keyledger.audit.schemas import export_schemas
from keyledger.gateway import Gateway
from tests.drivers.node import TESTS_NODE, node_with
from tests.fakes.calllog import Clock
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from nats.aio.msg import Msg

    from services.calllog.settings import CallLogSettings
    from tests.drivers.keys import Request
    from tests.drivers.notifier import Notify

pytestmark = [
    pytest.mark.nats,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
    pytest.mark.usefixtures("notifier_service"),
]
STREAM_SCHEMAS = {
    "keys.events.": "Envelope",
    "notify.events.": "NotifyEnvelope",
    "calls.recorded.": "CallRecorded",
}


@pytest.fixture
def clock() -> Clock:
    return Clock(None)  # calls are stamped with the real time


@pytest.fixture
async def captured(nats_url: str) -> AsyncIterator[list[Msg]]:
    """Every message on `>` while the test runs."""
    seen: list[Msg] = []
    nc = await nats.connect(nats_url)

    async def keep(msg: Msg) -> None:
        seen.append(msg)

    await nc.subscribe(">", cb=keep)
    await nc.flush()
    yield seen
    await nc.close()


async def lifecycle(
    request_json: Request, notify: Notify, nats_url: str, calllog: CallLogSettings
) -> None:
    account = new_account()

    async def ok(subject: str, **body: Any) -> dict[str, Any]:
        reply = await request_json(subject, body)
        assert reply["ok"], reply
        return dict(reply["result"])

    await ok("keys.cmd.open_account", account_id=account, owner="alice", email="a@x.io")
    refused = await request_json(
        "keys.cmd.open_account", {"account_id": account, "owner": "alice", "email": "a@x.io"}
    )
    assert refused["error"]["code"] == "account_exists"
    await ok("keys.cmd.grant_admin", account_id=account, actor="alice", user="bob", email="b@x.io")
    key = await ok("keys.cmd.generate", account_id=account, actor="alice")
    await ok("keys.cmd.reveal", account_id=account, actor="bob")
    await ok("keys.query.key", account_id=account)
    await ok("keys.query.audit", account_id=account)
    await ok("keys.query.accounts", user="bob")
    for service in ("keys", "notify", "calls"):
        await ok(f"{service}.query.health")
    link = Gateway(nats_url)
    await link.start()
    assert (await link.verify(key["key"]))["valid"]
    now = datetime.now(UTC)
    link.record(
        CallRecorded(
            account_id=account,
            key_id=key["key_id"],
            ts=now,
            method="GET",
            path="/x",
            status=200,
            duration_ms=1.5,
        )
    )
    await link.stop()
    for _ in range(100):
        if (await ok("calls.query.list", account_id=account))["items"]:
            break
        await asyncio.sleep(0.05)
    await ok("calls.query.stats", account_id=account)
    await ok("calls.query.last_used", account_id=account, key_id=key["key_id"])
    await ok("calls.query.clients", account_id=account, key_id=key["key_id"], since=now.isoformat())
    await notify.sweep_months(datetime.fromisoformat(key["created_at"]), 6)
    items = await notify.sidebar("bob")
    await ok("notify.cmd.mark_read", user="bob", ids=[items[0]["id"]])
    await ok("notify.query.reminders", account_id=account)
    await ok("keys.cmd.rotate", account_id=account, actor="alice", confirm=True, grace_seconds=60)
    await ok("keys.cmd.deactivate", account_id=account, actor="alice", confirm=True)
    await ok("keys.cmd.revoke_admin", account_id=account, actor="alice", user="bob")
    await asyncio.sleep(0.3)  # the last stream messages reach the capture


def checks(seen: list[Msg]) -> list[tuple[str, Any]]:
    """(schema file, message) for every message of the system among those caught."""
    served = {s.subject: s for s in SERVED}
    replies: dict[str, str] = {}
    found: list[tuple[str, Any]] = []
    for msg in seen:
        if msg.subject in served and msg.reply:
            s = served[msg.subject]
            replies[msg.reply] = f"{s.result}Reply.schema.json"
            if msg.data:
                name = "HealthRequest" if s.request == HEALTH else s.request
                found.append((f"{name}.schema.json", json.loads(msg.data)))
        elif msg.subject in replies:
            found.append((replies[msg.subject], json.loads(msg.data)))
        for prefix, schema in STREAM_SCHEMAS.items():
            if msg.subject.startswith(prefix):
                found.append((f"{schema}.schema.json", json.loads(msg.data)))
    return found


async def test_every_message_of_a_lifecycle_matches_the_exported_schemas(
    request_json: Request,
    notify: Notify,
    nats_url: str,
    calllog_service: CallLogSettings,
    captured: list[Msg],
    tmp_path: Path,
) -> None:
    await lifecycle(request_json, notify, nats_url, calllog_service)
    folder = tmp_path / "contracts"
    export_schemas(folder)
    docs = {p.name: json.loads(p.read_text()) for p in folder.glob("*.schema.json")}
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in docs.values()
    )
    found = checks(captured)
    kinds = {schema for schema, _ in found}
    assert {
        "Envelope.schema.json",
        "NotifyEnvelope.schema.json",
        "CallRecorded.schema.json",
        "CallPageReply.schema.json",
        "HealthReply.schema.json",
    } <= kinds
    problems = []
    for schema, data in found:
        Draft202012Validator.check_schema(docs[schema])
        validator = Draft202012Validator(
            docs[schema], registry=registry, format_checker=FormatChecker()
        )
        problems += [f"{schema}: {e.message}" for e in validator.iter_errors(data)]
    assert problems == []
    node = await asyncio.to_thread(
        node_with, TESTS_NODE, "ajv", "@asyncapi/parser", why="the ajv and AsyncAPI parser checks"
    )
    lines = tmp_path / "messages.jsonl"
    lines.write_text("".join(json.dumps({"schema": s, "data": d}) + "\n" for s, d in found))
    done = await asyncio.to_thread(
        subprocess.run,
        [node, str(TESTS_NODE / "contracts.mjs"), str(folder), str(lines)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["checked"] == len(found)
