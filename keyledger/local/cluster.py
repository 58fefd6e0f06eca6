"""A local N-node NATS JetStream cluster on loopback, one store dir per node."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Self

import nats
import nats.errors
from nats.js.errors import APIError, ServiceUnavailableError

from keyledger.deploy.config import ClusterConfig
from keyledger.local.server import Authorization, NatsServer, free_port

if TYPE_CHECKING:
    from pathlib import Path

META_READY_TIMEOUT = 30.0


def node_name(index: int) -> str:
    return f"keyledger-{index + 1}"


class NatsCluster:
    """N nats-servers routed to each other; JetStream replicates streams across them."""

    def __init__(self, nodes: list[NatsServer]) -> None:
        self.nodes = nodes

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        nodes: int = 3,
        host: str = "127.0.0.1",
        die_with_parent: bool = False,
        authorization: Authorization = "",
    ) -> NatsCluster:
        """Start every node; ports are picked free. Call wait_ready() before using JetStream."""
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        client_ports = [free_port(host) for _ in range(nodes)]
        route_ports = [free_port(host) for _ in range(nodes)]
        routes = tuple(f"nats-route://{host}:{port}" for port in route_ports)
        started: list[NatsServer] = []
        try:
            for index in range(nodes):
                store = data_dir / node_name(index)
                started.append(
                    NatsServer.start(
                        store / "jetstream",
                        port=client_ports[index],
                        host=host,
                        log_file=store / "nats-server.log",
                        die_with_parent=die_with_parent,
                        server_name=node_name(index),
                        # one node is no cluster: clustered JetStream would wait for peers
                        cluster=ClusterConfig(host=host, port=route_ports[index], routes=routes)
                        if nodes > 1
                        else None,
                        authorization=authorization,
                    )
                )
        except BaseException:
            for node in started:
                node.stop()
            raise
        return cls(started)

    @property
    def url(self) -> str:
        """All client URLs, comma-separated: clients fail over between them."""
        return ",".join(node.url for node in self.nodes)

    def node(self, server_name: str) -> NatsServer:
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    async def wait_ready(self, within: float = META_READY_TIMEOUT, **connect: Any) -> None:
        """Return once every node answers JetStream requests (a meta leader is elected)."""
        deadline = time.monotonic() + within
        for node in self.nodes:
            nc = await nats.connect(node.url, allow_reconnect=False, **connect)
            try:
                while True:
                    try:
                        await nc.jetstream().account_info()
                        break
                    except (ServiceUnavailableError, nats.errors.TimeoutError, APIError):
                        # 503 until the meta group has a leader
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)
            finally:
                await nc.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
