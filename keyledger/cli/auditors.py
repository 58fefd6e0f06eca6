"""`keyledger auditors prepare`: the auditors' copies of the streams exist and are caught up."""

from __future__ import annotations

from typing import Any

import typer
from nats.js.errors import NotFoundError

from keyledger.cli.common import DataDirOpt, JsonOpt, NatsUrlOpt, Target, call, show
from keyledger.client import KeyledgerClient
from keyledger.deploy.permissions import AUDITED

auditors_app = typer.Typer(
    help="The auditors' account: its own copies of KEYS, CALLS, NOTIFY, CHECKPOINTS."
)


@auditors_app.command("prepare")
def prepare(
    nats_url: NatsUrlOpt = None, data_dir: DataDirOpt = None, json: JsonOpt = False
) -> None:
    """Create the auditors' copies where missing and wait until each holds what its original
    held (`keyledger up` does this at start; compose runs it once as `audit-copies`), so a
    reader in any language finds them."""

    async def copies(client: KeyledgerClient) -> dict[str, Any]:
        # connecting as the auditor made and caught up the copies (keyledger.cli.common)
        js = client.nc.jetstream()
        found: dict[str, Any] = {}
        for stream in AUDITED:
            try:
                info = await js.stream_info(stream)
            except NotFoundError:  # its service has not declared the original yet
                found[stream] = None
                continue
            found[stream] = {"messages": info.state.messages, "last_seq": info.state.last_seq}
        return found

    target = Target(nats_url, data_dir, json)
    found = call(target, copies, identity="auditor")
    lines = [
        f"{name:<7} " + (f"copy holds {c['messages']} messages" if c else "no original yet")
        for name, c in found.items()
    ]
    show(target, {"copies": found}, lines)
