"""Signed checkpoints of KEYS and NOTIFY: published, verified by replay, and a rewrite caught."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from datetime import datetime
from typing import TYPE_CHECKING, Any

import nats
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from contracts import checkpoints as cp
from contracts.envelope import canonical_json, chain_hash
from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from keyledger.audit.checkpoints import CheckpointChecker, read_checkpoints
from keyledger.audit.replay import read_messages
from keyledger.audit.schemas import documents
from keyledger.cli import app
from keyledger.local.server import NatsServer
from services.common.streams import ensure_stream
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers import keys
from tests.drivers.cli import Cli
from tests.drivers.notifier import settings_for
from tests.random_refs import new_account

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.client import Client

    from services.notifier.settings import NotifierSettings
    from tests.drivers.keys import Request
    from tests.drivers.notifier import Notify
    from tests.drivers.smtp import SmtpSink

pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("no_ambient_config")]
FAST = {"checkpoint_every_events": 2, "checkpoint_every_seconds": 0.2}


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    path = tmp_path / cp.KEY_FILE_NAME
    assert cp.generate_key_file(path)
    return path


@pytest.fixture
def public_key_file(tmp_path: Path, signing_key: Path) -> Path:
    path = tmp_path / "checkpoints.pub"
    path.write_text(cp.public_text(cp.load_private_key(signing_key).public_key()))
    return path


@pytest.fixture
def keys_settings(nats_url: str, db_url: str, signing_key: Path) -> KeysSettings:
    return KeysSettings(
        nats_url=nats_url,
        db_url=db_url,
        master_key=new_master_key(),
        checkpoint_key_file=signing_key,
        **FAST,
    )


@pytest.fixture
def notifier_settings(
    nats_url: str, db_url: str, tmp_path: Path, smtp_sink: SmtpSink, signing_key: Path
) -> NotifierSettings:
    return settings_for(
        nats_url, db_url, tmp_path, smtp_sink, checkpoint_key_file=signing_key, **FAST
    )


async def command(request_json: Request, verb: str, **body: Any) -> dict[str, Any]:
    reply = await request_json(f"keys.cmd.{verb}", body)
    assert reply["ok"], reply
    return dict(reply["result"])


async def keyed_account(request_json: Request) -> dict[str, Any]:
    account = new_account()
    await command(
        request_json, "open_account", account_id=account, owner="alice", email="alice@x.io"
    )
    return await command(request_json, "generate", account_id=account, actor="alice")


async def covered(nc: Client, stream: str, seconds: float = 15.0) -> list[dict[str, Any]]:
    """The stream's checkpoints, once the newest covers everything the stream holds."""
    js = nc.jetstream()
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await read_checkpoints(nc, stream, cp_subject(stream))
        last = (await js.stream_info(stream)).state.last_seq
        if found and found[-1]["last_seq"] == last:
            return found
        assert asyncio.get_running_loop().time() < deadline, (stream, last, found[-1:])
        await asyncio.sleep(0.1)


def cp_subject(stream: str) -> str:
    return {"KEYS": KEYS_STREAM.subjects[0], "NOTIFY": NOTIFY_STREAM.subjects[0]}[stream]


async def run(cli: Cli, *args: str) -> Any:
    """The CLI in a thread: it runs an event loop of its own."""
    return await asyncio.to_thread(cli, *args)


