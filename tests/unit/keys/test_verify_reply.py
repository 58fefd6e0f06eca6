"""keys.verify's reply path answers every body exactly as the parse-everything path did."""

from __future__ import annotations

import hashlib
import json
import random
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import keyformat, replies, strictjson
from contracts.keys import VerifyResult
from services.keys.registry import IndexEntry, Registry
from services.keys.verify import _BAD_REQUEST, _REFUSED, verify_reply
from tests.unit.keys.test_registry import generated, opened, raw, rotated

T0 = datetime(2026, 3, 1, tzinfo=UTC)
_SHAPE = re.compile(r"klk_[0-9a-z]{39}").fullmatch


def reference(registry: Registry, body: bytes, now: datetime) -> bytes:
    """verify_reply and Registry.verify/lookup as they were: the regex, the CRC, the parser."""

    def lookup(digest: bytes) -> tuple[str | None, IndexEntry | None]:
        entry = registry._index.get(digest)
        if entry is None:
            return "unknown", None
        if entry.status == "active":
            return None, entry
        if entry.status == "grace" and entry.grace_until is not None:
            return (None if now < entry.grace_until else "expired"), entry
        return "deactivated", entry

    def well_formed(key: str) -> bool:
        if _SHAPE(key) is None:
            return False
        return int(key[-7:], 36) == zlib.crc32(key[:-7].encode())

    try:
        request = strictjson.loads_flat(body)
        if "fingerprint" in request:
            reason, entry = lookup(bytes.fromhex(request["fingerprint"]))
        else:
            key = request["key"]
            if not isinstance(key, str):
                return _BAD_REQUEST
            if not well_formed(key):
                reason, entry = "malformed", None
            else:
                reason, entry = lookup(hashlib.sha256(key.encode()).digest())
    except (ValueError, KeyError, TypeError):
        return _BAD_REQUEST
    if reason is not None or entry is None:
        return _REFUSED[reason or "unknown"]
    return replies.ok(VerifyResult(valid=True, account_id=entry.account_id, key_id=entry.key_id))


def registry_with_keys() -> tuple[Registry, list[str]]:
    """acme: k1 rotated into k2 with an hour's grace, k2 live; globex: k3 deactivated."""
    reg, keys = Registry(), [keyformat.generate() for _ in range(3)]
    reg.apply(1, raw("acme", 1, opened()))
    reg.apply(2, raw("acme", 2, generated("k1", keys[0])))
    reg.apply(3, raw("acme", 3, rotated("k1", "k2", keys[1], T0 + timedelta(hours=1))))
    reg.apply(4, raw("globex", 1, opened()))
    reg.apply(5, raw("globex", 2, generated("k3", keys[2])))
    reg.apply(6, raw("globex", 3, {"kind": "KeyDeactivated", "key_id": "k3"}))
    return reg, keys


def bodies(keys: list[str], rng: random.Random) -> list[bytes]:
    unknown = keyformat.generate()
    candidates: list[Any] = [*keys, unknown, unknown.upper(), unknown[:-1] + "!", ""]
    out: list[bytes] = []
    for key in candidates:
        fp = hashlib.sha256(key.encode()).hexdigest()
        out += [
            json.dumps({"key": key}, separators=(",", ":")).encode(),
            json.dumps({"key": key}).encode(),  # with a space
            json.dumps({"fingerprint": fp}, separators=(",", ":")).encode(),
            json.dumps({"fingerprint": fp.upper()}, separators=(",", ":")).encode(),
            json.dumps({"fingerprint": fp[:-2]}, separators=(",", ":")).encode(),
            json.dumps({"fingerprint": fp, "key": key}).encode(),
            json.dumps({"key": key, "extra": 1}).encode(),
            f'{{"key":"{key}","key":"{key}"}}'.encode(),
            f'{{"fingerprint":"{fp}","fingerprint":"{fp}"}}'.encode(),
            ('{"key":"' + key.replace("k", "\\u006b", 1) + '"}').encode(),  # an escape
            ('{"fingerprint":"' + fp[:30] + " " + fp[31:] + '"}').encode(),  # fromhex skips it
        ]
    out += [
        b"",
        b"null",
        b"[]",
        b'"fingerprint"',
        b"{}",
        b'{"key":1}',
        b'{"key":null}',
        b'{"fingerprint":null}',
        b'{"key":"\\ud800' + b"a" * 41 + b'"}',
        b"[" * 1000,
        b"\xff\xfe",
    ]
    # every body again with one byte changed, dropped or doubled
    for body in list(out[: 11 * len(candidates)]):
        for _ in range(30):
            if not body:
                break
            i = rng.randrange(len(body))
            c = rng.choice(b'"\\{}:, akZ09\x00\xc3')
            out += [body[:i] + bytes([c]) + body[i + 1 :], body[:i] + body[i + 1 :]]
            out.append(body[:i] + body[i : i + 1] * 2 + body[i + 1 :])
    return out


@pytest.mark.parametrize("seed", range(3))
def test_every_body_gets_the_reply_it_got_before(seed: int) -> None:
    registry, keys = registry_with_keys()
    moments = (T0, T0 + timedelta(hours=2))
    for body in bodies(keys, random.Random(seed)):
        for now in moments:
            expected = reference(registry, body, now)
            assert verify_reply(registry, body, now) == expected, body
            assert verify_reply(registry, body, now) == expected, body  # memoised the 2nd time
            registry._well_formed.clear()  # and the first time again, for the next body


def test_the_usual_bodies_answer_as_expected() -> None:
    registry, (k1, k2, k3) = registry_with_keys()

    def answer(body: dict[str, str], now: datetime = T0) -> Any:
        return json.loads(verify_reply(registry, json.dumps(body).encode(), now))["result"]

    valid = {"valid": True, "account_id": "acme", "key_id": "k2", "reason": None}
    assert answer({"key": k2}) == valid
    fp = keyformat.fingerprint(k1)
    assert answer({"fingerprint": fp})["valid"] is True  # in grace
    assert answer({"fingerprint": fp}, T0 + timedelta(hours=2))["reason"] == "expired"
    assert answer({"key": k3})["reason"] == "deactivated"
    assert answer({"key": k3[:-1] + "0"})["reason"] in ("malformed", "unknown")
