"""Throwaway FastStream service that lets the `keyledger up` tests run without real services."""

import os
from typing import Any

from faststream import FastStream
from faststream.nats import NatsBroker, NatsUserPassword

from contracts.connection import env_credentials, inbox_prefix

ENV_ECHOED = (
    "KEYLEDGER_NATS_URL",
    "KEYLEDGER_DB_URL",
    "KEYLEDGER_DATA_DIR",
    "KEYLEDGER_MASTER_KEY_FILE",
    "KEYLEDGER_ALLOW_TIME_TRAVEL",
    "KEYLEDGER_NATS_CREDENTIALS_FILE",
)


def create_app() -> FastStream:
    auth: dict[str, Any] = {}
    if (found := env_credentials(os.environ)) is not None:
        auth = {
            "security": NatsUserPassword(found.user, found.password),
            "inbox_prefix": inbox_prefix(found.user),
        }
    broker = NatsBroker(os.environ["KEYLEDGER_NATS_URL"], **auth)

    @broker.subscriber("fake.query.health", queue="fake")
    async def health(body: dict[str, object]) -> dict[str, object]:
        # Echoes the settings the supervisor passed, so tests can check them.
        return {"ok": True, "pid": os.getpid(), "env": {k: os.environ.get(k) for k in ENV_ECHOED}}

    app = FastStream(broker)

    @app.after_startup
    async def flush() -> None:
        # broker.start() does not flush subscriptions.
        await broker.connection.flush()

    return app
