"""SMTP fixture: a fresh recording SMTP sink on loopback per test, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drivers.smtp import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stall.clear()
    sink.stop()
