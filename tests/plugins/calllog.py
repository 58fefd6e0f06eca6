"""Fixtures that run the real calllog service in-process, with a clock the test controls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from services.calllog.settings import CallLogSettings
from tests.drivers.calllog import calllog_running
from tests.fakes.calllog import Clock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def calllog_settings(nats_url: str, db_url: str) -> CallLogSettings:
    # retention runs once at start; tests call delete_expired themselves for the rest
    return CallLogSettings(nats_url=nats_url, db_url=db_url, calls_retention_every_seconds=3600)


@pytest.fixture
async def calllog_service(
    calllog_settings: CallLogSettings, clock: Clock
) -> AsyncIterator[CallLogSettings]:
    async with calllog_running(calllog_settings, clock):
        yield calllog_settings
