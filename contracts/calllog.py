"""The call log's contract: the CallRecorded record, queries, results, subjects, CALLS stream."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import Field, field_validator

from contracts import keyformat
from contracts.calendar import Moment
from contracts.envelope import Contract, Query
from contracts.keys import AccountId
from contracts.streams import StreamSpec

RETENTION_SECONDS = 7 * 24 * 3600
MAX_PAGE = 1000
MAX_PATH = 2048
MAX_USER_AGENT = 512
MAX_CLIENTS = 20
KEY_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
CALL_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
METHOD = r"^[A-Z]{1,16}$"
STATUS_FILTER = r"^([1-5][0-9][0-9]|[1-5]xx)$"

KeyId = Annotated[str, Field(pattern=KEY_ID)]


_KEY_SHAPED = re.compile(keyformat.KEY_PATTERN)


def redact_keys(text: str) -> str:
    """Anything shaped like a keyledger key becomes `klk_[redacted]` (keys pasted in paths)."""
    return _KEY_SHAPED.sub("klk_[redacted]", text) if keyformat.PREFIX in text else text


def path_only(raw: str) -> str:
    """The path without query string or fragment: a `?hapikey=` secret never gets stored."""
    return redact_keys(raw.split("?", 1)[0].split("#", 1)[0])[:MAX_PATH] or "/"


# --- the record (one message per served call on calls.recorded.<account_id>, stored on
# calls.recorded.<partition>.<account_id>) ----------------------------------------------


class CallRecorded(Contract):
    """One API call a gateway served with an account's key; carries the key id, never the key.

    Not a chained event: calls from many gateways have no order to chain; `ts` orders them.
    """

    kind: Literal["CallRecorded"] = "CallRecorded"
    version: int = 1
    call_id: Annotated[str, Field(pattern=CALL_ID)] = Field(
        default_factory=lambda: uuid4().hex, description="also the Nats-Msg-Id; stored once"
    )
    account_id: AccountId
    key_id: KeyId
    ts: Moment = Field(description="when the call arrived (UTC)")
    method: Annotated[str, Field(pattern=METHOD)]
    path: str = Field(description="path only: the query string is cut off before sending")
    status: Annotated[int, Field(ge=100, le=599)]
    duration_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    caller_ip: Annotated[str, Field(max_length=64)] | None = None
    user_agent: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        # also enforced here so that no producer can get a query string into the log
        return path_only(value)

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, value: str | None) -> str | None:
        return redact_keys(value)[:MAX_USER_AGENT] if value is not None else None


# --- queries (requests on calls.query.<name>) -----------------------------------------


class ListCalls(Query):
    account_id: AccountId
    key_id: KeyId | None = None
    since: Moment | None = Field(default=None, description="inclusive; clamped to the last 7 days")
    until: Moment | None = Field(default=None, description="exclusive")
    method: Annotated[str, Field(pattern=METHOD)] | None = None
    path_prefix: Annotated[str, Field(pattern=r"^/", max_length=MAX_PATH)] | None = None
    status: Annotated[str, Field(pattern=STATUS_FILTER)] | None = Field(
        default=None, description="an exact status (404) or a class (4xx)"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 100
    cursor: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="next_cursor of the previous page (checked when decoded)"
    )


class CallStatsQuery(Query):
    account_id: AccountId
    key_id: KeyId | None = None
    by: Literal["hour", "day"] = "hour"
    top: Annotated[int, Field(ge=1, le=100)] = 10


class LastUsedQuery(Query):
    account_id: AccountId
    key_id: KeyId


class ClientsQuery(Query):
    """Who has called with one key since a moment (say, an old key still in its grace)."""

    account_id: AccountId
    key_id: KeyId
    since: Moment = Field(description="inclusive; clamped to the last 7 days")


# --- results --------------------------------------------------------------------------


class CallEntry(Contract):
    call_id: str
    key_id: str
    ts: datetime
    method: str
    path: str
    status: int
    duration_ms: float
    caller_ip: str | None = None
    user_agent: str | None = None


class CallPage(Contract):
    account_id: str
    since: datetime = Field(description="the effective lower bound (after clamping)")
    until: datetime | None = None
    items: list[CallEntry]
    next_cursor: str | None = None


class Bucket(Contract):
    start: datetime
    counts: dict[str, int] = Field(description="calls per status class: 1xx .. 5xx")


class PathCount(Contract):
    path: str
    calls: int


class KeyUse(Contract):
    key_id: str
    calls: int
    last_used_at: datetime


class CallStats(Contract):
    account_id: str
    key_id: str | None = None
    by: Literal["hour", "day"]
    since: datetime
    until: datetime
    total: int
    by_class: dict[str, int]
    error_rate: float = Field(description="share of calls with status >= 400; 0 with no calls")
    buckets: list[Bucket] = Field(description="every hour/day of the window, oldest first")
    top_paths: list[PathCount]
    keys: list[KeyUse]


class LastUsed(Contract):
    account_id: str
    key_id: str
    last_used_at: datetime | None = Field(description="None: no call in the last 7 days")
    window_start: datetime


class KeyClient(Contract):
    """One distinct caller of a key: its address and user agent as the gateway saw them."""

    caller_ip: str | None = None
    user_agent: str | None = None
    calls: int
    last_at: datetime


class KeyClients(Contract):
    account_id: str
    key_id: str
    since: datetime = Field(description="the effective lower bound (after clamping)")
    calls: int = Field(description="every call with the key since then, all clients")
    last_at: datetime | None = Field(description="the latest of them; None: no call")
    clients: list[KeyClient] = Field(
        description=f"by (caller_ip, user_agent), most recent first, at most {MAX_CLIENTS}"
    )


# --- subjects and stream -----------------------------------------------------------------

SERVICE_QUEUE = "calllog"
PROJECTION_DURABLE = "calllog-projection"  # the single durable before partitions (legacy)
ALL_RECORDED = "calls.recorded.>"
PUBLISHED = "calls.recorded.*"  # what gateways publish: calls.recorded.<account_id>
STORED_PATTERN = "calls.recorded.{partition}.{account_id}"  # as documents spell it
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# CALLS is consumed in this many partitions by account unless its stream says otherwise: the
# number lives in the stream's subject transform, fixed for the stream's life (README)
PARTITIONS = 8
MAX_PARTITIONS = 32  # each partition's durable is named in the NATS permissions
LEASES_BUCKET = "calllog-leases"  # KV: who owns which partition (services/calllog)
_PARTITION_DEST = re.compile(
    r"^calls\.recorded\.\{\{partition\((\d+),1\)\}\}\.\{\{wildcard\(1\)\}\}$"
)


def recorded_subject(account_id: str) -> str:
    """Where a gateway publishes an account's call (CALLS stores it partitioned)."""
    return f"calls.recorded.{account_id}"


