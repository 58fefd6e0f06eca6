"""The auditors' own copies of KEYS, CALLS and NOTIFY, sourced from the services' account."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from keyledger.deploy.accounts import DELIVER
from keyledger.deploy.permissions import AUDITED, ORIGIN_API

if TYPE_CHECKING:
    from nats.aio.client import Client

SOURCE_HEADER = "Nats-Stream-Source"  # "<stream>:<hash> <original sequence> ..."
CATCH_UP_TIMEOUT = 10.0


class CopyMismatch(RuntimeError):
    """A stream by a copy's name exists in AUDITORS but does not copy the original."""


def copy_config(stream: str, replicas: int, max_age: float | None = None) -> api.StreamConfig:
    """No subjects: nothing published in AUDITORS lands in a copy, only what it sources.
    It keeps what its original keeps (CALLS ages out; KEYS and NOTIFY keep everything)."""
    return api.StreamConfig(
        name=stream,
        subjects=[],
        sources=[
            api.StreamSource(
                name=stream, external=api.ExternalStream(api=ORIGIN_API, deliver=DELIVER)
            )
        ],
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        max_age=max_age,
        deny_delete=True,
        deny_purge=True,
        allow_direct=True,
    )


async def _origin(nc: Client, stream: str) -> api.StreamInfo:
    """The services' stream, through the import (its reply stays in AUDITORS)."""
    reply = await nc.request(f"{ORIGIN_API}.STREAM.INFO.{stream}", b"", timeout=5.0)
    found = json.loads(reply.data)
    if "error" in found:
        error = found["error"]
        raised = NotFoundError if error.get("code") == 404 else APIError
        raise raised(code=error.get("code"), description=f"{stream}: {error.get('description')}")
    info: api.StreamInfo = api.StreamInfo.from_response(found)
    return info


async def ensure_copy(nc: Client, js: JetStreamContext, stream: str) -> api.StreamInfo:
    """Create the copy when missing; refuse one that copies something else."""
    origin = await _origin(nc, stream)
    wanted = copy_config(stream, origin.config.num_replicas or 1, origin.config.max_age)
    try:
        have = (await js.stream_info(stream)).config
    except NotFoundError:
        await js.add_stream(wanted)
        return origin
    sources = [(s.name, s.external.api if s.external else None) for s in have.sources or ()]
    if have.subjects or sources != [(stream, ORIGIN_API)]:
        raise CopyMismatch(
            f"stream {stream} in the auditors' account is not a copy of the services' "
            f"{stream} (subjects {have.subjects}, sources {sources}); an administrator of "
            "that account must remove it"
        )
    return origin


def _copied_up_to(msg: api.RawStreamMsg) -> int:
    value = (msg.headers or {}).get(SOURCE_HEADER, "")
    parts = value.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def caught_up(js: JetStreamContext, stream: str, origin_last: int) -> bool:
    """True once the copy holds the original's message `origin_last` (0: nothing yet)."""
    state = (await js.stream_info(stream)).state
    if origin_last == 0:
        return True
    if state.last_seq == 0:
        return False
    return _copied_up_to(await js.get_msg(stream, state.last_seq)) >= origin_last


async def ensure_copies(nc: Client, within: float = CATCH_UP_TIMEOUT) -> None:
    """Every copy exists and holds at least what its original held when we looked; a
    stream the services have not declared yet gets its copy on a later call."""
    js = nc.jetstream()
    deadline = time.monotonic() + within
    for stream in AUDITED:
        try:
            origin = await ensure_copy(nc, js, stream)
        except NotFoundError:
            continue
        while not await caught_up(js, stream, origin.state.last_seq):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the auditors' copy of {stream} is still catching up")
            await asyncio.sleep(0.05)


async def prepare_copies(servers: list[str], options: dict[str, Any]) -> str | None:
    """Connect as the auditor and make the copies (`keyledger up` at start); what went
    wrong, or None. A failure only delays the copies: the CLI makes them on first use."""
    try:
        nc = await nats.connect(servers, connect_timeout=2, allow_reconnect=False, **options)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        return repr(exc)
    try:
        await ensure_copies(nc)
    except (OSError, TimeoutError, nats.errors.Error, CopyMismatch) as exc:
        return str(exc)
    finally:
        await nc.close()
    return None
