"""`keyledger up --dev` extra: the example gateway on a free loopback port, for newcomers."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

GATEWAY_FACTORY = "keyledger.gateway.example:create_app"
HTTP_PROTOCOL = "keyledger.gateway.protocol:HeadTimeoutProtocol"  # slow request heads: cut off
URL_FILE = "gateway.url"
HOST = "127.0.0.1"


def gateway_command(port: int) -> list[str]:
    """uvicorn without its access log: that log would print query strings, keys and all."""
    return [
        *(sys.executable, "-m", "uvicorn", GATEWAY_FACTORY, "--factory", "--http", HTTP_PROTOCOL),
        *("--host", HOST, "--port", str(port), "--no-access-log"),
    ]


async def wait_serving(port: int, alive: Callable[[], bool], seconds: float) -> bool:
    """True once the port accepts connections (uvicorn binds after the app's startup)."""
    deadline = time.monotonic() + seconds
    while alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return True
        await asyncio.sleep(0.1)
    return False


def write_url(data_dir: Path, url: str) -> None:
    tmp = data_dir / f"{URL_FILE}.tmp"
    tmp.write_text(url + "\n")
    tmp.replace(data_dir / URL_FILE)  # readers never see a partial URL
