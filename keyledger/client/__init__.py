"""A small async client for the keys service's request/reply subjects."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self
from uuid import uuid4

import nats
import nats.errors

from contracts import keyformat
from contracts.calllog import CALLS_STREAM, CallRecorded, recorded_subject
from contracts.connection import (
    NATS_URL_FILE,
    URL_VAR,
    Credentials,
    CredentialsError,
    credentials_file,
    env_credentials,
    options,
    read_credentials,
    resolve_data_dir,
    servers,
)
from contracts.envelope import canonical_json
from contracts.keys import VERIFY_SUBJECT, command_subject, query_subject
from keyledger.client.calls import CallsClient
from keyledger.client.notifier import NotifierClient

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from nats.aio.client import Client

DEFAULT_TIMEOUT = 5.0


class Refused(Exception):
    """The service answered with a refusal; `code` is the stable reply code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Unreachable(Exception):
    """No answer: NATS is down, nobody serves the subject, or the reply timed out."""


def discover_nats_url(nats_url: str | None, data_dir: Path | None) -> str:
    """Flag > KEYLEDGER_NATS_URL > the nats.url that `keyledger up` writes in its data folder."""
    if nats_url:
        return nats_url
    if env_url := os.environ.get(URL_VAR):
        return env_url
    folder = resolve_data_dir(data_dir, os.environ)
    try:
        found = (folder / NATS_URL_FILE).read_text().strip()
    except OSError:
        found = ""
    if not found:
        raise Unreachable(
            f"keyledger does not seem to be running: no {folder / NATS_URL_FILE}; "
            "start it with `make run` (or `keyledger up`), or pass --nats-url"
        )
    return found


def discover_credentials(data_dir: Path | None, identity: str) -> Credentials | None:
    """KEYLEDGER_NATS_USER + KEYLEDGER_NATS_PASSWORD, or KEYLEDGER_NATS_CREDENTIALS_FILE, >
    the <data dir>/credentials/<identity>.json that `keyledger up` writes > none (no auth)."""
    path = credentials_file(resolve_data_dir(data_dir, os.environ), identity)
    try:
        found = env_credentials(os.environ)
        if found is None and path.exists():
            found = read_credentials(path)
    except CredentialsError as exc:
        raise Unreachable(str(exc)) from None
    return found


async def _ignore(_: Exception) -> None:
    # nats-py's default error callback logs a traceback; the caller reports failures itself
    return None


