"""A service on NATS: its credentials from settings, its connect options, its broker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from contracts.connection import (
    Credentials,
    Options,
    given_credentials,
    inbox_prefix,
    options,
    servers,
)

if TYPE_CHECKING:
    from pathlib import Path

    from faststream.nats import NatsBroker
    from pydantic import SecretStr

FOREVER = -1  # nats-py's max_reconnect_attempts for "never give up"


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
    password = settings.nats_password
    return given_credentials(
        settings.nats_credentials_file,
        settings.nats_user,
        None if password is None else password.get_secret_value(),
    )


def connect_options(settings: AuthSettings) -> Options:
    """nats.connect(url, **connect_options(settings)) for a service's own connections."""
    # reconnect for ever (nats-py gives up after 60 tries, ~2 min): a closed connection in
    # a live process would serve nothing, and no supervisor would see it die
    return options(credentials(settings)) | {"max_reconnect_attempts": FOREVER}


def make_broker(settings: BrokerSettings) -> NatsBroker:
    """Every service's FastStream broker: the URL list, its NATS user and private inbox, and
    subscribers that answer inboxes only (services.common.inboxes)."""
    # imported here: who needs only credentials() or connect_options() skips FastStream's ~0.4 s
    from faststream.nats import NatsBroker, NatsUserPassword

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
