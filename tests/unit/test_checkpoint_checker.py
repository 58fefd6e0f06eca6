"""`replay --verify`'s checkpoint check: chain, signature, root at last_seq, and exit 5."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts import checkpoints as cp
from keyledger.audit.checkpoints import CheckpointChecker
from keyledger.cli.common import Target
from keyledger.cli.replay import EXIT_CHECKPOINT, Outcome, report

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
H1, H2 = "11" * 32, "22" * 32


def chain(*points: tuple[int, dict[str, tuple[int, str]]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for number, (last_seq, heads) in enumerate(points, start=1):
        prev = found[-1]["hash"] if found else cp.FIRST_PREV_HASH
        found.append(
            cp.build(
                stream="KEYS",
                number=number,
                last_seq=last_seq,
                heads=heads,
                prev_hash=prev,
                at="2026-11-30T06:00:00Z",
                private_key=KEY,
            )
        )
    return found


def test_roots_are_compared_once_the_replay_passes_their_last_seq() -> None:
    bodies = chain((2, {"a": (1, H1)}), (3, {"a": (2, H2)}))
    checker = CheckpointChecker("KEYS", bodies, KEY.public_key())
    assert checker.check_chain() is None
    checker.passed(1, {})
    assert checker.verified == 0
    checker.passed(3, {"a": (1, H1)})  # before message 3: the heads as of sequence 2
    checker.passed(4, {"a": (2, H2)})
    assert (checker.verified, checker.problem, checker.pending) == (2, None, 0)


def test_a_rewritten_head_is_a_mismatch_naming_the_checkpoint() -> None:
    checker = CheckpointChecker("KEYS", chain((2, {"a": (1, H1)})), KEY.public_key())
    checker.passed(3, {"a": (1, H2)})
    assert checker.problem is not None
    assert checker.problem.number == 1
    assert "rewritten" in checker.problem.reason


def test_a_broken_checkpoint_chain_or_foreign_signature_is_found() -> None:
    bodies = chain((2, {}), (3, {}))
    altered = [bodies[0], {**bodies[1], "prev_hash": "0" * 64}]
    assert "prev_hash" in str(CheckpointChecker("KEYS", altered, None).check_chain())
    other = Ed25519PrivateKey.generate().public_key()
    found = CheckpointChecker("KEYS", bodies, other).check_chain()
    assert found is not None
    assert "signed with key" in found.reason
    edited = [{**bodies[0], "accounts": 5}]
    assert "altered" in str(CheckpointChecker("KEYS", edited, None).check_chain())


def test_a_checkpoint_mismatch_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    checker = CheckpointChecker("KEYS", chain((2, {"a": (1, H1)})), None)
    checker.passed(3, {})
    outcome = Outcome(verified=True, events=3, accounts=1, checkpoints=checker)
    with pytest.raises(typer.Exit) as ended:
        report(outcome, Target(None, None, json=True))
    assert ended.value.exit_code == EXIT_CHECKPOINT == 5
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["code"] == "checkpoint_mismatch"
    assert err.startswith("error: checkpoint_mismatch: checkpoint 1 of KEYS")
