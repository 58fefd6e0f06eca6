"""The one reply shape of every request/reply subject, and the stable error codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from contracts.envelope import Contract, canonical_json


class ErrorCode(StrEnum):
    """Machine-readable refusal reasons; clients branch on these, never on messages."""

    INVALID_REQUEST = "invalid_request"
    NOT_AUTHORIZED = "not_authorized"
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_EXISTS = "account_exists"
    NO_ACTIVE_KEY = "no_active_key"
    KEY_ALREADY_ACTIVE = "key_already_active"
    CONFIRMATION_REQUIRED = "confirmation_required"
    LAST_SUPER_ADMIN = "last_super_admin"
    ALREADY_SUPER_ADMIN = "already_super_admin"
    NOT_SUPER_ADMIN = "not_super_admin"
    CONFLICT = "conflict"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # a command id reused for another request
    DEADLINE_EXCEEDED = "deadline_exceeded"  # reached the service after the client gave up
    SUPERSEDED = "superseded"  # the key the command named is no longer the live one
    KEY_UNAVAILABLE = "key_unavailable"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ErrorBody(Contract):
    """Why a request was refused."""

    code: str
    message: str


class Reply(Contract):
    """`{"ok": true, "result": {...}}` or `{"ok": false, "error": {"code", "message"}}`."""

    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None


def ok(result: BaseModel | dict[str, Any]) -> bytes:
    """Encode a success reply."""
    body = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    return canonical_json({"ok": True, "result": body})


def error(code: ErrorCode | str, message: str) -> bytes:
    """Encode a refusal reply."""
    return canonical_json({"ok": False, "error": {"code": str(code), "message": message}})
