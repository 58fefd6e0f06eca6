"""Each service refuses to start on a stream whose settings would weaken its guarantees."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import nats
import pytest
from nats.js import api

from contracts.calllog import CALLS_STREAM
from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from services.common.streams import StreamMismatch, ensure_stream, mismatches, stream_config
from tests.drivers.keys import running

if TYPE_CHECKING:
    from contracts.streams import StreamSpec
    from services.keys.settings import KeysSettings

WEAKER: list[tuple[str, dict[str, Any]]] = [
    ("storage", {"storage": api.StorageType.MEMORY}),
    ("retention", {"retention": api.RetentionPolicy.WORK_QUEUE}),
    ("max_age", {"max_age": 3600.0}),
    ("deny_delete", {"deny_delete": False}),
    ("deny_purge", {"deny_purge": False}),
    ("duplicate_window", {"duplicate_window": 1.0}),
    ("subjects", {"subjects": ["keys.events.only-one"]}),
]


@pytest.mark.parametrize(("field", "change"), WEAKER, ids=[name for name, _ in WEAKER])
async def test_a_weaker_keys_stream_is_refused_and_left_unchanged(
    nats_url: str, field: str, change: dict[str, Any]
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(dataclasses.replace(stream_config(KEYS_STREAM, 1), **change))
    before = (await js.stream_info(KEYS_STREAM.name)).config
    with pytest.raises(StreamMismatch, match=f"refusing to start: stream KEYS .*{field}="):
        await ensure_stream(js, KEYS_STREAM)
    assert (await js.stream_info(KEYS_STREAM.name)).config == before
    await nc.close()


@pytest.mark.parametrize("spec", [NOTIFY_STREAM, CALLS_STREAM], ids=lambda spec: spec.name)
async def test_notify_and_calls_streams_are_checked_too(nats_url: str, spec: StreamSpec) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    weaker = dataclasses.replace(stream_config(spec, 1), storage=api.StorageType.MEMORY)
    await js.add_stream(weaker)
    with pytest.raises(StreamMismatch, match="storage=memory"):
        await ensure_stream(js, spec)
    await nc.close()


async def test_the_keys_service_does_not_start_on_a_weaker_stream(
    nats_url: str, keys_settings: KeysSettings
) -> None:
    nc = await nats.connect(nats_url)
    await nc.jetstream().add_stream(
        dataclasses.replace(stream_config(KEYS_STREAM, 1), deny_purge=False)
    )
    await nc.close()
    with pytest.raises(StreamMismatch, match="deny_purge=False"):
        async with running(keys_settings):
            pass


async def test_a_longer_dedup_window_is_kept(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(dataclasses.replace(stream_config(KEYS_STREAM, 1), duplicate_window=600.0))
    await ensure_stream(js, KEYS_STREAM)
    assert (await js.stream_info(KEYS_STREAM.name)).config.duplicate_window == 600.0
    await nc.close()


def test_fewer_replicas_than_configured_is_dangerous_more_is_not() -> None:
    r1, r3 = stream_config(KEYS_STREAM, 1), stream_config(KEYS_STREAM, 3)
    dangerous, harmless = mismatches(have=r1, wanted=r3)
    assert dangerous == ["num_replicas=1 (expected 3)"]
    assert harmless == []
    dangerous, harmless = mismatches(have=r3, wanted=r1)
    assert (dangerous, harmless) == ([], ["num_replicas=3 (expected 1)"])
    assert mismatches(have=r3, wanted=r3) == ([], [])
