"""The event envelope and the per-account hash chain every auditor can recompute."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

P = TypeVar("P", bound=BaseModel)

GENESIS_HASH = "0" * 64


class Contract(BaseModel):
    """Base of every message read by another service: frozen, tolerant of new fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Query(BaseModel):
    """Base of every request another service answers: frozen and strictly validated, so
    unknown fields and wrong types are refused with invalid_request."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Via(Contract):
    """Who vouched for a command: the NATS account (and user) it came from through a service
    import, as stamped by nats-server in the Nats-Request-Info header."""

    account: str
    user: str | None = None


class Envelope(Contract, Generic[P]):
    """One event as stored on a stream; `hash` chains it to the previous event of its account."""

    event_id: UUID
    type: str
    version: int = 1
    stream_id: str = Field(description="aggregate id: the account id")
    sequence: int = Field(ge=1, description="per-account sequence, 1-based, no gaps")
    occurred_at: datetime
    actor: str
    correlation_id: str
    causation_id: str
    prev_hash: str
    hash: str
    payload: P
    via: Via | None = Field(
        default=None,
        description="the authenticated frontend the command came through; None: from inside "
        "the services' own account, or an event older than this field",
    )
    request_digest: str | None = Field(
        default=None,
        description="sha-256 of the command that caused the event (verb and parameters, no "
        "secrets): a reused command id is compared against it",
    )


def canonical_json(value: Any) -> bytes:
    """Serialise deterministically: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`, the one time format written everywhere (events stored before
    it keep their `+00:00`: the chain hashes occurred_at exactly as stored)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def chain_hash(raw_event: dict[str, Any]) -> str:
    """sha-256 over the canonical JSON of the event without its own `hash` (prev_hash included)."""
    body = {k: v for k, v in raw_event.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


class _Absent:
    """Marks an optional envelope field the writer leaves out (not even as null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


def seal(
    *,
    event_id: str,
    type: str,
    version: int,
    stream_id: str,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    correlation_id: str,
    causation_id: str,
    prev_hash: str,
    payload: dict[str, Any],
    via: dict[str, Any] | _Absent | None = ABSENT,
    request_digest: str | _Absent | None = ABSENT,
) -> dict[str, Any]:
    """The raw envelope of one event with its `hash`: the one place an envelope is built.

    `via` and `request_digest` given as None are written as null (the keys service writes
    both on every event); left ABSENT they are not written at all (the notifier's events
    never carried them). The hash covers exactly the keys written, so each writer keeps the
    bytes, and the chain, it always had.
    """
    raw: dict[str, Any] = {
        "event_id": event_id,
        "type": type,
        "version": version,
        "stream_id": stream_id,
        "sequence": sequence,
        "occurred_at": utc_text(occurred_at),
        "actor": actor,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "prev_hash": prev_hash,
        "payload": payload,
    }
    if not isinstance(via, _Absent):
        raw["via"] = via
    if not isinstance(request_digest, _Absent):
        raw["request_digest"] = request_digest
    raw["hash"] = chain_hash(raw)
    return raw
