"""The keys service's contract: account events, commands, results, subjects and the KEYS stream."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from contracts.envelope import Contract, Query, Via
from contracts.mailaddress import RULE as EMAIL_RULE
from contracts.mailaddress import check_email
from contracts.streams import StreamSpec

ACCOUNT_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
USER_ID = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
# the coarse shape, kept so old refusals read the same; check_email is the whole rule
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}$"
KEY_ID = r"^[A-Za-z0-9_-]{1,64}$"
MAX_GRACE_SECONDS = 30 * 24 * 3600
# an account's event sequence: the audit table's column is a 32-bit INTEGER on PostgreSQL
MAX_SEQUENCE = 2**31 - 1

AccountId = Annotated[str, Field(pattern=ACCOUNT_ID)]
UserId = Annotated[str, Field(pattern=USER_ID)]
Email = Annotated[str, Field(pattern=EMAIL, description=EMAIL_RULE), AfterValidator(check_email)]
KeyId = Annotated[str, Field(pattern=KEY_ID)]


# --- events (payloads of Envelope on keys.events.<account_id>) ---------------------------


class AccountOpened(Contract):
    kind: Literal["AccountOpened"] = "AccountOpened"
    owner: str
    owner_email: str


class SuperAdminGranted(Contract):
    kind: Literal["SuperAdminGranted"] = "SuperAdminGranted"
    user: str
    email: str


class SuperAdminRevoked(Contract):
    kind: Literal["SuperAdminRevoked"] = "SuperAdminRevoked"
    user: str


class KeyGenerated(Contract):
    kind: Literal["KeyGenerated"] = "KeyGenerated"
    key_id: str
    hint: str = Field(description="display hint, e.g. klk_…x7q2; never enough to use the key")
    fingerprint: str = Field(description="sha-256 hex of the key")


class KeyViewed(Contract):
    kind: Literal["KeyViewed"] = "KeyViewed"
    key_id: str
    hint: str = ""


class KeyRotated(Contract):
    kind: Literal["KeyRotated"] = "KeyRotated"
    old_key_id: str
    new_key_id: str
    hint: str
    fingerprint: str
    grace_until: datetime | None = Field(
        default=None, description="the old key still verifies until then; None: stops at once"
    )


class KeyDeactivated(Contract):
    kind: Literal["KeyDeactivated"] = "KeyDeactivated"
    key_id: str
    hint: str = ""


AccountEvent = Annotated[
    AccountOpened
    | SuperAdminGranted
    | SuperAdminRevoked
    | KeyGenerated
    | KeyViewed
    | KeyRotated
    | KeyDeactivated,
    Field(discriminator="kind"),
]
EVENT_VERSION = 1


# --- commands (requests on keys.cmd.<verb>) ----------------------------------------------


class Command(BaseModel):
    """Commands are validated strictly: unknown fields and wrong types are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    command_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        default_factory=lambda: str(uuid4()),
        description="client-chosen; a retried command with the same id takes effect once",
    )
    correlation_id: Annotated[str, Field(max_length=128)] | None = None
    deadline: AwareDatetime | None = Field(
        default=None,
        description="when the client stops waiting (UTC); a command that gets its turn later "
        "is not executed and is answered deadline_exceeded. None: no deadline",
    )


class OpenAccount(Command):
    account_id: AccountId
    owner: UserId
    email: Email


class GrantSuperAdmin(Command):
    account_id: AccountId
    actor: UserId
    user: UserId
    email: Email


class RevokeSuperAdmin(Command):
    account_id: AccountId
    actor: UserId
    user: UserId


class GenerateKey(Command):
    account_id: AccountId
    actor: UserId


class RevealKey(Command):
    account_id: AccountId
    actor: UserId


class RotateKey(Command):
    account_id: AccountId
    actor: UserId
    confirm: bool = False
    grace_seconds: Annotated[int, Field(ge=0, le=MAX_GRACE_SECONDS)] = 0
    expected_key_id: KeyId | None = Field(
        default=None,
        description="the key this command acts on (like If-Match); refused as superseded when "
        "another key (or none) is live by then. None: whatever key is live",
    )


