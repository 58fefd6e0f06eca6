"""The KEYS stream as an event store: declare, append with optimistic concurrency, read back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError

from contracts.keys import StreamSpec

log = logging.getLogger(__name__)
WRONG_LAST_SEQUENCE = 10071


class Conflict(Exception):
    """Someone appended to this account first: reload and decide again."""


class StreamMismatch(RuntimeError):
    """The stream exists with settings that would weaken its guarantees; refuse to run."""


def stream_config(spec: StreamSpec, replicas: int) -> api.StreamConfig:
    return api.StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=spec.max_age_seconds,
        duplicate_window=spec.duplicate_window_seconds,
        deny_delete=spec.deny_delete,
        deny_purge=spec.deny_purge,
        num_replicas=replicas,
        allow_direct=True,
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int = 1) -> None:
    """Create the stream when missing; never silently rewrite an existing one."""
    wanted = stream_config(spec, replicas)
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return
    have = info.config
    problems = [
        f"{field}={getattr(have, field)!r} (expected {getattr(wanted, field)!r})"
        for field in ("subjects", "storage", "max_age", "deny_delete", "deny_purge", "num_replicas")
        if getattr(have, field) != getattr(wanted, field)
    ]
    if problems:
        raise StreamMismatch(f"stream {spec.name} has unexpected settings: " + ", ".join(problems))


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
            if exc.err_code == WRONG_LAST_SEQUENCE:
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
