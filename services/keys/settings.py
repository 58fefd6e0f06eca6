"""Settings of the keys service, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.common.settings import CheckpointSettings, ServiceSettings


class KeysSettings(ServiceSettings, CheckpointSettings):
    db_url: str = "sqlite+aiosqlite:///.keyledger/keys.db"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    command_workers: int = 16
