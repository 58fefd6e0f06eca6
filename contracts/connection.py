"""How a process finds and joins keyledger's NATS: URL list, credentials, private inbox."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

# the settings every keyledger process reads, and where `keyledger up` leaves them
URL_VAR, DATA_DIR_VAR = "KEYLEDGER_NATS_URL", "KEYLEDGER_DATA_DIR"
FILE_VAR, USER_VAR, PASSWORD_VAR = (
    "KEYLEDGER_NATS_CREDENTIALS_FILE",
    "KEYLEDGER_NATS_USER",
    "KEYLEDGER_NATS_PASSWORD",
)
DEFAULT_DATA_DIR = Path(".keyledger")
NATS_URL_FILE = "nats.url"  # <data dir>/nats.url: the URL list, one line
CREDENTIALS_DIR = "credentials"  # <data dir>/credentials/<identity>.json
INBOX = "_INBOX"
Options = dict[str, Any]  # keyword arguments for nats.connect()


def servers(url: str) -> list[str]:
    """nats-py takes a list; KEYLEDGER_NATS_URL and nats.url hold the list comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


def resolve_data_dir(given: Path | None, environ: Mapping[str, str]) -> Path:
    """The flag's folder > KEYLEDGER_DATA_DIR > ./.keyledger."""
    return given or Path(environ.get(DATA_DIR_VAR) or DEFAULT_DATA_DIR)


def inbox_prefix(user: str) -> str:
    """Where replies to `user` arrive; keyledger's permissions let only `user` subscribe there.

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


def credentials_file(folder: Path, identity: str) -> Path:
    """Where `keyledger up` keeps `identity`'s credentials in its data folder."""
    return folder / CREDENTIALS_DIR / f"{identity}.json"


def dump_credentials(found: Credentials) -> bytes:
    """The credentials file's content: `{"user": ..., "password": ...}`."""
    return json.dumps({"user": found.user, "password": found.password}).encode()


def read_credentials(path: Path) -> Credentials:
    """`{"user": ..., "password": ...}` as `keyledger up` writes it (mode 0600)."""
    try:
        data = json.loads(path.read_text())
        return Credentials(user=str(data["user"]), password=str(data["password"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # the exception text is safe: it names the file, never its content
        raise CredentialsError(f"cannot read NATS credentials from {path}: {exc!r}") from None


def given_credentials(
    file: Path | None, user: str | None, password: str | None
) -> Credentials | None:
    """User + password (containers) or the credentials file (`keyledger up`); None: no auth."""
    if user is not None or password is not None:
        if file is not None:
            raise CredentialsError(f"set {USER_VAR} + {PASSWORD_VAR} or {FILE_VAR}, not both")
        if not user or password is None:
            raise CredentialsError(f"{USER_VAR} and {PASSWORD_VAR} go together")
        return Credentials(user, password)
    if file is not None:
        return read_credentials(file)
    return None


def env_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """The same settings read straight from the environment (clients, `keyledger up`)."""
    file = environ.get(FILE_VAR)
    return given_credentials(
        Path(file) if file else None,
        environ.get(USER_VAR) or None,
        environ.get(PASSWORD_VAR) or None,
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
