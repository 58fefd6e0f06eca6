"""`keyledger cluster up` as a user runs it: the CLI works, a node may die, Ctrl-C ends all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.nats
KEYLEDGER = str(Path(sys.executable).parent / "keyledger")


def cli(data_dir: Path, *args: str) -> tuple[int, Any]:
    done = subprocess.run(
        [KEYLEDGER, *args, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


def node_pids(data_dir: Path) -> dict[str, int]:
    """nats-server pid per node, from /proc (the banner shows the services' pids only)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            text = arg.decode(errors="replace")
            if text.startswith(str(data_dir / "cluster")) and text.endswith("nats-server.conf"):
                found[Path(text).parent.parent.name] = int(cmdline.parent.name)
    return found


def test_cluster_up_serves_survives_a_node_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "kl"
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLEDGER_")}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [KEYLEDGER, "cluster", "up", "--nodes", "3", "--data-dir", str(data_dir)],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C to stop" not in out.read_text():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, out.read_text() + err.read_text()
            time.sleep(0.2)
        assert "3-node cluster" in out.read_text()
        assert len((data_dir / "nats.url").read_text().split(",")) == 3
        assert (data_dir / "credentials" / "cli.json").stat().st_mode & 0o777 == 0o600

        code, health = cli(data_dir, "health")
        assert code == 0, health
        assert set(health) == {"keys", "notifier", "calllog", "supervisor"}
        supervised = {p["name"]: p for p in health["supervisor"]["processes"]}
        assert set(supervised) == {
            *(f"nats-server keyledger-{n}" for n in (1, 2, 3)),
            *("keys", "notifier", "calllog", "console"),
        }
        assert (
            cli(data_dir, "account", "open", "acme", "--owner", "al", "--email", "a@x.io")[0] == 0
        )
        assert cli(data_dir, "key", "generate", "acme", "--as", "al")[0] == 0

        nodes = node_pids(data_dir)
        assert len(nodes) == 3
        os.kill(nodes["keyledger-1"], signal.SIGKILL)
        rotated = 0
        deadline = time.monotonic() + 60
        while rotated < 2 and time.monotonic() < deadline:  # unavailable while electing
            code, answer = cli(data_dir, "key", "rotate", "acme", "--as", "al", "--yes")
            if code == 0:
                rotated += 1
            else:
                assert answer["error"]["code"] in {"unavailable", "unreachable"}, answer
                time.sleep(0.5)
        assert rotated == 2
        assert proc.poll() is None, "one node of three down must not stop the cluster"
        assert "the cluster goes on with 2 of 3 nodes" in err.read_text()
        # a service that dies is restarted; the dead node is not (it must be wiped first)
        os.kill(supervised["calllog"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (
            code := cli(data_dir, "health")[0]
        ) != 0 or "calllog restarted" not in out.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.5)
        supervised = {p["name"]: p for p in cli(data_dir, "health")[1]["supervisor"]["processes"]}
        # >= 1: a restart may fail once more while the meta group elects (JetStream API
        # timeouts), and is then retried after its backoff
        assert supervised["calllog"]["restarts"] >= 1
        assert supervised["nats-server keyledger-1"]["state"] == "down (not restarted)"
        assert supervised["nats-server keyledger-1"]["pid"] is None
        # JetStream API calls (a replay's consumer) may time out until the meta group, which
        # may have lost its leader too, has elected another; the CLI says so and exits 3
        for _ in range(20):
            code, replay = cli(data_dir, "replay", "--verify")
            if code != 3:
                break
            time.sleep(1)
        assert code == 0, replay
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0, err.read_text()
    assert node_pids(data_dir) == {}
