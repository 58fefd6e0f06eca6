"""Settings of the keys service, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KeysSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEYLEDGER_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    # NATS credentials: a {"user", "password"} file (`keyledger up` writes one per service),
    # or user + password (containers); none: connect without authentication
    nats_credentials_file: Path | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    db_url: str = "sqlite+aiosqlite:///.keyledger/keys.db"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    stream_replicas: int = 1
    command_workers: int = 16
    log_level: str = "INFO"
