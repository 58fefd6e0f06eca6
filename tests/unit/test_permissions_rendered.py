"""The generated NATS users: who may do what, the rendered block, the credential files."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from contracts.accounts import AUDITORS, FRONTENDS, GATEWAYS, SERVICES
from contracts.connection import Credentials, CredentialsError
from contracts.keys import AUDIT_DURABLE
from keyledger.client import Unreachable, discover_credentials
from keyledger.deploy import permissions
from keyledger.deploy.accounts import render_accounts
from keyledger.deploy.config import Var
from keyledger.deploy.permissions import DESTRUCTIVE, IDENTITIES, ensure_credentials, grants
from services.common.connect import credentials
from services.common.inboxes import answerable
from services.keys.projection import PROJECTION

if TYPE_CHECKING:
    from pathlib import Path

STREAMS = ("KEYS", "CALLS", "NOTIFY", "CHECKPOINTS")
RESTRICTED = [i for i in IDENTITIES if i != "admin"]


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, given = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(given) > index
        if index >= len(given) or token not in ("*", given[index]):
            return False
    return len(wanted) == len(given)


def allowed(patterns: tuple[str, ...], subject: str) -> bool:
    return any(matches(p, subject) for p in patterns)


@pytest.mark.parametrize("identity", RESTRICTED)
def test_no_identity_but_admin_may_rewrite_history(identity: str) -> None:
    grant = grants()[identity]
    assert grant is not None
    for stream in STREAMS:
        for verb in ("DELETE", "PURGE", "MSG.DELETE", "UPDATE"):
            subject = f"$JS.API.STREAM.{verb}.{stream}"
            assert not allowed(grant.publish, subject)
            assert allowed(DESTRUCTIVE, subject)  # and denied outright besides
        assert not allowed(grant.publish, f"$JS.API.CONSUMER.DELETE.{stream}.any")


@pytest.mark.parametrize("identity", RESTRICTED)
def test_each_identity_reads_only_its_own_replies(identity: str) -> None:
    grant = grants()[identity]
    assert grant is not None
    assert allowed(grant.subscribe, f"_INBOX_{identity}.abc.def")
    for other in IDENTITIES:
        if other != identity:
            assert not allowed(grant.subscribe, f"_INBOX_{other}.abc")
    assert not allowed(grant.subscribe, "_INBOX.abc")
    assert not any(allowed(grant.subscribe, f"{s}.acme") for s in ("keys.events", "calls.recorded"))


@pytest.mark.parametrize(
    ("subject", "publishers"),
    [
        ("keys.events.acme", {"keys"}),
        ("notify.events.acme", {"notifier"}),
        ("calls.recorded.acme", {"gateway"}),
        ("keys.verify", {"gateway", "cli", "console"}),
        ("keys.cmd.reveal", {"cli", "console", "keys"}),  # keys: its readiness probe
        ("keys.query.accounts", {"cli", "console", "keys"}),
        ("calls.query.clients", {"cli", "console", "calllog"}),
        ("checkpoints.keys", {"keys"}),
        ("checkpoints.notify", {"notifier"}),
        ("checkpoints.calls", set()),
        # its producer declares it; the auditor its copy, in the auditors' own account
        ("$JS.API.STREAM.CREATE.CHECKPOINTS", {"keys", "auditor"}),
    ],
)
def test_who_may_publish_where(subject: str, publishers: set[str]) -> None:
    found = {i for i, grant in grants().items() if grant and allowed(grant.publish, subject)}
    assert found == publishers


def test_only_services_answer_requests_and_admin_is_unrestricted() -> None:
    table = grants()
    assert table["admin"] is None
    answering = {i for i, grant in table.items() if grant is not None and grant.responds}
    assert answering == {"keys", "notifier", "calllog"}


def test_durables_are_the_services_own() -> None:
    assert PROJECTION == AUDIT_DURABLE  # the service's projection is the durable granted
    keys = grants()["keys"]
    assert keys is not None
    assert allowed(keys.publish, "$JS.API.CONSUMER.DURABLE.CREATE.KEYS.keys-audit")
    assert not allowed(keys.publish, "$JS.API.CONSUMER.DURABLE.CREATE.KEYS.notifier-keys")


def _account_block(block: str, account: str) -> str:
    start = block.index(f"\n  {account} {{\n")
    return block[start : block.index("\n  }\n", start)]


def test_the_block_names_every_user_and_passwords_may_come_from_the_environment() -> None:
    passwords: dict[str, str | Var] = {i: f"pw-{i}" for i in IDENTITIES}
    passwords["keys"] = Var("KEYLEDGER_NATS_PASSWORD_KEYS")
    block = render_accounts(passwords)
    assert block.startswith("accounts {\n  SERVICES {\n    jetstream: enabled")
    assert "password: $KEYLEDGER_NATS_PASSWORD_KEYS\n" in block
    assert 'password: "pw-auditor"\n' in block
    assert block.count("allow_responses: true") == 3
    partial = render_accounts({"admin": "x"})
    assert '"keys"' not in partial
    with pytest.raises(ValueError, match="unknown"):
        render_accounts({"root.x": "x"})


@pytest.mark.parametrize("identity", [*IDENTITIES, "bob"])
def test_each_identity_lives_in_its_account(identity: str) -> None:
    block = render_accounts({i: "pw" for i in [*IDENTITIES, "bob"]})
    account = permissions.account_of(identity)
    assert f'user: "{identity}"' in _account_block(block, account)
    others = [a for a in (SERVICES, GATEWAYS, FRONTENDS, AUDITORS) if a != account]
    assert all(f'user: "{identity}"' not in _account_block(block, a) for a in others)


def test_requests_cross_with_the_requester_named_and_only_where_imported() -> None:
    block = render_accounts({})
    gateways, frontends = _account_block(block, GATEWAYS), _account_block(block, FRONTENDS)
    for subject in ("keys.verify", "calls.recorded.>"):
        assert f'subject: "{subject}"}}, share: true}}' in gateways
    assert "keys.cmd" not in gateways
    assert "calls.recorded" not in frontends
    for subject in ("keys.verify", "keys.cmd.>", "keys.query.>", "notify.cmd.>", "calls.query.>"):
        assert f'subject: "{subject}"}}, share: true}}' in frontends
    auditors = _account_block(block, AUDITORS)
    assert "share" not in auditors
    assert "keys." not in auditors
    # the auditors reach the services' JetStream API only under a prefix of their own
    assert auditors.count(f'to: "{permissions.ORIGIN_API}.') == 2 * len(permissions.AUDITED)
    assert "jetstream" not in gateways + frontends


@pytest.mark.parametrize(
    ("imported", "subject"),
    [("keys.query.>", "keys.query.accounts"), ("calls.query.>", "calls.query.clients")],
)
def test_frontends_may_ask_what_the_console_needs(imported: str, subject: str) -> None:
    frontends = _account_block(render_accounts({}), FRONTENDS)
    assert matches(imported, subject)
    assert f'subject: "{imported}"}}, share: true}}' in frontends
    bob = permissions.grant_of("bob")
    assert bob is not None
    assert allowed(bob.publish, subject)


def test_operators_get_their_own_inbox_and_names_that_cannot_clash() -> None:
    bob = permissions.grant_of("bob")
    assert bob is not None
    assert bob.subscribe == ("_INBOX_bob.>",)
    assert bob.publish == permissions.operator_grant("cli").publish
    for name in ("keys", "admin", "auditor", "Bob", "a.b", "x>", "*", "", "-a", "a" * 33):
        assert not permissions.is_operator(name), name
    assert permissions.is_operator("cli")
    assert permissions.is_operator("console")
    assert permissions.grant_of("console") == permissions.operator_grant("console")
    assert permissions.account_of("console") == FRONTENDS
    assert permissions.is_operator("ops-1_x")


def test_new_operators_are_found_in_the_data_dir(tmp_path: Path) -> None:
    made = permissions.make_credentials(tmp_path, "bob")
    assert permissions.operators(tmp_path) == ["bob"]
    found = ensure_credentials(tmp_path)
    assert found["bob"] == made
    assert set(found) == {*IDENTITIES, "bob"}
    assert permissions.operators(tmp_path) == ["bob", "cli", "console"]
    with pytest.raises(FileExistsError):
        permissions.make_credentials(tmp_path, "bob")


def test_credentials_are_made_once_private_and_kept(tmp_path: Path) -> None:
    first = ensure_credentials(tmp_path)
    folder = tmp_path / "credentials"
    assert folder.stat().st_mode & 0o777 == 0o700
    for identity in IDENTITIES:
        path = folder / f"{identity}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text()) == {
            "user": identity,
            "password": first[identity].password,
        }
    assert len({c.password for c in first.values()}) == len(IDENTITIES)
    assert ensure_credentials(tmp_path) == first
    assert first["keys"].password not in repr(first["keys"])


def test_service_credentials_come_from_one_place_at_a_time(tmp_path: Path) -> None:
    class Given:
        def __init__(
            self, file: Path | None = None, user: str | None = None, password: str | None = None
        ) -> None:
            self.nats_credentials_file = file
            self.nats_user = user
            self.nats_password = SecretStr(password) if password else None

    file = tmp_path / "keys.json"
    file.write_text('{"user": "keys", "password": "secret"}')
    assert credentials(Given()) is None
    assert credentials(Given(file)) == Credentials("keys", "secret")
    assert credentials(Given(user="keys", password="pw")) == Credentials("keys", "pw")
    with pytest.raises(CredentialsError, match="not both"):
        credentials(Given(file, "keys", "pw"))
    with pytest.raises(CredentialsError, match="go together"):
        credentials(Given(user="keys"))
    with pytest.raises(CredentialsError, match="cannot read"):
        credentials(Given(tmp_path / "missing.json"))


def test_clients_take_the_environment_then_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("USER", "PASSWORD", "CREDENTIALS_FILE"):
        monkeypatch.delenv(f"KEYLEDGER_NATS_{name}", raising=False)
    assert discover_credentials(tmp_path, "cli") is None
    made = ensure_credentials(tmp_path)
    assert discover_credentials(tmp_path, "cli") == made["cli"]
    assert discover_credentials(tmp_path, "auditor") == made["auditor"]
    monkeypatch.setenv("KEYLEDGER_NATS_CREDENTIALS_FILE", str(tmp_path / "credentials/admin.json"))
    assert discover_credentials(tmp_path, "cli") == made["admin"]
    monkeypatch.setenv("KEYLEDGER_NATS_USER", "ops")
    with pytest.raises(Unreachable, match="not both"):
        discover_credentials(tmp_path, "cli")
    monkeypatch.delenv("KEYLEDGER_NATS_CREDENTIALS_FILE")
    monkeypatch.setenv("KEYLEDGER_NATS_PASSWORD", "pw")
    assert discover_credentials(tmp_path, "cli") == Credentials("ops", "pw")


@pytest.mark.parametrize(
    ("reply", "answered"),
    [
        ("_INBOX.a.b", True),
        ("_INBOX_cli.a", True),
        ("_R_.x.y", True),
        ("keys.events.acme", False),
        ("", False),
        (None, False),
        ("_INBOXES.a", False),
    ],
)
def test_services_answer_inboxes_only(reply: str | None, answered: bool) -> None:
    assert answerable(reply) is answered
