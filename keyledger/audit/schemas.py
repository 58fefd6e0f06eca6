"""JSON Schema files for every contract model: events, envelope, commands, results, replies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from contracts import calllog, keys, notifier, replies
from contracts.envelope import Envelope
from contracts.keys import VERIFY_SUBJECT, command_subject, event_subject, query_subject

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel

EVENTS_SUBJECT = event_subject("<account_id>")

# (kind, name, model, subject): the subject says where the model travels
SCHEMAS: list[tuple[str, str, type[BaseModel], str | None]] = [
    ("event", "AccountOpened", keys.AccountOpened, EVENTS_SUBJECT),
    ("event", "SuperAdminGranted", keys.SuperAdminGranted, EVENTS_SUBJECT),
    ("event", "SuperAdminRevoked", keys.SuperAdminRevoked, EVENTS_SUBJECT),
    ("event", "KeyGenerated", keys.KeyGenerated, EVENTS_SUBJECT),
    ("event", "KeyViewed", keys.KeyViewed, EVENTS_SUBJECT),
    ("event", "KeyRotated", keys.KeyRotated, EVENTS_SUBJECT),
    ("event", "KeyDeactivated", keys.KeyDeactivated, EVENTS_SUBJECT),
    ("envelope", "Envelope", Envelope[keys.AccountEvent], EVENTS_SUBJECT),
    *[("command", m.__name__, m, command_subject(verb)) for verb, m in keys.COMMANDS.items()],
    ("query", "AuditQuery", keys.AuditQuery, query_subject("audit")),
    ("query", "KeyQuery", keys.KeyQuery, query_subject("key")),
    ("query", "AccountsQuery", keys.AccountsQuery, query_subject("accounts")),
    ("query", "VerifyRequest", keys.VerifyRequest, VERIFY_SUBJECT),
    ("result", "AccountResult", keys.AccountResult, None),
    ("result", "KeyResult", keys.KeyResult, None),
    ("result", "DeactivateResult", keys.DeactivateResult, None),
    ("result", "LiveKey", keys.LiveKey, None),
    ("result", "UserAccounts", keys.UserAccounts, None),
    ("result", "VerifyResult", keys.VerifyResult, None),
    ("result", "AuditEntry", keys.AuditEntry, None),
    ("result", "AuditPage", keys.AuditPage, None),
    ("event", "ReminderSent", notifier.ReminderSent, notifier.event_subject("<account_id>")),
    ("query", "SidebarQuery", notifier.SidebarQuery, notifier.query_subject("sidebar")),
    ("command", "MarkRead", notifier.MarkRead, notifier.command_subject("mark_read")),
    ("query", "RemindersQuery", notifier.RemindersQuery, notifier.query_subject("reminders")),
    ("command", "Sweep", notifier.Sweep, notifier.command_subject("sweep")),
    ("result", "SidebarPage", notifier.SidebarPage, None),
    ("result", "MarkReadResult", notifier.MarkReadResult, None),
    ("result", "RemindersResult", notifier.RemindersResult, None),
    ("result", "SweepResult", notifier.SweepResult, None),
    ("event", "CallRecorded", calllog.CallRecorded, calllog.recorded_subject("<account_id>")),
    ("query", "ListCalls", calllog.ListCalls, calllog.query_subject("list")),
    ("query", "CallStatsQuery", calllog.CallStatsQuery, calllog.query_subject("stats")),
    ("query", "LastUsedQuery", calllog.LastUsedQuery, calllog.query_subject("last_used")),
    ("query", "ClientsQuery", calllog.ClientsQuery, calllog.query_subject("clients")),
    ("result", "CallPage", calllog.CallPage, None),
    ("result", "CallStats", calllog.CallStats, None),
    ("result", "LastUsed", calllog.LastUsed, None),
    ("result", "KeyClients", calllog.KeyClients, None),
    ("reply", "Reply", replies.Reply, None),
    ("reply", "ErrorBody", replies.ErrorBody, None),
]


def schema_of(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["title"] = name  # a parametrised generic would otherwise be titled with its repr
    return schema


def export_schemas(folder: Path) -> list[dict[str, Any]]:
    """Write `<Name>.schema.json` per model and index.json; returns the index entries."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for kind, name, model, subject in SCHEMAS:
        file_name = f"{name}.schema.json"
        text = json.dumps(schema_of(name, model), indent=2, sort_keys=True, ensure_ascii=False)
        (folder / file_name).write_text(text + "\n")
        index.append({"name": name, "kind": kind, "file": file_name, "subject": subject})
    index_doc = {"schemas": index, "error_codes": [code.value for code in replies.ErrorCode]}
    (folder / "index.json").write_text(json.dumps(index_doc, indent=2) + "\n")
    return index
