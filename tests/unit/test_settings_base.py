"""Each service's settings extend the one base and keep their own database default."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.calllog.settings import CallLogSettings
from services.common.settings import ServiceSettings
from services.keys.settings import KeysSettings
from services.notifier.settings import NotifierSettings

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

SHARED = {
    "nats_url",
    "nats_credentials_file",
    "nats_user",
    "nats_password",
    "db_url",
    "stream_replicas",
    "log_level",
}


@pytest.mark.parametrize(
    ("settings", "db"),
    [(KeysSettings, "keys"), (NotifierSettings, "notifier"), (CallLogSettings, "calllog")],
)
def test_each_service_extends_the_base_with_its_own_db(
    settings: type[BaseSettings], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYLEDGER_DB_URL", raising=False)
    assert issubclass(settings, ServiceSettings)
    assert set(ServiceSettings.model_fields) == SHARED <= set(settings.model_fields)
    assert settings().db_url == f"sqlite+aiosqlite:///.keyledger/{db}.db"  # type: ignore[attr-defined]


def test_the_shared_fields_read_the_same_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYLEDGER_NATS_URL", "nats://n1:4222")
    monkeypatch.setenv("KEYLEDGER_STREAM_REPLICAS", "3")
    for settings in (KeysSettings(), NotifierSettings(), CallLogSettings()):
        assert (settings.nats_url, settings.stream_replicas) == ("nats://n1:4222", 3)
