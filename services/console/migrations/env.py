"""Alembic environment of the console: migrates the connection migrate.py hands over."""

from services.common.migrate import run_env
from services.console.store import metadata

run_env(metadata)
