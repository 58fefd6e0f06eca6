"""Least privilege on NATS: one user per identity, its account, its permissions, its credentials."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts import calllog, checkpoints, keys, notifier
from contracts.accounts import AUDITORS, FRONTENDS, GATEWAYS, SERVICES
from contracts.connection import (
    CREDENTIALS_DIR,
    Credentials,
    credentials_file,
    dump_credentials,
    inbox_prefix,
    read_credentials,
)

if TYPE_CHECKING:
    from pathlib import Path

ADMIN = "admin"
# "cli": the operator `keyledger up` makes for whoever runs it; "console": the web console's
# (services/console), which sends each command with the signed-in person as its actor;
# `keyledger operator add` makes more, each a FRONTENDS user of its own
# (keyledger.deploy.operators)
DEFAULT_OPERATOR = "cli"
CONSOLE_OPERATOR = "console"
BUILT_IN_OPERATORS = (DEFAULT_OPERATOR, CONSOLE_OPERATOR)
IDENTITIES = (ADMIN, "keys", "notifier", "calllog", "gateway", "auditor", *BUILT_IN_OPERATORS)
ACCOUNT_OF = {
    ADMIN: SERVICES,
    "keys": SERVICES,
    "notifier": SERVICES,
    "calllog": SERVICES,
    "gateway": GATEWAYS,
    "auditor": AUDITORS,
    DEFAULT_OPERATOR: FRONTENDS,
    CONSOLE_OPERATOR: FRONTENDS,
}
# one token of lower-case letters, digits, - and _: an operator's name is its NATS user and
# the last token of its inbox prefix, so no dot, no wildcard
OPERATOR_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
JS = "$JS.API"
KEYS, CALLS, NOTIFY = keys.KEYS_STREAM.name, calllog.CALLS_STREAM.name, notifier.NOTIFY_STREAM.name
CHECKPOINTS = checkpoints.CHECKPOINTS_STREAM.name
AUDITED = (KEYS, CALLS, NOTIFY, CHECKPOINTS)
# where AUDITORS reaches the services' JetStream API (only what its copies need is imported)
ORIGIN_API = f"$JS.{SERVICES}.API"

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


def _leases(bucket: str) -> tuple[str, ...]:
    """A KV bucket of its own (services/calllog/leases.py): declare it, write and
    compare-and-set keys, read them, and list them (an ephemeral ordered watcher)."""
    stream = f"KV_{bucket}"
    return (
        *_produces(stream),
        f"$KV.{bucket}.>",
        f"{JS}.DIRECT.GET.{stream}.>",
        f"{JS}.STREAM.MSG.GET.{stream}",
        f"{JS}.CONSUMER.CREATE.{stream}",
        f"{JS}.CONSUMER.CREATE.{stream}.>",
        f"{JS}.CONSUMER.INFO.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def _audits(stream: str) -> tuple[str, ...]:
    """In AUDITORS, on its copy of `stream` (keyledger.deploy.auditcopy): declare it, read it with
    any client's consumer (ordered push or pull, named or not), and ask how far the
    original has got (STREAM.INFO through the import; its reply never leaves AUDITORS)."""
    return (
        f"{JS}.STREAM.CREATE.{stream}",
        f"{JS}.STREAM.INFO.{stream}",
        f"{JS}.STREAM.MSG.GET.{stream}",
        f"{JS}.DIRECT.GET.{stream}.>",
        f"{JS}.CONSUMER.CREATE.{stream}",
        f"{JS}.CONSUMER.CREATE.{stream}.>",
        f"{JS}.CONSUMER.INFO.{stream}.>",
        f"{JS}.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.FC.{stream}.>",
        f"{ORIGIN_API}.STREAM.INFO.{stream}",
    )


def _checkpoints(subject: str) -> tuple[str, ...]:
    """Append to its own checkpoint subject, chained onto the last checkpoint read there."""
    return (subject, f"{JS}.DIRECT.GET.{CHECKPOINTS}.{subject}")


def _inbox(identity: str) -> tuple[str, ...]:
    return (f"{inbox_prefix(identity)}.>",)


# The request subjects each service answers. A service may publish to its own too: its
# readiness probe (services.common.requests.wait_routable) requests each of them before
# it reports healthy. keys.verify is not probed (its responder flushes its subscription).
KEYS_REQUESTS = (keys.command_subject("*"), keys.query_subject("*"))
KEYS_SERVES = (*KEYS_REQUESTS, keys.VERIFY_SUBJECT)
NOTIFIER_SERVES = (notifier.command_subject("*"), notifier.query_subject("*"))
CALLLOG_SERVES = (calllog.query_subject("*"),)


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
                *_pulls(KEYS, keys.AUDIT_DURABLE),
                *KEYS_REQUESTS,
                *_produces(CHECKPOINTS),  # the keys service declares CHECKPOINTS
                *_checkpoints(checkpoints.KEYS_CHECKPOINTS),
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
                *_follows(NOTIFY),  # the heads its checkpoints sign, read off NOTIFY
                *_checkpoints(checkpoints.NOTIFY_CHECKPOINTS),
            ),
            subscribe=(*NOTIFIER_SERVES, *_inbox("notifier")),
            responds=True,
        ),
        "calllog": Grant(
            publish=(
                *_produces(CALLS),
                *_pulls(CALLS, calllog.PROJECTION_DURABLE),  # before partitions
                # one durable per partition, as many as a stream may have, and no others
                *(
                    s
                    for p in range(calllog.MAX_PARTITIONS)
                    for s in _pulls(CALLS, calllog.partition_durable(p))
                    if s != f"{JS}.STREAM.MSG.GET.{CALLS}"  # once is enough
                ),
                *_leases(calllog.LEASES_BUCKET),
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
            publish=(f"{JS}.INFO", *(s for stream in AUDITED for s in _audits(stream))),
            subscribe=_inbox("auditor"),
        ),
        **{name: operator_grant(name) for name in BUILT_IN_OPERATORS},
    }


def operator_grant(name: str) -> Grant:
    """An operator (FRONTENDS): asks the services, reads its own replies and nothing else."""
    return Grant(
        publish=(*KEYS_SERVES, *NOTIFIER_SERVES, *CALLLOG_SERVES),
        subscribe=_inbox(name),
    )


def is_operator(identity: str) -> bool:
    """An operator's name: a built-in one, or any valid name no service identity has."""
    if identity in BUILT_IN_OPERATORS:
        return True
    return identity not in IDENTITIES and OPERATOR_NAME.fullmatch(identity) is not None


