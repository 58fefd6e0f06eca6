"""The lease bucket outlives a change of the takeover setting: a replica follows its life."""

from __future__ import annotations

import nats

from services.calllog.leases import Leases
from tests.random_refs import new_account


async def _nothing(partition: int) -> None:
    del partition


async def test_a_replica_with_another_takeover_setting_follows_the_bucket(nats_url: str) -> None:
    bucket = f"leases-{new_account()}"
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        first = Leases(
            js, bucket=bucket, partitions=4, takeover_seconds=10.0, gained=_nothing, lost=_nothing
        )
        await first.start()
        await first.stop()
        # the setting changed between two deployments: the bucket stays as it was made
        second = Leases(
            js, bucket=bucket, partitions=4, takeover_seconds=3.0, gained=_nothing, lost=_nothing
        )
        await second.start()
        try:
            assert second.owned == [0, 1, 2, 3]
            status = await (await js.key_value(bucket)).status()
            assert status.ttl == 6.0  # 10 s takeover: leases live 6 s, renewed every 2 s
            assert second.lease_seconds == 6.0
        finally:
            await second.stop()
    finally:
        await nc.close()
