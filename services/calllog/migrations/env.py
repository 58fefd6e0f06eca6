"""Alembic environment of the calllog service: migrates the connection migrate.py hands over."""

from services.calllog.store import metadata
from services.common.migrate import run_env

run_env(metadata)
