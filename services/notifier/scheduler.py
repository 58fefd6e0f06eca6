"""The periodic reminder sweep on APScheduler; the job only calls the sweeper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

JOB_ID = "reminder-sweep"


class SweepSchedule:
    """Runs `job` every `every_seconds`; a slow sweep is never run twice at once nor caught up."""

    def __init__(self, job: Callable[[], Awaitable[None]], every_seconds: float) -> None:
        self._job, self._every = job, every_seconds
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Call from inside the running loop (FastStream's after_startup)."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._job,
            "interval",
            seconds=self._every,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
