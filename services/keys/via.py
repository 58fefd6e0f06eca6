"""Who vouched for a request: the Nats-Request-Info header, trusted only across accounts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from contracts.accounts import REQUEST_INFO_HEADER, SERVICES
from contracts.envelope import Via

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_NAME = 128  # the audit table's column width


def via_of(headers: Mapping[str, Any] | None) -> Via | None:
    """The requester's account (and user, with `share: true`), or None.

    nats-server writes the header when a request crosses a service import and replaces any
    header the client set, so it is trusted for any account but SERVICES: inside one account
    nothing rewrites it (a client there could write anything), and the identities inside
    SERVICES are the services themselves and admin. A malformed header can therefore only
    come from inside SERVICES and counts as none.
    """
    text = (headers or {}).get(REQUEST_INFO_HEADER)
    if not isinstance(text, str | bytes) or not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    account, user = info.get("acc"), info.get("user")
    if not isinstance(account, str) or not account or account == SERVICES:
        return None
    return Via(
        account=account[:MAX_NAME],
        user=user[:MAX_NAME] if isinstance(user, str) and user else None,
    )
