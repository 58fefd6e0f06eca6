"""Settings of the notifier, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from services.common.settings import CheckpointSettings, ServiceSettings


class NotifierSettings(ServiceSettings, CheckpointSettings):
    db_url: str = "sqlite+aiosqlite:///.keyledger/notifier.db"
    data_dir: Path = Path(".keyledger")  # outbox.mbox goes here when no SMTP host is set

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS (usually port 465)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_connections: int = Field(default=4, ge=1)  # sessions sending at once in a sweep
    mail_from: str = "keyledger <keyledger@localhost>"

    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    sweep_batch: int = Field(default=1000, ge=1)
    delivery_chunk: int = Field(default=50, ge=1)
    lease_seconds: float = Field(default=300.0, gt=0)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)  # None: transient errors never give up
    allow_time_travel: bool = False  # sweeps as of a future date; `keyledger up --dev` sets it

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> NotifierSettings:
        # a lease that could end mid-send would let another replica send the same email
        if self.lease_seconds <= self.smtp_timeout:
            raise ValueError("lease_seconds must be longer than smtp_timeout")
        return self

    @property
    def outbox(self) -> Path | None:
        """Where mail goes when there is no SMTP server to hand it to."""
        return None if self.smtp_host else self.data_dir / "outbox.mbox"
