"""One periodic job on APScheduler, with the one misfire policy every service uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Callable


class Periodic:
    """Runs `job` every `every_seconds` (and once at start if `run_at_start`).

    The policy, for every service: one run at a time (max_instances=1), missed runs collapse
    into one (coalesce), and a late run still runs however late (misfire_grace_time=None).
    This is the notifier's policy: a reminder sweep or a retention run skipped because the
    loop was busy past APScheduler's one-second default grace would leave reminders unsent
    and expired calls kept until the next interval, while running late costs nothing.
    """

    def __init__(
        self,
        job: Callable[[], object],
        every_seconds: float,
        *,
        job_id: str,
        run_at_start: bool = False,
    ) -> None:
        self._job, self._every, self._id = job, every_seconds, job_id
        self._run_at_start = run_at_start
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Call from inside the running loop (FastStream's after_startup)."""
        first: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if self._run_at_start else {}
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._job,
            "interval",
            seconds=self._every,
            id=self._id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
