"""Read requests of the keys service: the audit log, the live key, a user's accounts, health."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from contracts.envelope import Via
from contracts.keys import (
    AccountResult,
    AccountsQuery,
    AuditEntry,
    AuditPage,
    AuditQuery,
    KeyQuery,
    LiveKey,
    UserAccounts,
)
from services.keys.domain import live_key
from services.keys.handlers import Deps, catch_up
from services.keys.store import audit as audit_table

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.keys.registry import Registry


class HealthProbe(BaseModel):
    """Any JSON object: probes send `{}`, and a health check should not refuse a field."""

    model_config = ConfigDict(extra="ignore")


async def audit(engine: AsyncEngine, q: AuditQuery) -> AuditPage:
    """Newest first; `before` is the cursor (a per-account sequence) from the previous page."""
    stmt = select(audit_table).where(audit_table.c.account_id == q.account_id)
    if q.before is not None:
        stmt = stmt.where(audit_table.c.sequence < q.before)
    stmt = stmt.order_by(audit_table.c.sequence.desc()).limit(q.limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    items = [
        AuditEntry(
            sequence=r["sequence"],
            occurred_at=r["occurred_at"],
            actor=r["actor"],
            action=r["action"],
            key_id=r["key_id"],
            key_hint=r["key_hint"],
            user=r["user"],
            via=Via(account=r["via_account"], user=r["via_user"]) if r["via_account"] else None,
        )
        for r in rows[: q.limit]
    ]
    cursor = items[-1].sequence if len(rows) > q.limit else None
    return AuditPage(account_id=q.account_id, items=items, next_cursor=cursor)


async def key(deps: Deps, q: KeyQuery) -> LiveKey:
    """The live key, without its secret and without recording a view."""
    # what another replica appended last counts: a rotate naming an older key would only be
    # refused as superseded
    await catch_up(q.account_id, deps)
    live = live_key(deps.registry.state(q.account_id))
    previous = deps.registry.in_grace(q.account_id, deps.clock())
    if previous is None:
        return live
    return live.model_copy(
        update={
            "previous_key_id": previous.key_id,
            "previous_key_grace_until": previous.grace_until,
        }
    )


async def accounts(registry: Registry, q: AccountsQuery) -> UserAccounts:
    """From the registry's user index (no scan of every account); what the follower has
    applied so far, as for keys.verify."""
    found = [
        AccountResult(account_id=state.account_id, super_admins=sorted(state.admins))
        for state in registry.accounts_of(q.user)
    ]
    return UserAccounts(user=q.user, accounts=found)


async def health(registry: Registry) -> dict[str, Any]:
    # pid: tells replicas apart, as every replica answers in the same queue group
    return {"service": "keys", "pid": os.getpid(), "stream_seq": registry.last_seq}
