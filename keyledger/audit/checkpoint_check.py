"""Checkpoint verification written from AUDITING.md alone: Merkle root, hash, key id, signature."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.envelope import canonical_json

if TYPE_CHECKING:
    from collections.abc import Mapping

FIRST_PREV_HASH = "0" * 64
# what a checkpoint body must hold, by JSON type, in the order a problem is reported
_FIELDS: tuple[tuple[str, type], ...] = (
    ("stream", str),
    ("number", int),
    ("last_seq", int),
    ("accounts", int),
    ("root", str),
    ("prev_hash", str),
    ("at", str),
    ("key_id", str),
    ("hash", str),
    ("signature", str),
)


def leaf(stream_id: str, sequence: int, head_hash: str) -> bytes:
    """The 32-byte leaf of one account's head."""
    body = {"stream_id": stream_id, "sequence": sequence, "hash": head_hash}
    return hashlib.sha256(b"\x00" + canonical_json(body)).digest()


def merkle_root(heads: Mapping[str, tuple[int, str]]) -> str:
    """The root over every account's (sequence, hash) head, as lowercase hex."""
    level = [leaf(sid, *heads[sid]) for sid in sorted(heads, key=lambda s: s.encode())]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        # an odd last node is carried up unchanged
        level = paired + level[len(paired) * 2 :]
    return level[0].hex()


def checkpoint_hash(body: Mapping[str, Any]) -> str:
    """sha-256 over the canonical JSON of the body without `hash` and `signature`."""
    signed = {k: v for k, v in body.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(signed)).hexdigest()


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def read_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 public key from its text form (base64)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("the public key is not 32 bytes")
    return raw


def checkpoint_problem(
    body: Any, previous: Mapping[str, Any] | None, public_key: bytes | None
) -> str | None:
    """Why a checkpoint is not the valid successor of `previous` (None: the first one of its
    stream); None if it is. With no public key the signature is not checked."""
    if not isinstance(body, dict):
        return "not a JSON object"
    for name, kind in _FIELDS:
        value = body.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} missing or not {'int' if kind is int else 'str'}"
    number = 1 if previous is None else previous["number"] + 1
    if body["number"] != number:
        return f"number {body['number']} where {number} was expected"
    prev = FIRST_PREV_HASH if previous is None else previous["hash"]
    if body["prev_hash"] != prev:
        what = "64 zeros" if previous is None else f"the hash of checkpoint {number - 1}"
        return f"prev_hash is not {what}"
    if previous is not None and body["last_seq"] < previous["last_seq"]:
        return f"last_seq {body['last_seq']} is before checkpoint {number - 1}'s"
    if body["hash"] != checkpoint_hash(body):
        return "hash does not match the content: the checkpoint was altered"
    if public_key is None:
        return None
    if body["key_id"] != key_id(public_key):
        return f"key_id {body['key_id']} is not the given public key's ({key_id(public_key)})"
    try:
        signature = base64.b64decode(body["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, body["hash"].encode())
    except (binascii.Error, ValueError, InvalidSignature):
        return "signature does not verify with the given public key"
    return None


def root_problem(body: Mapping[str, Any], heads: Mapping[str, tuple[int, str]]) -> str | None:
    """Why a checkpoint does not match the heads replayed up to its last_seq; None if it does."""
    if body["accounts"] != len(heads):
        return (
            f"checkpoint {body['number']} counts {body['accounts']} accounts, the history "
            f"up to stream sequence {body['last_seq']} has {len(heads)}"
        )
    if body["root"] != merkle_root(heads):
        return (
            f"checkpoint {body['number']}'s root is not the root of the heads replayed up to "
            f"stream sequence {body['last_seq']}: the history was rewritten"
        )
    return None
