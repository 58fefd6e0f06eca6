"""Publishes signed checkpoints of one stream on CHECKPOINTS; replicas race, one chain results."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from nats.errors import NoRespondersError
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

from contracts import checkpoints as cp
from contracts.envelope import canonical_json
from services.common.eventlog import WRONG_LAST_SEQUENCE
from services.common.schedule import Periodic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nats.js import JetStreamContext

    from services.common.settings import CheckpointSettings

log = logging.getLogger("keyledger.checkpoints")
POLL_SECONDS = 1.0  # how often the cheap "how far is the stream" question is asked


class Snapshot(NamedTuple):
    """Every account's head after applying the stream up to `last_seq`."""

    last_seq: int
    heads: Mapping[str, tuple[int, str]]


class Last(NamedTuple):
    """The newest checkpoint of a stream and where CHECKPOINTS holds it (0, None: none yet)."""

    stream_seq: int
    body: dict[str, Any] | None


class CheckpointPublisher:
    """Every `every_events` events, or every `every_seconds` when there are new ones, signs
    the heads a snapshot gives and appends them to the stream's checkpoint chain.

    The append expects the checkpoint subject's last sequence (the checkpoint it chains
    onto): when two replicas race, one lands and the other's is refused, which is fine,
    since the chain already covers that history. Nats-Msg-Id "<stream>:<last_seq>" makes a
    retry of the same checkpoint a duplicate.
    """

    def __init__(
        self,
        *,
        stream: str,
        key: Ed25519PrivateKey,
        position: Callable[[], Awaitable[int]],
        snapshot: Callable[[], Awaitable[Snapshot]],
        every_events: int = 1000,
        every_seconds: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.stream, self.subject = stream, cp.SUBJECT_OF[stream]
        self._key, self._position, self._snapshot = key, position, snapshot
        self._every_events, self._every_seconds = every_events, every_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._js: JetStreamContext | None = None
        self._also_bind: list[Callable[[JetStreamContext], None]] = []
        self._covered: int | None = None  # last_seq of the newest checkpoint seen
        self._since = time.monotonic()
        self._waiting = False
        self._periodic = Periodic(
            self.poll, min(POLL_SECONDS, every_seconds), job_id=f"checkpoints-{stream}"
        )

    def on_bind(self, bind: Callable[[JetStreamContext], None]) -> None:
        """Also give the connection to `bind` (what the snapshot reads, say) once it exists."""
        self._also_bind.append(bind)

    def bind(self, js: JetStreamContext) -> None:
        self._js = js
        for bind in self._also_bind:
            bind(js)

    def start(self) -> None:
        self._periodic.start()

    def stop(self) -> None:
        self._periodic.stop()

    async def poll(self) -> dict[str, Any] | None:
        """Publish when due; the checkpoint that landed, or None."""
        if self._js is None:
            return None
        try:
            if self._covered is None:
                body = (await self.last()).body
                self._covered = int(body["last_seq"]) if body else 0
            position = await self._position()
            if position <= self._covered:
                return None
            waited = time.monotonic() - self._since
            if position - self._covered < self._every_events and waited < self._every_seconds:
                return None
            return await self.publish()
        except (NoRespondersError, NoStreamResponseError):
            if not self._waiting:  # the keys service declares CHECKPOINTS: not up yet
                log.info("%s: waiting for the CHECKPOINTS stream", self.stream)
            self._waiting = True
            return None
        except Exception:  # the next poll tries again; the service keeps serving
            log.exception("checkpoint of %s not published; retried shortly", self.stream)
            return None

    async def last(self) -> Last:
        if self._js is None:
            raise RuntimeError("checkpoint publisher used before start-up connected it")
        try:
            msg = await self._js.get_last_msg(cp.CHECKPOINTS_STREAM.name, self.subject, direct=True)
        except NotFoundError:
            return Last(0, None)
        return Last(int(msg.seq or 0), orjson.loads(msg.data or b"{}"))

    async def publish(self) -> dict[str, Any] | None:
        """Checkpoint the current snapshot now, if it covers more than the newest one."""
        if self._js is None:
            raise RuntimeError("checkpoint publisher used before start-up connected it")
        last = await self.last()
        snapshot = await self._snapshot()
        previous = last.body or {}
        covered = int(previous.get("last_seq", 0))
        if snapshot.last_seq <= covered:  # a replica ahead of us checkpointed already
            self._mark(covered)
            return None
        body = cp.build(
            stream=self.stream,
            number=int(previous.get("number", 0)) + 1,
            last_seq=snapshot.last_seq,
            heads=snapshot.heads,
            prev_hash=str(previous.get("hash", cp.FIRST_PREV_HASH)),
            at=self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            private_key=self._key,
        )
        headers = {
            "Nats-Msg-Id": f"{self.stream}:{snapshot.last_seq}",
            "Nats-Expected-Last-Subject-Sequence": str(last.stream_seq),
        }
        try:
            ack = await self._js.publish(
                self.subject,
                canonical_json(body),
                stream=cp.CHECKPOINTS_STREAM.name,
                headers=headers,
            )
        except BadRequestError as exc:
            if exc.err_code not in WRONG_LAST_SEQUENCE:
                raise
            # another replica's checkpoint landed first: the chain covers this history
            log.debug("checkpoint %d of %s: another replica's landed", body["number"], self.stream)
            self._covered = None  # re-read the newest next poll
            return None
        self._mark(snapshot.last_seq)
        if ack.duplicate:
            return None
        log.info(
            "checkpoint %d of %s up to sequence %d (%d accounts)",
            body["number"],
            self.stream,
            snapshot.last_seq,
            body["accounts"],
        )
        return body

    def _mark(self, covered: int) -> None:
        self._covered, self._since = covered, time.monotonic()


def signing_key(settings: CheckpointSettings, service: str) -> Ed25519PrivateKey | None:
    """The configured signing key; None (said once, in the log) when there is none."""
    if settings.checkpoint_key is not None:
        return cp.private_key_from_text(settings.checkpoint_key.get_secret_value())
    if settings.checkpoint_key_file is not None:
        return cp.load_private_key(settings.checkpoint_key_file)
    log.info("%s: runs without checkpoints (no KEYLEDGER_CHECKPOINT_KEY_FILE configured)", service)
    return None
