"""keys.verify served by a bare nats-py subscription: the hot path skips FastStream's layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts import replies, strictjson
from contracts.keys import VerifyResult
from contracts.replies import ErrorCode

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from services.common.responder import Handle
    from services.keys.registry import Registry

_REFUSED = {
    reason: replies.ok(VerifyResult(valid=False, reason=reason))
    for reason in ("malformed", "unknown", "deactivated", "expired")
}
_BAD_REQUEST = replies.error(
    ErrorCode.INVALID_REQUEST,
    'expected {"fingerprint": "<sha-256 hex of the key>"} or {"key": "..."}',
)


def verify_reply(registry: Registry, body: bytes, now: datetime) -> bytes:
    """The whole verification: parse, check, look up the hash; no I/O.

    A repeated key (two fingerprints) is refused like every other request's; loads_flat
    checks that at orjson's speed for the flat object every client sends.
    """
    try:
        request = strictjson.loads_flat(body)
        if "fingerprint" in request:
            reason, entry = registry.lookup(bytes.fromhex(request["fingerprint"]), now)
        else:
            key = request["key"]
            if not isinstance(key, str):
                return _BAD_REQUEST
            reason, entry = registry.verify(key, now)
    except (ValueError, KeyError, TypeError):
        return _BAD_REQUEST
    if reason is not None or entry is None:
        return _REFUSED[reason or "unknown"]
    if entry.valid_reply is None:
        result = VerifyResult(valid=True, account_id=entry.account_id, key_id=entry.key_id)
        entry.valid_reply = replies.ok(result)
    return entry.valid_reply


def verify_handle(registry: Registry, clock: Callable[[], datetime]) -> Handle:
    """verify_reply as a bare responder's handle: answered inline, no I/O, no logging."""

    async def handle(body: bytes) -> bytes:
        return verify_reply(registry, body, clock())

    return handle
