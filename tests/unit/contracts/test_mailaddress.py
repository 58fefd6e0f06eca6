"""The one e-mail address rule: what open_account and grant_admin accept can be sent to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.keys import GrantSuperAdmin, OpenAccount
from contracts.mailaddress import address_problem, needs_smtputf8
from services.common.errors import describe

ACCEPTED = [
    "alice@example.com",
    "a@x.io",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.com",
    "x_y-z!#$%&*/=?^`{|}~@example.com",
    "ünïcödé@exämple.com",
    "用户@例子.广告",
    "alice@localhost",
    "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "b" * 61,  # 254 bytes exactly
]
REFUSED = {
    'a"b\\c@example.com': "quote or a backslash",
    '"alice"@example.com': "quote or a backslash",
    "a\\b@example.com": "quote or a backslash",
    "a b@example.com": "space",
    "a\u00a0b@example.com": "space",
    "alice@exa mple.com": "space",
    "alice@example.com\nBcc: all@x.io": "line break",
    "al\x7fice@example.com": "control",
    "alice.example.com": "needs a local part",
    "@example.com": "needs a local part",
    "alice@": "needs a local part",
    "": "needs a local part",
    "a@b@example.com": "local part",
    ".alice@example.com": "local part",
    "alice.@example.com": "local part",
    "al..ice@example.com": "local part",
    "a(comment)@example.com": "local part",
    "<alice@example.com>": "local part",
    "a,b@example.com": "local part",
    "alice@-example.com": "domain",
    "alice@example..com": "domain",
    "alice@example.com.": "domain",
    "alice@[192.0.2.1]": "domain",
    "alice@exa_mple.com": "domain",
    "a" * 65 + "@example.com": "longer than 64",
    "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "b" * 62: "longer than 254",
    "é" * 33 + "@example.com": "longer than 64",  # 33 characters, 66 bytes
}


@pytest.mark.parametrize("address", ACCEPTED)
def test_an_address_the_rule_accepts_is_accepted_by_every_command(address: str) -> None:
    assert address_problem(address) is None
    assert OpenAccount(account_id="acme", owner="alice", email=address).email == address
    grant = GrantSuperAdmin(account_id="acme", actor="alice", user="bob", email=address)
    assert grant.email == address


@pytest.mark.parametrize(("address", "reason"), REFUSED.items())
def test_an_address_the_rule_refuses_is_refused_with_its_reason(address: str, reason: str) -> None:
    assert reason in (address_problem(address) or "")
    with pytest.raises(ValidationError) as caught:
        OpenAccount(account_id="acme", owner="alice", email=address)
    message = describe(caught.value)
    assert message.startswith("email: ")
    if address.strip():
        assert address not in message  # the value is never echoed


def test_an_address_without_an_at_reads_as_it_always_did() -> None:
    with pytest.raises(ValidationError) as caught:
        OpenAccount(account_id="acme", owner="alice", email="not-an-email")
    assert describe(caught.value) == (
        "email: String should match pattern '^[^@\\s]{1,64}@[^@\\s]{1,255}$'"
    )


def test_only_a_non_ascii_address_needs_smtputf8() -> None:
    assert not needs_smtputf8("alice@example.com")
    assert needs_smtputf8("ünïcödé@exämple.com")
    assert needs_smtputf8("alice@exämple.com")


def test_the_rule_is_written_in_the_contract() -> None:
    schema = OpenAccount.model_json_schema()["properties"]["email"]
    assert "SMTPUTF8" in schema["description"]
