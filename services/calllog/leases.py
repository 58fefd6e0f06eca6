"""Who consumes which CALLS partition: leases in a JetStream KV bucket, shared out fairly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NoKeysError

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

log = logging.getLogger("keyledger.calllog")
Change = Callable[[int], Awaitable[None]]
_MEMBER, _LEASE = "m.", "p."
STREAM_NAME_IN_USE = 10058  # JetStream: the stream exists with another configuration


def member_id() -> str:
    """This replica's name in the bucket: unique even for two processes with one pid."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def timing(takeover_seconds: float) -> tuple[float, float]:
    """(renew every, lease life): a dead owner's lease expires after `life` and a waiting
    replica looks again within `every`, so its partitions move within every + life, under
    the bound; a live owner renews twice or more in every life."""
    every = takeover_seconds / 5
    return every, takeover_seconds - 2 * every


class Leases:
    """One key per partition (`p.<n>`, the owner's id) and one per live replica (`m.<id>`),
    in a bucket whose max age is the lease life, so what a dead replica wrote expires.

    Each tick a replica announces itself, renews its leases with compare-and-set on their
    revision (a failure: the lease was lost, the partition is given up at once), gives back
    what it holds above its fair share (partitions / live replicas, rounded up) so a joining
    replica finds free partitions, and takes free ones up to its share. Two owners can
    overlap for a moment (a stalled owner that has not yet seen its lease expire); the
    projection's tracking row per partition makes that harmless (services/calllog/projection).
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        bucket: str,
        partitions: int,
        takeover_seconds: float,
        gained: Change,
        lost: Change,
        replicas: int = 1,
    ) -> None:
        self._js, self._bucket, self._n = js, bucket, partitions
        self._every, self._life = timing(takeover_seconds)
        self._gained, self._lost, self._replicas = gained, lost, replicas
        self.member = member_id()
        self._owned: dict[int, int] = {}  # partition -> revision of our lease
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def owned(self) -> list[int]:
        return sorted(self._owned)

    @property
    def lease_seconds(self) -> float:
        """How long a lease lives unrenewed: the bucket's, once it is open."""
        return self._life

    async def start(self) -> None:
        self._kv = await self._open()
        await self.tick()  # a first share before start returns: health shows it at once
        self._task = asyncio.create_task(self._run(), name="calllog-leases")

    async def _open(self) -> KeyValue:
        """The bucket, made with this replica's lease life; when it exists with another life
        (the takeover setting changed, or replicas disagree), that life is followed instead:
        a lease renewed more slowly than the bucket expires it would flap."""
        config = api.KeyValueConfig(
            bucket=self._bucket, ttl=self._life, history=1, replicas=self._replicas
        )
        try:
            return await self._js.create_key_value(config)
        except BadRequestError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
        kv = await self._js.key_value(self._bucket)
        life = (await kv.status()).ttl
        if life:
            log.warning(
                "calllog: lease bucket %s keeps leases %.1f s, not %.1f s: following it",
                self._bucket,
                life,
                self._life,
            )
            self._every, self._life = life / 3, life  # as timing(): life = 3 renewals
        return kv

    async def stop(self) -> None:
        """Stop consuming, then give the leases back so others take them at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.gather(*(self._release(partition) for partition in self.owned))
        if self._kv is not None:
            with contextlib.suppress(NatsError):  # or it expires
                await self._kv.delete(_MEMBER + self.member)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.tick()
            except (NatsError, TimeoutError) as exc:  # NATS away: leases lapse, others take over
                log.warning("calllog: partition leases not renewed (%r)", exc)
            except Exception:  # never let the loop die: the leases would lapse for good
                log.exception("calllog: partition leases not renewed")

    async def tick(self) -> None:
        kv = self._kv
        assert kv is not None
        await kv.put(_MEMBER + self.member, self.member.encode())
        try:
            members = [k for k in await kv.keys() if k.startswith(_MEMBER)]
        except NoKeysError:
            members = []
        share = math.ceil(self._n / max(1, len(members)))
        for partition, revision in list(self._owned.items()):
            try:
                self._owned[partition] = await kv.update(
                    f"{_LEASE}{partition}", self.member.encode(), last=revision
                )
            except KeyWrongLastSequenceError:
                log.warning("calllog: lost partition %d to another replica", partition)
                del self._owned[partition]
                await self._lost(partition)
        # above our share: give the highest back, each finishing its batch meanwhile
        await asyncio.gather(*(self._release(partition) for partition in self.owned[share:]))
        await self._take(kv, share)

    async def _take(self, kv: KeyValue, share: int) -> None:
        # start at a place of our own, so joining replicas do not all race for partition 0
        first = int(self.member.rsplit("-", 1)[-1], 16) % self._n
        for step in range(self._n):
            if len(self._owned) >= share:
                return
            partition = (first + step) % self._n
            if partition in self._owned:
                continue
            try:
                revision = await kv.create(f"{_LEASE}{partition}", self.member.encode())
            except KeyWrongLastSequenceError:
                continue  # someone else's
            self._owned[partition] = revision
            try:
                await self._gained(partition)
            except Exception:
                log.exception("calllog: cannot start partition %d; giving it back", partition)
                await self._release(partition, stop=False)

    async def _release(self, partition: int, *, stop: bool = True) -> None:
        revision = self._owned.pop(partition, None)
        if stop:
            await self._lost(partition)
        if revision is None or self._kv is None:
            return
        # taken already, or NATS away: then it expires
        with contextlib.suppress(KeyWrongLastSequenceError, NatsError):
            await self._kv.delete(f"{_LEASE}{partition}", last=revision)
