"""A runnable example API behind keyledger.gateway: GET /v1/ping, GET and POST /v1/contacts.

    uvicorn keyledger.gateway.example:create_app --factory --port 8000 --no-access-log \
        --http keyledger.gateway.protocol:HeadTimeoutProtocol

It finds NATS the way the CLI does (KEYLEDGER_NATS_URL, else <data dir>/nats.url), and
connects as the `gateway` identity (KEYLEDGER_NATS_CREDENTIALS_FILE, else
<data dir>/credentials/gateway.json; none: no authentication).
Run uvicorn without its access log: that log prints query strings, and a caller may put a
key in one; and with keyledger.gateway.protocol's HeadTimeoutProtocol, which closes
connections whose request head takes over 10 s (uvicorn alone waits for a slow client forever).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from contracts import strictjson
from keyledger.client import discover_credentials, discover_nats_url
from keyledger.gateway import Gateway, KeyledgerMiddleware

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_CONTACTS = 1000  # per account: an example, kept in memory


def _caller(request: Request) -> dict[str, str]:
    return dict(request.scope["keyledger"])


def create_app(nats_url: str | None = None, gateway: Gateway | None = None) -> Starlette:
    contacts: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"pong": True, **_caller(request)})

    async def list_contacts(request: Request) -> JSONResponse:
        account = _caller(request)["account_id"]
        return JSONResponse({"account_id": account, "contacts": contacts[account]})

    async def add_contact(request: Request) -> JSONResponse:
        account = _caller(request)["account_id"]
        try:
            body = strictjson.loads(await request.body())  # a repeated key is refused
            contact: dict[str, Any] = {"name": str(body["name"]), "email": str(body["email"])}
        except (ValueError, KeyError, TypeError):
            problem = {"code": "invalid_request", "message": 'expected {"name": ..., "email": ...}'}
            return JSONResponse({"error": problem}, status_code=400)
        if len(contacts[account]) >= MAX_CONTACTS:
            return JSONResponse({"error": {"code": "full", "message": "too many"}}, status_code=409)
        contact["id"] = len(contacts[account]) + 1
        contacts[account].append(contact)
        return JSONResponse(contact, status_code=201)

    link = gateway or Gateway(
        discover_nats_url(nats_url, None), credentials=discover_credentials(None, "gateway")
    )
    return Starlette(
        routes=[
            Route("/v1/ping", ping, methods=["GET"]),
            Route("/v1/contacts", list_contacts, methods=["GET"]),
            Route("/v1/contacts", add_contact, methods=["POST"]),
        ],
        middleware=[Middleware(KeyledgerMiddleware, gateway=link)],
    )
