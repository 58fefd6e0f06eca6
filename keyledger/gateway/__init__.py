"""ASGI middleware for API gateways: verify the caller's key, then record the call served."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.calllog import CallRecorded
from keyledger.client import Refused, Unreachable
from keyledger.gateway.link import Gateway

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["AmbiguousKey", "Gateway", "KeyledgerMiddleware", "presented_key"]

log = logging.getLogger("keyledger.gateway")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class KeyledgerMiddleware:
    """`app.add_middleware(KeyledgerMiddleware, gateway=Gateway(url))` on Starlette/FastAPI.

    The key comes from `Authorization: Bearer <key>` or `X-API-Key` (never from the URL);
    an invalid key gets a 401 JSON error and the app is not called; two different keys in
    one request get a 400 `ambiguous_key` (which one the caller meant is not ours to guess).
    The app sees the caller as `scope["keyledger"] = {"account_id", "key_id"}`. After the
    response the call is put in the buffer, which records it in the background.
    """

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # not supported: refuse
        else:
            await self.app(scope, receive, send)

    def _lifespan(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._start()
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.stop()
            return message

        return wrapped

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self.gateway.start()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._start()  # servers and test transports without lifespan
        started, ts = time.monotonic(), self.gateway.clock()
        try:
            key = presented_key(scope)
        except AmbiguousKey:
            hint = "send one API key: the request carries two different ones"
            return await _reply(send, 400, "ambiguous_key", hint)
        if key is None:
            hint = "send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            return await _reply(send, 401, "missing_key", hint)
        try:
            verdict = await self.gateway.verify(key)
        except (Unreachable, Refused):
            return await _reply(send, 503, "unavailable", "cannot verify the key now; retry")
        if not verdict.get("valid"):
            why = verdict.get("reason") or "unknown"
            return await _reply(send, 401, "invalid_key", f"the API key is not valid ({why})")
        account_id, key_id = str(verdict["account_id"]), str(verdict["key_id"])
        status = 500  # what the server answers if the app fails before responding

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        inner = {**scope, "keyledger": {"account_id": account_id, "key_id": key_id}}
        try:
            await self.app(inner, receive, tracked)
        finally:
            self._record(scope, account_id, key_id, ts, status, started)

    def _record(
        self, scope: Scope, account_id: str, key_id: str, ts: datetime, status: int, t0: float
    ) -> None:
        headers = dict(scope.get("headers") or [])
        agent = headers.get(b"user-agent")
        client = scope.get("client")
        try:
            call = CallRecorded(
                account_id=account_id,
                key_id=key_id,
                ts=ts,
                method=scope["method"],
                path=scope["path"],  # ASGI keeps the query string apart: it is never read
                status=status,
                duration_ms=round((time.monotonic() - t0) * 1000, 3),
                caller_ip=client[0] if client else None,
                user_agent=agent.decode("latin-1") if agent else None,
            )
        except ValidationError as exc:
            log.warning("call not recorded: %d invalid fields", exc.error_count())
            return
        self.gateway.record(call)


class AmbiguousKey(ValueError):
    """The request names two different keys (e.g. `Authorization: Bearer A`, `X-API-Key: B`)."""


def presented_key(scope: Scope) -> str | None:
    """The key from `Authorization: Bearer` or `X-API-Key`; None when neither is there.

    The same key in several headers is one key; two different ones raise AmbiguousKey, so
    a proxy that adds its own header can never decide silently which key is served.
    """
    found: str | None = None
    for name, value in scope.get("headers") or ():
        key: str | None = None
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        elif name == b"x-api-key" and value.strip():
            key = value.decode("latin-1").strip()
        if key is not None and found is not None and key != found:
            raise AmbiguousKey("two different API keys in one request")
        found = key or found
    return found


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="keyledger"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
