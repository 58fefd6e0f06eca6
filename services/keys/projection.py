"""The audit-log projection: KEYS events to `keys_audit` rows, with the tracking row."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from contracts.envelope import Via
from contracts.keys import (
    AUDIT_DURABLE,
    KEYS_STREAM,
    AccountEvent,
    AccountOpened,
    KeyDeactivated,
    KeyGenerated,
    KeyRotated,
    KeyViewed,
    SuperAdminGranted,
    SuperAdminRevoked,
    event_subject,
)
from services.common import tracking as tracking_row
from services.common.eventlog import reason, skipped
from services.common.sql import as_utc, insert_ignore
from services.keys.store import audit, tracking, vault

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

PROJECTION = AUDIT_DURABLE
_events: TypeAdapter[AccountEvent] = TypeAdapter(AccountEvent)


def audit_row(stream_seq: int, raw: dict[str, Any]) -> dict[str, Any]:
    """One log line per event; key events name the key by id and display hint only."""
    event = _events.validate_python(raw["payload"])
    row: dict[str, Any] = {"key_id": None, "key_hint": None, "user": None}
    match event:
        case AccountOpened(owner=owner):
            row.update(action="account_opened", user=owner)
        case SuperAdminGranted(user=user):
            row.update(action="admin_granted", user=user)
        case SuperAdminRevoked(user=user):
            row.update(action="admin_revoked", user=user)
        case KeyGenerated(key_id=key_id, hint=hint):
            row.update(action="created", key_id=key_id, key_hint=hint)
        case KeyViewed(key_id=key_id, hint=hint):
            row.update(action="viewed", key_id=key_id, key_hint=hint or None)
        case KeyRotated(new_key_id=key_id, hint=hint):
            row.update(action="rotated", key_id=key_id, key_hint=hint)
        case KeyDeactivated(key_id=key_id, hint=hint):
            row.update(action="deactivated", key_id=key_id, key_hint=hint or None)
    return (
        row
        | _via_columns(raw.get("via"))
        | {
            "account_id": raw["stream_id"],
            "sequence": int(raw["sequence"]),
            "stream_seq": stream_seq,
            "occurred_at": as_utc(datetime.fromisoformat(raw["occurred_at"])),
            "actor": str(raw["actor"]),
        }
    )


def _via_columns(via: Any) -> dict[str, str | None]:
    """An event without a readable via is logged without one rather than stalling the log."""
    try:
        found = Via.model_validate(via) if via is not None else None
    except ValidationError:
        found = None
    return {
        "via_account": found.account[:128] if found else None,
        "via_user": found.user[:128] if found and found.user else None,
    }


async def project(engine: AsyncEngine, batch: list[tuple[int, dict[str, Any] | None]]) -> int:
    """Apply a batch in one transaction with the tracking row; returns rows written."""
    async with engine.begin() as conn:
        last = await tracking_row.last_seq(conn, tracking, PROJECTION)
        rows, retired = [], []
        for stream_seq, raw in batch:
            # None: not an event of its subject's account, reported once by the projector
            if stream_seq <= last or raw is None:
                continue
            try:
                row = audit_row(stream_seq, raw)
            except (ValidationError, ValueError, KeyError, TypeError) as exc:
                subject = event_subject(str(raw.get("stream_id")))
                skipped(
                    KEYS_STREAM.name, stream_seq, subject, reason(exc), f"projection {PROJECTION}"
                )
                continue
            rows.append(row)
            if row["action"] == "deactivated":
                retired.append(row["key_id"])
            elif row["action"] == "rotated":
                retired.append(raw["payload"]["old_key_id"])
        if rows:
            await conn.execute(insert_ignore(conn, audit, ["account_id", "sequence"]), rows)
        if retired:
            # a crash between append and vault cleanup in the command path is mended here
            await conn.execute(vault.delete().where(vault.c.key_id.in_(retired)))
        await tracking_row.advance(conn, tracking, PROJECTION, last, [seq for seq, _ in batch])
        return len(rows)


async def position(engine: AsyncEngine) -> int:
    """The last stream sequence applied."""
    return await tracking_row.position(engine, tracking, PROJECTION)
