"""Least privilege on NATS: one user per identity, its subject permissions, its credentials."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts import calllog, keys, notifier
from keyledger.natsconfig import Value, Var
from services.common.natsauth import Credentials, inbox_prefix, read_credentials

ADMIN = "admin"
IDENTITIES = (ADMIN, "keys", "notifier", "calllog", "gateway", "auditor", "cli")
CREDENTIALS_DIR = "credentials"
JS = "$JS.API"
# services.keys.audit.PROJECTION, pinned by a test: importing it would load the keys service
KEYS_AUDIT_DURABLE = "keys-audit"
KEYS, CALLS, NOTIFY = keys.KEYS_STREAM.name, calllog.CALLS_STREAM.name, notifier.NOTIFY_STREAM.name

# never granted, even should an allow entry grow a wildcard: only admin changes history
DESTRUCTIVE = (
    f"{JS}.STREAM.DELETE.>",
    f"{JS}.STREAM.PURGE.>",
    f"{JS}.STREAM.MSG.DELETE.>",
    f"{JS}.STREAM.UPDATE.>",
    f"{JS}.CONSUMER.DELETE.>",
    f"{JS}.ACCOUNT.>",
    f"{JS}.META.>",
    f"{JS}.SERVER.>",
)


@dataclass(frozen=True)
class Grant:
    """What one identity may publish and subscribe to.

    responds: it may also answer the requests it receives (NATS `allow_responses`): a
    service replies to whatever inbox a request names, which no allow list can spell out.
    """

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responds: bool = False


def _produces(stream: str) -> tuple[str, ...]:
    """Declare the stream (ensure_stream: info, create when missing); never update it."""
    return (f"{JS}.STREAM.INFO.{stream}", f"{JS}.STREAM.CREATE.{stream}")


def _follows(stream: str) -> tuple[str, ...]:
    """Ephemeral ordered consumers (nats-py `ordered_consumer=True`): nothing left behind.

    `CONSUMER.CREATE.<stream>` without a consumer name is the ephemeral form: the server
    refuses a durable name on it, so a reader cannot create durables.
    """
    return (
        f"{JS}.STREAM.INFO.{stream}",
        f"{JS}.CONSUMER.CREATE.{stream}",
        f"$JS.FC.{stream}.>",  # flow-control replies, or delivery stalls on a long stream
    )


def _reads(stream: str) -> tuple[str, ...]:
    """What `keyledger replay` does: an ordered consumer and single-message gets."""
    return (*_follows(stream), f"{JS}.STREAM.MSG.GET.{stream}")


def _pulls(stream: str, durable: str) -> tuple[str, ...]:
    """One durable pull consumer (services.common.projector): bind or create, fetch, ack."""
    return (
        f"{JS}.CONSUMER.INFO.{stream}.{durable}",
        f"{JS}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{JS}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
        # what a replica died holding, or a new database's backlog, is read from the stream
        f"{JS}.STREAM.MSG.GET.{stream}",
    )


def _inbox(identity: str) -> tuple[str, ...]:
    return (f"{inbox_prefix(identity)}.>",)


# The request subjects each service answers. A service may publish to its own too: its
# readiness probe (services.common.requests.wait_routable) requests each of them before
# it reports healthy. keys.verify is not probed (its responder flushes its subscription).
KEYS_REQUESTS = ("keys.cmd.*", "keys.query.*")
KEYS_SERVES = (*KEYS_REQUESTS, keys.VERIFY_SUBJECT)
NOTIFIER_SERVES = ("notify.cmd.*", "notify.query.*")
CALLLOG_SERVES = ("calls.query.*",)


def grants() -> dict[str, Grant | None]:
    """Every identity's permissions; None: no restriction (admin)."""
    return {
        ADMIN: None,
        "keys": Grant(
            publish=(
                *keys.KEYS_STREAM.subjects,
                *_produces(KEYS),
                *_follows(KEYS),  # the registry's replay and live follow
                f"{JS}.DIRECT.GET.{KEYS}",  # an account's newer events after a lost race
                *_pulls(KEYS, KEYS_AUDIT_DURABLE),
                *KEYS_REQUESTS,
            ),
            subscribe=(*KEYS_SERVES, *_inbox("keys")),
            responds=True,
        ),
        "notifier": Grant(
            publish=(
                *notifier.NOTIFY_STREAM.subjects,
                *_produces(NOTIFY),
                f"{JS}.DIRECT.GET.{NOTIFY}.>",  # the last event of an account's chain
                f"{JS}.STREAM.INFO.{KEYS}",  # how far the projection must get (settle)
                *_pulls(KEYS, notifier.KEYS_DURABLE),
                *NOTIFIER_SERVES,
            ),
            subscribe=(*NOTIFIER_SERVES, *_inbox("notifier")),
            responds=True,
        ),
        "calllog": Grant(
            publish=(
                *_produces(CALLS),
                *_pulls(CALLS, calllog.PROJECTION_DURABLE),
                *CALLLOG_SERVES,
            ),
            subscribe=(*CALLLOG_SERVES, *_inbox("calllog")),
            responds=True,
        ),
        "gateway": Grant(
            publish=(keys.VERIFY_SUBJECT, *calllog.CALLS_STREAM.subjects),
            subscribe=_inbox("gateway"),
        ),
        "auditor": Grant(
            publish=(*_reads(KEYS), *_reads(CALLS), *_reads(NOTIFY)),
            subscribe=_inbox("auditor"),
        ),
        "cli": Grant(
            publish=(*KEYS_SERVES, *NOTIFIER_SERVES, *CALLLOG_SERVES),
            subscribe=_inbox("cli"),
        ),
    }


