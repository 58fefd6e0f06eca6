"""verifiers/node/verify.mjs, written from AUDITING.md, and `keyledger replay --verify` /
`verify-file` agree: OK on a real history, the same first bad event on tampered copies."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from typing import TYPE_CHECKING, Any

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from faststream import TestApp
from typer.testing import CliRunner

from contracts import checkpoints as cp
from contracts.envelope import chain_hash
from keyledger.audit.checkpoint_check import FIRST_PREV_HASH, checkpoint_hash, key_id, merkle_root
from keyledger.audit.offline import Record, export_line
from keyledger.audit.replay import ChainChecker, read_messages
from keyledger.cli import app
from services.keys.app import create_app
from services.keys.settings import KeysSettings
from services.keys.vault import new_master_key
from tests.drivers.cli import Cli
from tests.drivers.node import VERIFIER, node_with
from tests.random_refs import new_account

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.drivers.permissions import System


pytestmark = [pytest.mark.nats, pytest.mark.usefixtures("no_ambient_config")]
RUN_TIMEOUT = 60


def _node() -> str:
    return node_with(VERIFIER, "nats", why="the Node.js verifier")


def _verify_with_node(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [_node(), str(VERIFIER / "verify.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode in (0, 1, 4, 5), done.stderr
    return done.returncode, json.loads(done.stdout)


def _lifecycle(acme: Cli) -> None:
    acme.ok("account", "open", "globex", "--owner", "gina", "--email", "g@example.com")
    acme.ok("key", "generate", "acme", "--as", "alice")  # the hint holds a U+2026
    acme.ok("key", "generate", "globex", "--as", "gina")
    acme.ok("key", "show", "acme", "--as", "alice")
    acme.ok("key", "rotate", "acme", "--as", "alice", "--yes")


async def _copy(url: str, name: str, alter: Callable[[int, str, bytes], bytes | None]) -> None:
    """KEYS into a scratch stream `name` (subjects copy.<name>.<subject>), each stored body
    passed through `alter` (None: left out)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[f"copy.{name}.>"])
        async for seq, subject, data in read_messages(nc):
            if (body := alter(seq, subject, data)) is not None:
                await js.publish(f"copy.{name}.{subject}", body, stream=name)
    finally:
        await nc.close()


def _first_bad_by_replay(acme: Cli, name: str) -> tuple[int, str, int]:
    doc = acme.json(
        "replay", "--verify", "--stream", name, "--subject", f"copy.{name}.>", exit_code=1
    )
    assert doc["error"]["code"] == "chain_broken"
    problem = doc["problem"]
    return problem["stream_seq"], problem["account"], problem["sequence"]


def _acme_2(seq: int, subject: str, data: bytes) -> bool:
    event = json.loads(data)
    return (event["stream_id"], event["sequence"]) == ("acme", 2)


def _payload_byte(seq: int, subject: str, data: bytes) -> bytes:
    # one byte inside the payload, the stored bytes otherwise untouched
    return data.replace(b'"kind":"', b'"kind":"X', 1) if _acme_2(seq, subject, data) else data


def _hash_digit(seq: int, subject: str, data: bytes) -> bytes:
    if not _acme_2(seq, subject, data):
        return data
    event = json.loads(data)
    event["hash"] = ("1" if event["hash"][0] != "1" else "2") + event["hash"][1:]
    return json.dumps(event, ensure_ascii=False).encode()


def _deleted(seq: int, subject: str, data: bytes) -> bytes | None:
    return None if _acme_2(seq, subject, data) else data


