"""Pytest fixtures for tests that need a real nats-server: a fresh one per test."""

from collections.abc import Iterator

import pytest

from keyledger.local.server import NatsServer
from services.common import eventlog


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A fresh JetStream server on a free port with its own store, stopped afterwards."""
    store = tmp_path_factory.mktemp("nats") / "jetstream"
    eventlog.forget_reported()  # its stream sequences start again at 1
    # die_with_parent: a killed pytest run leaves no nats-server behind.
    with NatsServer.start(store, die_with_parent=True) as server:
        yield server


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url