class DeactivateKey(Command):
    account_id: AccountId
    actor: UserId
    confirm: bool = False
    expected_key_id: KeyId | None = Field(
        default=None,
        description="the key this command acts on (like If-Match); refused as superseded when "
        "another key (or none) is live by then. None: whatever key is live",
    )


class AuditQuery(Query):
    account_id: AccountId
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    before: Annotated[int, Field(ge=1, le=MAX_SEQUENCE)] | None = Field(
        default=None, description="cursor: return entries with a sequence below this"
    )


class KeyQuery(Query):
    """The live key's metadata (never the key, and not recorded as a view)."""

    account_id: AccountId


class AccountsQuery(Query):
    """The accounts where `user` is a super-admin now (what a console may show that person)."""

    user: UserId


class VerifyRequest(BaseModel):
    """Send the fingerprint (sha-256 hex of the key) so the key never crosses NATS; a raw
    `key` is accepted too, for gateways that cannot hash, and gets the checksum check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    key: Annotated[str, Field(max_length=256)] | None = None


# --- results (the `result` of a successful reply) ----------------------------------------


class AccountResult(Contract):
    account_id: str
    super_admins: list[str]


class UserAccounts(Contract):
    """Reply to keys.query.accounts: sorted by account id; empty for a user who is no
    super-admin anywhere (an unknown user included)."""

    user: str
    accounts: list[AccountResult]  # each with its super-admins sorted


class KeyResult(Contract):
    """Reply to generate / reveal / rotate: the only messages that may carry a key."""

    account_id: str
    key: str
    key_id: str
    hint: str
    created_at: datetime
    age_seconds: int
    recommended_rotation_at: datetime
    previous_key_id: str | None = None
    previous_key_grace_until: datetime | None = None


class LiveKey(Contract):
    """Reply to keys.query.key: what a person sees of the live key before acting on it."""

    account_id: str
    key_id: str
    hint: str
    created_at: datetime
    created_by: str
    recommended_rotation_at: datetime
    previous_key_id: str | None = Field(
        default=None, description="the key the last rotation replaced, while it still works"
    )
    previous_key_grace_until: datetime | None = Field(
        default=None, description="until when the previous key works (its grace period)"
    )


class DeactivateResult(Contract):
    account_id: str
    key_id: str
    deactivated_at: datetime


class VerifyResult(Contract):
    valid: bool
    account_id: str | None = None
    key_id: str | None = None
    reason: Literal["malformed", "unknown", "deactivated", "expired"] | None = None


class AuditEntry(Contract):
    sequence: int
    occurred_at: datetime
    actor: str
    action: str
    key_id: str | None = None
    key_hint: str | None = None
    user: str | None = None
    via: Via | None = None


class AuditPage(Contract):
    account_id: str
    items: list[AuditEntry]
    next_cursor: int | None = None


# --- subjects and stream -----------------------------------------------------------------

SERVICE_QUEUE = "keys"
VERIFY_SUBJECT = "keys.verify"
ALL_EVENTS = "keys.events.>"
# the keys service's own audit projection (durable on KEYS and its tracking row)
AUDIT_DURABLE = "keys-audit"


# verb of keys.cmd.<verb> -> the command it carries
COMMANDS: dict[str, type[Command]] = {
    "open_account": OpenAccount,
    "grant_admin": GrantSuperAdmin,
    "revoke_admin": RevokeSuperAdmin,
    "generate": GenerateKey,
    "reveal": RevealKey,
    "rotate": RotateKey,
    "deactivate": DeactivateKey,
}


def event_subject(account_id: str) -> str:
    return f"keys.events.{account_id}"


def command_subject(verb: str) -> str:
    return f"keys.cmd.{verb}"


def query_subject(name: str) -> str:
    return f"keys.query.{name}"


KEYS_STREAM = StreamSpec(name="KEYS", subjects=(ALL_EVENTS,))