def test_both_verifiers_pass_a_real_history_and_its_export(acme: Cli, tmp_path: Path) -> None:
    _lifecycle(acme)
    code, report = _verify_with_node("--url", acme.url)
    assert code == 0, report
    keys = report["streams"][0]
    assert (keys["stream"], keys["events"], keys["accounts"]) == ("KEYS", 6, 2)
    assert acme.ok("replay", "--verify").stdout.endswith("verified 6 events in 2 accounts: OK\n")

    exported = acme.ok("export", "--stream", "KEYS").stdout
    assert "…" in exported  # the hint, raw UTF-8 as stored
    (tmp_path / "keys.jsonl").write_text(exported, encoding="utf-8")
    offline = CliRunner().invoke(app, ["verify-file", str(tmp_path / "keys.jsonl")])
    assert offline.exit_code == 0, offline.stderr
    assert offline.stdout == "KEYS: verified 6 events in 2 accounts and 0 checkpoints: OK\n"
    code, report = _verify_with_node("--file", str(tmp_path / "keys.jsonl"))
    assert code == 0, report
    only = acme.ok("export", "--stream", "KEYS", "--account", "globex").stdout.splitlines()
    assert [json.loads(line)["subject"] for line in only] == ["keys.events.globex"] * 2


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (_payload_byte, "altered"),
        (_hash_digit, "altered"),
        (_deleted, "sequence 3 where 2 was expected"),
    ],
    ids=["a payload byte", "a hash", "a deleted event"],
)
def test_both_verifiers_name_the_same_first_bad_event_of_a_tampered_copy(
    acme: Cli, tamper: Callable[[int, str, bytes], bytes | None], first_bad: str
) -> None:
    _lifecycle(acme)
    asyncio.run(_copy(acme.url, "TAMPERED", tamper))
    by_replay = _first_bad_by_replay(acme, "TAMPERED")
    code, report = _verify_with_node("--url", acme.url, "--stream", "TAMPERED=KEYS")
    assert code == 1, report
    bad = report["bad"]
    assert bad["problem"] == "chain_broken"
    assert (bad["stream_seq"], bad["account"], bad["sequence"]) == by_replay
    assert by_replay[1] == "acme"
    assert first_bad in bad["reason"]


def _rewrite(seq: int, subject: str, data: bytes, heads: dict[str, str]) -> bytes:
    """Every event of acme after its first altered and re-hashed: the chains still hold."""
    event = json.loads(data)
    account = event["stream_id"]
    if account in heads:
        event["prev_hash"] = heads[account]
    if account == "acme" and event["sequence"] >= 2:
        event["actor"] = "mallory"
    event["hash"] = chain_hash(event)
    heads[account] = event["hash"]
    return json.dumps(event, ensure_ascii=False).encode()


async def _publish_checkpoint(url: str, seed: bytes) -> None:
    """A checkpoint of the real KEYS signed with a test seed, into a scratch stream."""
    nc = await nats.connect(url)
    try:
        checker = ChainChecker()
        last = 0
        async for seq, subject, data in read_messages(nc):
            assert checker.feed(seq, data, subject) is None
            last = seq
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        body: dict[str, Any] = {
            "stream": "KEYS", "number": 1, "last_seq": last, "accounts": checker.accounts,
            "root": merkle_root(checker.heads), "prev_hash": FIRST_PREV_HASH,
            "at": "2026-11-30T06:00:00Z", "key_id": key_id(public),
        }  # fmt: skip
        body["hash"] = checkpoint_hash(body)
        body["signature"] = base64.b64encode(private.sign(body["hash"].encode())).decode()
        js = nc.jetstream()
        await js.add_stream(name="SIGNED", subjects=["signed.>"])
        await js.publish("signed.keys", json.dumps(body).encode(), stream="SIGNED")
    finally:
        await nc.close()


def test_a_wholesale_rewrite_passes_the_chains_and_fails_the_checkpoint(
    acme: Cli, tmp_path: Path
) -> None:
    """The checkpoint here is signed by the test with a fixed seed, as AUDITING.md says the
    services sign theirs; the case with the services' own checkpoints is below."""
    _lifecycle(acme)
    seed = bytes(range(32))
    asyncio.run(_publish_checkpoint(acme.url, seed))
    heads: dict[str, str] = {}
    asyncio.run(_copy(acme.url, "REWRITTEN", lambda s, sub, d: _rewrite(s, sub, d, heads)))
    rewritten = acme("replay", "--verify", "--stream", "REWRITTEN", "--subject", "copy.REWRITTEN.>")
    assert rewritten.exit_code == 0, rewritten.stderr  # the chains alone cannot tell

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    (tmp_path / "pub.key").write_text(base64.b64encode(raw).decode() + "\n")
    node_args = ["--checkpoints-stream", "SIGNED", "--public-key", str(tmp_path / "pub.key")]
    code, report = _verify_with_node("--url", acme.url, *node_args)
    assert code == 0, report
    assert report["streams"][0]["checkpoints"] == 1
    code, report = _verify_with_node("--url", acme.url, "--stream", "REWRITTEN=KEYS", *node_args)
    assert code == 5, report
    assert report["bad"]["problem"] == "checkpoint_mismatch"
    assert "rewritten" in report["bad"]["reason"]


