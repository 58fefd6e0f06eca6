"""The connection contract: URL lists, the data folder, credential settings and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.connection import (
    Credentials,
    CredentialsError,
    credentials_file,
    dump_credentials,
    env_credentials,
    inbox_prefix,
    options,
    read_credentials,
    resolve_data_dir,
    servers,
)


def test_a_url_setting_is_a_comma_separated_list() -> None:
    assert servers("nats://a:1") == ["nats://a:1"]
    assert servers(" nats://a:1, nats://b:2 ,,") == ["nats://a:1", "nats://b:2"]


def test_the_data_folder_is_the_flag_then_the_environment_then_the_default() -> None:
    assert resolve_data_dir(Path("flag"), {"KEYLEDGER_DATA_DIR": "env"}) == Path("flag")
    assert resolve_data_dir(None, {"KEYLEDGER_DATA_DIR": "env"}) == Path("env")
    assert resolve_data_dir(None, {"KEYLEDGER_DATA_DIR": ""}) == Path(".keyledger")
    assert resolve_data_dir(None, {}) == Path(".keyledger")


def test_a_credentials_file_reads_back_what_was_written(tmp_path: Path) -> None:
    path = credentials_file(tmp_path, "ops")
    assert path == tmp_path / "credentials" / "ops.json"
    path.parent.mkdir()
    path.write_bytes(dump_credentials(Credentials("ops", "pw")))
    assert read_credentials(path) == Credentials("ops", "pw")


def test_an_unreadable_credentials_file_is_named_but_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"user": "ops", "pass": "s3cret-value"}')
    with pytest.raises(CredentialsError, match=r"bad\.json") as caught:
        read_credentials(path)
    assert "s3cret-value" not in str(caught.value)


def test_credentials_come_from_the_environment_one_way_at_a_time(tmp_path: Path) -> None:
    file = tmp_path / "keys.json"
    file.write_bytes(dump_credentials(Credentials("keys", "secret")))
    user, password = "KEYLEDGER_NATS_USER", "KEYLEDGER_NATS_PASSWORD"
    assert env_credentials({}) is None
    assert env_credentials({user: "", password: ""}) is None  # empty is unset
    assert env_credentials({"KEYLEDGER_NATS_CREDENTIALS_FILE": str(file)}) == Credentials(
        "keys", "secret"
    )
    assert env_credentials({user: "ops", password: "pw"}) == Credentials("ops", "pw")
    with pytest.raises(CredentialsError, match="not both"):
        env_credentials({user: "ops", password: "pw", "KEYLEDGER_NATS_CREDENTIALS_FILE": "f"})
    with pytest.raises(CredentialsError, match="go together"):
        env_credentials({user: "ops"})


def test_a_user_connects_with_a_private_inbox() -> None:
    assert options(None) == {}
    found = options(Credentials("ops", "pw"))
    assert found == {"user": "ops", "password": "pw", "inbox_prefix": "_INBOX_ops"}
    assert inbox_prefix("ops") == "_INBOX_ops"
    assert "pw" not in repr(Credentials("ops", "pw"))
