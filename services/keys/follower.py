"""Keeps the in-memory registry current: replays KEYS from the start or a snapshot, then follows."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext, api
from orjson import JSONDecodeError
from orjson import loads as _loads

from contracts.keys import ALL_EVENTS, KEYS_STREAM
from contracts.stored import account_of, chain_problem, envelope_problem
from services.common.catchup import CatchUp
from services.common.eventlog import Stored, envelope, reason, skipped
from services.common.streams import stream_sequence
from services.keys.registry import RECENT_COMMANDS, Registry

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from services.keys.domain import AccountState

FOLLOW_HEARTBEAT = 1.0  # seconds; nats-py's default of 5 left a replica blind for ~18 s


def absorb(registry: Registry, stored: Stored, reader: str) -> bool:
    """Fold one message read from KEYS into the registry; True if its account's position moved.

    A message that is not the account's next event (not an envelope, another account's,
    one that does not continue the chain, one that cannot be applied) is skipped, reported
    once, and still moves the position: the next append expects the subject's last
    sequence whatever that message holds, so it can never block the account.
    """
    return absorb_message(registry, stored.stream_seq, stored.subject, stored.data, reader)


def absorb_message(
    registry: Registry, stream_seq: int, subject: str, data: bytes, reader: str
) -> bool:
    """absorb() for a message's parts, as a replay has them: no Stored built per event."""
    account = account_of(subject)
    if stream_seq <= registry.subject_seq.get(account, 0):
        return False
    try:
        raw: Any = _loads(data)
    except JSONDecodeError:
        raw = None
    # the usual case in one test, envelope's check without the subject, whose account is
    # known here; anything else goes through envelope itself, which says why once
    if envelope_problem(raw) is not None or raw["stream_id"] != account:
        raw = envelope(KEYS_STREAM.name, Stored(stream_seq, subject, data), reader)
    if raw is not None:
        state = registry.accounts.get(account)
        if (
            state is None
            or raw["sequence"] != state.version + 1
            or raw["prev_hash"] != state.last_hash
        ):
            why = breaks_chain(registry.state(account), raw)
        else:
            why = None  # the usual case, breaks_chain's rule read inline: a call less per event
        if why is None:
            try:
                return registry.fold(stream_seq, account, raw)
            except Exception as exc:  # one message we cannot apply must not stop the others
                why = reason(exc)
        skipped(KEYS_STREAM.name, stream_seq, subject, why, reader)
    return registry.skip(account, stream_seq)


def breaks_chain(state: AccountState, raw: dict[str, Any]) -> str | None:
    """Why an envelope is not the account's next event; None when it continues the chain.

    A copy of an older event published again would otherwise roll the account back (and
    revive a deactivated key in the verification index); the rule is contracts.stored's.
    """
    return chain_problem(raw, state.version, state.last_hash)


async def catch_up(nc: Client, js: JetStreamContext, registry: Registry, from_seq: int) -> int:
    """Fold KEYS from `from_seq` to its end now into the registry; the last sequence read.

    The start's bulk read (the whole stream, or a snapshot's tail) goes through CatchUp,
    which is faster than the ordered consumer the Follower then goes on with from there.
    """
    until = (await js.stream_info(KEYS_STREAM.name)).state.last_seq
    # only the newest commands can still be retried: older ones need not be remembered
    registry.remember_after = until - RECENT_COMMANDS

    def handle(stream_seq: int, subject: str, data: bytes) -> None:
        absorb_message(registry, stream_seq, subject, data, "the keys follower")

    reader = CatchUp(nc, js, KEYS_STREAM.name, ALL_EVENTS, handle, heartbeat=FOLLOW_HEARTBEAT)
    return await reader.read(from_seq, until)


class Follower:
    """One ordered consumer per replica: gap-free, in order, and it leaves no durable behind."""

    def __init__(self, js: JetStreamContext, registry: Registry) -> None:
        self._js = js
        self._registry = registry
        self.position = 0  # last stream sequence handled, applied or skipped
        self._target = 0
        self._reached_target = asyncio.Event()
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self, from_seq: int = 1) -> None:
        """Follow KEYS from `from_seq` (1: the whole stream; the registry's snapshot position
        + 1: only its tail); caught_up() waits for what the stream holds now."""
        self._target = (await self._js.stream_info(KEYS_STREAM.name)).state.last_seq
        self.position = from_seq - 1
        # only the newest commands can still be retried: older ones need not be remembered
        self._registry.remember_after = self._target - RECENT_COMMANDS
        start = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_seq
        )
        self._sub = await self._js.subscribe(
            ALL_EVENTS,
            stream=KEYS_STREAM.name,
            ordered_consumer=True,
            cb=self._on_message,
            config=start if from_seq > 1 else None,
            deliver_policy=None if from_seq > 1 else api.DeliverPolicy.ALL,
            # two missed heartbeats make nats-py recreate the consumer: after a nats-server
            # restart this replica is blind (verifies a key deactivated elsewhere) until then
            idle_heartbeat=FOLLOW_HEARTBEAT,
        )
        # nats-py recreates a lost ordered consumer after the last stream sequence it
        # delivered, 0 until one arrives: from a snapshot with no tail, a nats-server
        # restart would otherwise read the whole stream again
        jsi = getattr(getattr(self._sub, "_sub", None), "_jsi", None)
        if jsi is not None and from_seq > 1:
            jsi._sseq = max(jsi._sseq, from_seq - 1)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def caught_up(self) -> None:
        """Wait until everything in the stream when start() was called has been applied."""
        if self.position < self._target:
            await self._reached_target.wait()

    async def _on_message(self, msg: Msg) -> None:
        seq = stream_sequence(msg)
        absorb(self._registry, Stored(seq, msg.subject, msg.data), "the keys follower")
        self.position = seq
        if seq >= self._target:  # waking the waiter per replayed message costs a task switch
            self._reached_target.set()
