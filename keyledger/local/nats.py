"""The NATS side of `keyledger up`: its generated users and the server or cluster it starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contracts.accounts import SERVICES
from contracts.connection import Credentials, Options, env_credentials, options
from keyledger.deploy import permissions
from keyledger.deploy.accounts import render_accounts
from keyledger.local.cluster import NatsCluster
from keyledger.local.console import death, err, report, say
from keyledger.local.restart import Restarts
from keyledger.local.server import NatsServer, log_tail

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


def authorization(credentials: Mapping[str, Credentials]) -> str:
    """The nats-server accounts block: one user per generated identity and operator."""
    passwords = {identity: found.password for identity, found in credentials.items()}
    return render_accounts(passwords)


def current_authorization(data_dir: Path) -> str:
    """The block for the identities and operators in the data dir now: a restarted server
    knows the operators added since `up` began."""
    return authorization(permissions.ensure_credentials(data_dir))


def nats_options(credentials: Mapping[str, Credentials], identity: str) -> Options:
    """How `identity` connects: its generated user, else the environment's (--nats-url)."""
    if credentials:
        return options(credentials.get(identity))
    return options(env_credentials(os.environ))


def adopt_single_account_store(store_dir: Path) -> None:
    """A data dir from before the accounts kept its streams in NATS's global account `$G`;
    a stopped server's streams move with their folder, so SERVICES takes them over (a
    local cluster's store names its accounts in its Raft log too: start that one afresh)."""
    old, new = store_dir / "jetstream" / "$G", store_dir / "jetstream" / SERVICES
    if old.is_dir() and not new.exists():
        old.rename(new)
        say(f"moved the streams of {old} to the {SERVICES} account")


@dataclass
class LocalNats:
    """The NATS `up` runs itself: one nats-server, or a local cluster of several.

    One server that dies is restarted like a service (same port, store and config file);
    a cluster node is not: a node whose machine crashed must be wiped before it rejoins,
    and the cluster serves on while a majority runs.
    """

    data_dir: Path
    nodes: list[NatsServer]  # the one server, or the cluster's nodes
    cluster: NatsCluster | None = None
    nodes_down: set[int] = field(default_factory=set)  # pids already reported
    history: Restarts = field(default_factory=Restarts)  # the one server's

    @classmethod
    def start(
        cls, data_dir: Path, *, port: int, nodes: int, credentials: Mapping[str, Credentials]
    ) -> LocalNats:
        """nodes > 0: a cluster of that many nodes; else one server on `port` (0: any)."""
        if nodes:
            cluster = NatsCluster.start(
                data_dir / "cluster",
                nodes=nodes,
                die_with_parent=True,
                authorization=lambda: current_authorization(data_dir),
            )
            return cls(data_dir, cluster.nodes, cluster)
        adopt_single_account_store(data_dir / "jetstream")
        server = NatsServer.start(
            data_dir / "jetstream",
            port=port,
            log_file=data_dir / "nats-server.log",
            die_with_parent=True,
            authorization=lambda: current_authorization(data_dir),
        )
        return cls(data_dir, [server])

    async def wait_ready(self, connect: Options) -> None:
        """A cluster serves JetStream once it has a leader; one server does at once."""
        if self.cluster:
            say(f"waiting for the {len(self.nodes)}-node cluster to elect a JetStream leader")
            await self.cluster.wait_ready(**connect)

    @property
    def url(self) -> str:
        return self.cluster.url if self.cluster else self.nodes[0].url

    def describe(self) -> str:
        """For the banner: the server's pid and log, or the cluster's size and logs."""
        if self.cluster:
            return f"{len(self.nodes)}-node cluster, logs in {self.data_dir / 'cluster'}"
        return f"nats-server pid {self.nodes[0].pid}, log {self.nodes[0].log_file}"

    def alive(self, when: str) -> bool:
        """False, after showing why with a log tail, once too few nodes run."""
        nodes = self.nodes
        down = [node for node in nodes if not node.is_running()]
        fresh = [node for node in down if node.pid not in self.nodes_down]
        self.nodes_down.update(node.pid for node in fresh)
        if self.cluster and len(down) * 2 < len(nodes):
            # a cluster keeps serving while a majority of its nodes runs
            for node in fresh:
                err(
                    f"nats-server {node.server_name} (pid {node.pid}) exited {when}; the "
                    f"cluster goes on with {len(nodes) - len(down)} of {len(nodes)} nodes"
                )
            return True
        if down:
            node = down[0]
            return report(
                f"nats-server {node.server_name} (pid {node.pid}) exited {when}",
                node.log_file,
                node.log_offset,
            )
        return True

    def ready(self) -> bool:
        """False while the one server is restarting: hold the services' restarts till then."""
        return self.cluster is not None or self.nodes[0].ready()

    def tick(self) -> bool:
        """Restart the one server if it died, when its backoff is over; a cluster is only
        watched (alive()). False when it keeps failing, after saying so."""
        if self.cluster is not None:
            return self.alive("unexpectedly")
        server = self.nodes[0]
        code = server.exit_code()
        if self.history.due is None and code is not None:
            gone_on = self.history.died(code)
            tail = log_tail(server.log_file, since=server.log_offset)
            death("nats-server", server.pid, self.history, server.log_file, tail)
            return gone_on
        if self.history.is_due():
            server.respawn()
            self.history.restarted()
            say(f"nats-server restarted (pid {server.pid}) on {server.url}, same store")
        return True

    def state(self) -> list[dict[str, object]]:
        """For the state file: each server or node, its pid, and the one server's restarts."""
        found: list[dict[str, object]] = []
        for node in self.nodes:
            entry: dict[str, object] = {"name": f"nats-server {node.server_name}"}
            entry["pid"] = node.pid if node.is_running() else None
            entry["log"] = str(node.log_file)
            if self.cluster is None:
                entry["name"] = "nats-server"
                entry["state"] = "restarting" if self.history.due else "running"
                entry |= self.history.state()
            else:
                entry["state"] = "running" if node.is_running() else "down (not restarted)"
            found.append(entry)
        return found

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        else:
            self.nodes[0].stop()
