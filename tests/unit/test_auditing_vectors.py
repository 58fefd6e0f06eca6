"""AUDITING.md's test vectors hold against the code: the doc and contracts.envelope agree."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from contracts.stored import envelope_problem
from keyledger.audit.checkpoint_check import (
    checkpoint_hash,
    checkpoint_problem,
    key_id,
    leaf,
    merkle_root,
    read_public_key,
    root_problem,
)
from keyledger.audit.replay import verify_chain

DOC = Path(__file__).resolve().parents[2] / "AUDITING.md"
_BLOCK = re.compile(r"^```\w+ vector:([\w-]+):([\w-]+)\n(.*?)\n```$", re.M | re.S)
ENVELOPES = ("keys-opened", "keys-generated", "notify-reminder")


def _vectors() -> dict[tuple[str, str], str]:
    return {(m[1], m[2]): m[3] for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


VECTORS = _vectors()


def test_the_doc_holds_every_vector_the_tests_expect() -> None:
    names = {name for name, _ in VECTORS}
    assert names == {*ENVELOPES, "checkpoint"}
    assert ("keys-generated", "hex") in VECTORS


@pytest.mark.parametrize("name", ENVELOPES)
def test_each_envelope_vector_has_its_canonical_bytes_and_hash(name: str) -> None:
    stored = json.loads(VECTORS[name, "stored"])
    body = {k: v for k, v in stored.items() if k != "hash"}
    assert canonical_json(body) == VECTORS[name, "canonical"].encode()
    assert chain_hash(stored) == stored["hash"] == VECTORS[name, "hash"]
    assert envelope_problem(stored, f"keys.events.{stored['stream_id']}") is None
    if (name, "hex") in VECTORS:
        assert canonical_json(body).hex() == "".join(VECTORS[name, "hex"].split())


def test_the_hint_is_hashed_as_raw_utf8_not_escaped() -> None:
    canonical = VECTORS["keys-generated", "canonical"]
    assert "klk_…" in canonical
    assert "\\u2026" not in canonical
    assert "e280a6" in "".join(VECTORS["keys-generated", "hex"].split())


def test_the_keys_vectors_chain_from_the_genesis_hash() -> None:
    opened = json.loads(VECTORS["keys-opened", "stored"])
    generated = json.loads(VECTORS["keys-generated", "stored"])
    assert opened["prev_hash"] == GENESIS_HASH
    assert generated["prev_hash"] == opened["hash"]
    assert verify_chain([(1, canonical_json(opened)), (2, canonical_json(generated))]) is None
    # the notifier writes neither `via` nor `request_digest`, not even as null
    notify = json.loads(VECTORS["notify-reminder", "stored"])
    assert "via" not in notify
    assert "request_digest" not in notify


def test_the_checkpoint_vector_from_heads_to_signature() -> None:
    seed = bytes.fromhex(VECTORS["checkpoint", "seed"])
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert base64.b64encode(public).decode() == VECTORS["checkpoint", "public-key"]
    assert read_public_key(VECTORS["checkpoint", "public-key"]) == public
    assert key_id(public) == VECTORS["checkpoint", "key-id"]

    heads = {k: (v[0], v[1]) for k, v in json.loads(VECTORS["checkpoint", "heads"]).items()}
    leaves = [line.split() for line in VECTORS["checkpoint", "leaves"].splitlines()]
    assert [account for account, _ in leaves] == ["Zeta", "acme", "globex"]
    assert [leaf(a, *heads[a]).hex() for a, _ in leaves] == [digest for _, digest in leaves]
    assert merkle_root(heads) == VECTORS["checkpoint", "root"]

    body = json.loads(VECTORS["checkpoint", "body"])
    unsigned = {k: v for k, v in body.items() if k not in ("hash", "signature")}
    assert canonical_json(unsigned).decode() == VECTORS["checkpoint", "canonical"]
    assert body["root"] == VECTORS["checkpoint", "root"]
    assert checkpoint_hash(body) == body["hash"]
    # Ed25519 signatures are deterministic: the seed signs to exactly these bytes
    assert base64.b64encode(private.sign(body["hash"].encode())).decode() == body["signature"]
    assert checkpoint_problem(body, None, public) is None
    assert root_problem(body, heads) is None


def test_merkle_roots_of_no_account_and_of_one() -> None:
    assert merkle_root({}) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root({"acme": (1, GENESIS_HASH)}) == leaf("acme", 1, GENESIS_HASH).hex()


def test_an_altered_checkpoint_is_named() -> None:
    body = json.loads(VECTORS["checkpoint", "body"])
    public = read_public_key(VECTORS["checkpoint", "public-key"])
    forged = {**body, "last_seq": 9}
    assert checkpoint_problem(forged, None, public) == (
        "hash does not match the content: the checkpoint was altered"
    )
    resigned = {**forged, "hash": checkpoint_hash(forged)}
    assert checkpoint_problem(resigned, None, public) == (
        "signature does not verify with the given public key"
    )
    assert checkpoint_problem(resigned, None, None) is None  # no key: signature unchecked
    second = {**body, "number": 2}
    assert checkpoint_problem(second, None, public) == "number 2 where 1 was expected"
