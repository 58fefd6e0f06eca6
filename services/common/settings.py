"""The settings every service shares, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base of each service's settings: NATS, credentials, database, replicas, log level.

    A service subclasses it with its own fields and gives `db_url` its own default; field
    names are the environment variables' (KEYLEDGER_ + the name, upper case).
    """

    model_config = SettingsConfigDict(env_prefix="KEYLEDGER_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    # NATS credentials: a {"user", "password"} file (`keyledger up` writes one per service),
    # or user + password (containers); none: connect without authentication
    nats_credentials_file: Path | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    db_url: str
    stream_replicas: int = 1
    log_level: str = "INFO"
