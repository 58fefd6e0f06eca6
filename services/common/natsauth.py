"""Who a process is on NATS: its user, password and private inbox, from settings or a file."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

INBOX = "_INBOX"
FILE_VAR, USER_VAR, PASSWORD_VAR = (
    "KEYLEDGER_NATS_CREDENTIALS_FILE",
    "KEYLEDGER_NATS_USER",
    "KEYLEDGER_NATS_PASSWORD",
)
Options = dict[str, Any]  # keyword arguments for nats.connect()
FOREVER = -1  # nats-py's max_reconnect_attempts for "never give up"


def inbox_prefix(user: str) -> str:
    """Where replies to `user` arrive; keyledger.natsauth lets only `user` subscribe there.

    nats-py's default `_INBOX` is shared: anyone allowed `_INBOX.>` would read every reply,
    including the generate / reveal replies that carry a key.
    """
    return f"{INBOX}_{user}"


@dataclass(frozen=True)
class Credentials:
    """A NATS user and password; the password never shows in a repr or a log line."""

    user: str
    password: str = field(repr=False)


class CredentialsError(ValueError):
    """The credential settings are contradictory, incomplete or unreadable."""


def read_credentials(path: Path) -> Credentials:
    """`{"user": ..., "password": ...}` as `keyledger up` writes it (mode 0600)."""
    try:
        data = json.loads(path.read_text())
        return Credentials(user=str(data["user"]), password=str(data["password"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # the exception text is safe: it names the file, never its content
        raise CredentialsError(f"cannot read NATS credentials from {path}: {exc!r}") from None


class AuthSettings(Protocol):
    """The credential settings every service has (KEYLEDGER_NATS_*)."""

    @property
    def nats_credentials_file(self) -> Path | None: ...
    @property
    def nats_user(self) -> str | None: ...
    @property
    def nats_password(self) -> SecretStr | None: ...


class BrokerSettings(AuthSettings, Protocol):
    """A service's settings: where NATS is, and who it is there."""

    @property
    def nats_url(self) -> str: ...


def credentials(settings: AuthSettings) -> Credentials | None:
    """User + password (containers) or the credentials file (`keyledger up`); None: no auth."""
    if settings.nats_user is not None or settings.nats_password is not None:
        if settings.nats_credentials_file is not None:
            raise CredentialsError(f"set {USER_VAR} + {PASSWORD_VAR} or {FILE_VAR}, not both")
        if not settings.nats_user or settings.nats_password is None:
            raise CredentialsError(f"{USER_VAR} and {PASSWORD_VAR} go together")
        return Credentials(settings.nats_user, settings.nats_password.get_secret_value())
    if settings.nats_credentials_file is not None:
        return read_credentials(settings.nats_credentials_file)
    return None


@dataclass(frozen=True)
class _Given:
    nats_credentials_file: Path | None
    nats_user: str | None
    nats_password: SecretStr | None


def env_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """The same settings read straight from the environment (clients, `keyledger up`)."""
    file, password = environ.get(FILE_VAR), environ.get(PASSWORD_VAR)
    return credentials(
        _Given(
            Path(file) if file else None,
            environ.get(USER_VAR) or None,
            SecretStr(password) if password else None,
        )
    )


def options(found: Credentials | None) -> Options:
    """Keyword arguments for nats.connect(): user, password and the user's own inbox."""
    if found is None:
        return {}
    return {
        "user": found.user,
        "password": found.password,
        "inbox_prefix": inbox_prefix(found.user),
    }


def connect_options(settings: AuthSettings) -> Options:
    """nats.connect(url, **connect_options(settings)) for a service's own connections."""
    # reconnect for ever (nats-py gives up after 60 tries, ~2 min): a closed connection in
    # a live process would serve nothing, and no supervisor would see it die
    return options(credentials(settings)) | {"max_reconnect_attempts": FOREVER}


def make_broker(settings: BrokerSettings) -> NatsBroker:
    """Every service's FastStream broker: the URL list, its NATS user and private inbox, and
    subscribers that answer inboxes only (services.common.inboxes)."""
    # imported here: the CLI and gateways use this module too, and FastStream takes ~0.4 s
    from faststream.nats import NatsBroker, NatsUserPassword

    from contracts.natsurl import servers
    from services.common.inboxes import InboxRepliesOnly

    found = credentials(settings)
    auth: Options = {}
    if found is not None:
        # FastStream takes the user as `security`
        auth = {
            "security": NatsUserPassword(found.user, found.password),
            "inbox_prefix": inbox_prefix(found.user),
        }
    return NatsBroker(
        servers(settings.nats_url),
        max_reconnect_attempts=FOREVER,  # as connect_options()
        log_level=logging.DEBUG,  # per-message INFO lines slow a responder (measured: ~0.3x)
        middlewares=(InboxRepliesOnly,),
        **auth,
    )
