"""The checkpoint format: Merkle root, hash, signature and key id by the agreed rules."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import checkpoints as cp

if TYPE_CHECKING:
    from pathlib import Path

SEED = bytes(range(32))
H = "ab" * 32


def _leaf(account: str, sequence: int, head: str) -> bytes:
    body = f'{{"hash":"{head}","sequence":{sequence},"stream_id":"{account}"}}'
    return hashlib.sha256(b"\x00" + body.encode()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_no_accounts_give_the_hash_of_nothing() -> None:
    assert cp.merkle_root({}) == hashlib.sha256(b"").hexdigest()


def test_one_account_is_its_own_leaf() -> None:
    assert cp.merkle_root({"acme": (3, H)}) == _leaf("acme", 3, H).hex()


def test_three_accounts_sort_by_bytes_and_carry_the_odd_leaf_up() -> None:
    heads = {"zeta": (1, H), "Acme": (2, H), "beta": (7, "cd" * 32)}
    # byte order: "Acme" < "beta" < "zeta" (upper case first)
    a, b, z = _leaf("Acme", 2, H), _leaf("beta", 7, "cd" * 32), _leaf("zeta", 1, H)
    assert cp.merkle_root(heads) == _node(_node(a, b), z).hex()


def test_five_accounts_pair_left_to_right_at_every_level() -> None:
    names = ["a1", "a2", "a3", "a4", "a5"]
    heads = {n: (i + 1, H) for i, n in enumerate(names)}
    leaves = [_leaf(n, i + 1, H) for i, n in enumerate(names)]
    level1 = [_node(leaves[0], leaves[1]), _node(leaves[2], leaves[3]), leaves[4]]
    level2 = [_node(level1[0], level1[1]), level1[2]]
    assert cp.merkle_root(heads) == _node(level2[0], level2[1]).hex()


def test_non_ascii_account_ids_sort_by_utf8_bytes() -> None:
    heads = {"é": (1, H), "z": (1, H)}
    assert cp.merkle_root(heads) == _node(_leaf("z", 1, H), _leaf("é", 1, H)).hex()


def test_a_built_checkpoint_hashes_signs_and_names_its_key() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    body = cp.build(
        stream="KEYS",
        number=1,
        last_seq=9,
        heads={"acme": (3, H)},
        prev_hash="0" * 64,
        at="2026-11-30T06:00:00Z",
        private_key=key,
    )
    unsigned = {k: v for k, v in body.items() if k not in ("hash", "signature")}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"))
    assert body["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert body["accounts"] == 1
    raw_public = cp.public_bytes(key.public_key())
    assert body["key_id"] == hashlib.sha256(raw_public).hexdigest()[:16]
    assert cp.verify_signature(body, key.public_key())
    key.public_key().verify(base64.b64decode(body["signature"]), body["hash"].encode("ascii"))
    assert cp.Checkpoint.model_validate(body).number == 1


def test_a_changed_hash_or_another_key_fails_the_signature() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    body = cp.sign({"stream": "KEYS", "number": 1}, key)
    assert not cp.verify_signature({**body, "hash": "0" * 64}, key.public_key())
    other = Ed25519PrivateKey.generate().public_key()
    assert not cp.verify_signature(body, other)
    assert not cp.verify_signature({**body, "signature": "not base64!"}, key.public_key())


def test_the_key_file_is_made_once_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / cp.KEY_FILE_NAME
    assert cp.generate_key_file(path)
    assert not cp.generate_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = cp.load_private_key(path)
    assert len(base64.b64decode(path.read_text())) == 32
    text = cp.public_text(key.public_key())
    assert cp.public_bytes(cp.parse_public_key(text)) == cp.public_bytes(key.public_key())


def test_a_key_file_that_is_not_a_seed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text(base64.b64encode(os.urandom(16)).decode())
    with pytest.raises(ValueError, match="32-byte"):
        cp.load_private_key(path)
    with pytest.raises(ValueError, match="base64"):
        cp.parse_public_key("@@@")
