"""The settings every service shares, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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


class CheckpointSettings(BaseSettings):
    """What a service that checkpoints its stream needs (keys for KEYS, notifier for NOTIFY).

    The signing key: a file (`keyledger up` writes <data-dir>/checkpoint-signing.key), or
    the key itself (compose passes it from .env); neither: no checkpoints are published.
    """

    model_config = SettingsConfigDict(env_prefix="KEYLEDGER_", extra="ignore")

    checkpoint_key_file: Path | None = None
    checkpoint_key: SecretStr | None = None
    checkpoint_every_events: int = Field(default=1000, ge=1)
    checkpoint_every_seconds: float = Field(default=300.0, gt=0)
