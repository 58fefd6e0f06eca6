"""verify_chain: every way an auditor's replay can find a per-account hash chain broken."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from keyledger.replay import ChainChecker, Problem, verify_chain

Raw = dict[str, Any]


def event(account: str, sequence: int, prev_hash: str, **payload: Any) -> Raw:
    raw: Raw = {
        "event_id": f"{account}-{sequence}",
        "type": "KeyViewed",
        "version": 1,
        "stream_id": account,
        "sequence": sequence,
        "occurred_at": f"2025-01-01T00:00:{sequence:02d}+00:00",
        "actor": "alice",
        "correlation_id": "c",
        "causation_id": f"cmd-{sequence}",
        "prev_hash": prev_hash,
        "payload": {"kind": "KeyViewed", "key_id": "key_1", "hint": "klk_…abcd", **payload},
    }
    raw["hash"] = chain_hash(raw)
    return raw


def chain(account: str, length: int) -> list[Raw]:
    events: list[Raw] = []
    for sequence in range(1, length + 1):
        prev = events[-1]["hash"] if events else GENESIS_HASH
        events.append(event(account, sequence, prev))
    return events


def stored(events: list[Raw], first_seq: int = 1) -> list[tuple[int, bytes]]:
    """As read from the stream: consecutive stream sequences, canonical JSON bodies."""
    return [(first_seq + i, canonical_json(raw)) for i, raw in enumerate(events)]


def rehash(raw: Raw) -> Raw:
    """What a careful forger does: recompute the event's own hash after editing it."""
    return {**raw, "hash": chain_hash(raw)}


def interleave(*chains: list[Raw]) -> list[Raw]:
    merged: list[Raw] = []
    for position in range(max(len(c) for c in chains)):
        merged += [c[position] for c in chains if position < len(c)]
    return merged


def test_a_good_chain_verifies() -> None:
    assert verify_chain(stored(chain("acme", 5))) is None


def test_an_empty_stream_verifies() -> None:
    assert verify_chain([]) is None


def test_interleaved_accounts_each_keep_their_own_chain() -> None:
    events = interleave(chain("acme", 4), chain("globex", 3), chain("initech", 1))
    assert verify_chain(stored(events, first_seq=10)) is None


def test_checker_counts_events_and_accounts() -> None:
    checker = ChainChecker()
    for seq, data in stored(interleave(chain("acme", 3), chain("globex", 2))):
        assert checker.feed(seq, data) is None
    assert (checker.events, checker.accounts) == (5, 2)


def test_an_altered_payload_is_reported_at_that_event() -> None:
    events = chain("acme", 4)
    events[2] = {**events[2], "payload": {**events[2]["payload"], "key_id": "key_forged"}}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (3, "acme", 3)
    assert "altered" in problem.reason


def test_an_altered_envelope_field_is_reported() -> None:
    events = chain("acme", 3)
    events[1] = {**events[1], "actor": "mallory"}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.account, problem.sequence) == ("acme", 2)


def test_an_altered_and_rehashed_event_is_caught_by_its_successor() -> None:
    events = chain("acme", 4)
    events[1] = rehash({**events[1], "actor": "mallory"})
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (3, 3)
    assert "prev_hash" in problem.reason


def test_an_altered_hash_is_reported_at_that_event() -> None:
    events = chain("acme", 3)
    events[1] = {**events[1], "hash": "f" * 64}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (2, "acme", 2)
    assert "hash" in problem.reason


def test_the_last_event_altered_is_still_caught() -> None:
    events = chain("acme", 3)
    events[-1] = {**events[-1], "payload": {**events[-1]["payload"], "hint": "x"}}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert problem.sequence == 3


def test_reordered_events_are_reported() -> None:
    events = chain("acme", 4)
    events[1], events[2] = events[2], events[1]
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (2, 3)
    assert "sequence 3 where 2 was expected" in problem.reason


def test_a_gap_is_reported() -> None:
    events = chain("acme", 4)
    del events[1]
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (2, "acme", 3)
    assert "where 2 was expected" in problem.reason


def test_a_chain_that_does_not_start_at_one_is_reported() -> None:
    problem = verify_chain(stored(chain("acme", 3)[1:]))
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (1, 2)


def test_a_duplicated_event_is_reported() -> None:
    events = chain("acme", 3)
    events.insert(2, events[1])
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (3, 2)


def test_a_wrong_prev_hash_is_reported_even_with_a_consistent_own_hash() -> None:
    events = chain("acme", 3)
    events[2] = rehash({**events[2], "prev_hash": "a" * 64})
    problem = verify_chain(stored(events))
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (3, 3)
    assert "prev_hash" in problem.reason
    assert "hash of 2" in problem.reason


def test_a_first_event_must_chain_to_genesis() -> None:
    events = chain("acme", 2)
    events[0] = rehash({**events[0], "prev_hash": "b" * 64})
    problem = verify_chain(stored(events))
    assert problem is not None
    assert problem.sequence == 1
    assert "genesis" in problem.reason


def test_a_chain_cannot_borrow_another_accounts_hashes() -> None:
    acme, globex = chain("acme", 2), chain("globex", 2)
    forged = rehash({**globex[1], "prev_hash": acme[0]["hash"]})
    problem = verify_chain(stored([acme[0], globex[0], acme[1], forged]))
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (4, "globex", 2)


def test_a_break_in_one_interleaved_account_names_that_account() -> None:
    acme, globex = chain("acme", 3), chain("globex", 3)
    globex[1] = {**globex[1], "payload": {**globex[1]["payload"], "key_id": "key_x"}}
    problem = verify_chain(stored(interleave(acme, globex), first_seq=100))
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (103, "globex", 2)


def test_only_the_first_problem_is_reported() -> None:
    events = chain("acme", 4)
    events[1] = {**events[1], "hash": "0" * 64}
    events[3] = {**events[3], "hash": "0" * 64}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert problem.sequence == 2


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"sequence": 1, "prev_hash": "0", "hash": "0"}).encode(), "stream_id"),
        (
            json.dumps({"stream_id": "a", "sequence": "1", "prev_hash": "0", "hash": "0"}).encode(),
            "sequence",
        ),
        (
            json.dumps(
                {"stream_id": "a", "sequence": True, "prev_hash": "0", "hash": "0"}
            ).encode(),
            "sequence",
        ),
        (json.dumps({"stream_id": "a", "sequence": 1, "prev_hash": "0"}).encode(), "hash"),
    ],
)
def test_unparseable_messages_are_reported(data: bytes, why: str) -> None:
    good = stored(chain("acme", 2))
    problem = verify_chain([*good, (3, data)])
    assert problem is not None
    assert (problem.stream_seq, problem.account, problem.sequence) == (3, None, None)
    assert "unparseable" in problem.reason
    assert why in problem.reason


def test_problem_names_stream_sequence_account_and_sequence() -> None:
    text = str(Problem(7, "acme", 3, "something is wrong"))
    assert text == "stream sequence 7 (account acme, sequence 3): something is wrong"
    assert str(Problem(8, None, None, "unparseable event: not JSON")).startswith(
        "stream sequence 8: "
    )


def test_extra_fields_are_covered_by_the_hash() -> None:
    events = chain("acme", 2)
    events[1] = {**events[1], "injected": "value"}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert problem.sequence == 2
