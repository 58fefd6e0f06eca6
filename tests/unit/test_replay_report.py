"""How `replay --verify` ends: exit 0, 1 for a broken chain, 4 for foreign messages only."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from keyledger.audit.replay import Finding, Problem
from keyledger.cli.common import Target
from keyledger.cli.replay import EXIT_CHAIN_BROKEN, EXIT_FOREIGN, Outcome, report

if TYPE_CHECKING:
    import pytest

FOREIGN = Finding(4, "keys.events.victim", "not JSON")
BROKEN = Problem(7, "acme", 3, "hash 1234 does not match the content: the event was altered")


def ended(outcome: Outcome, *, as_json: bool = False) -> int:
    try:
        report(outcome, Target(None, None, as_json))
    except typer.Exit as exc:
        return int(exc.exit_code)
    return 0


def test_intact_chains_without_findings_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert ended(Outcome(verified=True, events=3, accounts=1)) == 0
    assert capsys.readouterr().out == "verified 3 events in 1 account: OK\n"


def test_foreign_messages_around_intact_chains_exit_4(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = Outcome(verified=True, events=3, accounts=1, findings=[FOREIGN])
    assert ended(outcome) == EXIT_FOREIGN == 4
    out, err = capsys.readouterr()
    assert out == "verified 3 events in 1 account: OK, 1 foreign message\n"
    assert "foreign message: stream sequence 4 on keys.events.victim: not an event" in err
    assert err.splitlines()[-1].startswith("error: foreign_messages: the message at stream seq")


def test_a_broken_chain_exits_1_even_with_foreign_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = Outcome(verified=True, problem=BROKEN, findings=[FOREIGN])
    assert ended(outcome) == EXIT_CHAIN_BROKEN == 1
    err = capsys.readouterr().err
    assert "foreign message: stream sequence 4" in err
    assert err.splitlines()[-1].startswith("error: chain_broken: stream sequence 7")


def test_json_lists_the_findings(capsys: pytest.CaptureFixture[str]) -> None:
    second = Finding(9, "keys.events.acme", "its stream_id is not the account its subject names")
    outcome = Outcome(verified=True, events=3, accounts=1, findings=[FOREIGN, second])
    assert ended(outcome, as_json=True) == EXIT_FOREIGN
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["verified"] == {"events": 3, "accounts": 1, "ok": True}
    assert [f["stream_seq"] for f in document["findings"]] == [4, 9]
    assert set(document["findings"][0]) == {"stream_seq", "subject", "reason"}
    assert "2 messages (the first at stream sequence 4)" in captured.err


def test_json_of_a_broken_chain_keeps_its_shape_and_adds_the_findings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcome = Outcome(verified=True, problem=BROKEN, findings=[FOREIGN])
    assert ended(outcome, as_json=True) == EXIT_CHAIN_BROKEN
    document = json.loads(capsys.readouterr().out)
    assert document["error"]["code"] == "chain_broken"
    assert document["problem"]["stream_seq"] == 7
    assert document["findings"] == [FOREIGN.as_dict()]


def test_without_verify_there_are_no_findings(capsys: pytest.CaptureFixture[str]) -> None:
    assert ended(Outcome(verified=False), as_json=True) == 0
    assert json.loads(capsys.readouterr().out) == {
        "events": [],
        "verified": None,
        "findings": None,
    }
