"""A data dir from before the NATS accounts keeps its history: SERVICES adopts the streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats
import pytest

from contracts.connection import options
from keyledger.deploy.permissions import ensure_credentials
from keyledger.local.nats import adopt_single_account_store, current_authorization
from keyledger.local.server import NatsServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.nats


async def test_the_services_account_adopts_a_single_account_store(tmp_path: Path) -> None:
    store = tmp_path / "jetstream"
    with NatsServer.start(store) as old:  # no accounts: every stream in `$G`
        nc = await nats.connect(old.url)
        await nc.jetstream().add_stream(name="KEYS", subjects=["keys.events.>"])
        for _ in range(3):
            await nc.jetstream().publish("keys.events.acme", b"{}")
        await nc.close()
    admin = ensure_credentials(tmp_path)["admin"]
    adopt_single_account_store(store)
    adopt_single_account_store(store)  # a second start changes nothing
    auth = current_authorization(tmp_path)
    with NatsServer.start(store, authorization=auth) as new:
        nc = await nats.connect(new.url, **options(admin))
        try:
            assert (await nc.jetstream().stream_info("KEYS")).state.messages == 3
        finally:
            await nc.close()