def _subjects(values: tuple[str, ...], indent: str) -> str:
    inner = "".join(f"\n{indent}  {json.dumps(v)}" for v in dict.fromkeys(values))
    return f"[{inner}\n{indent}]"


def _password(value: Value) -> str:
    # an env reference stays unquoted so that nats-server resolves it when loading
    return f"${value.name}" if isinstance(value, Var) else json.dumps(value)


def _user(identity: str, password: Value, grant: Grant | None) -> str:
    lines = [
        "    {",
        f"      user: {json.dumps(identity)}",
        f"      password: {_password(password)}",
    ]
    if grant is not None:
        lines += [
            "      permissions: {",
            "        publish: {",
            f"          allow: {_subjects(grant.publish, '          ')}",
            f"          deny: {_subjects(DESTRUCTIVE, '          ')}",
            "        }",
            f"        subscribe: {{allow: {_subjects(grant.subscribe, '        ')}}}",
        ]
        if grant.responds:
            lines.append("        allow_responses: true")
        lines.append("      }")
    return "\n".join([*lines, "    }"])


def render_authorization(passwords: Mapping[str, Value]) -> str:
    """The `authorization { users = [...] }` block for keyledger.natsconfig.render_config.

    passwords: identity -> a literal password or a natsconfig.Var (compose.yaml passes
    them as environment variables). Identities left out get no user, so cannot connect.
    """
    table = grants()
    unknown = set(passwords) - set(table)
    if unknown:
        raise ValueError(f"unknown NATS identities: {sorted(unknown)}")
    users = [_user(i, passwords[i], table[i]) for i in IDENTITIES if i in passwords]
    return "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n"


def credentials_file(data_dir: Path, identity: str) -> Path:
    return data_dir / CREDENTIALS_DIR / f"{identity}.json"


def ensure_credentials(data_dir: Path) -> dict[str, Credentials]:
    """Each identity's credentials in <data_dir>/credentials/, made once and then kept.

    Created with O_EXCL and mode 0600 (the folder 0700): never readable by others, not
    even for a moment.
    """
    folder = data_dir / CREDENTIALS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    found = {}
    for identity in IDENTITIES:
        path = credentials_file(data_dir, identity)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            found[identity] = read_credentials(path)
            continue
        made = Credentials(identity, secrets.token_urlsafe(32))
        try:
            os.write(fd, json.dumps({"user": made.user, "password": made.password}).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        found[identity] = made
    return found
