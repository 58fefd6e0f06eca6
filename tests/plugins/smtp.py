"""SMTP fixture: a fresh recording SMTP sink on loopback per test, stopped afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.drivers.smtp import SmtpSink

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stall.clear()
    sink.stop()
