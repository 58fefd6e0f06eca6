"""The console's tables: people, sessions, setup tokens and failed sign-ins."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table

from services.common.sql import UtcMicros

metadata = MetaData()

users = Table(
    "console_users",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("email", String(320), nullable=False),
    # argon2id PHC string; None until the person follows a setup link
    Column("password_hash", String(256)),
    Column("totp_secret", String(64)),
    Column("created_at", UtcMicros, nullable=False),
)

sessions = Table(
    "console_sessions",
    metadata,
    # sha-256 of the cookie's session id: a leaked table opens no session
    Column("id_hash", String(64), primary_key=True),
    Column("user", String(128)),  # None: before sign-in (carries the sign-in form's CSRF)
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcMicros, nullable=False),
    Column("last_seen_at", UtcMicros, nullable=False),
    Column("sudo_until", UtcMicros),
)

setup_tokens = Table(
    "console_setup_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha-256 only
    Column("user", String(128), nullable=False, index=True),
    Column("created_at", UtcMicros, nullable=False),
    Column("expires_at", UtcMicros, nullable=False),
    Column("used", Boolean, nullable=False),
)

signin_failures = Table(
    "console_signin_failures",
    metadata,
    Column("subject", String(200), primary_key=True),  # "user:<name>" or "addr:<ip>"
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UtcMicros, nullable=False),
)
