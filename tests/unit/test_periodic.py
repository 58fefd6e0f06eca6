"""Periodic: one run at a time, missed runs collapsed, late runs still run; optional first run."""

from __future__ import annotations

import asyncio

from services.common.schedule import Periodic


async def test_the_one_misfire_policy_is_applied() -> None:
    periodic = Periodic(lambda: None, 60, job_id="job")
    periodic.start()
    try:
        job = periodic._scheduler.get_job("job")  # type: ignore[union-attr]
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
    finally:
        periodic.stop()


async def test_run_at_start_runs_at_once_and_stop_is_idempotent() -> None:
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    periodic = Periodic(job, 3600, job_id="job", run_at_start=True)
    periodic.start()
    try:
        await asyncio.wait_for(ran.wait(), timeout=5)
    finally:
        periodic.stop()
        periodic.stop()
