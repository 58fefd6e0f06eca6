"""keys.verify served by a bare nats-py subscription: the hot path skips FastStream's layers."""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING

from contracts import replies, strictjson
from contracts.keyformat import KEY_LEN
from contracts.keys import VerifyResult
from contracts.replies import ErrorCode

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from services.common.responder import Handle
    from services.keys.registry import IndexEntry, Registry

_REFUSED = {
    reason: replies.ok(VerifyResult(valid=False, reason=reason))
    for reason in ("malformed", "unknown", "deactivated", "expired")
}
_BAD_REQUEST = replies.error(
    ErrorCode.INVALID_REQUEST,
    'expected {"fingerprint": "<sha-256 hex of the key>"} or {"key": "..."}',
)
# the bodies clients send (canonical JSON of one member), read without a JSON parser
_FINGERPRINT_HEAD, _KEY_HEAD, _TAIL = b'{"fingerprint":"', b'{"key":"', b'"}'
_FINGERPRINT_START, _FINGERPRINT_END = len(_FINGERPRINT_HEAD), len(_FINGERPRINT_HEAD) + 64
_KEY_START, _KEY_END = len(_KEY_HEAD), len(_KEY_HEAD) + KEY_LEN
_FINGERPRINT_BODY, _KEY_BODY = _FINGERPRINT_END + len(_TAIL), _KEY_END + len(_TAIL)
_unhexlify = binascii.unhexlify


def verify_reply(registry: Registry, body: bytes, now: datetime) -> bytes:
    """The whole verification: parse, check, look up the hash; no I/O.

    The two bodies clients send, `{"fingerprint":"<64 hex digits>"}` and `{"key":"<key>"}`
    without spaces, are read by their layout: when the 64 characters are hex digits, or the
    key is well formed, the body is exactly that JSON object and the answer is the one the
    parser's path gives. Any other body (spaces, escapes, a malformed key, a repeated
    member, not JSON) takes that path.
    """
    size = len(body)
    if size == _KEY_BODY and body.startswith(_KEY_HEAD) and body.endswith(_TAIL):
        reason, entry = registry.verify_ascii(body[_KEY_START:_KEY_END], now)
        if entry is not None:  # a key matched: it is well formed (checked once per key)
            if reason is None and entry.valid_reply is not None:
                return entry.valid_reply
            return _answer(reason, entry)
        if reason == "unknown":  # well formed, and no such key
            return _REFUSED["unknown"]
    elif size == _FINGERPRINT_BODY and body.startswith(_FINGERPRINT_HEAD) and body.endswith(_TAIL):
        try:
            digest = _unhexlify(body[_FINGERPRINT_START:_FINGERPRINT_END])
        except binascii.Error:
            pass  # not hex digits: the parser's path says why
        else:
            return _answer(*registry.lookup(digest, now))
    return parsed_reply(registry, body, now)


def parsed_reply(registry: Registry, body: bytes, now: datetime) -> bytes:
    """verify_reply for any body: parsed as JSON, strictly (a repeated key is refused).

    loads_flat checks for a repeated key at orjson's speed for the flat object every client
    sends.
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
    return _answer(reason, entry)


def _answer(reason: str | None, entry: IndexEntry | None) -> bytes:
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
