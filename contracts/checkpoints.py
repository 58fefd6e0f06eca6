"""Signed checkpoints of KEYS and NOTIFY: a Merkle root of every account's head, chained."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import Field

from contracts.envelope import GENESIS_HASH, Contract, canonical_json
from contracts.streams import StreamSpec

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

ALL_CHECKPOINTS = "checkpoints.>"
KEYS_CHECKPOINTS = "checkpoints.keys"
NOTIFY_CHECKPOINTS = "checkpoints.notify"
# the stream a checkpoint covers -> the subject its checkpoints go to
SUBJECT_OF = {"KEYS": KEYS_CHECKPOINTS, "NOTIFY": NOTIFY_CHECKPOINTS}
CHECKPOINTS_STREAM = StreamSpec(name="CHECKPOINTS", subjects=(ALL_CHECKPOINTS,))
KEY_FILE_NAME = "checkpoint-signing.key"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
FIRST_PREV_HASH = GENESIS_HASH  # prev_hash of checkpoint number 1


class Checkpoint(Contract):
    """One checkpoint as published on checkpoints.<stream>."""

    stream: str
    number: int = Field(ge=1, description="1, 2, 3 ... per stream")
    last_seq: int = Field(ge=0, description="the stream sequence covered, inclusive")
    accounts: int = Field(ge=0, description="number of leaves")
    root: str
    prev_hash: str = Field(description="the previous checkpoint's hash; 64 zeros for number 1")
    at: str
    key_id: str
    hash: str
    signature: str


def leaf(stream_id: str, sequence: int, head_hash: str) -> bytes:
    body = {"stream_id": stream_id, "sequence": sequence, "hash": head_hash}
    return hashlib.sha256(b"\x00" + canonical_json(body)).digest()


def merkle_root(heads: Mapping[str, tuple[int, str]]) -> str:
    """heads: account id -> (its last sequence, its last hash).

    Leaves sorted by account id (UTF-8 byte order); an odd last node is carried up."""
    if not heads:
        return EMPTY_ROOT
    ordered = sorted(heads, key=lambda a: a.encode())
    level = [leaf(a, heads[a][0], heads[a][1]) for a in ordered]
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def checkpoint_hash(body: Mapping[str, Any]) -> str:
    """sha-256 over the canonical JSON of the body without `hash` and `signature`."""
    signed = {k: v for k, v in body.items() if k not in ("hash", "signature")}
    return hashlib.sha256(canonical_json(signed)).hexdigest()


def public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_bytes(public_key)).hexdigest()[:16]


def public_text(public_key: Ed25519PublicKey) -> str:
    """The public key as text: base64 of its raw 32 bytes."""
    return base64.b64encode(public_bytes(public_key)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key written by public_text; ValueError when it is not one."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError("not a raw 32-byte Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def build(
    *,
    stream: str,
    number: int,
    last_seq: int,
    heads: Mapping[str, tuple[int, str]],
    prev_hash: str,
    at: str,
    private_key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """A complete checkpoint body: root over `heads`, hashed and signed."""
    body: dict[str, Any] = {
        "stream": stream,
        "number": number,
        "last_seq": last_seq,
        "accounts": len(heads),
        "root": merkle_root(heads),
        "prev_hash": prev_hash,
        "at": at,
        "key_id": key_id(private_key.public_key()),
    }
    return sign(body, private_key)


def sign(body: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The body with its `hash` and the Ed25519 `signature` over the hash's ASCII bytes."""
    digest = checkpoint_hash(body)
    signature = private_key.sign(digest.encode("ascii"))
    return {**body, "hash": digest, "signature": base64.b64encode(signature).decode()}


def verify_signature(body: Mapping[str, Any], public_key: Ed25519PublicKey) -> bool:
    """True when `signature` is the key's signature over the body's `hash`."""
    try:
        signature = base64.b64decode(str(body.get("signature", "")), validate=True)
        public_key.verify(signature, str(body.get("hash", "")).encode("ascii"))
    except (binascii.Error, InvalidSignature, UnicodeEncodeError):
        return False
    return True


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key: a file holding base64 of the raw 32-byte seed."""
    return private_key_from_text(path.read_text())


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("the checkpoint signing key is not base64") from None
    if len(seed) != 32:
        raise ValueError("the checkpoint signing key is not a raw 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def new_key_text() -> str:
    """A fresh signing key as the key file holds it."""
    return base64.b64encode(os.urandom(32)).decode()


def generate_key_file(path: Path) -> bool:
    """Create the key file (0600, O_EXCL: never readable by others); False if it existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, new_key_text().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
