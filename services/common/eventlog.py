"""An event stream with one aggregate per subject: append with optimistic concurrency, read back.

Shared by the keys service (KEYS) and the notifier (NOTIFY). A subject's position is its
last stream sequence whatever that message holds: a foreign message (not an event of the
account its subject names) is skipped by every reader, logged once, and never blocks an
append, because the next append simply expects the foreign message's sequence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import ValidationError

from contracts.stored import envelope_problem

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.js import JetStreamContext, api

    from contracts.streams import StreamSpec

log = logging.getLogger("keyledger.eventlog")
# 10071 from a single server, 10164 from a clustered stream's leader: both a lost race
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
_REPORTED_MAX = 10_000
_reported: set[tuple[str, int]] = set()
_loads = orjson.loads


class Conflict(Exception):
    """Someone appended to this subject first: reload and decide again."""


class Stored(NamedTuple):
    """One message as the stream holds it: an event, or a foreign message to skip."""

    stream_seq: int
    subject: str
    data: bytes


class EventLog:
    """Appends with the subject's expected last sequence and a message id; reads by direct get."""

    def __init__(self, spec: StreamSpec, timeout: float = 5.0) -> None:
        self.stream = spec.name
        self._timeout = timeout
        self._js: JetStreamContext | None = None

    def bind(self, js: JetStreamContext) -> None:
        """Attach the connection once it exists (services connect in their start-up hook)."""
        self._js = js

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("event log used before start-up connected it")
        return self._js

    async def append(
        self, subject: str, data: bytes, *, expected_subject_seq: int, msg_id: str
    ) -> api.PubAck:
        """Store `data` only if the subject's last message is still `expected_subject_seq`."""
        headers = {
            "Nats-Msg-Id": msg_id,
            "Nats-Expected-Last-Subject-Sequence": str(expected_subject_seq),
        }
        try:
            return await self.js.publish(
                subject, data, stream=self.stream, headers=headers, timeout=self._timeout
            )
        except BadRequestError as exc:
            if exc.err_code in WRONG_LAST_SEQUENCE:
                raise Conflict(subject) from exc
            raise

    async def read_subject(self, subject: str, after_seq: int) -> AsyncIterator[Stored]:
        """Every message on one subject after a stream sequence, foreign ones included."""
        seq = after_seq
        while True:
            try:
                msg = await self.js.get_msg(
                    self.stream, seq=seq + 1, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                return
            seq = msg.seq or seq + 1
            yield Stored(seq, msg.subject or subject, msg.data or b"")

    async def last(self, subject: str) -> Stored | None:
        """The subject's last message, whatever it holds; None for a subject never written."""
        try:
            msg = await self.js.get_last_msg(self.stream, subject, direct=True)
        except NotFoundError:
            return None
        return Stored(int(msg.seq or 0), msg.subject or subject, msg.data or b"")


def envelope(stream: str, stored: Stored, reader: str) -> dict[str, Any] | None:
    """The event a stored message holds; None, reported once, when it is a foreign message."""
    try:
        raw: dict[str, Any] = _loads(stored.data)  # any JSON until envelope_problem says
    except orjson.JSONDecodeError:
        why: str | None = "not JSON"
    else:
        why = envelope_problem(raw, stored.subject)
    if why is None:
        return raw
    skipped(stream, stored.stream_seq, stored.subject, why, reader)
    return None


def skipped(stream: str, stream_seq: int, subject: str, why: str, reader: str) -> None:
    """Log a skipped message at ERROR once per process, by stream sequence, never its content.

    Readers that retry (a projection's redelivered batch, a replica restarting its loop)
    meet the same message again; one line per message is what an operator needs.
    """
    if (stream, stream_seq) in _reported:
        return
    if len(_reported) >= _REPORTED_MAX:
        _reported.clear()
    _reported.add((stream, stream_seq))
    log.error(
        "%s stream sequence %d on %s is not an event of that account (%s): %s skipped it; "
        "nothing needs repair, `keyledger replay --verify` lists such messages",
        stream,
        stream_seq,
        subject,
        why,
        reader,
    )


def forget_reported() -> None:
    """Log every foreign message again (a test that starts a fresh server reuses sequences)."""
    _reported.clear()


def reason(exc: BaseException) -> str:
    """Why an event could not be applied, quoting nothing of it (pydantic's own text would)."""
    if isinstance(exc, ValidationError) and exc.errors():
        # the error type only: its location can name a key taken from the message
        return f"payload does not validate ({exc.errors()[0]['type']})"
    return f"cannot be applied ({type(exc).__name__})"
