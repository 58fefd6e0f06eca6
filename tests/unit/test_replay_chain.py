"""verify_chain: every way a replay finds a hash chain broken, or a message that is no event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.envelope import GENESIS_HASH, canonical_json, chain_hash
from keyledger.audit.replay import ChainChecker, Finding, Problem, verify_chain

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
        (b'{"stream":"CALLS","seq":1}', "stream_id"),
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
        (canonical_json({**chain("acme", 1)[0], "payload": "KeyViewed"}), "payload"),
        (canonical_json({**chain("acme", 1)[0], "sequence": 0}), "positive"),
    ],
)
def test_a_message_that_is_not_an_event_is_a_finding_not_a_break(data: bytes, why: str) -> None:
    checker = ChainChecker()
    fed = [*stored(chain("acme", 2)), (3, data), *stored(chain("acme", 4)[2:], first_seq=4)]
    assert [checker.feed(seq, raw, "keys.events.acme") for seq, raw in fed] == [None] * 5
    assert (checker.events, checker.accounts) == (4, 1)
    [finding] = checker.findings
    assert (finding.stream_seq, finding.subject) == (3, "keys.events.acme")
    assert why in finding.reason


def test_another_accounts_envelope_on_a_subject_is_a_finding_in_neither_chain() -> None:
    acme, globex = chain("acme", 2), chain("globex", 2)
    checker = ChainChecker()
    fed = [
        (1, "keys.events.acme", acme[0]),
        (2, "keys.events.globex", globex[0]),
        (3, "keys.events.acme", globex[1]),  # globex's next event, on acme's subject
        (4, "keys.events.acme", acme[1]),
        (5, "keys.events.globex", rehash({**globex[1], "event_id": "again"})),
    ]
    problems = [checker.feed(seq, canonical_json(raw), on) for seq, on, raw in fed]
    assert problems == [None] * 5
    assert [(f.stream_seq, f.reason) for f in checker.findings] == [
        (3, "its stream_id is not the account its subject names")
    ]
    assert (checker.events, checker.accounts) == (4, 2)


def test_a_subject_with_more_tokens_names_no_account() -> None:
    checker = ChainChecker()
    assert checker.feed(1, canonical_json(chain("b", 1)[0]), "keys.events.a.b") is None
    assert checker.events == 0
    assert len(checker.findings) == 1


def test_findings_do_not_hide_a_break_after_them() -> None:
    events = chain("acme", 3)
    events[2] = {**events[2], "actor": "mallory"}
    checker = ChainChecker()
    assert checker.feed(1, canonical_json(events[0]), "keys.events.acme") is None
    assert checker.feed(2, b"junk", "keys.events.acme") is None
    assert checker.feed(3, canonical_json(events[1]), "keys.events.acme") is None
    problem = checker.feed(4, canonical_json(events[2]), "keys.events.acme")
    assert problem is not None
    assert (problem.stream_seq, problem.sequence) == (4, 3)
    assert [f.stream_seq for f in checker.findings] == [2]


def test_verify_chain_counts_only_breaks() -> None:
    assert verify_chain([*stored(chain("acme", 2)), (3, b"not json")]) is None


def test_a_finding_names_its_stream_sequence_and_subject_and_never_its_content() -> None:
    finding = Finding(9, "keys.events.victim", "not JSON")
    assert str(finding) == "stream sequence 9 on keys.events.victim: not an event (not JSON)"
    assert finding.as_dict() == {
        "stream_seq": 9,
        "subject": "keys.events.victim",
        "reason": "not JSON",
    }
    checker = ChainChecker()
    checker.feed(1, canonical_json({"stream_id": 1, "secret": "klk_s3cret"}), "keys.events.v")
    assert "klk_s3cret" not in str(checker.findings[0])


def test_problem_names_stream_sequence_account_and_sequence() -> None:
    text = str(Problem(7, "acme", 3, "something is wrong"))
    assert text == "stream sequence 7 (account acme, sequence 3): something is wrong"
    assert str(Problem(8, None, None, "something else")).startswith("stream sequence 8: ")


def test_extra_fields_are_covered_by_the_hash() -> None:
    events = chain("acme", 2)
    events[1] = {**events[1], "injected": "value"}
    problem = verify_chain(stored(events))
    assert problem is not None
    assert problem.sequence == 2
