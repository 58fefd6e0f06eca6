"""`keyledger up --dev` heals: kill -9 any child, nats-server included, and all answers again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from keyledger.cli import app
from tests.drivers.up_process import up_dev

pytestmark = pytest.mark.nats

KEYLEDGER = str(Path(sys.executable).parent / "keyledger")
HEAL_SECONDS = 10.0
STALE = "Traceback (most recent call last):\nRuntimeError: stale-from-an-earlier-run\n"
# nats-server twice: the second death in a row waits 1 s, and every client reconnects again
VICTIMS = ("keys", "notifier", "calllog", "gateway", "nats-server", "nats-server")


def cli(folder: Path, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(folder), "--json"])
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.stdout + result.stderr


def ok(folder: Path, *args: str) -> Any:
    code, answer = cli(folder, *args)
    assert code == 0, answer
    return answer


def processes(folder: Path) -> dict[str, dict[str, Any]]:
    health = ok(folder, "health")
    return {p["name"]: p for p in health["supervisor"]["processes"]}


@dataclass
class Account:
    """acme's live key, and the key ids of the rotates answered ok (all must be in KEYS)."""

    folder: Path
    key: str = ""
    acknowledged: list[str] = field(default_factory=list)
    pings: int = 0  # calls answered 200 by the gateway: each must reach the call log

    def rotate(self) -> bool:
        code, rotated = cli(self.folder, "key", "rotate", "acme", "--as", "alice", "--yes")
        if code == 0:
            self.key = str(rotated["key"])
            self.acknowledged.append(rotated["key_id"])
        return code == 0

    def heals(self) -> bool:
        """One round of checks: True once every one passed."""
        code, health = cli(self.folder, "health")
        if code != 0 or not all(health[name]["ok"] for name in ("keys", "notifier", "calllog")):
            return False
        # the notifier's projection follows KEYS again, to its end
        if health["notifier"]["stream_seq"] != health["keys"]["stream_seq"]:
            return False
        if cli(self.folder, "key", "verify", self.key)[0] != 0 or not self.rotate():
            return False
        # the new key verifies: the keys service follows its stream again
        if cli(self.folder, "key", "verify", self.key)[0] != 0:
            return False
        api = (self.folder / "gateway.url").read_text().strip()
        try:
            with httpx.Client(base_url=api, timeout=2) as http:
                auth = {"Authorization": f"Bearer {self.key}"}
                if http.get("/v1/ping", headers=auth).status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
        self.pings += 1
        return True

    def projections_caught_up(self) -> None:
        """Wait until every call the gateway answered is in the call log, and the newest
        rotate in the audit log (the keys service's projection resumed)."""
        deadline = time.monotonic() + HEAL_SECONDS
        while (total := ok(self.folder, "calls", "stats", "acme")["total"]) != self.pings:
            assert time.monotonic() < deadline, (total, self.pings)
            time.sleep(0.2)
        latest = self.acknowledged[-1] if self.acknowledged else None
        while (
            latest and (newest := ok(self.folder, "audit", "acme")["items"][0]["key_id"]) != latest
        ):
            assert time.monotonic() < deadline, (newest, latest)
            time.sleep(0.2)


class Load(threading.Thread):
    """Rotates `load`'s key from another process, one after the other, through every kill:
    each rotate answered ok must be in KEYS; any other answer must say to retry."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        argv = [KEYLEDGER, "key", "rotate", "load", "--as", "bob", "--yes", "--json"]
        while not self.stopping.is_set():
            done = subprocess.run(
                [*argv, "--data-dir", str(self.folder)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode == 0:
                self.acknowledged.append(json.loads(done.stdout)["key_id"])
            elif '"code": "unavailable"' not in done.stdout and done.returncode != 3:
                self.refused.append(done.stdout + done.stderr)
            self.stopping.wait(0.2)


def why(folder: Path, victim: str, out: Path) -> str:
    log = folder / ("nats-server.log" if victim == "nats-server" else f"{victim}.log")
    return f"{victim} did not heal; up said:\n{out.read_text()}\n{log}:\n{log.read_text()[-3000:]}"


def test_kill_9_of_each_child_and_of_nats_server_heals_within_10_s(tmp_path: Path) -> None:
    folder, out = tmp_path / "kl", tmp_path / "up.out"
    folder.mkdir(mode=0o700)
    for name in ("keys", "notifier", "calllog"):  # an earlier run's crash, in every log
        (folder / f"{name}.log").write_text(STALE)
    acme = Account(folder)
    with up_dev(folder, out) as proc:
        ok(folder, "account", "open", "acme", "--owner", "alice", "--email", "a@example.com")
        acme.key = str(ok(folder, "key", "generate", "acme", "--as", "alice")["key"])
        ok(folder, "account", "open", "load", "--owner", "bob", "--email", "b@example.com")
        ok(folder, "key", "generate", "load", "--as", "bob")
        load = Load(folder)
        load.start()
        kills: Counter[str] = Counter()
        for victim in VICTIMS:
            acme.projections_caught_up()  # before a kill: a killed gateway loses what it buffered
            assert acme.rotate()
            pid = processes(folder)[victim]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            while not acme.heals():
                assert time.monotonic() - killed < HEAL_SECONDS, why(folder, victim, out)
                time.sleep(0.2)
            after = processes(folder)[victim]
            kills[victim] += 1
            assert (after["restarts"], after["last_exit"]) == (kills[victim], "killed by SIGKILL")
            assert after["pid"] not in (None, pid)
            assert f"{victim} (pid {pid}) killed by SIGKILL; restarting it in " in out.read_text()
            assert proc.poll() is None
        load.stopping.set()
        load.join(60)
        acme.projections_caught_up()
        human = CliRunner().invoke(app, ["health", "--data-dir", str(folder)]).stdout
        services, supervised = human.split("supervised by keyledger up (pid ")
        assert all(f"{name:<9} ok" in services for name in ("keys", "notifier", "calllog"))
        # only the killed were restarted: the others rode out nats-server's deaths, reconnecting
        restarts = {name: found["restarts"] for name, found in processes(folder).items()}
        assert restarts == {name: kills[name] for name in restarts}
        for victim, times in kills.items():
            line = next(line for line in supervised.splitlines() if line.startswith(f"  {victim} "))
            counted = f"{times} restart{'' if times == 1 else 's'}"
            assert re.search(rf"pid \d+, {counted}, last killed by SIGKILL at 20\d\d-", line), line
        replay = ok(folder, "replay", "--verify")
        assert replay["verified"]["ok"]
    assert proc.returncode == 0, out.read_text()
    text = out.read_text()
    assert "stale-from-an-earlier-run" not in text  # only this run's log tails are shown
    stored = json.dumps(replay["events"])
    lost = [key_id for key_id in acme.acknowledged if key_id not in stored]
    assert not lost, f"acknowledged rotates missing from KEYS: {lost}"
    assert len(acme.acknowledged) >= 2 * len(VICTIMS)
    lost = [key_id for key_id in load.acknowledged if key_id not in stored]
    assert not lost, f"acknowledged rotates of the load missing from KEYS: {lost}"
    assert load.acknowledged
    assert not load.refused, load.refused[0]
