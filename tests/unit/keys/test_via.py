"""Reading Nats-Request-Info, and the deadline and key id fields' validation."""

from __future__ import annotations

import json

import pytest

from contracts.accounts import REQUEST_INFO_HEADER
from contracts.envelope import Via
from contracts.keys import RevealKey, RotateKey
from contracts.replies import ErrorCode
from keyledger.cli.audit import _audit_line
from keyledger.cli.replay import event_line
from services.common.errors import Refused
from services.common.requests import parse
from services.keys.via import via_of


def header(**info: object) -> dict[str, str]:
    return {REQUEST_INFO_HEADER: json.dumps({"rtt": "1ms", **info})}


def test_another_accounts_identity_is_recorded() -> None:
    assert via_of(header(acc="FRONTENDS", user="bob")) == Via(account="FRONTENDS", user="bob")
    assert via_of(header(acc="GATEWAYS")) == Via(account="GATEWAYS")


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        header(acc="SERVICES", user="root"),  # inside SERVICES anyone may write the header
        {REQUEST_INFO_HEADER: "not json"},
        {REQUEST_INFO_HEADER: "[1]"},
        header(acc=7),
        header(user="bob"),
    ],
)
def test_no_or_untrusted_header_means_no_via(headers: dict[str, str] | None) -> None:
    assert via_of(headers) is None


def test_long_names_are_cut_to_the_audit_columns() -> None:
    found = via_of(header(acc="A" * 300, user="u" * 300))
    assert found is not None
    assert len(found.account) == len(found.user or "") == 128


@pytest.mark.parametrize(
    "deadline", ["tomorrow", "2026-01-01T00:00:00", 1767225600, "2026-13-01T00:00:00Z"]
)
def test_a_malformed_deadline_is_an_invalid_request(deadline: object) -> None:
    body = json.dumps({"account_id": "acme", "actor": "alice", "deadline": deadline})
    with pytest.raises(Refused) as refused:
        parse(RevealKey, body.encode())
    assert refused.value.code == ErrorCode.INVALID_REQUEST


def test_a_deadline_far_ahead_is_valid() -> None:
    body = {"account_id": "acme", "actor": "alice", "deadline": "9999-12-31T23:59:59Z"}
    assert parse(RevealKey, json.dumps(body).encode()).deadline is not None


@pytest.mark.parametrize("key_id", ["", "key with spaces", "k" * 65, 5])
def test_a_malformed_expected_key_id_is_an_invalid_request(key_id: object) -> None:
    body = {"account_id": "acme", "actor": "alice", "confirm": True, "expected_key_id": key_id}
    with pytest.raises(Refused) as refused:
        parse(RotateKey, json.dumps(body).encode())
    assert refused.value.code == ErrorCode.INVALID_REQUEST


def test_audit_and_replay_lines_say_via_whom() -> None:
    item = {
        "occurred_at": "2026-06-01T00:00:00Z",
        "sequence": 3,
        "actor": "alice",
        "action": "viewed",
        "via": {"account": "FRONTENDS", "user": "bob"},
    }
    assert "alice via bob" in _audit_line(item)
    assert "alice via FRONTENDS" in _audit_line(item | {"via": {"account": "FRONTENDS"}})
    assert " via " not in _audit_line(item | {"via": None})
    raw = {
        "stream_id": "acme",
        "sequence": 3,
        "occurred_at": "2026-06-01T00:00:00+00:00",
        "actor": "alice",
        "type": "KeyViewed",
        "payload": {},
        "via": {"account": "FRONTENDS", "user": "bob"},
    }
    assert "alice via bob  KeyViewed" in event_line(9, raw)