def grant_of(identity: str) -> Grant | None:
    """`identity`'s permissions (None: admin, unrestricted); KeyError for an unknown one."""
    table = grants()
    if identity in table:
        return table[identity]
    if is_operator(identity):
        return operator_grant(identity)
    raise KeyError(identity)


def account_of(identity: str) -> str:
    return ACCOUNT_OF.get(identity, FRONTENDS)


def make_credentials(data_dir: Path, identity: str) -> Credentials:
    """A new random password in <data_dir>/credentials/<identity>.json; FileExistsError if
    there is one. O_EXCL and mode 0600 (the folder 0700): never readable by others, not
    even for a moment."""
    folder = data_dir / CREDENTIALS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    fd = os.open(credentials_file(data_dir, identity), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    made = Credentials(identity, secrets.token_urlsafe(32))
    try:
        os.write(fd, dump_credentials(made))
        os.fsync(fd)
    finally:
        os.close(fd)
    return made


def operators(data_dir: Path) -> list[str]:
    """Every operator with a credentials file in the data dir, by name."""
    folder = data_dir / CREDENTIALS_DIR
    found = folder.glob("*.json") if folder.is_dir() else ()
    return sorted(p.stem for p in found if is_operator(p.stem))


def ensure_credentials(data_dir: Path) -> dict[str, Credentials]:
    """Each identity's credentials in <data_dir>/credentials/, made once and then kept,
    plus those of every operator added since (`keyledger operator add`)."""
    found = {}
    for identity in dict.fromkeys([*IDENTITIES, *operators(data_dir)]):
        try:
            found[identity] = make_credentials(data_dir, identity)
        except FileExistsError:
            found[identity] = read_credentials(credentials_file(data_dir, identity))
    return found
