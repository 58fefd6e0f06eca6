"""The calllog service's schedule: the retention job, one run at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]


def build_scheduler(job: Callable[[], object], every_seconds: float) -> AsyncIOScheduler:
    """Runs `job` at start, then every `every_seconds`; overlapping runs are skipped."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        job,
        "interval",
        seconds=every_seconds,
        id="calllog-retention",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),  # once at start too: catch up after downtime
    )
    return scheduler
