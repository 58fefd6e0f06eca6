"""`keyledger verify-file`: chains and checkpoints of an export, verified without NATS."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from contracts.envelope import GENESIS_HASH, canonical_json, seal
from keyledger.audit.checkpoint_check import FIRST_PREV_HASH, checkpoint_hash, key_id, merkle_root
from keyledger.audit.offline import Record, export_line, parse_export_line
from keyledger.cli import app

if TYPE_CHECKING:
    from pathlib import Path

SEED = bytes(range(32))
PRIVATE = Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC = PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _history(
    accounts: tuple[str, ...] = ("acme", "globex"), per: int = 3, hint: str = "klk_…ab12"
) -> list[dict[str, Any]]:
    events, heads = [], {a: (0, GENESIS_HASH) for a in accounts}
    for n in range(per):
        for account in accounts:
            sequence, prev = heads[account]
            raw = seal(
                event_id=f"{account}-{n}", type="KeyViewed", version=1, stream_id=account,
                sequence=sequence + 1, occurred_at=datetime(2026, 11, 30, tzinfo=UTC),
                actor="alice", correlation_id="c", causation_id="c", prev_hash=prev,
                payload={"kind": "KeyViewed", "hint": hint}, via=None, request_digest=None,
            )  # fmt: skip
            heads[account] = (sequence + 1, raw["hash"])
            events.append(raw)
    return events


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [
        export_line(Record("KEYS", seq, f"keys.events.{e['stream_id']}", {}, canonical_json(e)))
        for seq, e in enumerate(events, 1)
    ]


def _checkpoint(events: list[dict[str, Any]], last_seq: int) -> dict[str, Any]:
    heads = {e["stream_id"]: (e["sequence"], e["hash"]) for e in events[:last_seq]}
    body: dict[str, Any] = {
        "stream": "KEYS", "number": 1, "last_seq": last_seq, "accounts": len(heads),
        "root": merkle_root(heads), "prev_hash": FIRST_PREV_HASH, "at": "2026-11-30T06:00:00Z",
        "key_id": key_id(PUBLIC),
    }  # fmt: skip
    body["hash"] = checkpoint_hash(body)
    body["signature"] = base64.b64encode(PRIVATE.sign(body["hash"].encode())).decode()
    return body


def _verify(tmp_path: Path, lines: list[str], *checkpoints: dict[str, Any]) -> Any:
    (tmp_path / "h.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["verify-file", str(tmp_path / "h.jsonl"), "--json"]
    if checkpoints:
        (tmp_path / "cp.jsonl").write_text("".join(json.dumps(c) + "\n" for c in checkpoints))
        (tmp_path / "pub.key").write_text(base64.b64encode(PUBLIC).decode() + "\n")
        args += ["--checkpoints", str(tmp_path / "cp.jsonl")]
        args += ["--public-key", str(tmp_path / "pub.key")]
    result = CliRunner().invoke(app, args)
    return result.exit_code, json.loads(result.stdout)["streams"][0], result.stderr


def test_an_export_line_keeps_the_stored_bytes_exactly() -> None:
    record = Record("KEYS", 3, "keys.events.acme", {"Nats-Msg-Id": "acme:c"}, '{"h":"…"}'.encode())
    assert parse_export_line(export_line(record)) == record
    odd = Record("KEYS", 4, "keys.events.acme", {}, b"\xff\x00")
    assert "data_base64" in export_line(odd)
    assert parse_export_line(export_line(odd)) == odd


def test_an_intact_export_with_its_checkpoint_verifies(tmp_path: Path) -> None:
    events = _history()
    code, doc, _ = _verify(tmp_path, _lines(events), _checkpoint(events, 4))
    assert code == 0, doc
    assert (doc["events"], doc["accounts"], doc["checkpoints"]) == (6, 2, 1)
    assert doc["signatures_checked"] is True


def test_an_altered_payload_names_the_first_bad_event(tmp_path: Path) -> None:
    lines = _lines(_history())
    line = json.loads(lines[3])
    line["data"] = line["data"].replace("ab12", "ab13")
    lines[3] = json.dumps(line, ensure_ascii=False)
    code, doc, stderr = _verify(tmp_path, lines)
    assert code == 1
    assert doc["error"] == "chain_broken"
    assert (doc["problem"]["stream_seq"], doc["problem"]["account"]) == (4, "globex")
    assert doc["problem"]["sequence"] == 2
    assert "altered" in doc["problem"]["reason"]
    assert stderr.startswith("error: chain_broken: KEYS stream sequence 4 (account globex")


def test_a_deleted_event_breaks_its_accounts_sequence(tmp_path: Path) -> None:
    lines = _lines(_history())
    del lines[2]
    code, doc, _ = _verify(tmp_path, lines)
    assert code == 1
    assert doc["problem"]["stream_seq"] == 5
    assert doc["problem"]["reason"] == "sequence 3 where 2 was expected"


def test_a_wholesale_rewrite_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    events = _history()
    checkpoint = _checkpoint(events, 6)
    rewritten = _history(hint="klk_…ffff")  # every hash recomputed: the chains hold
    code, doc, _ = _verify(tmp_path, _lines(rewritten), checkpoint)
    assert code == 5, doc
    assert doc["error"] == "checkpoint_mismatch"
    assert "rewritten" in doc["problem"]["reason"]
    code, doc, _ = _verify(tmp_path, _lines(events[:5]), checkpoint)
    assert code == 5
    assert "events are missing" in doc["problem"]["reason"]


def test_a_forged_checkpoint_is_broken(tmp_path: Path) -> None:
    events = _history()
    forged = {**_checkpoint(events, 6), "signature": base64.b64encode(bytes(64)).decode()}
    code, doc, _ = _verify(tmp_path, _lines(events), forged)
    assert code == 5
    assert doc["error"] == "checkpoint_broken"
    assert doc["problem"]["number"] == 1


def test_a_foreign_message_exits_4_around_intact_chains(tmp_path: Path) -> None:
    lines = _lines(_history())
    lines.append(export_line(Record("KEYS", 7, "keys.events.acme", {}, b'{"n":1}')))
    code, doc, _ = _verify(tmp_path, lines)
    assert code == 4
    assert doc["problem"] is None
    assert doc["findings"][0]["stream_seq"] == 7


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "h.jsonl").write_text("not json\n")
    result = CliRunner().invoke(app, ["verify-file", str(tmp_path / "h.jsonl")])
    assert result.exit_code == 2
    assert "line 1" in result.stderr
