"""The nats-server `accounts { ... }` block: who lives where, and what crosses between them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from contracts import calllog, keys, notifier
from contracts.accounts import AUDITORS, FRONTENDS, GATEWAYS, SERVICES
from contracts.keys import VERIFY_SUBJECT
from keyledger.deploy.config import Value, Var
from keyledger.deploy.permissions import (
    AUDITED,
    DESTRUCTIVE,
    IDENTITIES,
    JS,
    ORIGIN_API,
    Grant,
    account_of,
    grant_of,
    is_operator,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# the services' account answers these for the others (each import names its account below)
COMMANDS = (
    keys.command_subject(">"),
    keys.query_subject(">"),
    notifier.command_subject(">"),
    notifier.query_subject(">"),
    calllog.query_subject(">"),
)
RECORDS = calllog.ALL_RECORDED
IMPORTS = {
    GATEWAYS: (VERIFY_SUBJECT, RECORDS),
    FRONTENDS: (VERIFY_SUBJECT, *COMMANDS),
}
# where the services' JetStream pushes the auditors' copies (keyledger.deploy.auditcopy)
DELIVER = "audit.deliver"
ACCOUNTS = (SERVICES, GATEWAYS, FRONTENDS, AUDITORS)


def _subjects(values: Iterable[str], indent: str) -> str:
    inner = "".join(f"\n{indent}  {json.dumps(v)}" for v in dict.fromkeys(values))
    return f"[{inner}\n{indent}]"


def _password(value: Value) -> str:
    # an env reference stays unquoted so that nats-server resolves it when loading
    return f"${value.name}" if isinstance(value, Var) else json.dumps(value)


def _user(identity: str, password: Value, grant: Grant | None) -> str:
    pad = ""
    lines = [f"{pad}{{", f"{pad}  user: {json.dumps(identity)}"]
    lines.append(f"{pad}  password: {_password(password)}")
    if grant is not None:
        inner = pad + "      "
        lines += [
            f"{pad}  permissions: {{",
            f"{pad}    publish: {{",
            f"{inner}allow: {_subjects(grant.publish, inner)}",
            f"{inner}deny: {_subjects(DESTRUCTIVE, inner)}",
            f"{pad}    }}",
            f"{pad}    subscribe: {{allow: {_subjects(grant.subscribe, pad + '    ')}}}",
        ]
        if grant.responds:
            lines.append(f"{pad}    allow_responses: true")
        lines.append(f"{pad}  }}")
    return "\n".join([*lines, f"{pad}}}"])


def _exports() -> list[str]:
    """SERVICES answers each request subject only for the accounts that import it; the
    auditors' account may create the consumers that feed its copies, and nothing else."""
    importers: dict[str, list[str]] = {}
    for account, subjects in IMPORTS.items():
        for subject in subjects:
            importers.setdefault(subject, []).append(account)
    found = [
        f"{{service: {json.dumps(subject)}, accounts: {json.dumps(accounts)}}}"
        for subject, accounts in importers.items()
    ]
    only = json.dumps([AUDITORS])
    for stream in AUDITED:
        found.append(f'{{service: "{JS}.CONSUMER.CREATE.{stream}", accounts: {only}}}')
        found.append(f'{{service: "{JS}.STREAM.INFO.{stream}", accounts: {only}}}')
        # a source's flow-control replies: without them it stalls after the first window
        found.append(f'{{service: "$JS.FC.{stream}.>", accounts: {only}}}')
    found.append(f'{{stream: "{DELIVER}.>", accounts: {only}}}')
    return found


def _imports(account: str) -> list[str]:
    source = json.dumps(SERVICES)
    # share: the services see which user asked, in the Nats-Request-Info header
    found = [
        f"{{service: {{account: {source}, subject: {json.dumps(s)}}}, share: true}}"
        for s in IMPORTS.get(account, ())
    ]
    if account == AUDITORS:
        for stream in AUDITED:
            for api in (f"CONSUMER.CREATE.{stream}", f"STREAM.INFO.{stream}"):
                found.append(
                    f'{{service: {{account: {source}, subject: "{JS}.{api}"}}, '
                    f'to: "{ORIGIN_API}.{api}"}}'
                )
            found.append(f'{{service: {{account: {source}, subject: "$JS.FC.{stream}.>"}}}}')
        found.append(f'{{stream: {{account: {source}, subject: "{DELIVER}.>"}}}}')
    return found


def _listing(name: str, entries: list[str]) -> list[str]:
    if not entries:
        return []
    inner = [f"      {line}" for entry in entries for line in entry.split("\n")]
    return [f"    {name} = [", *inner, "    ]"]


def render_accounts(passwords: Mapping[str, Value]) -> str:
    """The `accounts { ... }` block for keyledger.deploy.config.render_config.

    passwords: identity -> a literal password or a config.Var (compose.yaml passes
    them as environment variables); a name that is no service identity is an operator.
    Identities left out get no user, so cannot connect.
    """
    unknown = [i for i in passwords if i not in IDENTITIES and not is_operator(i)]
    if unknown:
        raise ValueError(f"unknown NATS identities: {sorted(unknown)}")
    lines = ["accounts {"]
    for account in ACCOUNTS:
        users = [_user(i, p, grant_of(i)) for i, p in passwords.items() if account_of(i) == account]
        lines.append(f"  {account} {{")
        if account in (SERVICES, AUDITORS):  # the streams, and the auditors' copies
            lines.append("    jetstream: enabled")
        lines += _listing("users", users)
        lines += _listing("exports", _exports() if account == SERVICES else [])
        lines += _listing("imports", _imports(account))
        lines.append("  }")
    return "\n".join([*lines, "}"]) + "\n"
