"""The KEYS stream as an event store: append with optimistic concurrency, read an account back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from contracts.streams import StreamSpec

log = logging.getLogger(__name__)
# 10071 from a single server, 10164 from a clustered stream's leader: both a lost race
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})


class Conflict(Exception):
    """Someone appended to this account first: reload and decide again."""


class EventStore:
    """Appends one event per command; the subject's last sequence is the concurrency token."""

    def __init__(self, spec: StreamSpec, timeout: float = 5.0) -> None:
        self._spec = spec
        self._timeout = timeout
        self._js: JetStreamContext | None = None

    def bind(self, js: JetStreamContext) -> None:
        """Attach the connection once it exists (services connect in their start-up hook)."""
        self._js = js

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("event store used before start-up connected it")
        return self._js

    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck:
        headers = {
            "Nats-Msg-Id": msg_id,
            "Nats-Expected-Last-Subject-Sequence": str(expected_subject_seq),
        }
        try:
            return await self.js.publish(
                subject, data, stream=self._spec.name, headers=headers, timeout=self._timeout
            )
        except BadRequestError as exc:
            if exc.err_code in WRONG_LAST_SEQUENCE:
                raise Conflict(subject) from exc
            raise

    async def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[tuple[int, bytes]]:
        """Every message on one subject after a stream sequence, via direct gets."""
        seq = after_seq
        while True:
            try:
                msg = await self.js.get_msg(
                    self._spec.name, seq=seq + 1, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                return
            seq = msg.seq or seq + 1
            yield seq, msg.data or b""
