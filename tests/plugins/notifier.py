"""Fixtures that run the real notifier in-process beside the keys service, with an SMTP sink."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.drivers.notifier import Notify, running_notifier, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from nats.aio.client import Client

    from services.notifier.settings import NotifierSettings
    from tests.drivers.smtp import SmtpSink


@pytest.fixture
def notifier_settings(
    nats_url: str, db_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> NotifierSettings:
    return settings_for(nats_url, db_url, tmp_path, smtp_sink)


@pytest.fixture
async def notifier_service(
    keys_service: Any, notifier_settings: NotifierSettings
) -> AsyncIterator[NotifierSettings]:
    """The keys service and the notifier, both running in this process."""
    async with running_notifier(notifier_settings):
        yield notifier_settings


@pytest.fixture
def notify(nc: Client) -> Notify:
    return Notify(nc)
