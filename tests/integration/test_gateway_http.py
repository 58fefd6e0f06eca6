"""The gateway's HTTP protocol cuts off clients that send their request head too slowly,
while normal clients are served meanwhile: a real uvicorn on a loopback socket."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from keyledger.gateway.protocol import HeadTimeoutProtocol
from keyledger.local.gateway import gateway_command

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

HEAD_TIMEOUT = 1.0
SLOW_CLIENTS = 40


class QuickHeads(HeadTimeoutProtocol):
    head_timeout = HEAD_TIMEOUT


async def ping(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """uvicorn with QuickHeads on a free loopback port, in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/ping", ping)])
    config = uvicorn.Config(app, http=QuickHeads, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    await asyncio.wait_for(task, 10)


HEAD = b"GET /ping HTTP/1.1\r\nHost: gw.test\r\nUser-Agent: slow\r\nX-Filler: " + b"x" * 200


async def slowloris(port: int) -> tuple[float, bytes]:
    """Send a head a byte every 50 ms (never finishing it); the time until the server hung up
    and what it said."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        for byte in HEAD:  # bounded: 256 bytes, ~13 s; the server should cut us off at 1 s
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                said = await asyncio.wait_for(reader.read(1024), 0.05)
            except TimeoutError:
                continue
            return time.monotonic() - started, said
        return time.monotonic() - started, b"still open"
    except ConnectionError:
        return time.monotonic() - started, b""
    finally:
        writer.close()


async def get_ping(port: int) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET /ping HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return time.monotonic() - started, answer


async def test_slow_heads_are_cut_off_while_normal_clients_are_served(port: int) -> None:
    slow = [asyncio.create_task(slowloris(port)) for _ in range(SLOW_CLIENTS)]
    await asyncio.sleep(0.3)  # all of them are dribbling now
    served = [await get_ping(port) for _ in range(5)]
    results = await asyncio.gather(*slow)
    for took, answer in served:
        assert answer.startswith(b"HTTP/1.1 200")
        assert took < HEAD_TIMEOUT / 2
    for took, said in results:
        assert HEAD_TIMEOUT * 0.9 < took < HEAD_TIMEOUT + 2
        assert said.startswith(b"HTTP/1.1 408") or said == b""


async def test_a_silent_connection_is_closed_and_kept_alive_ones_get_a_fresh_deadline(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    said = await asyncio.wait_for(reader.read(), HEAD_TIMEOUT + 2)  # it never sent a byte
    assert said.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started > HEAD_TIMEOUT * 0.9
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(3):  # each request well within its own deadline, together beyond one
        await asyncio.sleep(HEAD_TIMEOUT * 0.6)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"pong"), 2)
        assert head.startswith(b"HTTP/1.1 200")
    writer.close()


def test_keyledger_up_runs_the_example_gateway_with_the_head_timeout() -> None:
    command = gateway_command(8000)
    assert command[command.index("--http") + 1] == "keyledger.gateway.protocol:HeadTimeoutProtocol"