@pytest.fixture
def signed(nats_url: str, tmp_path: Path) -> Iterator[tuple[Cli, Path]]:
    """A keys service that signs a checkpoint every two events, and account acme."""
    key = tmp_path / cp.KEY_FILE_NAME
    assert cp.generate_key_file(key)
    settings = KeysSettings(
        nats_url=nats_url,
        db_url=f"sqlite+aiosqlite:///{tmp_path}/signed-keys.db",
        master_key=new_master_key(),
        checkpoint_key_file=key,
        checkpoint_every_events=2,
        checkpoint_every_seconds=0.2,
    )
    with TestApp(create_app(settings)):
        cli = Cli(nats_url)
        cli.ok("account", "open", "acme", "--owner", "alice", "--email", "alice@example.com")
        yield cli, key


def _checkpoints_covering(acme: Cli, last_seq: int) -> str:
    """The exported checkpoints once one covers `last_seq` (they are published a moment
    after the events)."""
    for _ in range(100):
        exported = acme.ok("checkpoints", "export").stdout
        lines = [json.loads(line) for line in exported.splitlines() if line.strip()]
        if any(body["stream"] == "KEYS" and body["last_seq"] >= last_seq for body in lines):
            return exported
        time.sleep(0.1)
    raise AssertionError(f"no KEYS checkpoint covering sequence {last_seq}")


def test_a_wholesale_rewrite_fails_the_services_own_checkpoints(
    signed: tuple[Cli, Path], tmp_path: Path
) -> None:
    acme, signing_key = signed
    _lifecycle(acme)
    public = cp.public_text(cp.load_private_key(signing_key).public_key())
    (tmp_path / "pub.key").write_text(public)
    keys = acme.ok("export", "--stream", "KEYS").stdout
    last_seq = max(json.loads(line)["seq"] for line in keys.splitlines())
    (tmp_path / "cp.jsonl").write_text(_checkpoints_covering(acme, last_seq))
    heads: dict[str, str] = {}
    lines = []
    for line in keys.splitlines():
        record = json.loads(line)
        data = _rewrite(record["seq"], record["subject"], record["data"].encode(), heads)
        lines.append(export_line(Record("KEYS", record["seq"], record["subject"], {}, data)))
    (tmp_path / "keys.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = [
        "verify-file",
        str(tmp_path / "keys.jsonl"),
        "--checkpoints",
        str(tmp_path / "cp.jsonl"),
    ]
    result = CliRunner().invoke(app, [*argv, "--public-key", str(tmp_path / "pub.key")])
    assert result.exit_code == 5
    assert "checkpoint_mismatch" in result.stderr
    code, report = _verify_with_node(
        "--file", str(tmp_path / "keys.jsonl"), "--checkpoints-file", str(tmp_path / "cp.jsonl"),
        "--public-key", str(tmp_path / "pub.key"),
    )  # fmt: skip
    assert code == 5
    assert report["bad"]["problem"] == "checkpoint_mismatch"


def test_the_node_verifier_reads_a_fresh_keyledger_up_as_the_auditor(system: System) -> None:
    """With only the auditor's credentials file: the auditors' own copies of KEYS, NOTIFY
    and CHECKPOINTS, as an outside auditor meets them."""
    account = new_account()
    system.cli("account", "open", account, "--owner", "alice", "--email", "alice@example.com")
    system.cli("key", "generate", account, "--as", "alice")
    system.cli("key", "rotate", account, "--as", "alice", "--yes")
    shown = CliRunner().invoke(app, ["checkpoints", "key", "--data-dir", str(system.data_dir)])
    assert shown.exit_code == 0, shown.stderr
    public = system.data_dir / "checkpoints.pub"
    public.write_text(shown.stdout)
    creds = system.data_dir / "credentials" / "auditor.json"
    args = ("--url", system.url, "--creds", str(creds), "--public-key", str(public))
    for _ in range(50):  # the auditors' copies trail the services' streams by a moment
        code, report = _verify_with_node(*args)
        streams = {s["stream"]: s for s in report["streams"]}
        if streams["KEYS"]["events"] >= 3:
            break
        time.sleep(0.1)
    assert code == 0, report
    assert report["ok"] is True
    assert report["signatures_checked"] is True
    assert streams["KEYS"]["absent"] is False
    assert streams["KEYS"]["events"] >= 3
