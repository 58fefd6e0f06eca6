"""Settings of the calllog service, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pydantic import Field

from contracts.calllog import MAX_PARTITIONS, PARTITIONS, RETENTION_SECONDS
from services.common.settings import ServiceSettings


class CallLogSettings(ServiceSettings):
    db_url: str = "sqlite+aiosqlite:///.keyledger/calllog.db"
    # the stream's max age, the query window and the retention cutoff
    calls_retention_seconds: int = Field(default=RETENTION_SECONDS, ge=60)
    # rows per ingest transaction: 5000 ingests ~1.8x faster than 1000 into a big SQLite table
    calls_ingest_batch: int = Field(default=5000, ge=1, le=10_000)
    calls_retention_every_seconds: float = Field(default=60.0, gt=0)
    calls_retention_batch: int = Field(default=1000, ge=1)
    calls_query_workers: int = Field(default=8, ge=1)
    # CALLS is consumed in this many partitions by account: read when the stream is created,
    # then the stream's own count is kept (README: changing it)
    calls_partitions: int = Field(default=PARTITIONS, ge=1, le=MAX_PARTITIONS)
    # a dead replica's partitions move to the others within this
    calls_takeover_seconds: float = Field(default=10.0, ge=1.0, le=300.0)
