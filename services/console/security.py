"""Headers on every response, the session cookie a handler set, and the CSRF comparison."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from services.console.sessions import SET_COOKIE

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI middleware: adds HEADERS to every HTTP response (errors and redirects
    too) and the Set-Cookie a handler left in request.state (sessions.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k not in names]
                headers.extend(HEADERS)
                cookie = state.get(SET_COOKIE)
                if cookie:
                    headers.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_ok(expected: str, given: object) -> bool:
    """The form's token is the session's (constant-time comparison)."""
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
