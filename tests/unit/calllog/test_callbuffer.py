"""The gateway's call buffer and key extraction, with a fake publisher: no NATS."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.calllog import CallRecorded
from keyledger.gateway import AmbiguousKey, presented_key
from keyledger.gateway.buffer import CallBuffer


def calls(count: int) -> list[CallRecorded]:
    now = datetime.now(UTC)
    return [
        CallRecorded(
            account_id="acme",
            key_id="key_1",
            ts=now,
            method="GET",
            path=f"/v1/{n}",
            status=200,
            duration_ms=1.0,
        )
        for n in range(count)
    ]


class FlakyStream:
    """Refuses every publish while `down`; remembers what it accepted."""

    def __init__(self) -> None:
        self.down = False
        self.accepted: list[str] = []

    async def publish(self, call: CallRecorded) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("NATS is away")
        self.accepted.append(call.call_id)


async def test_records_wait_out_an_outage_and_all_go_through() -> None:
    stream = FlakyStream()
    buffer = CallBuffer(stream.publish, capacity=100, backoff=(0.01, 0.02))
    buffer.start()
    stream.down = True
    made = calls(60)
    for call in made:
        buffer.put(call)
    assert not await buffer.flush(0.1)
    assert buffer.retries >= 2
    assert buffer.pending == 60
    stream.down = False
    assert await buffer.flush(2)
    assert sorted(stream.accepted) == sorted(c.call_id for c in made)
    assert (buffer.dropped, buffer.published) == (0, 60)
    await buffer.stop()


async def test_beyond_the_bound_the_oldest_are_dropped_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = FlakyStream()
    stream.down = True
    buffer = CallBuffer(stream.publish, capacity=50, backoff=(0.01, 0.02))
    made = calls(80)
    with caplog.at_level(logging.WARNING, logger="keyledger.gateway"):
        for call in made:
            buffer.put(call)
    assert (buffer.pending, buffer.dropped) == (50, 30)
    assert "call buffer full (50): dropped the oldest records" in caplog.text
    buffer.start()
    stream.down = False
    assert await buffer.flush(2)
    assert stream.accepted == [c.call_id for c in made[30:]]  # the newest 50, in order
    await buffer.stop()


async def test_stopping_says_how_many_records_are_lost(caplog: pytest.LogCaptureFixture) -> None:
    stream = FlakyStream()
    stream.down = True
    buffer = CallBuffer(stream.publish, backoff=(0.01, 0.02))
    buffer.start()
    for call in calls(3):
        buffer.put(call)
    with caplog.at_level(logging.WARNING, logger="keyledger.gateway"):
        await buffer.stop(0.05)
    assert "3 call records were never recorded" in caplog.text


def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "headers": list(headers), "query_string": b"hapikey=klk_x"}


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"authorization", b"Bearer klk_abc")], "klk_abc"),
        ([(b"authorization", b"bearer   klk_abc ")], "klk_abc"),
        ([(b"x-api-key", b" klk_abc ")], "klk_abc"),
        ([(b"authorization", b"Basic dTpw"), (b"x-api-key", b"klk_abc")], "klk_abc"),
        ([(b"authorization", b"Basic dTpw")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"authorization", b"Bearer klk_abc"), (b"x-api-key", b"klk_abc ")], "klk_abc"),
        ([(b"x-api-key", b"klk_abc"), (b"x-api-key", b"klk_abc")], "klk_abc"),
        ([(b"authorization", b"Bearer "), (b"x-api-key", b"klk_abc")], "klk_abc"),
        ([], None),  # a key in the query string is not looked at
    ],
)
def test_the_key_comes_from_the_headers_only(
    headers: list[tuple[bytes, bytes]], key: str | None
) -> None:
    assert presented_key(scope(*headers)) == key


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Bearer klk_a"), (b"x-api-key", b"klk_b")],
        [(b"x-api-key", b"klk_b"), (b"authorization", b"Bearer klk_a")],
        [(b"x-api-key", b"klk_a"), (b"x-api-key", b"klk_b")],
        [(b"authorization", b"Bearer klk_a"), (b"authorization", b"Bearer klk_b")],
        [(b"x-api-key", b"klk_a"), (b"x-api-key", b"klk_a"), (b"x-api-key", b"klk_b")],
    ],
)
def test_two_different_keys_in_one_request_are_ambiguous(
    headers: list[tuple[bytes, bytes]],
) -> None:
    with pytest.raises(AmbiguousKey):
        presented_key(scope(*headers))
