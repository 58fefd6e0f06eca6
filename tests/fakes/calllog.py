"""Stand-ins for calllog tests: a settable clock, call records, an in-memory call store."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from contracts.calllog import CallRecorded, recorded_subject
from services.calllog.domain import call_row
from services.calllog.store import calls, metadata
from tests.fakes.memory import memory_engine

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class Clock:
    """Injected time: fixed until a test moves it; `Clock(None)` follows the real time."""

    def __init__(self, now: datetime | None) -> None:
        self.fixed = now

    @property
    def now(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.fixed = self.now + timedelta(seconds=seconds)


def a_call(account_id: str, ts: datetime, **fields: Any) -> CallRecorded:
    """A call record with sensible defaults; ids are random per call."""
    values: dict[str, Any] = {
        "call_id": uuid4().hex,
        "account_id": account_id,
        "key_id": "key_1",
        "ts": ts,
        "method": "GET",
        "path": "/v1/ping",
        "status": 200,
        "duration_ms": 1.5,
        "caller_ip": "127.0.0.1",
        "user_agent": "pytest",
    }
    return CallRecorded(**(values | fields))


async def memory_store() -> AsyncEngine:
    """The calllog tables in one in-memory SQLite database every connection shares."""
    return await memory_engine(metadata)


_seq = itertools.count(1)


async def seed(engine: AsyncEngine, *records: CallRecorded) -> None:
    """Store records as the projection would (the same row builder), without a stream."""
    rows = [
        call_row(next(_seq), recorded_subject(r.account_id), r.model_dump(mode="json"))
        for r in records
    ]
    if rows:
        async with engine.begin() as conn:
            await conn.execute(calls.insert(), rows)