def partition_of(account_id: str, partitions: int) -> int:
    """nats-server's `{{partition(n,1)}}`: FNV-1a (32 bits) of the account token, mod n."""
    h = 0x811C9DC5
    for byte in account_id.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % partitions


def stored_subject(account_id: str, partitions: int) -> str:
    """The subject CALLS stores an account's call under: calls.recorded.<partition>.<account>."""
    return f"calls.recorded.{partition_of(account_id, partitions)}.{account_id}"


def account_subject(account_id: str) -> str:
    """Every stored call of one account, whatever the partition count."""
    return f"calls.recorded.*.{account_id}"


def partition_subject(partition: int) -> str:
    return f"calls.recorded.{partition}.*"


def partition_durable(partition: int) -> str:
    return f"calllog-p{partition}"


def partition_transform(partitions: int) -> tuple[str, str]:
    """CALLS's subject transform (source, destination): the partition number is inserted."""
    return PUBLISHED, f"calls.recorded.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}"


def transform_partitions(destination: str | None) -> int | None:
    """The partition count of a stream's transform destination; None: not partitioned."""
    found = _PARTITION_DEST.match(destination or "")
    return int(found.group(1)) if found else None


def query_subject(name: str) -> str:
    return f"calls.query.{name}"


def calls_stream(
    max_age_seconds: float = RETENTION_SECONDS, partitions: int | None = PARTITIONS
) -> StreamSpec:
    """CALLS, declared by the calllog service. Purge stays allowed (an operator may erase an
    account's calls); single-message delete is denied so no one quietly edits the log.
    partitions: None declares it as it was before partitions (tests of an upgrade)."""
    return StreamSpec(
        name="CALLS",
        subjects=(ALL_RECORDED,),
        max_age_seconds=max_age_seconds,
        duplicate_window_seconds=120,
        deny_delete=True,
        deny_purge=False,
        transform=None if partitions is None else partition_transform(partitions),
    )


CALLS_STREAM = calls_stream()
