"""Settings of the keys service, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.common.settings import CheckpointSettings, ServiceSettings


class KeysSettings(ServiceSettings, CheckpointSettings):
    db_url: str = "sqlite+aiosqlite:///.keyledger/keys.db"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    command_workers: int = 16
    # the registry snapshot (services/keys/snapshot.py): a start reads only KEYS after it
    snapshot: bool = True
    snapshot_every_seconds: float = Field(default=5.0, gt=0)
    snapshot_every_events: int = Field(default=10_000, ge=1)