class KeyledgerClient:
    """Wraps one NATS connection; pass your own (`KeyledgerClient(nc)`) or use `connect`."""

    def __init__(
        self, nc: Client, *, request_timeout: float = DEFAULT_TIMEOUT, owned: bool = False
    ) -> None:
        self.nc = nc
        self.timeout = request_timeout
        self._owned = owned
        self.notifier = NotifierClient(self.request)
        self.calls = CallsClient(self.request)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        name: str = "keyledger-client",
        credentials: Credentials | None = None,
    ) -> KeyledgerClient:
        """credentials: None connects without authentication (a server without users)."""
        try:
            nc = await asyncio.wait_for(
                nats.connect(
                    servers(url),
                    name=name,
                    connect_timeout=min(request_timeout, 2.0),
                    allow_reconnect=False,
                    # 0 would mean "retry forever" in nats-py's server selection
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_ignore,
                    **options(credentials),
                ),
                request_timeout,
            )
        except (OSError, TimeoutError, ValueError, nats.errors.Error) as exc:
            raise Unreachable(f"cannot connect to NATS at {url}: {_describe(exc)}") from None
        return cls(nc, request_timeout=request_timeout, owned=True)

    async def close(self) -> None:
        if self._owned and not self.nc.is_closed:
            await self.nc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the reply's `result`, or Refused / Unreachable."""
        try:
            msg = await self.nc.request(subject, canonical_json(body), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise Unreachable(f"no service answers {subject}; is keyledger running?") from None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise Unreachable(f"no reply on {subject}: {_describe(exc)}") from None
        try:
            reply = json.loads(msg.data)
            if reply.get("ok") is True and isinstance(reply.get("result"), dict):
                return dict(reply["result"])
            error = reply["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Refused("internal", f"unreadable reply on {subject}") from None
        raise Refused(code, message)

    async def command(self, verb: str, command_id: str | None, **fields: Any) -> dict[str, Any]:
        """Send a command with the moment this client stops waiting for it as its deadline:
        the service does not run a command that reaches it later (nobody would be told)."""
        body = {"command_id": command_id or str(uuid4()), "deadline": self._deadline(), **fields}
        return await self.request(command_subject(verb), body)

    def _deadline(self) -> str:
        until = datetime.now(UTC) + timedelta(seconds=self.timeout)
        return until.isoformat().replace("+00:00", "Z")

    async def open_account(
        self, account_id: str, owner: str, email: str, *, command_id: str | None = None
    ) -> dict[str, Any]:
        return await self.command(
            "open_account", command_id, account_id=account_id, owner=owner, email=email
        )

    async def grant_admin(
        self, account_id: str, actor: str, user: str, email: str, *, command_id: str | None = None
    ) -> dict[str, Any]:
        return await self.command(
            "grant_admin", command_id, account_id=account_id, actor=actor, user=user, email=email
        )

    async def revoke_admin(
        self, account_id: str, actor: str, user: str, *, command_id: str | None = None
    ) -> dict[str, Any]:
        return await self.command(
            "revoke_admin", command_id, account_id=account_id, actor=actor, user=user
        )

    async def generate(
        self, account_id: str, actor: str, *, command_id: str | None = None
    ) -> dict[str, Any]:
        return await self.command("generate", command_id, account_id=account_id, actor=actor)

    async def reveal(
        self, account_id: str, actor: str, *, command_id: str | None = None
    ) -> dict[str, Any]:
        return await self.command("reveal", command_id, account_id=account_id, actor=actor)

    async def rotate(
        self,
        account_id: str,
        actor: str,
        *,
        confirm: bool,
        grace_seconds: int = 0,
        expected_key_id: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """expected_key_id: the key the caller saw; refused as `superseded` if another is
        live by then. None: rotate whatever key is live."""
        return await self.command(
            "rotate",
            command_id,
            account_id=account_id,
            actor=actor,
            confirm=confirm,
            grace_seconds=grace_seconds,
            **_expecting(expected_key_id),
        )

    async def deactivate(
        self,
        account_id: str,
        actor: str,
        *,
        confirm: bool,
        expected_key_id: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """expected_key_id: as for rotate."""
        return await self.command(
            "deactivate",
            command_id,
            account_id=account_id,
            actor=actor,
            confirm=confirm,
            **_expecting(expected_key_id),
        )

    async def health(self) -> dict[str, Any]:
        return await self.request(query_subject("health"), {})

    async def live_key(self, account_id: str) -> dict[str, Any]:
        """The live key's id, hint, creation and creator: never the key, and not a view."""
        return await self.request(query_subject("key"), {"account_id": account_id})

    async def accounts_of(self, user: str) -> dict[str, Any]:
        """`{"user", "accounts": [{"account_id", "super_admins"}]}`: where `user` is a
        super-admin now, sorted by account id (empty for anyone else)."""
        return await self.request(query_subject("accounts"), {"user": user})

    async def audit(
        self, account_id: str, limit: int = 50, before: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"account_id": account_id, "limit": limit}
        if before is not None:
            body["before"] = before
        return await self.request(query_subject("audit"), body)

    async def verify(self, key: str) -> dict[str, Any]:
        """`{"valid": bool, "account_id", "key_id", "reason"}`; the hot path gateways call.

        The checksum is checked here and only the key's sha-256 crosses NATS, so the key
        itself never travels in a message and a malformed key costs no round trip.
        """
        if not keyformat.is_well_formed(key):
            return {"valid": False, "account_id": None, "key_id": None, "reason": "malformed"}
        return await self.request(VERIFY_SUBJECT, {"fingerprint": keyformat.fingerprint(key)})

    async def record_call(self, call: CallRecorded) -> bool:
        """Publish one call record to CALLS and wait for the stream's ack; False: a duplicate.

        The call id is the Nats-Msg-Id, so a retry after a lost ack is stored once. The
        stream is declared by the calllog service, never here: until it exists this raises
        Unreachable (keyledger.gateway keeps the record and retries).
        """
        js = self.nc.jetstream()
        try:
            ack = await js.publish(
                recorded_subject(call.account_id),
                call.model_dump_json().encode(),
                timeout=self.timeout,
                stream=CALLS_STREAM.name,
                headers={"Nats-Msg-Id": call.call_id},
            )
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise Unreachable(f"call not recorded: {_describe(exc)}") from None
        return not ack.duplicate


def _expecting(key_id: str | None) -> dict[str, Any]:
    # left out when unset: a service older than expected_key_id refuses unknown fields
    return {"expected_key_id": key_id} if key_id is not None else {}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