@pytest.mark.usefixtures("notifier_service")
async def test_a_lifecycle_leaves_signed_checkpoints_that_replay_verifies(
    request_json: Request, notify: Notify, nc: Client, nats_url: str, public_key_file: Path
) -> None:
    text = await asyncio.to_thread(public_key_file.read_text)
    made = [await keyed_account(request_json) for _ in range(3)]
    swept = await notify.sweep_months(datetime.fromisoformat(made[-1]["created_at"]), 5)
    assert swept["published"] >= 3
    public = cp.parse_public_key(text)
    for stream in ("KEYS", "NOTIFY"):
        found = await covered(nc, stream)
        checker = CheckpointChecker(stream, found, public)
        assert checker.check_chain() is None
        assert found[0]["prev_hash"] == "0" * 64
        assert found[-1]["accounts"] == 3

    cli = Cli(nats_url)
    keys_replay = await run(cli, "replay", "--verify", "--public-key", str(public_key_file))
    assert keys_replay.exit_code == 0, keys_replay.stderr
    assert "checkpoint" in keys_replay.stdout
    notify_args = ("--stream", "NOTIFY", "--subject", "notify.events.>", "--json")
    key_args = ("--public-key", str(public_key_file))
    notified = await run(cli, "replay", "--verify", *notify_args, *key_args)
    assert notified.exit_code == 0, notified.stderr
    assert json.loads(notified.stdout)["verified"]["checkpoints"] >= 1

    exported = await run(cli, "checkpoints", "export", "--stream", "KEYS")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [c["number"] for c in lines] == list(range(1, len(lines) + 1))
    schema = documents()["Checkpoint.schema.json"]  # what `keyledger contracts export` writes
    for body in lines:
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(body)
    asked = ["checkpoints", "key", "--data-dir", str(public_key_file.parent)]
    shown = await asyncio.to_thread(cli.runner.invoke, app, asked)
    assert shown.stdout.strip() == text


async def _forge(source: Client, target_url: str, alter: bool) -> None:
    """KEYS and CHECKPOINTS copied to another server; `alter`: one account's history
    rewritten with every hash recomputed, so each chain still verifies."""
    target = await nats.connect(target_url)
    try:
        js = target.jetstream()
        await ensure_stream(js, KEYS_STREAM)
        await ensure_stream(js, cp.CHECKPOINTS_STREAM)
        victim, prev = None, ""
        async for _, subject, data in read_messages(source, "KEYS", "keys.events.>"):
            raw = json.loads(data)
            if alter and victim in (None, raw["stream_id"]):
                victim = raw["stream_id"]
                if raw["sequence"] == 1:
                    raw["payload"]["owner_email"] = "mallory@evil.example"
                else:
                    raw["prev_hash"] = prev
                raw["hash"] = chain_hash(raw)
                prev = raw["hash"]
            await js.publish(subject, canonical_json(raw), stream="KEYS")
        async for _, subject, data in read_messages(source, "CHECKPOINTS", "checkpoints.>"):
            await js.publish(subject, data, stream="CHECKPOINTS")
    finally:
        await target.close()


@pytest.mark.usefixtures("keys_service")
async def test_a_history_rewritten_with_recomputed_hashes_fails_its_checkpoint(
    request_json: Request, nc: Client, tmp_path: Path, public_key_file: Path
) -> None:
    for _ in range(3):
        await keyed_account(request_json)
    await covered(nc, "KEYS")
    for alter, wanted in ((False, 0), (True, 5)):
        with NatsServer.start(tmp_path / f"forged-{alter}", die_with_parent=True) as server:
            await _forge(nc, server.url, alter)
            cli = Cli(server.url)
            result = await run(cli, "replay", "--verify", "--public-key", str(public_key_file))
        assert result.exit_code == wanted, (result.stdout, result.stderr)
        if alter:
            assert "error: checkpoint_mismatch: checkpoint 1 of KEYS" in result.stderr


async def test_two_keys_replicas_publish_one_checkpoint_chain(
    keys_settings: KeysSettings, request_json: Request, nc: Client
) -> None:
    fast = keys_settings.model_copy(
        update={"checkpoint_every_events": 1, "checkpoint_every_seconds": 0.05}
    )
    async with AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(keys.running(fast))
        for _ in range(6):
            await keyed_account(request_json)
            await asyncio.sleep(0.1)
        found = await covered(nc, "KEYS")
    assert CheckpointChecker("KEYS", found, None).check_chain() is None
    assert len({c["last_seq"] for c in found}) == len(found)
